"""Two ``k8swatch serve --redis-url`` replicas in front of one ``k8swatch fake-coder``.

End to end over HTTP: a watch on replica B sees writes made through A and B and
changes made in Coder behind both, once each, in one resourceVersion order,
and resumes from a resourceVersion A answered with.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8swatch.cli import main
from tests.coder.test_cli import Served

from .conftest import RedisServer

pytestmark = pytest.mark.redis

GROUP = "aggregation.coder.com"
VERSION = "v1alpha1"
NS = "coder"
PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/coderworkspaces"
Obj = dict[str, Any]


def serve_args(coder_url: str, redis_url: str, prefix: str, kubeconfig: Path) -> list[str]:
    """``k8swatch serve`` for one replica on *prefix*, writing its kubeconfig to *kubeconfig*."""
    return [
        "serve",
        "--port", "0",
        "--namespace", NS,
        "--coder-url", coder_url,
        "--redis-url", redis_url,
        "--redis-prefix", prefix,
        "--poll-interval", "0.3",
        "--kubeconfig", str(kubeconfig),
    ]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = dict(os.environ)
    out["HOME"] = str(tmp_path)
    out.pop("KUBECONFIG", None)
    out.pop("CODER_SESSION_TOKEN", None)
    return out


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str]) -> Iterator[Served]:
    served = Served(args, env)  # waits (up to 60 s) for the startup banner
    try:
        yield served
    finally:
        code = served.stop()
        assert code == 0, "".join(served.lines)


@contextlib.contextmanager
def deployment(
    redis_url: str, prefix: str, env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, str, str, str]]:
    """A fake Coder and two replicas; yields ``(Coder URL, token, URL of A, URL of B)``."""
    with started(["fake-coder", "--port", "0", "--build-mode", "instant"], env) as fake:
        coder_url, token = fake.value("URL: "), fake.value("token: ")
        replica_env = {**env, "CODER_SESSION_TOKEN": token}
        with (
            started(serve_args(coder_url, redis_url, prefix, tmp_path / "a"), replica_env) as a,
            started(serve_args(coder_url, redis_url, prefix, tmp_path / "b"), replica_env) as b,
        ):
            assert any(line.startswith("Redis: ") for line in a.lines)
            yield coder_url, token, a.value("URL: "), b.value("URL: ")


def workspace(name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CoderWorkspace",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"organization": "acme", "templateName": "starter-template", "running": True},
    }


def rv_of(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


def read_events(response: httpx.Response, count: int) -> list[tuple[str, str, int, Obj]]:
    """The next *count* watch events (bookmarks skipped): ``(type, name, rv, object)``."""
    out: list[tuple[str, str, int, Obj]] = []
    for line in response.iter_lines():
        if not line:
            continue
        event = json.loads(line)
        if event["type"] == "BOOKMARK":
            continue
        obj = event["object"]
        out.append((event["type"], obj["metadata"]["name"], rv_of(obj), obj))
        if len(out) == count:
            break
    return out


def test_two_serve_replicas_form_one_api(
    redis_server: RedisServer, prefix: str, env: dict[str, str], tmp_path: Path
) -> None:
    with (
        deployment(redis_server.url, prefix, env, tmp_path) as (coder_url, token, a, b),
        httpx.Client(timeout=httpx.Timeout(60.0)) as http,
    ):
        listed = http.get(b + PATH)
        assert listed.status_code == 200, listed.text
        list_rv = listed.json()["metadata"]["resourceVersion"]
        with http.stream(
            "GET", b + PATH, params={"watch": "true", "resourceVersion": list_rv}
        ) as watch:
            assert watch.status_code == 200
            # a create through A ...
            created = http.post(a + PATH, json=workspace("acme.alice.replicated"))
            assert created.status_code == 201, created.text
            created_rv = rv_of(created.json())
            # ... and a patch through B
            patched = http.patch(
                b + PATH + "/acme.alice.replicated",
                content=json.dumps({"spec": {"running": False}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert patched.status_code == 200, patched.text
            patched_rv = rv_of(patched.json())
            # a change made in Coder behind both replicas: a start build
            workspace_id = patched.json()["status"]["id"]
            build = http.post(
                f"{coder_url}/api/v2/workspaces/{workspace_id}/builds",
                json={"transition": "start"},
                headers={"Coder-Session-Token": token},
            )
            assert build.status_code == 201, build.text
            # both replicas resync (a list without resourceVersion is a consistent read)
            for replica in (a, b, a, b):
                assert http.get(replica + PATH).status_code == 200
            marker = http.post(b + PATH, json=workspace("acme.alice.marker"))
            assert marker.status_code == 201, marker.text
            events = read_events(watch, 4)
        assert [(t, n) for t, n, _, _ in events] == [
            ("ADDED", "acme.alice.replicated"),
            ("MODIFIED", "acme.alice.replicated"),
            ("MODIFIED", "acme.alice.replicated"),
            ("ADDED", "acme.alice.marker"),
        ]
        rvs = [rv for _, _, rv, _ in events]
        assert rvs == sorted(set(rvs))  # one strictly increasing order
        assert rvs[0] == created_rv
        assert rvs[1] == patched_rv
        assert rvs[3] == rv_of(marker.json())
        assert events[1][3]["spec"]["running"] is False
        assert events[2][3]["spec"]["running"] is True  # the out-of-band start, once
        # resume on B from the resourceVersion A answered with
        with http.stream(
            "GET", b + PATH, params={"watch": "true", "resourceVersion": str(created_rv)}
        ) as resumed:
            assert [rv for _, _, rv, _ in read_events(resumed, 3)] == rvs[1:]
        # and both replicas list the same state at the same resourceVersion
        newest = {"resourceVersion": str(rvs[-1])}  # not older than the marker
        on_a = http.get(a + PATH, params=newest).json()
        on_b = http.get(b + PATH, params=newest).json()
        assert on_a["items"] == on_b["items"]


def test_a_bad_redis_url_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--redis-url", "http://127.0.0.1:6379"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: invalid --redis-url 'http://127.0.0.1:6379': the scheme must be")
    assert main(["serve", "--port", "0", "--redis-url", "redis://h:port"]) == 2
    assert "invalid --redis-url" in capsys.readouterr().err
    assert main(["serve", "--redis-url", "redis://h:1/0", "--no-watch-cache"]) == 2
    assert "needs the watch cache" in capsys.readouterr().err
    assert main(["serve", "--redis-url", "redis://h:1/0"]) == 2  # an embedded fake each
    assert "--redis-url needs --coder-url" in capsys.readouterr().err


def test_a_replica_started_while_redis_is_down_answers_503_until_it_is_back(
    own_redis_server: RedisServer, prefix: str, env: dict[str, str], tmp_path: Path
) -> None:
    own_redis_server.stop()
    with (
        deployment(own_redis_server.url, prefix, env, tmp_path) as (_, _, a, b),
        httpx.Client(timeout=httpx.Timeout(60.0)) as http,
    ):
        refused = http.get(a + PATH)
        assert refused.status_code == 503, refused.text
        assert refused.json()["reason"] == "ServiceUnavailable"
        # not ready while Redis is down, and /readyz says which check fails
        not_ready = http.get(a + "/readyz?verbose")
        assert not_ready.status_code == 500
        assert "[+]coder ok\n[-]redis failed: reason withheld\n" in not_ready.text
        assert http.get(a + "/livez").status_code == 200
        created = http.post(b + PATH, json=workspace("acme.alice.early"))
        assert created.status_code == 503, created.text
        own_redis_server.start()
        deadline = time.monotonic() + 60
        while (listed := http.get(a + PATH)).status_code == 503:
            assert time.monotonic() < deadline, listed.text
            time.sleep(0.1)  # the replica reconnects with jittered backoff
        assert listed.status_code == 200, listed.text
        while (ready := http.get(a + "/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        assert ready.text == "ok"
        # nothing was half-applied while Redis was down: no "early" workspace
        assert [o["metadata"]["name"] for o in listed.json()["items"]] == [
            "acme.alice.dev-workspace"
        ]
        created = http.post(b + PATH, json=workspace("acme.alice.late"))
        assert created.status_code == 201, created.text
        # a list not older than B's answer, on A
        on_a = http.get(
            a + PATH, params={"resourceVersion": created.json()["metadata"]["resourceVersion"]}
        )
        names = {o["metadata"]["name"] for o in on_a.json()["items"]}
        assert "acme.alice.late" in names
        # B's Redis commands, timed: failures while Redis was down, then successes
        metrics = http.get(b + "/metrics").text
        outcomes = {
            sample.labels["outcome"]
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "k8swatch_redis_command_duration_seconds_count" and sample.value >= 1
        }
        assert outcomes == {"success", "error"}
