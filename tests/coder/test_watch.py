"""Watch on the Coder storages (coder-adapters.md §2.3, §2.4, §4.2), both event sources."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from k8swatch import (
    Event,
    EventType,
    FullChannelBehavior,
    ListOptions,
    StatusError,
    Watch,
    stop_aware_watch,
)
from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage

from .conftest import CODER_NAMESPACE, FakeCoderServer

NS = CODER_NAMESPACE  # what the conftest's provider serves
EVENT_TIMEOUT = 3.0
NO_EVENT_WINDOW = 0.25


@pytest.fixture(params=[False, True], ids=["broadcaster", "cache"])
def cached(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def templates(provider: StaticClientProvider, cached: bool) -> AsyncIterator[TemplateStorage]:
    storage = TemplateStorage(provider, watch_cache=cached)
    yield storage
    await storage.aclose()


@pytest.fixture
async def workspaces(
    provider: StaticClientProvider, cached: bool
) -> AsyncIterator[WorkspaceStorage]:
    storage = WorkspaceStorage(provider, watch_cache=cached)
    yield storage
    await storage.aclose()


async def start_watch(storage: Any, cached: bool, **options: Any) -> Watch[dict[str, Any]]:
    """Watch from "now": the Go original's default, or list-then-watch on the cache."""
    if cached:
        listed = await storage.list(NS, ListOptions())
        options.setdefault("resource_version", listed.resource_version)
    watch: Watch[dict[str, Any]] = await storage.watch(NS, ListOptions(watch=True, **options))
    return watch


async def next_event(watch: Watch[dict[str, Any]]) -> Event[dict[str, Any]]:
    with anyio.fail_after(EVENT_TIMEOUT):
        return await watch.__anext__()


async def no_event(watch: Watch[dict[str, Any]]) -> None:
    with anyio.move_on_after(NO_EVENT_WINDOW):
        event = await watch.__anext__()
        pytest.fail(f"unexpected event {event.type} {event.object['metadata']['name']}")


def template(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"organization": "acme", **spec}}


def workspace(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"organization": "acme", "templateName": "starter-template", **spec},
    }


async def test_template_storage_watch_added_modified_deleted(
    templates: TemplateStorage, cached: bool
) -> None:
    async with await start_watch(templates, cached) as watch:
        created = await templates.create(
            NS,
            template(
                "acme.watch-template",
                displayName="Watch Template",
                files={"main.tf": 'resource "null_resource" "watch_template" {}'},
            ),
        )
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.ADDED,
            "acme.watch-template",
        )
        changed = {**created, "spec": {**created["spec"], "displayName": "Watch Template Updated"}}
        updated, was_created = await templates.update_or_create(
            NS, "acme.watch-template", changed, force_allow_create=False
        )
        assert was_created is False
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.MODIFIED,
            "acme.watch-template",
        )
        assert event.object["spec"]["displayName"] == "Watch Template Updated"
        assert event.object["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]
        if not cached:
            assert event.object["spec"]["files"] == changed["spec"].get("files") or {
                "main.tf": 'resource "null_resource" "watch_template" {}'
            }
        status = await templates.delete(NS, "acme.watch-template")
        assert status.status == "Success"
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.DELETED,
            "acme.watch-template",
        )


async def test_workspace_storage_watch_added_modified(
    workspaces: WorkspaceStorage, cached: bool
) -> None:
    async with await start_watch(workspaces, cached) as watch:
        created = await workspaces.create(
            NS, workspace("acme.alice.watch-workspace", running=False)
        )
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.ADDED,
            "acme.alice.watch-workspace",
        )
        assert event.object["spec"]["running"] is False
        created["spec"]["running"] = True
        _, was_created = await workspaces.update_or_create(
            NS, "acme.alice.watch-workspace", created
        )
        assert was_created is False
        event = await next_event(watch)
        assert event.type is EventType.MODIFIED
        assert event.object["metadata"]["name"] == "acme.alice.watch-workspace"
        assert event.object["spec"]["running"] is True
        # a no-op update emits nothing
        current = await workspaces.get(NS, "acme.alice.watch-workspace")
        await workspaces.update(NS, "acme.alice.watch-workspace", current)
        await no_event(watch)
        # delete is MODIFIED, not DELETED: Coder deletes asynchronously
        await workspaces.delete(NS, "acme.alice.watch-workspace")
        event = await next_event(watch)
        assert event.type is EventType.MODIFIED
        assert event.object["spec"]["running"] is False
        assert event.object["status"]["latestBuildStatus"] in ("pending", "deleting", "deleted")


async def test_watch_respects_field_selector_metadata_name(
    templates: TemplateStorage, cached: bool
) -> None:
    async with await start_watch(
        templates, cached, field_selector="metadata.name=acme.target-template"
    ) as watch:
        await templates.create(
            NS,
            template(
                "acme.non-target-template", versionID=str(uuid.uuid4()), displayName="Non Target"
            ),
        )
        await no_event(watch)
        await templates.create(
            NS, template("acme.target-template", versionID=str(uuid.uuid4()), displayName="Target")
        )
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.ADDED,
            "acme.target-template",
        )


async def test_watch_stops_on_context_cancel(templates: TemplateStorage, cached: bool) -> None:
    done = anyio.Event()
    watch = stop_aware_watch(await start_watch(templates, cached), done=done)
    received: list[Event[dict[str, Any]]] = []

    async def consume() -> None:
        received.extend([event async for event in watch])

    with anyio.fail_after(EVENT_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            with anyio.move_on_after(1):  # see EventRecorder.settle: may never return
                await anyio.wait_all_tasks_blocked()
            done.set()
    assert watch.stopped
    assert received == []
    plain = await start_watch(templates, cached)
    plain.stop()
    plain.stop()  # idempotent
    with anyio.fail_after(EVENT_TIMEOUT):
        assert [event async for event in plain] == []


async def test_aclose_ends_watches_and_is_idempotent(
    provider: StaticClientProvider, cached: bool, caplog: pytest.LogCaptureFixture
) -> None:
    storage = TemplateStorage(provider, watch_cache=cached)
    watch = await start_watch(storage, cached)
    await storage.aclose()
    await storage.aclose()
    with anyio.fail_after(EVENT_TIMEOUT):
        assert [event async for event in watch] == []
    # mutations after shutdown still succeed; the lost event is logged, not raised
    with caplog.at_level(logging.WARNING, logger="k8swatch.coder"):
        created = await storage.create(
            NS, template("acme.late-template", versionID=str(uuid.uuid4()))
        )
    assert created["metadata"]["name"] == "acme.late-template"
    assert "ADDED codertemplates event" in caplog.text
    with pytest.raises(StatusError) as info:
        await storage.watch(NS, ListOptions(watch=True))
    assert info.value.status.code == 503


async def test_failed_mutations_emit_nothing(workspaces: WorkspaceStorage, cached: bool) -> None:
    async with await start_watch(workspaces, cached) as watch:
        with pytest.raises(StatusError):
            await workspaces.create(NS, workspace("acme.alice.dev-workspace", running=True))
        with pytest.raises(StatusError):
            await workspaces.create(NS, workspace("acme.alice.x", templateName="missing"))
        await no_event(watch)


@pytest.mark.parametrize("kind", ["workspaces", "templates"])
async def test_watch_rejects_unsupported_watch_list_options(
    provider: StaticClientProvider, kind: str
) -> None:
    storage: Any = (WorkspaceStorage if kind == "workspaces" else TemplateStorage)(provider)
    with pytest.raises(StatusError) as info:
        await storage.watch(NS, ListOptions(watch=True, send_initial_events=True))
    assert info.value.status.code == 400
    assert "sendInitialEvents" in info.value.status.message
    assert info.value.status.message == (
        "invalid watch options: sendInitialEvents=true is not supported for this watch endpoint"
    )
    for rv in ("123", "0", ""):
        watch = await storage.watch(NS, ListOptions(watch=True, resource_version=rv))
        watch.stop()
    watch = await storage.watch(NS, ListOptions(watch=True, send_initial_events=False))
    watch.stop()
    with pytest.raises(StatusError) as info:
        await storage.watch(NS, ListOptions(watch=True, resource_version_match="NotOlderThan"))
    assert info.value.status.code == 400
    assert "resourceVersionMatch" in info.value.status.message
    for rv in ("", "0"):
        with pytest.raises(StatusError) as info:
            await storage.watch(
                NS,
                ListOptions(
                    watch=True,
                    resource_version=rv,
                    send_initial_events=True,
                    resource_version_match="NotOlderThan",
                ),
            )
        assert "sendInitialEvents" in info.value.status.message
    with pytest.raises(StatusError) as info:
        await storage.watch(NS, ListOptions(watch=True, field_selector="spec.foo=bar"))
    assert info.value.status.message == (
        'invalid watch options: field selector "spec.foo" is not supported; supported fields: '
        "metadata.name, metadata.namespace"
    )
    await storage.aclose()


async def test_namespace_scoping(workspaces: WorkspaceStorage, cached: bool) -> None:
    if cached:
        # the cache is filled from the namespace's deployment: an unserved one is an error
        with pytest.raises(StatusError) as info:
            await workspaces.watch("other-ns", ListOptions(watch=True))
        assert info.value.status.code == 400
        return
    other = await workspaces.watch("other-ns", ListOptions(watch=True, resource_version="1"))
    async with other, await start_watch(workspaces, cached) as mine:
        await workspaces.create(NS, workspace("acme.alice.scoped", running=True))
        assert (await next_event(mine)).object["metadata"]["namespace"] == NS
        await no_event(other)


async def test_timeout_seconds_ends_the_watch(templates: TemplateStorage, cached: bool) -> None:
    watch = await start_watch(templates, cached, timeout_seconds=1)
    with anyio.fail_after(10):
        events = [event async for event in watch]
    assert all(event.type is EventType.BOOKMARK for event in events)


# --- cache mode only -------------------------------------------------------------


async def test_cache_resume_and_initial_events(provider: StaticClientProvider) -> None:
    storage = WorkspaceStorage(provider, watch_cache=True)
    listed = await storage.list(NS, ListOptions())
    rv0 = listed.resource_version
    assert rv0
    got = await storage.get(NS, "acme.alice.dev-workspace")
    assert got["metadata"]["resourceVersion"] == listed.items[0]["metadata"]["resourceVersion"]
    created = await storage.create(NS, workspace("acme.alice.cached", running=True))
    assert int(created["metadata"]["resourceVersion"]) > int(rv0)
    # resume from the list RV replays the create
    async with await storage.watch(NS, ListOptions(watch=True, resource_version=rv0)) as resumed:
        event = await next_event(resumed)
        assert event.type is EventType.ADDED
        assert event.object == {**created, "metadata": created["metadata"]}
    # sendInitialEvents: synthetic ADDED then the initial-events-end bookmark
    async with await storage.watch(
        NS,
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        ),
    ) as initial:
        names = set()
        while True:
            event = await next_event(initial)
            if event.type is EventType.BOOKMARK:
                annotations = event.object["metadata"].get("annotations", {})
                assert annotations.get("k8s.io/initial-events-end") == "true"
                break
            names.add(event.object["metadata"]["name"])
        assert names == {"acme.alice.dev-workspace", "acme.alice.cached"}
    # get, list and watch agree on resourceVersions
    again = await storage.get(NS, "acme.alice.cached")
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    await storage.aclose()


async def test_full_queue_is_logged_not_raised(
    provider: StaticClientProvider, caplog: pytest.LogCaptureFixture
) -> None:
    storage = TemplateStorage(
        provider, full_channel_behavior=FullChannelBehavior.WAIT_IF_FULL, queue_length=1
    )
    watch = await storage.watch(NS, ListOptions(watch=True))  # never read
    with caplog.at_level(logging.WARNING, logger="k8swatch.coder"):
        for name in ("acme.full-1", "acme.full-2"):
            await storage.create(NS, template(name, versionID=str(uuid.uuid4())))
    assert "ADDED codertemplates event dropped: queue full" in caplog.text
    event = await next_event(watch)
    assert event.object["metadata"]["name"] == "acme.full-1"
    watch.stop()
    await storage.aclose()


async def test_cache_get_of_a_vanished_object_reports_its_deletion(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    storage = WorkspaceStorage(provider, watch_cache=True)
    listed = await storage.list(NS, ListOptions())
    async with await storage.watch(
        NS, ListOptions(watch=True, resource_version=listed.resource_version)
    ) as watch:
        fake_coder_server.fake.delete_workspace_out_of_band("alice/dev-workspace")
        with pytest.raises(StatusError) as info:
            await storage.get(NS, "acme.alice.dev-workspace")
        assert info.value.status.code == 404
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.DELETED,
            "acme.alice.dev-workspace",
        )
        relisted = await storage.list(NS, ListOptions(resource_version="0"))
        assert relisted.items == ()
    await storage.aclose()


async def test_cache_bookmarks(provider: StaticClientProvider) -> None:
    storage = TemplateStorage(provider, watch_cache=True, bookmark_interval=0.2)
    listed = await storage.list(NS, ListOptions())
    async with await storage.watch(
        NS,
        ListOptions(
            watch=True, resource_version=listed.resource_version, allow_watch_bookmarks=True
        ),
    ) as watch:
        event = await next_event(watch)
        assert event.type is EventType.BOOKMARK
        assert event.object["kind"] == "CoderTemplate"
        assert int(event.object["metadata"]["resourceVersion"]) >= int(listed.resource_version)
    await storage.aclose()
