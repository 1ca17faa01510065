"""kopf: a tiny operator, run in its own thread and event loop, sees the create,
update and delete of objects served by the app."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

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
