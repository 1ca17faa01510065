"""kr8s (async API): discovery with trailing slashes, ``singularName`` of every
resource, get with selectors, and watches with and without a resourceVersion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import kr8s
import kr8s.asyncio
import pytest

from ._interop import Served, new_namespace

# kr8s warns that the server's version (1.37) is newer than the ones it was tested
# with; that warning is expected here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Kubernetes version .* is not supported:UserWarning",
    "ignore:.*Supported versions for kr8s:UserWarning",
)


@pytest.fixture
def anyio_backend() -> str:
    # kr8s' async API is written for asyncio; the server side still runs on both
    # (uvicorn and hypercorn's trio worker).
    return "asyncio"


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[Any]:
    api = await kr8s.asyncio.api(kubeconfig=str(kubeconfig))
    yield api
    # kr8s keeps its httpx client open for reuse; close it with the test's loop.
    if api._session is not None:
        await api._session.aclose()


@pytest.fixture
def ns() -> str:
    return new_namespace()


async def watch_events(
    api: Any, ns: str, count: int, **kwargs: Any
) -> list[tuple[str, str, dict[str, Any]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    with anyio.fail_after(60):
        watcher = api.watch("widgets.example.com", namespace=ns, **kwargs)
        try:
            async for event_type, obj in watcher:
                events.append((event_type, obj.name, obj.raw))
                if len(events) == count:
                    break
        finally:
            await watcher.aclose()
    return events


async def test_version_and_resources(api: Any) -> None:
    version = await api.version()
    assert version["major"] == "1"
    resources = await api.api_resources()
    widgets = next(r for r in resources if r["name"] == "widgets")
    assert widgets["singularName"] == "widget"
    assert widgets["version"] == "example.com/v1"
    namespaces = next(r for r in resources if r["name"] == "namespaces")
    assert namespaces["singularName"] == "namespace"


async def test_get_with_selectors(api: Any, served: Served, ns: str) -> None:
    served.create(ns, "a", app="x")
    served.create(ns, "b", app="y")
    found = [o async for o in api.get("widgets.example.com", namespace=ns, label_selector="app=x")]
    assert [o.name for o in found] == ["a"]
    by_field = [
        o
        async for o in api.get(
            "widgets.example.com", namespace=ns, field_selector="metadata.name=b"
        )
    ]
    assert [o.raw["metadata"]["labels"] for o in by_field] == [{"app": "y"}]
    (one,) = [o async for o in api.get("widgets.example.com", "a", namespace=ns)]
    assert one.raw["metadata"]["namespace"] == ns


async def test_watch_initial_state_then_changes(api: Any, served: Served, ns: str) -> None:
    served.create(ns, "a", app="x")
    served.create(ns, "b", app="y")
    events = await watch_events(api, ns, 1, label_selector="app=x")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a")]


async def test_watch_resume_since(api: Any, served: Served, ns: str) -> None:
    first = served.create(ns, "a")
    served.patch(ns, "a", {"spec": {"size": 7}})
    served.delete(ns, "a")
    events = await watch_events(api, ns, 2, since=first["metadata"]["resourceVersion"])
    assert [(t, n) for t, n, _ in events] == [("MODIFIED", "a"), ("DELETED", "a")]
    assert events[0][2]["spec"]["size"] == 7
