"""kopf: a tiny operator, run in its own thread and event loop, sees the create,
update and delete of objects served by the app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import kopf
import pytest

from tests._kopf import KopfOperator

from ._interop import GROUP, PLURAL, VERSION, Served, new_namespace


def event_operator(served: Served, namespace: str) -> KopfOperator:
    """kopf with one event handler: each watch event it sees is a call
    ``(type, name, body)`` (type ``None`` for what it listed)."""
    operator = KopfOperator(served.url, namespace)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=operator.registry)
    def on_event(type: str | None, name: str, body: Any, **_: Any) -> None:
        operator.record(type, name, dict(body))

    return operator


@pytest.fixture
def operator(served: Served) -> Iterator[KopfOperator]:
    """``event_operator`` running on a namespace of its own."""
    with event_operator(served, new_namespace()).running() as operator:
        yield operator


def test_operator_sees_create_update_delete(operator: KopfOperator, served: Served) -> None:
    ns = operator.namespace
    served.wait_for_watches(1)  # kopf has listed and is watching
    served.create(ns, "w", app="x")
    event_type, name, body = operator.next_call()
    assert (event_type, name) == ("ADDED", "w")
    assert body["metadata"]["labels"] == {"app": "x"}
    served.patch(ns, "w", {"spec": {"size": 2}})
    event_type, name, body = operator.next_call()
    assert (event_type, name) == ("MODIFIED", "w")
    assert body["spec"]["size"] == 2
    served.delete(ns, "w")
    event_type, name, _ = operator.next_call()
    assert (event_type, name) == ("DELETED", "w")
    # Objects in other namespaces are not this operator's business.
    served.create(new_namespace(), "elsewhere")
    served.create(ns, "w2")
    assert operator.next_call()[:2] == ("ADDED", "w2")


def test_operator_sees_existing_objects(served: Served) -> None:
    ns = new_namespace()
    served.create(ns, "old")
    with event_operator(served, ns).running() as operator:
        event_type, name, _ = operator.next_call()
        assert name == "old"
        assert event_type in (None, "ADDED")  # kopf reports listed objects with type None


def handler_operator(served: Served, namespace: str) -> KopfOperator:
    """kopf in namespaced mode (``kopf run -n <ns>``: namespace scanning on) with create,
    update and delete handlers; the delete handler records the object as GET answers it."""
    operator = KopfOperator(served.url, namespace, scan_namespaces=True)

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=operator.registry)
    def on_create(name: str, spec: Any, **_: Any) -> None:
        operator.record("create", name, {"spec": dict(spec)})

    @kopf.on.update(GROUP, VERSION, PLURAL, registry=operator.registry)
    def on_update(name: str, spec: Any, **_: Any) -> None:
        operator.record("update", name, {"spec": dict(spec)})

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=operator.registry)
    def on_delete(name: str, namespace: str, **_: Any) -> None:
        # The object must still exist, marked for deletion, while this runs.
        with httpx.Client(base_url=served.url, timeout=10) as http:
            response = http.get(served.path(namespace, name))
        operator.record("delete", name, {"status": response.status_code, **response.json()})

    return operator


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
    ns = new_namespace()  # not known to the server yet: it appears once used
    watches = served.app.active_watches
    with handler_operator(served, ns).running() as operator:
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
        assert operator.no_more_calls(1.0) == []
