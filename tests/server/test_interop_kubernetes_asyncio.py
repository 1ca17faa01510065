"""``kubernetes_asyncio``: list and watch (``watch=True`` with a capital T) through
``watch.Watch().stream``, resume, selectors, timeouts and 410."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from ._interop import GROUP, PLURAL, VERSION, WINDOW, Served, new_namespace


@pytest.fixture
def anyio_backend() -> str:
    # kubernetes_asyncio is built on aiohttp, which runs on asyncio only; the
    # server side still runs on both (uvicorn and hypercorn's trio worker).
    return "asyncio"


@pytest.fixture
async def api(served: Served) -> AsyncIterator[client.CustomObjectsApi]:
    configuration = client.Configuration(host=served.url)
    async with client.ApiClient(configuration) as api_client:
        yield client.CustomObjectsApi(api_client)


@pytest.fixture
def ns() -> str:
    return new_namespace()


async def list_widgets(api: client.CustomObjectsApi, ns: str, **kwargs: Any) -> Any:
    return await api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, **kwargs)


async def collect(
    api: client.CustomObjectsApi, ns: str, count: int, **kwargs: Any
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        async with watch.Watch() as w:
            async for event in w.stream(
                api.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, **kwargs
            ):
                events.append(event)
                if len(events) == count:
                    w.stop()
    return events


async def test_list_then_watch(api: client.CustomObjectsApi, served: Served, ns: str) -> None:
    listing = await list_widgets(api, ns)
    rv = listing["metadata"]["resourceVersion"]
    served.create(ns, "a")
    served.patch(ns, "a", {"spec": {"size": 2}})
    served.delete(ns, "a")
    events = await collect(api, ns, 3, resource_version=rv, timeout_seconds=30)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    assert events[0]["object"]["apiVersion"] == "example.com/v1"


async def test_initial_events_without_resource_version(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    served.create(ns, "a", app="x")
    served.create(ns, "b", app="y")
    events = await collect(api, ns, 1, label_selector="app=y", timeout_seconds=30)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


async def test_field_selector_and_resume(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    first = served.create(ns, "a")
    served.create(ns, "b")
    served.patch(ns, "a", {"spec": {"size": 3}})
    events = await collect(
        api,
        ns,
        1,
        resource_version=first["metadata"]["resourceVersion"],
        field_selector="metadata.name=a",
        timeout_seconds=30,
    )
    assert events[0]["type"] == "MODIFIED"
    assert events[0]["object"]["spec"]["size"] == 3


async def test_timeout_ends_the_stream(api: client.CustomObjectsApi, ns: str) -> None:
    rv = (await list_widgets(api, ns))["metadata"]["resourceVersion"]
    assert await collect(api, ns, 1, resource_version=rv, timeout_seconds=1) == []


async def test_expired_resource_version(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    first = served.create(ns, "a")
    for size in range(WINDOW + 5):
        served.patch(ns, "a", {"spec": {"size": size}})
    with pytest.raises(ApiException) as info:
        await collect(
            api, ns, 1, resource_version=first["metadata"]["resourceVersion"], timeout_seconds=30
        )
    assert info.value.status == 410
