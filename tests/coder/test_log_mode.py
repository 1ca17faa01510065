"""The Coder storages on a shared event log (``log=``), without Redis: MemoryEventLog."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from k8swatch import (
    Event,
    EventLog,
    EventType,
    ListOptions,
    LogEntry,
    MemoryEventLog,
    StatusError,
    Watch,
    Write,
    WriteOp,
    service_unavailable,
)
from k8swatch.coder import CoderPoller, StaticClientProvider, TemplateStorage, WorkspaceStorage
from tests.forwarding_log import ForwardingLog

from .conftest import CODER_NAMESPACE, FakeCoderServer

NS = CODER_NAMESPACE  # what the conftest's provider serves
SEED = "acme.alice.dev-workspace"
Obj = dict[str, Any]


class FlakyLog(ForwardingLog):
    """A MemoryEventLog whose next *failures* appends fail with 503 (Redis went away)."""

    def __init__(self, inner: MemoryEventLog) -> None:
        super().__init__(inner)
        self.failures = 0

    async def append(self, write: Write) -> LogEntry | None:
        if self.failures:
            self.failures -= 1
            raise service_unavailable("injected: the log is unreachable")
        return await super().append(write)


@asynccontextmanager
async def following(storage: Any) -> AsyncIterator[Any]:
    async with anyio.create_task_group() as tg:
        await tg.start(storage.follow)
        try:
            yield storage
        finally:
            await storage.aclose()


def workspace(name: str, *, running: bool = True) -> Obj:
    return {
        "apiVersion": "aggregation.coder.com/v1alpha1",
        "kind": "CoderWorkspace",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"organization": "acme", "templateName": "starter-template", "running": running},
    }


def template(name: str, **spec: Any) -> Obj:
    spec.setdefault("organization", "acme")
    return {
        "apiVersion": "aggregation.coder.com/v1alpha1",
        "kind": "CoderTemplate",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def rv_of(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def take(watch: Watch[Obj], count: int) -> list[Event[Obj]]:
    out: list[Event[Obj]] = []
    with anyio.fail_after(30):
        async for event in watch:
            if event.type is not EventType.BOOKMARK:
                out.append(event)
            if len(out) == count:
                break
    return out


def test_flaky_log_is_an_event_log() -> None:
    assert isinstance(FlakyLog(MemoryEventLog()), EventLog)


async def test_follow_needs_a_log(provider: StaticClientProvider) -> None:
    storage = WorkspaceStorage(provider, watch_cache=True)
    with pytest.raises(RuntimeError, match="log="):
        await storage.follow()
    assert storage.log is None
    await storage.aclose()


async def test_a_log_implies_the_watch_cache_and_numbers_every_change(
    provider: StaticClientProvider,
) -> None:
    log = MemoryEventLog(start=1000)
    async with following(WorkspaceStorage(provider, log=log)) as storage:
        assert storage.log is log
        assert storage.watch_cache is not None
        listed = await storage.list(NS, ListOptions())
        assert rv_of(listed.items[0]) == 1001  # the log's RV, not a local counter
        created = await storage.create(NS, workspace("acme.alice.logged"))
        assert rv_of(created) == await log.current_resource_version()
        # read your writes, and the log's snapshot is the cache's state
        snapshot = await log.snapshot()
        assert {o["metadata"]["name"] for o in snapshot.objects.values()} == {
            SEED,
            "acme.alice.logged",
        }
        again = await storage.list(NS, ListOptions(resource_version="0"))
        assert again.resource_version == str(rv_of(created))


async def test_two_storages_on_one_log_share_one_stream(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    log = MemoryEventLog()
    async with (
        following(TemplateStorage(provider, log=log, build_poll_interval=0.01)) as a,
        following(TemplateStorage(provider, log=log, build_poll_interval=0.01)) as b,
    ):
        listed = await b.list(NS, ListOptions())
        async with await b.watch(
            NS, ListOptions(watch=True, resource_version=listed.resource_version)
        ) as watch:
            created = await a.create(NS, template("acme.shared", files={"main.tf": "# one\n"}))
            got = await b.get(NS, "acme.shared")
            assert rv_of(got) == rv_of(created)
            assert got["spec"]["files"] == {"main.tf": "# one\n"}  # GET reads the source
            got["spec"]["files"] = {"main.tf": "# two\n"}
            updated = await b.update(NS, "acme.shared", got)
            assert updated["spec"]["files"] == {"main.tf": "# two\n"}
            await a.delete(NS, "acme.shared")
            events = await take(watch, 3)
        assert [(e.type, rv_of(e.object)) for e in events] == [
            (EventType.ADDED, rv_of(created)),
            (EventType.MODIFIED, rv_of(updated)),
            (EventType.DELETED, await log.current_resource_version()),
        ]
        # the log keeps no sources; the watch adds them from the version's files
        assert [e.object["spec"]["files"] for e in events] == [
            {"main.tf": "# one\n"},
            {"main.tf": "# two\n"},
            {"main.tf": "# two\n"},
        ]
        assert all("files" not in e.object["spec"] for e in await log.read_after(0))
        # the other replica's delete is known: a stale listing cannot bring it back
        assert (NS, "acme.shared") not in b._ledger.known


async def test_a_write_the_log_misses_still_succeeds_and_is_recorded_once(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    log = FlakyLog(MemoryEventLog())
    async with following(WorkspaceStorage(provider, log=log)) as storage:
        listed = await storage.list(NS, ListOptions())
        before = await log.current_resource_version()
        async with await storage.watch(
            NS, ListOptions(watch=True, resource_version=listed.resource_version)
        ) as watch:
            log.failures = 1  # the log goes away after the check, before the append
            created = await storage.create(NS, workspace("acme.alice.missed"))
            # the workspace exists: the client is told so (a retry would be AlreadyExists)
            assert fake_coder_server.fake.has_workspace("alice/missed")
            assert created["metadata"]["name"] == "acme.alice.missed"
            # with an RV no later than the change's, which is not recorded yet
            assert rv_of(created) == before
            assert await log.current_resource_version() == before
            await storage.resync(NS)  # the next poll records it, once
            await storage.resync(NS)
            events = await take(watch, 1)
        assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
            (EventType.ADDED, "acme.alice.missed")
        ]
        assert await log.current_resource_version() == before + 1


async def test_an_observation_the_log_refuses_is_retried_by_the_next_resync(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    log = FlakyLog(MemoryEventLog())
    async with following(WorkspaceStorage(provider, log=log)) as storage:
        await storage.resync(NS)
        before = await log.current_resource_version()
        fake_coder_server.fake.delete_workspace_out_of_band("alice/dev-workspace")
        log.failures = 1
        with pytest.raises(StatusError) as info:
            await storage.resync(NS)
        assert info.value.status.code == 503
        assert await log.current_resource_version() == before  # nothing recorded
        await storage.resync(NS)
        entries = await log.read_after(before)
        assert [(e.type, e.key) for e in entries] == [(EventType.DELETED, f"{NS}/{SEED}")]


class MemoryLease:
    """A lease shared in memory: the first acquirer holds it until it releases it."""

    def __init__(self, shared: dict[str, object | None]) -> None:
        self.shared = shared
        self.token = object()

    async def acquire(self) -> bool:
        await anyio.lowlevel.checkpoint()
        if self.shared.get("holder") in (None, self.token):
            self.shared["holder"] = self.token
            return True
        return False

    async def release(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self.shared.get("holder") is self.token:
            self.shared["holder"] = None


async def test_only_the_lease_holder_polls(provider: StaticClientProvider) -> None:
    shared: dict[str, object | None] = {}
    storages = [WorkspaceStorage(provider, log=MemoryEventLog()) for _ in range(2)]
    pollers = [
        CoderPoller([s], interval=0.02, jitter=0, lease=MemoryLease(shared)) for s in storages
    ]
    async with anyio.create_task_group() as tg:
        scopes = []
        for poller in pollers:
            scope = anyio.CancelScope()
            scopes.append(scope)

            async def run(poller: CoderPoller = poller, scope: anyio.CancelScope = scope) -> None:
                with scope:
                    await poller.run()

            tg.start_soon(run)
        with anyio.fail_after(30):
            while sum(p.polls for p in pollers) < 3:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.01)
        leader = 0 if pollers[0].polls else 1
        other = 1 - leader
        assert pollers[leader].active
        assert not pollers[other].active
        assert pollers[other].polls == 0
        scopes[leader].cancel()  # the holder stops: it releases, the other takes over
        with anyio.fail_after(30):
            while pollers[other].polls == 0:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.01)
        assert pollers[other].active
        assert not pollers[leader].active
        scopes[other].cancel()
    for storage in storages:
        await storage.aclose()


async def test_resume_from_an_unseen_rv_catches_up(provider: StaticClientProvider) -> None:
    """A watch from an RV the cache has not reached reads the log at once (no follower)."""
    log = MemoryEventLog()
    writer = WorkspaceStorage(provider, log=log)
    reader = WorkspaceStorage(provider, log=log)  # no follower: only its own calls feed it
    listed = await writer.list(NS, ListOptions())
    await reader.list(NS, ListOptions(resource_version=listed.resource_version))
    created = await writer.create(NS, workspace(f"acme.alice.w{uuid.uuid4().hex[:6]}"))
    got = await writer.get(NS, created["metadata"]["name"])
    got["spec"]["running"] = False
    updated = await writer.update(NS, got["metadata"]["name"], got)
    async with await reader.watch(
        NS, ListOptions(watch=True, resource_version=str(rv_of(updated)))
    ) as watch:
        assert reader.watch_cache is not None
        assert reader.watch_cache.resource_version == rv_of(updated)
        watch.stop()
    await writer.aclose()
    await reader.aclose()


class HookedLog(FlakyLog):
    """Runs *hook* once, right before the next append of a given op (a race, made exact)."""

    def __init__(self, inner: MemoryEventLog) -> None:
        super().__init__(inner)
        self.hooks: list[tuple[WriteOp, Callable[[], Awaitable[None]]]] = []

    async def append(self, write: Write) -> LogEntry | None:
        for i, (op, hook) in enumerate(self.hooks):
            if op is write.op:
                del self.hooks[i]
                await hook()
                break
        return await super().append(write)


async def test_an_own_write_another_replica_already_recorded_is_recorded_once(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    inner = MemoryEventLog()
    hooked = HookedLog(inner)
    async with (
        following(WorkspaceStorage(provider, log=hooked)) as a,
        following(WorkspaceStorage(provider, log=inner)) as b,
    ):
        listed = await b.list(NS, ListOptions())
        # B polls after A created the workspace in Coder, before A records it
        hooked.hooks.append((WriteOp.CREATE, lambda: b.resync(NS)))
        async with await b.watch(
            NS, ListOptions(watch=True, resource_version=listed.resource_version)
        ) as watch:
            created = await a.create(NS, workspace("acme.alice.raced"))
            marker = await b.create(NS, workspace("acme.alice.after"))
            events = await take(watch, 2)
        assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
            (EventType.ADDED, "acme.alice.raced"),
            (EventType.ADDED, "acme.alice.after"),
        ]
        # A answers with the entry B recorded: one state, one RV
        assert rv_of(created) == rv_of(events[0].object)
        assert rv_of(events[1].object) == rv_of(marker)


async def test_an_own_write_never_reverts_a_newer_state_another_replica_recorded(
    provider: StaticClientProvider, fake_coder_server: FakeCoderServer
) -> None:
    inner = MemoryEventLog()
    hooked = HookedLog(inner)
    fake = fake_coder_server.fake
    async with (
        following(WorkspaceStorage(provider, log=hooked)) as a,
        following(WorkspaceStorage(provider, log=inner)) as b,
    ):
        await a.resync(NS)
        current = await a.get(NS, SEED)
        start = await inner.current_resource_version()

        async def started_elsewhere() -> None:
            # after A's stop reached Coder: a user starts it again, B's poll records that
            fake.start_build_out_of_band("alice/dev-workspace", "start", complete=True)
            await b.resync(NS)

        hooked.hooks.append((WriteOp.UPDATE, started_elsewhere))
        current["spec"]["running"] = False
        answer = await a.update(NS, SEED, current)
        # A's older "stopped" state is not recorded over B's newer "running" one
        assert answer["spec"]["running"] is True
        entries = await inner.read_after(start)
        assert [(e.type, e.object["spec"]["running"]) for e in entries] == [
            (EventType.MODIFIED, True)
        ]
        assert rv_of(answer) == entries[-1].resource_version
        assert fake.build_transitions("alice/dev-workspace") == ["stop"]  # A's own build
