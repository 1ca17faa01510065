"""kopf: a tiny operator, run in its own thread and event loop, sees the create,
update and delete of objects served by the app."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import kopf
import pytest

from ._interop import GROUP, PLURAL, VERSION, Served, new_namespace


class Operator:
    """A kopf operator watching one namespace; its events land in a queue."""

    def __init__(self, url: str, namespace: str) -> None:
        self.events: queue.Queue[tuple[str | None, str, dict[str, Any]]] = queue.Queue()
        self.registry = kopf.OperatorRegistry()
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None

        @kopf.on.login(registry=self.registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

        @kopf.on.event(GROUP, VERSION, PLURAL, registry=self.registry)
        def on_event(type: str | None, name: str, body: Any, **_: Any) -> None:
            self.events.put((type, name, dict(body)))

        self.settings = kopf.OperatorSettings()
        self.settings.posting.enabled = False
        self.settings.scanning.disabled = True
        self.settings.watching.connect_timeout = 10
        self.namespace = namespace
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

    def next_event(self, timeout: float = 30) -> tuple[str | None, str, dict[str, Any]]:
        return self.events.get(timeout=timeout)

    def start(self) -> None:
        self.thread.start()
        assert self.ready_flag.wait(60), "kopf did not start"

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "kopf did not stop"


@pytest.fixture
def operator(served: Served) -> Iterator[Operator]:
    logging.getLogger("kopf").setLevel(logging.WARNING)
    operator = Operator(served.url, new_namespace())
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
    assert operator.error is None, operator.error


def test_operator_sees_create_update_delete(operator: Operator, served: Served) -> None:
    ns = operator.namespace
    served.wait_for_watches(1)  # kopf has listed and is watching
    served.create(ns, "w", app="x")
    event_type, name, body = operator.next_event()
    assert (event_type, name) == ("ADDED", "w")
    assert body["metadata"]["labels"] == {"app": "x"}
    served.patch(ns, "w", {"spec": {"size": 2}})
    event_type, name, body = operator.next_event()
    assert (event_type, name) == ("MODIFIED", "w")
    assert body["spec"]["size"] == 2
    served.delete(ns, "w")
    event_type, name, _ = operator.next_event()
    assert (event_type, name) == ("DELETED", "w")
    # Objects in other namespaces are not this operator's business.
    served.create(new_namespace(), "elsewhere")
    served.create(ns, "w2")
    assert operator.next_event()[:2] == ("ADDED", "w2")


def test_operator_sees_existing_objects(served: Served) -> None:
    ns = new_namespace()
    served.create(ns, "old")
    operator = Operator(served.url, ns)
    operator.start()
    try:
        event_type, name, _ = operator.next_event()
        assert name == "old"
        assert event_type in (None, "ADDED")  # kopf reports listed objects with type None
    finally:
        operator.stop()
    assert operator.error is None


class HandlerOperator:
    """A kopf operator in namespaced mode (``kopf run -n <ns>``: namespace scanning on)
    with create, update and delete handlers; each call lands in ``calls``."""

    def __init__(self, served: Served, namespace: str) -> None:
        self.calls: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self.registry = kopf.OperatorRegistry()
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.namespace = namespace
        url = served.url

        @kopf.on.login(registry=self.registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

        @kopf.on.create(GROUP, VERSION, PLURAL, registry=self.registry)
        def on_create(name: str, spec: Any, **_: Any) -> None:
            self.calls.put(("create", name, {"spec": dict(spec)}))

        @kopf.on.update(GROUP, VERSION, PLURAL, registry=self.registry)
        def on_update(name: str, spec: Any, **_: Any) -> None:
            self.calls.put(("update", name, {"spec": dict(spec)}))

        @kopf.on.delete(GROUP, VERSION, PLURAL, registry=self.registry)
        def on_delete(name: str, namespace: str, **_: Any) -> None:
            # The object must still exist, marked for deletion, while this runs.
            with httpx.Client(base_url=url, timeout=10) as http:
                response = http.get(served.path(namespace, name))
            self.calls.put(("delete", name, {"status": response.status_code, **response.json()}))

        self.settings = kopf.OperatorSettings()
        self.settings.posting.enabled = False
        self.settings.watching.connect_timeout = 10
        self.thread = threading.Thread(target=self._run, name="kopf-handlers", daemon=True)

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

    def next_call(self, timeout: float = 30) -> tuple[str, str, dict[str, Any]]:
        return self.calls.get(timeout=timeout)


def _gone(served: Served, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until GET answers 404; return the last object seen before."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = served.http.get(served.path(namespace, name))
        if response.status_code == 404:
            return last
        last = response.json()
        time.sleep(0.05)
    raise AssertionError(f"{name} still exists: {last}")


def test_namespaced_operator_runs_each_handler_once(served: Served) -> None:
    logging.getLogger("kopf").setLevel(logging.WARNING)
    ns = new_namespace()  # not known to the server yet: it appears once used
    watches = served.app.active_watches
    operator = HandlerOperator(served, ns)
    operator.thread.start()
    try:
        assert operator.ready_flag.wait(60), "kopf did not start"
        served.wait_for_watches(watches + 1)  # the namespace observer watches namespaces
        served.create(ns, "w", app="x")
        assert operator.next_call() == ("create", "w", {"spec": {"size": 1}})
        # kopf put its finalizer on the object.
        stored = served.http.get(served.path(ns, "w")).json()
        assert stored["metadata"]["finalizers"]
        served.patch(ns, "w", {"spec": {"size": 2}})
        assert operator.next_call() == ("update", "w", {"spec": {"size": 2}})
        served.delete(ns, "w")
        kind, name, seen = operator.next_call()
        assert (kind, name) == ("delete", "w")
        assert seen["status"] == 200
        assert seen["metadata"]["deletionTimestamp"]
        _gone(served, ns, "w")
        # Nothing ran twice.
        time.sleep(1.0)
        assert operator.calls.empty(), operator.calls.get_nowait()
    finally:
        operator.stop_flag.set()
        operator.thread.join(60)
    assert not operator.thread.is_alive(), "kopf did not stop"
    assert operator.error is None, operator.error
