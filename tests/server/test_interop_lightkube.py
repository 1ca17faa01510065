"""lightkube (async client): generic resources, list with selectors, ``watch`` with
``resourceVersion``, ``fieldSelector`` and ``timeoutSeconds`` (re-watching after each
server timeout), and 410 handling; ``apply()`` (server-side apply) with the sync and
the async client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta

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


def _widget(ns: str, **spec: Any) -> Any:
    return Widget(metadata=ObjectMeta(name="applied", namespace=ns), spec=spec)


def _owners(obj: Any) -> dict[str, Any]:
    return {entry.manager: entry.fieldsV1 for entry in obj.metadata.managedFields}


def test_apply_sync_client(served: Served, kubeconfig: Path, ns: str) -> None:
    client = Client(config=KubeConfig.from_file(kubeconfig))
    try:
        created = client.apply(_widget(ns, size=1, color="red"), field_manager="alice")
        assert created.spec == {"size": 1, "color": "red"}
        [entry] = created.metadata.managedFields
        assert (entry.manager, entry.operation, entry.fieldsType) == ("alice", "Apply", "FieldsV1")
        assert entry.fieldsV1 == {"f:spec": {".": {}, "f:color": {}, "f:size": {}}}
        with pytest.raises(ApiError) as info:
            client.apply(_widget(ns, size=2), field_manager="bob")
        status = info.value.status
        assert status.code == 409
        assert status.reason == "Conflict"
        assert status.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.size'
        [cause] = status.details.causes
        assert (cause.reason, cause.field, cause.message) == (
            "FieldManagerConflict",
            ".spec.size",
            'conflict with "alice"',
        )
        forced = client.apply(_widget(ns, size=2), field_manager="bob", force=True)
        assert forced.spec == {"size": 2, "color": "red"}
        assert _owners(forced)["bob"] == {"f:spec": {".": {}, "f:size": {}}}
        assert _owners(forced)["alice"] == {"f:spec": {".": {}, "f:color": {}}}
        assert client.get(Widget, "applied", namespace=ns).spec == {"size": 2, "color": "red"}
    finally:
        client.close()


async def test_apply_async_client(client: AsyncClient, served: Served, ns: str) -> None:
    created = await client.apply(_widget(ns, size=1), field_manager="alice")
    assert created.metadata.resourceVersion
    again = await client.apply(_widget(ns, size=1), field_manager="alice")
    assert again.metadata.resourceVersion == created.metadata.resourceVersion  # no change
    preview = await client.apply(_widget(ns, size=5), field_manager="alice", dry_run=True)
    assert preview.spec == {"size": 5}
    assert (await client.get(Widget, "applied", namespace=ns)).spec == {"size": 1}
    with pytest.raises(ApiError) as info:
        await client.apply(_widget(ns, size=3), field_manager="")
    assert info.value.status.code == 422
    assert info.value.status.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    # An ordinary patch by another manager, then alice applies again: conflict.
    served.patch(ns, "applied", {"spec": {"size": 7}})
    with pytest.raises(ApiError) as info:
        await client.apply(_widget(ns, size=1), field_manager="alice")
    assert info.value.status.code == 409
    assert "using example.com/v1: .spec.size" in info.value.status.message
