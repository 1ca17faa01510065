"""``k8swatch serve`` and ``k8swatch fake-coder`` end to end: subprocess, kubectl, kubernetes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from k8swatch.cli import _build_wait_options, build_kubeconfig, main, parse_go_duration

GROUP = "aggregation.coder.com"
VERSION = "v1alpha1"
KUBECTL = str(Path(sys.executable).parent / "kubectl")


class Served:
    """A ``k8swatch`` subprocess and the lines it printed."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "k8swatch.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(60):
            self.stop()
            raise AssertionError("no startup banner:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("press Ctrl-C"):
                self.ready.set()

    def value(self, prefix: str) -> str:
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise AssertionError(f"no {prefix!r} line in:\n" + "".join(self.lines))

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:  # pragma: no cover - only on a hang
                self.proc.kill()
                self.proc.wait()
            self.reader.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    out = dict(os.environ)
    out["HOME"] = str(home)  # kubectl's discovery cache stays in the test
    out.pop("KUBECONFIG", None)
    out.pop("CODER_SESSION_TOKEN", None)
    return out


@contextlib.contextmanager
def serve(env: dict[str, str], kubeconfig: Path, *extra: str) -> Iterator[Served]:
    served = Served(
        [
            "serve",
            "--port",
            "0",
            "--namespace",
            "coder",
            "--kubeconfig",
            str(kubeconfig),
            "--poll-interval",
            "0.3",
            "--fake-build-mode",
            "async",
            "--fake-build-seconds",
            "0.3",
            *extra,
        ],
        env,
    )
    try:
        yield served
    finally:
        code = served.stop()
        assert code == 0, "".join(served.lines)
        assert served.lines[-1].strip() == "stopped"


def kubectl(env: dict[str, str], kubeconfig: Path, *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


def test_build_kubeconfig() -> None:
    text = build_kubeconfig("http://127.0.0.1:1234", "coder")
    assert "server: http://127.0.0.1:1234\n" in text
    assert "namespace: coder\n" in text
    assert "current-context: k8swatch\n" in text


def test_go_durations_and_build_wait_knobs() -> None:
    assert parse_go_duration("25m") == 1500.0
    assert parse_go_duration("1m30s") == 90.0
    assert parse_go_duration("500ms") == 0.5
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration("5 minutes")
    assert _build_wait_options(
        {
            "CODER_K8S_TEMPLATE_BUILD_WAIT_TIMEOUT": "10m",
            "CODER_K8S_TEMPLATE_BUILD_INITIAL_POLL_INTERVAL": "1s",
        }
    ) == {"build_wait_timeout": 600.0, "build_poll_interval": 1.0}
    with pytest.raises(ValueError, match="at most 30m"):
        _build_wait_options({"CODER_K8S_TEMPLATE_BUILD_WAIT_TIMEOUT": "31m"})


def test_bad_build_wait_knob_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CODER_K8S_TEMPLATE_BUILD_MAX_POLL_INTERVAL", "soon")
    assert main(["serve", "--port", "0"]) == 2
    assert "invalid duration" in capsys.readouterr().err


def test_coder_url_needs_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CODER_SESSION_TOKEN", raising=False)
    assert main(["serve", "--coder-url", "http://coder.example.com"]) == 2
    assert "CODER_SESSION_TOKEN" in capsys.readouterr().err


def test_busy_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["fake-coder", "--port", str(port)]) == 1
    assert "cannot listen" in capsys.readouterr().err


@pytest.mark.kubectl
def test_serve_with_kubectl(env: dict[str, str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with serve(env, kubeconfig) as served:
        assert served.value("URL: ").startswith("http://127.0.0.1:")
        assert kubeconfig.read_text().startswith("apiVersion: v1\n")
        listed = kubectl(env, kubeconfig, "get", "coderworkspaces", "-A", "-o", "name")
        assert listed.split() == ["coderworkspace.aggregation.coder.com/acme.alice.dev-workspace"]
        templates = kubectl(env, kubeconfig, "get", "codertemplates", "-o", "name")
        assert templates.split() == ["codertemplate.aggregation.coder.com/acme.starter-template"]

        watch = subprocess.Popen(
            [
                KUBECTL,
                "--kubeconfig",
                str(kubeconfig),
                "get",
                "coderworkspaces",
                "-A",
                "--watch-only",
                "--output-watch-events",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            time.sleep(1.0)  # let the watch establish (kubectl prints nothing until an event)
            manifest = json.dumps(
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "CoderWorkspace",
                    "metadata": {"name": "acme.alice.e2e"},
                    "spec": {
                        "organization": "acme",
                        "templateName": "starter-template",
                        "running": True,
                    },
                }
            )
            kubectl(env, kubeconfig, "create", "-f", "-", stdin=manifest)

            def status() -> str:
                return kubectl(
                    env,
                    kubeconfig,
                    "get",
                    "coderworkspace",
                    "acme.alice.e2e",
                    "-o",
                    "jsonpath={.status.latestBuildStatus}",
                )

            wait_until(lambda: status() == "running")
            kubectl(
                env,
                kubeconfig,
                "patch",
                "coderworkspace",
                "acme.alice.e2e",
                "--type",
                "merge",
                "-p",
                '{"spec":{"running":false}}',
            )
            # kubectl wait watches with sendInitialEvents=true: served by the cache
            kubectl(
                env,
                kubeconfig,
                "wait",
                "--for=jsonpath={.status.latestBuildStatus}=stopped",
                "coderworkspace/acme.alice.e2e",
                "--timeout=60s",
            )
            assert status() == "stopped"
            kubectl(env, kubeconfig, "delete", "coderworkspace", "acme.alice.e2e", "--wait=false")
            time.sleep(3.0)  # the delete build finishes, the poller reports DELETED
        finally:
            watch.terminate()
            out, _ = watch.communicate(timeout=30)
        decoder = json.JSONDecoder()
        events: list[tuple[str, str, str]] = []
        text = out.strip()
        while text:
            event, end = decoder.raw_decode(text)
            obj = event["object"]
            events.append(
                (
                    event["type"],
                    obj["metadata"]["name"],
                    obj.get("status", {}).get("latestBuildStatus", ""),
                )
            )
            text = text[end:].strip()
        mine = [e for e in events if e[1] == "acme.alice.e2e"]
        assert mine[0][0] == "ADDED"
        assert mine[-1][0] == "DELETED"
        statuses = [s for t, _, s in mine if t == "MODIFIED"]
        assert "running" in statuses
        assert "stopped" in statuses

        # templates: create from files, read the files back, delete
        template = json.dumps(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "CoderTemplate",
                "metadata": {"name": "acme.e2e-template"},
                "spec": {
                    "organization": "acme",
                    "displayName": "E2E Template",
                    "files": {"main.tf": "# e2e"},
                },
            }
        )
        kubectl(env, kubeconfig, "apply", "-f", "-", stdin=template)
        got = json.loads(
            kubectl(env, kubeconfig, "get", "codertemplate", "acme.e2e-template", "-o", "json")
        )
        assert got["spec"]["files"] == {"main.tf": "# e2e"}
        kubectl(env, kubeconfig, "delete", "codertemplate", "acme.e2e-template")
        gone = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), "get", "codertemplate", "acme.e2e-template"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert gone.returncode != 0
        assert "NotFound" in gone.stderr or "not found" in gone.stderr


def test_serve_with_the_kubernetes_client(env: dict[str, str], tmp_path: Path) -> None:
    from kubernetes import client, config, watch

    kubeconfig = tmp_path / "kubeconfig"
    with serve(env, kubeconfig, "--fake-build-mode", "instant"):
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        api = client.CustomObjectsApi(api_client)
        try:
            listed = api.list_namespaced_custom_object(GROUP, VERSION, "coder", "coderworkspaces")
            rv = listed["metadata"]["resourceVersion"]
            assert [i["metadata"]["name"] for i in listed["items"]] == ["acme.alice.dev-workspace"]
            created = api.create_namespaced_custom_object(
                GROUP,
                VERSION,
                "coder",
                "coderworkspaces",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "CoderWorkspace",
                    "metadata": {"name": "acme.alice.py"},
                    "spec": {
                        "organization": "acme",
                        "templateName": "starter-template",
                        "running": False,
                    },
                },
            )
            assert created["spec"]["running"] is False
            toggled = api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                "coder",
                "coderworkspaces",
                "acme.alice.py",
                {"spec": {"running": True}},
            )
            assert toggled["spec"]["running"] is True
            api.delete_namespaced_custom_object(
                GROUP, VERSION, "coder", "coderworkspaces", "acme.alice.py"
            )
            # a watch resumed from the list's resourceVersion replays exactly our changes
            seen: list[tuple[str, bool]] = []
            stream = watch.Watch().stream(
                api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                "coder",
                "coderworkspaces",
                resource_version=rv,
                timeout_seconds=5,
            )
            for event in stream:
                obj = event["object"]
                if obj["metadata"]["name"] == "acme.alice.py":
                    seen.append((event["type"], obj["spec"]["running"]))
                if event["type"] == "DELETED":
                    break
            assert seen[:2] == [("ADDED", False), ("MODIFIED", True)]
            assert seen[-1][0] == "DELETED"

            template = api.create_namespaced_custom_object(
                GROUP,
                VERSION,
                "coder",
                "codertemplates",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "CoderTemplate",
                    "metadata": {"name": "acme.py-template"},
                    "spec": {"organization": "acme", "files": {"main.tf": "# py"}},
                },
            )
            renamed = api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                "coder",
                "codertemplates",
                "acme.py-template",
                {"spec": {"displayName": "From Python"}},
            )
            assert renamed["spec"]["displayName"] == "From Python"
            assert renamed["spec"]["files"] == {"main.tf": "# py"}
            api.delete_namespaced_custom_object(
                GROUP, VERSION, "coder", "codertemplates", "acme.py-template"
            )
            types = [
                event["type"]
                for event in watch.Watch().stream(
                    api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    "coder",
                    "codertemplates",
                    resource_version=template["metadata"]["resourceVersion"],
                    timeout_seconds=2,
                )
            ]
            assert types == ["MODIFIED", "DELETED"]
        finally:
            api_client.close()


def test_fake_coder_command(env: dict[str, str]) -> None:
    served = Served(["fake-coder", "--port", "0", "--token", "secret-token"], env)
    try:
        url = served.value("URL: ")
        assert served.value("token: ") == "secret-token"
        ok = httpx.get(f"{url}/api/v2/workspaces", headers={"Coder-Session-Token": "secret-token"})
        assert ok.status_code == 200
        assert ok.json()["count"] == 1
        assert httpx.get(f"{url}/api/v2/workspaces").status_code == 401
    finally:
        assert served.stop(signal.SIGTERM) == 0
    assert served.lines[-1].strip() == "stopped"


def test_serve_against_a_coder_url(env: dict[str, str], tmp_path: Path) -> None:
    fake = Served(["fake-coder", "--port", "0", "--build-mode", "instant"], env)
    try:
        env = {**env, "CODER_SESSION_TOKEN": fake.value("token: ")}
        kubeconfig = tmp_path / "kubeconfig"
        with serve(env, kubeconfig, "--coder-url", fake.value("URL: ")) as served:
            assert served.value("Coder deployment: ").startswith(fake.value("URL: "))
            assert env["CODER_SESSION_TOKEN"] not in "".join(served.lines)
            api = httpx.get(
                f"{served.value('URL: ')}/apis/{GROUP}/{VERSION}/namespaces/coder/codertemplates"
            )
            assert [i["metadata"]["name"] for i in api.json()["items"]] == ["acme.starter-template"]
    finally:
        fake.stop()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """/metrics parsed by prometheus_client's parser: samples by name."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_serve_health_and_metrics(env: dict[str, str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with serve(env, kubeconfig) as served:
        url = served.value("URL: ")
        ready = httpx.get(f"{url}/readyz?verbose")
        assert ready.status_code == 200, ready.text
        assert ready.text == "[+]ping ok\n[+]shutdown ok\n[+]coder ok\nreadyz check passed\n"
        assert httpx.get(f"{url}/livez").text == "ok"
        assert httpx.get(f"{url}/readyz/coder").text == "ok"
        kubectl(env, kubeconfig, "get", "coderworkspaces")
        kubectl(env, kubeconfig, "get", "codertemplates", "-A")
        samples = scrape(url)
        lists = {
            (labels["resource"], labels["scope"])
            for labels, value in samples["apiserver_request_total"]
            if labels["verb"] == "LIST" and labels["code"] == "200" and value >= 1
        }
        assert lists >= {("coderworkspaces", "namespace"), ("codertemplates", "cluster")}
        # the Coder calls the storages and the readiness check made, timed
        coder_calls = sum(
            value
            for labels, value in samples["k8swatch_coder_request_duration_seconds_count"]
            if labels["method"] == "GET" and labels["code"] == "200"
        )
        assert coder_calls >= 2
        # the watch caches of both storages
        capacity = {labels["resource"] for labels, _ in samples["apiserver_watch_cache_capacity"]}
        assert capacity == {"coderworkspaces", "codertemplates"}


def test_readyz_fails_while_coder_is_unreachable(env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {**env, "CODER_SESSION_TOKEN": "not-a-real-token"}
    with serve(env, tmp_path / "kubeconfig", "--coder-url", closed) as served:
        url = served.value("URL: ")
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 500
        assert "[-]coder failed: reason withheld\n" in ready.text
        assert ready.text.endswith("readyz check failed\n")
        assert "not-a-real-token" not in httpx.get(f"{url}/readyz/coder").text
        # alive all the same: restarting would not bring Coder back
        assert httpx.get(f"{url}/livez").status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200
        failed = [
            labels
            for labels, value in scrape(url)["k8swatch_coder_request_duration_seconds_count"]
            if labels["code"] == "0" and value >= 1
        ]
        assert failed
