"""Two Coder storage replicas (``log=``) on one real Redis, in front of one FakeCoder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Generic

import anyio
import pytest

from k8swatch import (
    Event,
    EventLog,
    EventType,
    ListOptions,
    MemoryEventLog,
    StatusError,
    Write,
    WriteOp,
)
from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage
from k8swatch.redis import open_redis_backend
from tests.coder.conftest import FakeCoderServer
from tests.coder.test_conformance_coder import (
    TestTemplateStorageConformance as _TemplateConformance,
)
from tests.coder.test_conformance_coder import (
    TestWorkspaceStorageConformance as _WorkspaceConformance,
)
from tests.coder.test_log_mode import rv_of, take

from ._coder_replicas import (
    GROUP,
    NS,
    SEED,
    StorageT,
    coder_replica,
    two_workspace_replicas,
    workspace_replica,
)
from .conftest import RedisServer

pytestmark = pytest.mark.redis

Obj = dict[str, Any]


def workspace(name: str, *, running: bool = True) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "CoderWorkspace",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"organization": "acme", "templateName": "starter-template", "running": running},
    }


def summary(event: Event[Obj]) -> tuple[EventType, str, int]:
    return (event.type, event.object["metadata"]["name"], rv_of(event.object))


async def current_rv(storage: WorkspaceStorage) -> int:
    assert storage.log is not None
    return await storage.log.current_resource_version()


async def test_writes_on_a_and_b_reach_a_watch_on_b_in_one_order(
    redis_url: str, prefix: str, coder: FakeCoderServer
) -> None:
    async with two_workspace_replicas(redis_url, prefix, coder) as (a, b):
        listed = await b.list(NS, ListOptions())
        assert [o["metadata"]["name"] for o in listed.items] == [SEED]
        async with await b.watch(
            NS, ListOptions(watch=True, resource_version=listed.resource_version)
        ) as watch:
            created = await a.create(NS, workspace("acme.alice.one"))
            # B answers with A's resourceVersion (one state, one RV across replicas)
            got = await b.get(NS, "acme.alice.one")
            assert rv_of(got) == rv_of(created)
            got["spec"]["running"] = False
            updated = await b.update(NS, "acme.alice.one", got)
            other = await b.create(NS, workspace("acme.alice.two"))
            # a list on A not older than B's answer holds B's write
            on_a = await a.list(NS, ListOptions(resource_version=str(rv_of(other))))
            assert {o["metadata"]["name"]: rv_of(o) for o in on_a.items}["acme.alice.two"] == (
                rv_of(other)
            )
            events = [summary(e) for e in await take(watch, 3)]
        assert events == [
            (EventType.ADDED, "acme.alice.one", rv_of(created)),
            (EventType.MODIFIED, "acme.alice.one", rv_of(updated)),
            (EventType.ADDED, "acme.alice.two", rv_of(other)),
        ]
        assert rv_of(created) < rv_of(updated) < rv_of(other)
        assert updated["spec"]["running"] is False
        # resume on B from the RV A answered with: exactly what came after it
        async with await b.watch(
            NS, ListOptions(watch=True, resource_version=str(rv_of(created)))
        ) as resumed:
            assert [summary(e) for e in await take(resumed, 2)] == events[1:]
        # and the same on A from B's RV
        async with await a.watch(
            NS, ListOptions(watch=True, resource_version=str(rv_of(updated)))
        ) as resumed:
            assert [summary(e) for e in await take(resumed, 1)] == events[2:]
        # nothing was recorded twice: three entries after the list
        assert await current_rv(a) == rv_of(other)


async def test_an_out_of_band_change_seen_by_both_replicas_is_recorded_once(
    redis_url: str, prefix: str, coder: FakeCoderServer
) -> None:
    async with two_workspace_replicas(redis_url, prefix, coder) as (a, b):
        await a.resync(NS)
        await b.resync(NS)
        start = await current_rv(a)
        async with await b.watch(NS, ListOptions(watch=True, resource_version=str(start))) as w:
            # a build completing (a stop, made in the Coder UI): both replicas poll, at once
            coder.fake.start_build_out_of_band("alice/dev-workspace", "stop", complete=True)
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.resync, NS)
                tg.start_soon(b.resync, NS)
            await a.resync(NS)  # and again, one after the other: nothing new
            await b.resync(NS)
            # a deletion, polled by both replicas one after the other
            coder.fake.delete_workspace_out_of_band("alice/dev-workspace")
            await b.resync(NS)
            await a.resync(NS)
            # a marker: nothing may come between the deletion and it
            marker = await a.create(NS, workspace("acme.alice.marker"))
            events = [summary(e) for e in await take(w, 3)]
        modified = events[0]
        assert events == [
            (EventType.MODIFIED, SEED, modified[2]),
            (EventType.DELETED, SEED, events[1][2]),
            (EventType.ADDED, "acme.alice.marker", rv_of(marker)),
        ]
        assert await current_rv(b) == rv_of(marker)
        for storage in (a, b):
            listed = await storage.list(NS, ListOptions(resource_version=str(rv_of(marker))))
            assert [o["metadata"]["name"] for o in listed.items] == ["acme.alice.marker"]


async def test_a_stale_listing_cannot_revert_the_other_replicas_write(
    redis_url: str, prefix: str, coder: FakeCoderServer
) -> None:
    async with two_workspace_replicas(redis_url, prefix, coder) as (a, b):
        await a.resync(NS)
        await b.resync(NS)
        client = await b._client(NS)
        epoch = b._ledger.seq  # B's poll starts ...
        stale = await client.workspaces()  # ... and sees the workspace running
        current = await a.get(NS, SEED)
        current["spec"]["running"] = False
        stopped = await a.update(NS, SEED, current)  # meanwhile A stops it
        await b._reconcile(NS, stale, epoch, baseline=False)  # B's poll ends: ignored
        assert await current_rv(b) == rv_of(stopped)
        got = await b.list(NS, ListOptions(resource_version=str(rv_of(stopped))))
        assert [o["spec"]["running"] for o in got.items] == [False]
        # B's next poll sees the current state: still nothing to record
        await b.resync(NS)
        assert await current_rv(b) == rv_of(stopped)


async def test_a_replica_with_a_stale_view_records_nothing(
    redis_url: str, prefix: str, coder: FakeCoderServer
) -> None:
    """The conditional write itself: B has not read A's entry yet and reports an old state."""
    async with workspace_replica(redis_url, prefix, coder) as a:
        provider = StaticClientProvider(coder.url, coder.token, NS)
        async with open_redis_backend(redis_url, prefix=prefix) as backend:
            # B without a follower: its view stays where its own calls left it
            b = WorkspaceStorage(provider, log=backend.log_for("coderworkspaces", group=GROUP))
            await b.resync(NS)
            client = await b._client(NS)
            stale = await client.workspaces()
            current = await a.get(NS, SEED)
            current["spec"]["running"] = False
            stopped = await a.update(NS, SEED, current)
            obj = b._convert(NS, stale[0])
            obj["metadata"]["labels"] = {"stale": "yes"}  # differs from what B knows
            assert await b._sink.note(EventType.MODIFIED, NS, obj, 0) is None
            assert await current_rv(a) == rv_of(stopped)
            # refused, B caught up: it now knows A's state
            assert b._ledger.known[(NS, SEED)].object["spec"]["running"] is False
            await b.aclose()
        await provider.aclose()


async def test_redis_down_is_503_and_nothing_half_applied(
    own_redis_server: RedisServer, prefix: str, coder: FakeCoderServer
) -> None:
    async with workspace_replica(own_redis_server.url, prefix, coder) as a:
        listed = await a.list(NS, ListOptions())
        async with await a.watch(
            NS, ListOptions(watch=True, resource_version=listed.resource_version)
        ) as watch:
            own_redis_server.stop()
            for call in (
                a.list(NS, ListOptions()),
                a.get(NS, SEED),
                a.create(NS, workspace("acme.alice.later")),
                a.delete(NS, SEED),
            ):
                with pytest.raises(StatusError) as info:
                    await call
                assert info.value.status.code == 503, info.value.status
            # refused before Coder was touched
            assert not coder.fake.has_workspace("alice/later")
            assert coder.fake.build_transitions("alice/dev-workspace") == []
            own_redis_server.start()
            with anyio.fail_after(30):
                while True:
                    try:
                        created = await a.create(NS, workspace("acme.alice.later"))
                        break
                    except StatusError as exc:
                        if exc.status.code != 503:
                            raise
                        await anyio.sleep(0.1)  # the log reconnects with backoff
            # the open watch stayed open and continues with the next entry
            assert [summary(e) for e in await take(watch, 1)] == [
                (EventType.ADDED, "acme.alice.later", rv_of(created))
            ]


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_put_of_the_same_state_and_remove_of_an_absent_key_record_nothing(
    kind: str, redis_url: str, prefix: str
) -> None:
    """What the storages' dedup relies on, identical on both logs."""
    async with open_redis_backend(redis_url, prefix=prefix) as backend:
        log: EventLog = backend.log_for("things") if kind == "redis" else MemoryEventLog()
        obj = {"metadata": {"name": "x", "namespace": "ns"}, "spec": {"a": 1, "b": [1, 2]}}
        first = await log.append(Write(WriteOp.PUT, "ns/x", obj))
        assert first is not None
        assert first.type is EventType.ADDED
        rv = await log.current_resource_version()
        # the same state, keys in another order, with some resourceVersion
        same: Obj = {
            "spec": {"b": [1, 2], "a": 1},
            "metadata": {"namespace": "ns", "name": "x", "resourceVersion": "7"},
        }
        assert await log.append(Write(WriteOp.PUT, "ns/x", same)) is None
        assert await log.append(Write(WriteOp.REMOVE, "ns/absent")) is None
        assert await log.append(Write(WriteOp.REMOVE, "ns/absent", obj)) is None
        assert await log.current_resource_version() == rv
        assert list(await log.read_after(rv)) == []
        gone = await log.append(Write(WriteOp.REMOVE, "ns/x"))
        assert gone is not None
        assert gone.type is EventType.DELETED
        assert await log.append(Write(WriteOp.REMOVE, "ns/x")) is None
        assert await log.current_resource_version() == gone.resource_version


class _OnAReplica(Generic[StorageT]):
    """Runs a Coder storage conformance suite against one replica's storage on Redis
    (``coder_replica``): put before the suite among the bases, set ``storage_type``."""

    storage_type: type[StorageT]
    storage_options: ClassVar[dict[str, Any]] = {}
    """Passed to the storage beyond the suite's cache window and bookmark interval."""

    history_window: int
    bookmark_interval: float

    @pytest.fixture(autouse=True)
    def _coder(self, coder: FakeCoderServer, redis_url: str, prefix: str) -> None:
        self.server = coder
        self.redis_url = redis_url
        self.prefix = prefix

    @asynccontextmanager
    async def make_storage(self) -> AsyncIterator[StorageT]:
        async with coder_replica(
            self.storage_type,
            self.redis_url,
            self.prefix,
            self.server,
            window=self.history_window,
            cache_window=self.history_window,
            bookmark_interval=self.bookmark_interval,
            **self.storage_options,
        ) as storage:
            yield storage


class TestWorkspaceStorageOnRedisConformance(_OnAReplica[WorkspaceStorage], _WorkspaceConformance):
    """The watch conformance suite against a replica's ``WorkspaceStorage(log=...)``."""

    storage_type = WorkspaceStorage


class TestTemplateStorageOnRedisConformance(_OnAReplica[TemplateStorage], _TemplateConformance):
    """The watch conformance suite against a replica's ``TemplateStorage(log=...)``."""

    storage_type = TemplateStorage
    storage_options: ClassVar[dict[str, Any]] = {"build_poll_interval": 0.01}
