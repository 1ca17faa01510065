"""A kopf operator manages ``coderworkspaces`` served by ``k8swatch serve`` (issue 17).

kopf keeps its state on the object: its finalizer (added with a JSON patch)
and its last-handled configuration (an annotation). Both are kept now, so the
create, update (on a spec change) and delete handlers each run exactly once,
and the workspace is deleted in Coder only after the delete handler ran.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from .conftest import Kubectl, _start_serve

GROUP, VERSION, PLURAL = "aggregation.coder.com", "v1alpha1", "coderworkspaces"
NAME = "acme.alice.operated"
MINE = {"operated-by": "kopf"}  # the demo workspace is not this operator's

MANIFEST = """\
apiVersion: aggregation.coder.com/v1alpha1
kind: CoderWorkspace
metadata:
  name: acme.alice.operated
  labels:
    operated-by: kopf
spec:
  organization: acme
  templateName: starter-template
  running: true
"""


class Operator:
    """kopf in its own thread and event loop; each handler call lands in ``calls``."""

    def __init__(self, url: str, namespace: str, kubectl: Kubectl) -> None:
        self.calls: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self.registry = kopf.OperatorRegistry()
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.namespace = namespace

        @kopf.on.login(registry=self.registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

        @kopf.on.create(GROUP, VERSION, PLURAL, labels=MINE, registry=self.registry)
        def created(name: str, spec: Any, **_: Any) -> None:
            self.calls.put(("create", name, dict(spec)))

        @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", labels=MINE, registry=self.registry)
        def updated(name: str, old: Any, new: Any, **_: Any) -> None:
            self.calls.put(("update", name, (old.get("running"), new.get("running"))))

        @kopf.on.delete(GROUP, VERSION, PLURAL, labels=MINE, registry=self.registry)
        def deleted(name: str, meta: Any, **_: Any) -> None:
            # The workspace still exists in Coder while this runs.
            live = kubectl.run("get", "coderworkspace", name, "-o", "name", check=False)
            self.calls.put(("delete", name, (dict(meta).get("deletionTimestamp"), live.stdout)))

        self.settings = kopf.OperatorSettings()
        self.settings.posting.enabled = False
        self.settings.scanning.disabled = True
        self.settings.watching.connect_timeout = 10
        self.settings.watching.server_timeout = 30
        self.thread = threading.Thread(target=self._run, name="kopf", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=self.settings,
                    namespaces=[self.namespace],
                    standalone=True,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                )
            )
        except BaseException as exc:  # reported by the test
            self.error = exc

    def next_call(self, timeout: float = 60) -> tuple[str, str, Any]:
        return self.calls.get(timeout=timeout)

    def no_more_calls(self, quiet: float) -> list[tuple[str, str, Any]]:
        extra: list[tuple[str, str, Any]] = []
        deadline = time.monotonic() + quiet
        while (left := deadline - time.monotonic()) > 0:
            try:
                extra.append(self.calls.get(timeout=left))
            except queue.Empty:
                break
        return extra


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    process, url = _start_serve(("--poll-interval", "0.5", "--fake-build-seconds", "0.2"))
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


def test_kopf_handlers_each_run_once(served: str, tmp_path: Path) -> None:
    logging.getLogger("kopf").setLevel(logging.WARNING)
    k = Kubectl(served, tmp_path / "home")
    operator = Operator(served, "default", k)
    operator.thread.start()
    assert operator.ready_flag.wait(60), "kopf did not start"
    try:
        manifest = tmp_path / "ws.yaml"
        manifest.write_text(MANIFEST)
        k.run("create", "-f", str(manifest))
        assert operator.next_call()[:2] == ("create", NAME)
        # kopf's finalizer and its record of the handled state (two patches) are kept
        deadline = time.monotonic() + 30
        while True:
            live = json.loads(k.run("get", "coderworkspace", NAME, "-o", "json").stdout)
            meta = live["metadata"]
            handled = meta.get("annotations", {}).get(
                "kopf.zalando.org/last-handled-configuration", ""
            )
            if "kopf.zalando.org/KopfFinalizerMarker" in meta.get("finalizers", []) and handled:
                break
            assert time.monotonic() < deadline, f"kopf's state never appeared: {meta}"
            time.sleep(0.2)
        assert json.loads(handled)["spec"]["running"] is True
        assert operator.no_more_calls(3) == []  # builds progressing are no spec change

        k.run("patch", "coderworkspace", NAME, "--type=merge", "-p", '{"spec":{"running":false}}')
        assert operator.next_call() == ("update", NAME, (True, False))
        assert operator.no_more_calls(3) == []

        k.run("delete", "coderworkspace", NAME, "--wait=false")
        kind, name, (deletion_timestamp, live) = operator.next_call()
        assert (kind, name) == ("delete", NAME)
        assert deletion_timestamp
        assert live.strip() == f"coderworkspace.aggregation.coder.com/{NAME}"
        # kopf removes its finalizer: now Coder deletes the workspace
        k.run("wait", "--for=delete", f"coderworkspace/{NAME}", "--timeout=60s")
        assert operator.no_more_calls(2) == []
    finally:
        operator.stop_flag.set()
        operator.thread.join(60)
    assert not operator.thread.is_alive(), "kopf did not stop"
    assert operator.error is None, operator.error
