"""lightkube (async client): generic resources, list with selectors, ``watch`` with
``resourceVersion``, ``fieldSelector`` and ``timeoutSeconds`` (re-watching after each
server timeout), and 410 handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource

from ._interop import GROUP, KIND, PLURAL, VERSION, WINDOW, Served, new_namespace

Widget = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


@pytest.fixture
def anyio_backend() -> str:
    # lightkube's AsyncClient is written for asyncio; the server side still runs on
    # both (uvicorn and hypercorn's trio worker).
    return "asyncio"


@pytest.fixture
async def client(kubeconfig: Path) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(config=KubeConfig.from_file(kubeconfig))
    yield client
    await client.close()


@pytest.fixture
def ns() -> str:
    return new_namespace()


async def watch_events(client: AsyncClient, count: int, **kwargs: Any) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    with anyio.fail_after(60):
        watcher = client.watch(Widget, **kwargs)
        try:
            async for op, obj in watcher:
                events.append((op, obj))
                if len(events) == count:
                    break
        finally:
            await watcher.aclose()
    return events


async def test_list_with_selectors(client: AsyncClient, served: Served, ns: str) -> None:
    served.create(ns, "a", app="x")
    served.create(ns, "b", app="y")
    names = [o.metadata.name async for o in client.list(Widget, namespace=ns, labels={"app": "x"})]
    assert names == ["a"]
    by_field = [
        o.metadata.name
        async for o in client.list(Widget, namespace=ns, fields={"metadata.name": "b"})
    ]
    assert by_field == ["b"]
    got = await client.get(Widget, "a", namespace=ns)
    assert got.metadata.labels == {"app": "x"}


async def test_watch_initial_events_and_changes(
    client: AsyncClient, served: Served, ns: str
) -> None:
    served.create(ns, "a")
    events = await watch_events(client, 1, namespace=ns)
    assert [(op, o.metadata.name) for op, o in events] == [("ADDED", "a")]


async def test_watch_from_resource_version_with_field_selector(
    client: AsyncClient, served: Served, ns: str
) -> None:
    first = served.create(ns, "a")
    served.create(ns, "b")
    served.patch(ns, "a", {"spec": {"size": 4}})
    served.delete(ns, "a")
    events = await watch_events(
        client,
        2,
        namespace=ns,
        resource_version=first["metadata"]["resourceVersion"],
        fields={"metadata.name": "a"},
    )
    assert [(op, o.metadata.name) for op, o in events] == [("MODIFIED", "a"), ("DELETED", "a")]
    assert events[0][1]["spec"]["size"] == 4


async def test_server_timeout_then_rewatch(client: AsyncClient, served: Served, ns: str) -> None:
    first = served.create(ns, "a")
    events: list[str] = []
    with anyio.fail_after(60):
        watcher = client.watch(
            Widget,
            namespace=ns,
            server_timeout=1,
            resource_version=first["metadata"]["resourceVersion"],
        )
        try:
            async with anyio.create_task_group() as tg:

                async def write_later() -> None:
                    # Long enough for the first stream to end on its timeoutSeconds.
                    await anyio.sleep(2.5)
                    await anyio.to_thread.run_sync(served.create, ns, "b")

                tg.start_soon(write_later)
                async for op, obj in watcher:
                    events.append(f"{op} {obj.metadata.name}")
                    break
        finally:
            await watcher.aclose()
    assert events == ["ADDED b"]
    watch_calls = served.log.find("GET", served.path(ns), watch=True)
    assert len(watch_calls) >= 2  # the first stream ended on timeoutSeconds=1
    assert watch_calls[0].param("timeoutSeconds") == "1"
    last_rv = watch_calls[-1].param("resourceVersion")
    assert last_rv is not None
    assert int(last_rv) >= int(first["metadata"]["resourceVersion"])


async def test_expired_resource_version_raises_410(
    client: AsyncClient, served: Served, ns: str
) -> None:
    first = served.create(ns, "a")
    for size in range(WINDOW + 5):
        served.patch(ns, "a", {"spec": {"size": size}})
    with pytest.raises(ApiError) as info:
        await watch_events(
            client, 1, namespace=ns, resource_version=first["metadata"]["resourceVersion"]
        )
    assert info.value.status.code == 410
