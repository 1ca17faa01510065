"""CoderPoller: out-of-band changes in FakeCoder reach watchers, own writes are not repeated."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from k8swatch import Event, EventType, ListOptions, Watch
from k8swatch.coder import (
    CoderPoller,
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
)
from k8swatch.coder._fake import FakeCoder

from .conftest import CODER_NAMESPACE

NS = CODER_NAMESPACE  # what the conftest's provider serves


@pytest.fixture(params=[False, True], ids=["broadcaster", "cache"])
def cached(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def start_watch(storage: Any, cached: bool) -> Watch[dict[str, Any]]:
    options: dict[str, Any] = {}
    if cached:
        options["resource_version"] = (await storage.list(NS, ListOptions())).resource_version
    watch: Watch[dict[str, Any]] = await storage.watch(NS, ListOptions(watch=True, **options))
    return watch


async def next_event(watch: Watch[dict[str, Any]], timeout: float = 5.0) -> Event[dict[str, Any]]:
    with anyio.fail_after(timeout):
        return await watch.__anext__()


async def no_event(watch: Watch[dict[str, Any]]) -> None:
    with anyio.move_on_after(0.25):
        event = await watch.__anext__()
        pytest.fail(f"unexpected {event.type} {event.object['metadata']['name']}")


def workspace(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"organization": "acme", "templateName": "starter-template", **spec},
    }


async def test_out_of_band_build_completion_is_modified(
    provider: StaticClientProvider, fake: FakeCoder, cached: bool
) -> None:
    storage = WorkspaceStorage(provider, watch_cache=cached)
    poller = CoderPoller([storage], stream_workspaces=False)
    await poller.poll_once()
    async with await start_watch(storage, cached) as watch:
        fake.start_build_out_of_band("alice/dev-workspace", "stop")
        fake.complete_builds()
        await poller.poll_once()
        event = await next_event(watch)
        assert event.type is EventType.MODIFIED
        assert event.object["metadata"]["name"] == "acme.alice.dev-workspace"
        assert event.object["spec"]["running"] is False
        assert event.object["status"]["latestBuildStatus"] == "stopped"
        await poller.poll_once()
        await no_event(watch)
    assert poller.polls == 3
    await storage.aclose()


async def test_out_of_band_delete_completion_is_deleted(
    provider: StaticClientProvider, fake: FakeCoder, cached: bool
) -> None:
    storage = WorkspaceStorage(provider, watch_cache=cached)
    poller = CoderPoller([storage], stream_workspaces=False)
    await poller.poll_once()
    async with await start_watch(storage, cached) as watch:
        # deleted through this server: MODIFIED now, DELETED once Coder is done
        await storage.delete(NS, "acme.alice.dev-workspace")
        event = await next_event(watch)
        assert event.type is EventType.MODIFIED
        await poller.poll_once()
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.DELETED,
            "acme.alice.dev-workspace",
        )
        # deleted in the Coder UI
        fake.create_workspace_out_of_band("alice", "ui-workspace")
        await poller.poll_once()
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.ADDED,
            "acme.alice.ui-workspace",
        )
        fake.delete_workspace_out_of_band("alice/ui-workspace")
        await poller.poll_once()
        event = await next_event(watch)
        assert (event.type, event.object["metadata"]["name"]) == (
            EventType.DELETED,
            "acme.alice.ui-workspace",
        )
        await no_event(watch)
    await storage.aclose()


async def test_no_duplicate_events_for_own_writes(
    provider: StaticClientProvider, fake: FakeCoder, cached: bool
) -> None:
    workspaces = WorkspaceStorage(provider, watch_cache=cached)
    templates = TemplateStorage(provider, watch_cache=cached)
    poller = CoderPoller([workspaces, templates], stream_workspaces=False)
    await poller.poll_once()
    async with (
        await start_watch(workspaces, cached) as ws_watch,
        await start_watch(templates, cached) as t_watch,
    ):
        created = await workspaces.create(NS, workspace("acme.alice.own", running=True))
        assert (await next_event(ws_watch)).type is EventType.ADDED
        created["spec"]["running"] = False
        await workspaces.update(NS, "acme.alice.own", created)
        assert (await next_event(ws_watch)).type is EventType.MODIFIED
        tmpl = await templates.create(
            NS,
            {
                "metadata": {"name": "acme.own-template"},
                "spec": {"organization": "acme", "files": {"main.tf": "# own"}},
            },
        )
        assert (await next_event(t_watch)).type is EventType.ADDED
        tmpl["spec"]["displayName"] = "Own"
        await templates.update(NS, "acme.own-template", tmpl)
        assert (await next_event(t_watch)).type is EventType.MODIFIED
        await poller.poll_once()
        await poller.poll_once()
        await no_event(ws_watch)
        await no_event(t_watch)
        # an edit in the Coder UI is seen once
        fake.edit_template("acme/own-template", description="edited in the UI")
        await poller.poll_once()
        event = await next_event(t_watch)
        assert event.type is EventType.MODIFIED
        assert event.object["spec"]["description"] == "edited in the UI"
        await poller.poll_once()
        await no_event(t_watch)
    await workspaces.aclose()
    await templates.aclose()


@pytest.fixture
def async_fake() -> FakeCoder:
    return FakeCoder(token="t", build_mode="async", build_step_seconds=0.3)


async def test_run_bridges_build_progress(
    serve_fake_coder: Any, async_fake: FakeCoder, cached: bool
) -> None:
    async with serve_fake_coder(async_fake) as server:
        provider = StaticClientProvider(server.url, server.token, NS)
        storage = WorkspaceStorage(provider, watch_cache=cached)
        poller = CoderPoller([storage], interval=0.2, jitter=0.1)
        async with anyio.create_task_group() as tg:
            await tg.start(poller.run)
            watch = await start_watch(storage, cached)
            current = await storage.get(NS, "acme.alice.dev-workspace")
            current["spec"]["running"] = False
            await storage.update(NS, "acme.alice.dev-workspace", current)
            statuses = []
            with anyio.fail_after(15):
                async for event in watch:
                    assert event.type is EventType.MODIFIED
                    statuses.append(event.object["status"]["latestBuildStatus"])
                    if statuses[-1] == "stopped":
                        break
            assert statuses[0] == "pending"
            assert statuses[-1] == "stopped"
            assert len(statuses) == len(set(statuses))  # no state reported twice
            watch.stop()
            tg.cancel_scope.cancel()
        await storage.aclose()
        await provider.aclose()


async def test_coder_outage_does_not_end_watches(
    serve_fake_coder: Any, cached: bool, caplog: pytest.LogCaptureFixture
) -> None:
    token = "very-secret-session-token"
    async with serve_fake_coder(FakeCoder(token=token)) as server:
        provider = StaticClientProvider(server.url, server.token, NS, timeout=2)
        storage = WorkspaceStorage(provider, watch_cache=cached)
        watch = await start_watch(storage, cached)
    # the fake is gone: every poll fails with 503, the watch stays open
    poller = CoderPoller([storage], interval=0.01, max_backoff=0.05)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        with anyio.fail_after(20):
            while poller.failures < 3:  # noqa: ASYNC110 - the poller has no failure event
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    assert not watch.stopped
    assert "poll failed" in caplog.text
    assert token not in caplog.text  # never logged
    watch.stop()
    await storage.aclose()
    await provider.aclose()


def test_backoff_is_jittered_and_bounded() -> None:
    poller = CoderPoller([], interval=1.0, max_backoff=8.0, jitter=0.2)
    assert 0.8 <= poller.next_delay() <= 1.2
    poller._failures = 2
    assert 3.2 <= poller.next_delay() <= 4.8
    poller._failures = 50
    assert 6.4 <= poller.next_delay() <= 9.6
    with pytest.raises(ValueError, match="interval must be > 0"):
        CoderPoller([], interval=0)
    with pytest.raises(ValueError, match="jitter"):
        CoderPoller([], jitter=1.5)


async def test_an_older_listing_never_resurrects_or_regresses() -> None:
    """Two polls overlap: the one that started first finishes last."""
    import json
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    running = json.loads((fixtures / "workspace.json").read_text())
    stopping = {
        **running,
        "latest_build": json.loads((fixtures / "workspace-build.json").read_text()),
        "updated_at": "2026-01-01T11:58:30.123456Z",
    }
    provider = StaticClientProvider("http://coder.invalid", "t", NS)
    storage = WorkspaceStorage(provider)
    ledger = storage._ledger
    await storage._reconcile(NS, [running], ledger.seq, baseline=True)  # the first poll
    async with await storage.watch(NS, ListOptions(watch=True)) as watch:
        older = ledger.seq  # poll A starts: it will see the workspace running
        await storage._reconcile(NS, [stopping], ledger.seq, baseline=False)  # poll B: stopping
        await storage._reconcile(NS, [running], older, baseline=False)  # A finishes: ignored
        newer = ledger.seq
        await storage._reconcile(NS, [], newer, baseline=False)  # poll C: deleted
        await storage._reconcile(NS, [stopping], older, baseline=False)  # a straggler: ignored
        events = []
        with anyio.move_on_after(0.25):
            async for event in watch:
                events.append((event.type, event.object["status"]["latestBuildStatus"]))
    assert events == [(EventType.MODIFIED, "pending"), (EventType.DELETED, "pending")]
    await storage.aclose()
    await provider.aclose()
