"""RedisEventLog on a real redis-server: RV order, conditions, resume, 410, replicas, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import attrs
import pytest

from k8swatch import EventType, StatusError
from k8swatch._eventlog import EventLog, LogEntry, PreconditionFailedError, Write, WriteOp
from k8swatch.redis import RedisBackend, RedisEventLog, open_redis_backend
from k8swatch.redis._client import create_client
from k8swatch.redis._log import Backoff
from k8swatch.redis._stream import StreamClient

from .conftest import RedisServer

pytestmark = pytest.mark.redis


def widget(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


async def create(log: RedisEventLog, key: str, obj: dict[str, Any]) -> LogEntry:
    entry = await log.append(Write(WriteOp.CREATE, key, obj))
    assert entry is not None
    return entry


async def update(
    log: RedisEventLog, key: str, obj: dict[str, Any], expect: int | None = None
) -> LogEntry:
    entry = await log.append(Write(WriteOp.UPDATE, key, obj, expect))
    assert entry is not None
    return entry


async def delete(log: RedisEventLog, key: str, expect: int | None = None) -> LogEntry:
    entry = await log.append(Write(WriteOp.DELETE, key, None, expect))
    assert entry is not None
    return entry


@pytest.fixture
async def replicas(redis_url: str, prefix: str) -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:
    """Two replicas (two backends, two connection pools) on one Redis."""
    async with (
        open_redis_backend(redis_url, prefix=prefix) as a,
        open_redis_backend(redis_url, prefix=prefix) as b,
    ):
        yield a, b


async def collect(log: RedisEventLog, after: int, count: int) -> list[LogEntry]:
    """Follow *log* from *after* like a watcher does, until *count* entries arrived."""
    out: list[LogEntry] = []
    with anyio.fail_after(30):
        while len(out) < count:
            got = await log.read_after(after, wait=True)
            out.extend(got)
            if got:
                after = got[-1].resource_version
    return out


async def test_is_an_event_log(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    assert isinstance(replicas[0].log_for("widgets"), EventLog)


async def test_conditional_writes(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    log = replicas[0].log_for("widgets", group="example.com")
    created = await create(log, "default/a", widget("a", size=1))
    assert created.type is EventType.ADDED
    assert created.key == "default/a"
    assert created.object["metadata"]["resourceVersion"] == str(created.resource_version)
    assert created.object["spec"] == {"size": 1}
    rv = created.resource_version

    with pytest.raises(PreconditionFailedError) as err:
        await create(log, "default/a", widget("a"))
    assert (err.value.reason, err.value.current_resource_version) == ("AlreadyExists", rv)
    with pytest.raises(PreconditionFailedError) as err:
        await update(log, "default/b", widget("b"))
    assert (err.value.reason, err.value.current_resource_version) == ("NotFound", 0)
    with pytest.raises(PreconditionFailedError) as err:
        await update(log, "default/a", widget("a", size=2), expect=rv + 1000)
    assert (err.value.reason, err.value.current_resource_version) == ("Conflict", rv)

    updated = await update(log, "default/a", widget("a", size=2), expect=rv)
    assert updated.type is EventType.MODIFIED
    assert updated.resource_version > rv
    unconditional = await update(log, "default/a", widget("a", size=3))
    assert unconditional.resource_version > updated.resource_version

    with pytest.raises(PreconditionFailedError) as err:
        await delete(log, "default/a", expect=updated.resource_version)
    assert err.value.reason == "Conflict"
    deleted = await delete(log, "default/a")
    assert deleted.type is EventType.DELETED
    assert deleted.object["spec"] == {"size": 3}  # the last state ...
    assert deleted.object["metadata"]["resourceVersion"] == str(deleted.resource_version)
    with pytest.raises(PreconditionFailedError) as err:
        await delete(log, "default/a")
    assert err.value.reason == "NotFound"
    assert (await log.snapshot()).objects == {}

    # Nothing refused was recorded: the log holds exactly the four applied changes.
    got = await log.read_after(0)
    assert [(e.type, e.resource_version) for e in got] == [
        (EventType.ADDED, rv),
        (EventType.MODIFIED, updated.resource_version),
        (EventType.MODIFIED, unconditional.resource_version),
        (EventType.DELETED, deleted.resource_version),
    ]
    assert got[3].object == deleted.object
    assert await log.current_resource_version() == deleted.resource_version
    assert await log.oldest_resource_version() == 0


async def test_delete_records_the_given_last_state(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    log = replicas[0].log_for("widgets")
    await create(log, "x", widget("x", size=1))
    final = widget("x", size=1)
    final["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    entry = await log.append(Write(WriteOp.DELETE, "x", final))
    assert entry is not None
    assert entry.object["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
    (seen,) = await log.read_after(entry.resource_version - 1)
    assert seen.object == entry.object


async def test_put_and_remove_record_each_change_once(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    a = replicas[0].log_for("widgets")
    b = replicas[1].log_for("widgets")
    # Two pollers (one per replica) report the same external state.
    first = await a.append(Write(WriteOp.PUT, "default/w", widget("w", size=1)))
    assert first is not None
    assert first.type is EventType.ADDED
    # metadata.resourceVersion is not part of the comparison
    same = widget("w", size=1)
    same["metadata"]["resourceVersion"] = "12345"
    assert await b.append(Write(WriteOp.PUT, "default/w", same)) is None
    second = await b.append(Write(WriteOp.PUT, "default/w", widget("w", size=2)))
    assert second is not None
    assert second.type is EventType.MODIFIED
    assert await a.append(Write(WriteOp.PUT, "default/w", widget("w", size=2))) is None
    gone = await a.append(Write(WriteOp.REMOVE, "default/w"))
    assert gone is not None
    assert gone.type is EventType.DELETED
    assert await b.append(Write(WriteOp.REMOVE, "default/w")) is None
    entries = await collect(b, 0, 3)
    assert [e.type for e in entries] == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]


async def test_replicas_see_one_order(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    a = replicas[0].log_for("widgets")
    b = replicas[1].log_for("widgets")
    start = await b.current_resource_version()
    results: list[LogEntry] = []

    async def write(log: RedisEventLog, tag: str) -> None:
        for i in range(50):
            results.append(await create(log, f"default/{tag}{i}", widget(f"{tag}{i}")))

    async with anyio.create_task_group() as tg:
        for tag, log in (("a", a), ("b", b), ("c", a), ("d", b)):
            tg.start_soon(write, log, tag)
    rvs = sorted(e.resource_version for e in results)
    assert len(set(rvs)) == 200  # every write got its own RV
    seen_a = await collect(a, start, 200)
    seen_b = await collect(b, start, 200)
    assert [e.resource_version for e in seen_a] == rvs  # strictly increasing, nothing missing
    assert [(e.resource_version, e.key) for e in seen_b] == [
        (e.resource_version, e.key) for e in seen_a
    ]
    writers = {e.key[8] for e in seen_b[:100]}  # writes from both replicas interleave
    assert len(writers) > 1


async def test_rv_is_global_across_resources(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    widgets = replicas[0].log_for("widgets")
    gadgets = replicas[1].log_for("gadgets")
    w1 = await create(widgets, "default/x", widget("x"))
    g1 = await create(gadgets, "default/x", widget("x"))
    w2 = await update(widgets, "default/x", widget("x", size=1))
    assert w1.resource_version < g1.resource_version < w2.resource_version
    got = await widgets.read_after(0)
    assert [e.resource_version for e in got] == [w1.resource_version, w2.resource_version]


async def test_resume_from_an_rv_got_on_another_replica(redis_url: str, prefix: str) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix, window=10_000) as a_backend,
        open_redis_backend(redis_url, prefix=prefix, window=5) as b_backend,
    ):
        a = a_backend.log_for("widgets")
        created = [await create(a, f"default/w{i}", widget(f"w{i}")) for i in range(30)]
        b = b_backend.log_for("widgets")
        await b.read_after(0)  # B's mirror starts now, after these writes
        middle = created[9].resource_version
        assert b.mirrored_oldest_resource_version > middle
        # The part older than B's mirror comes from Redis.
        got = await collect(b, middle, 20)
        assert [e.resource_version for e in got] == [e.resource_version for e in created[10:]]
        assert got[0].object["metadata"]["name"] == "w10"
        assert got[0].object["metadata"]["resourceVersion"] == str(got[0].resource_version)
        # Later writes reach B's mirror, which keeps only its window.
        more = [await create(a, f"default/v{i}", widget(f"v{i}")) for i in range(20)]
        tail = await collect(b, created[-1].resource_version, 20)
        assert [e.resource_version for e in tail] == [e.resource_version for e in more]
        assert b.mirrored_oldest_resource_version == more[-6].resource_version
        assert list(await b.read_after(more[-6].resource_version)) == tail[-5:]
        assert len(await b.read_after(created[0].resource_version, limit=7)) == 7
        everything = await collect(b, created[0].resource_version, 49)
        assert [e.resource_version for e in everything] == [
            e.resource_version for e in created[1:] + more
        ]


async def test_rv_older_than_retention_is_410(redis_url: str, prefix: str) -> None:
    async with open_redis_backend(redis_url, prefix=prefix, retention=100, window=50) as backend:
        log = backend.log_for("widgets")
        first = (await create(log, "default/w0", widget("w0"))).resource_version
        async with anyio.create_task_group() as tg:
            for i in range(1, 400):
                tg.start_soon(create, log, f"default/w{i}", widget(f"w{i}"))
        with pytest.raises(StatusError) as err:
            await log.read_after(first)
        status = err.value.status
        assert (status.code, status.reason) == (410, "Expired")
        oldest = await log.oldest_resource_version()
        assert status.message == f"too old resource version: {first} ({oldest})"
        assert first < oldest < first + 399 - 100
        # From the oldest readable RV on, every later change is there.
        got = await collect(log, oldest, first + 399 - oldest)
        assert [e.resource_version for e in got] == list(range(oldest + 1, first + 400))


async def test_snapshot_then_follow_misses_nothing(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    a = replicas[0].log_for("widgets")
    b = replicas[1].log_for("widgets")
    for i in range(10):
        await create(a, f"default/w{i}", widget(f"w{i}"))
    snap = await b.snapshot()
    rv = snap.resource_version
    assert sorted(snap.objects) == [f"default/w{i}" for i in range(10)]
    assert snap.objects["default/w3"]["metadata"]["resourceVersion"] == str(rv - 6)
    await delete(a, "default/w3")
    later = await collect(b, rv, 1)
    assert [(e.type, e.key) for e in later] == [(EventType.DELETED, "default/w3")]


async def test_503_while_redis_is_down_then_resume(own_redis_server: RedisServer) -> None:
    async with (
        open_redis_backend(own_redis_server.url, prefix="p") as a_backend,
        open_redis_backend(own_redis_server.url, prefix="p") as b_backend,
    ):
        a = a_backend.log_for("widgets")
        b = b_backend.log_for("widgets")
        await b.read_after(0)
        before = [await create(a, f"default/w{i}", widget(f"w{i}")) for i in range(5)]
        await collect(b, 0, 5)

        own_redis_server.stop(kill=True)  # a crash; appendfsync always kept every reply
        for call in (
            create(a, "default/down", widget("down")),
            a.snapshot(),
            a.current_resource_version(),
        ):
            with pytest.raises(StatusError) as err:
                await call
            assert err.value.status.code == 503
            assert err.value.status.reason == "ServiceUnavailable"
        # The mirror keeps serving what it has, and waiting readers keep waiting.
        assert [e.resource_version for e in await b.read_after(0)] == [
            e.resource_version for e in before
        ]
        assert await b.oldest_resource_version() == 0

        own_redis_server.start()
        after: list[LogEntry] = []
        with anyio.fail_after(30):
            while len(after) < 5:
                try:
                    after.append(await create(a, f"default/v{len(after)}", widget("v")))
                except StatusError as exc:
                    if exc.status.code != 503:
                        raise
                    await anyio.sleep(0.05)
        seen = await collect(b, 0, 10)
        # no loss, no duplicate, one order
        assert [e.resource_version for e in seen] == [e.resource_version for e in before + after]
        assert b.resets == 0
        assert "default/down" not in (await a.snapshot()).objects  # nothing half-applied


async def test_open_reader_waits_through_an_outage(own_redis_server: RedisServer) -> None:
    async with open_redis_backend(own_redis_server.url, prefix="p") as backend:
        log = backend.log_for("widgets")
        last = (await create(log, "a", widget("a"))).resource_version
        got: list[LogEntry] = []

        async def watcher() -> None:
            got.extend(await log.read_after(last, wait=True))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher)
            own_redis_server.stop()
            with anyio.fail_after(30):
                while log.connected:
                    await log.read_after(last)  # checkpoints; the watcher keeps waiting
                    await anyio.sleep(0.01)
            assert not got
            own_redis_server.start()
            with anyio.fail_after(30):
                while True:
                    try:
                        await create(log, "b", widget("b"))
                        break
                    except StatusError:
                        await anyio.sleep(0.05)
        assert [e.key for e in got] == ["b"]


async def test_gap_trimmed_while_away_is_410_and_restart(redis_url: str, prefix: str) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix, retention=50) as a_backend,
        create_client(redis_url) as client,
    ):
        a = a_backend.log_for("widgets")
        first = (await create(a, "default/w0", widget("w0"))).resource_version
        b = RedisEventLog(StreamClient(client, prefix, "widgets", retention=50))
        async with anyio.create_task_group() as tg:
            reader = anyio.CancelScope()
            tg.start_soon(run_in, reader, b)
            await collect(b, 0, 1)
            reader.cancel()  # B's reader is away ...
            for i in range(1, 300):  # ... while A writes far more than the stream keeps
                await create(a, f"default/w{i}", widget(f"w{i}"))
            tg.start_soon(run_in, anyio.CancelScope(), b)
            tail = await collect(b, first + 298, 1)  # B follows again, from now on
            assert tail[0].resource_version == first + 299
            assert b.resets == 1
            with pytest.raises(StatusError) as err:  # the gap is reported, not skipped
                await b.read_after(first)
            assert err.value.status.code == 410
            assert len((await b.snapshot()).objects) == 300  # a follower reloads from here
            await b.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                await b.read_after(0)


async def test_aclose_wakes_waiters_and_fails_later_calls(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    log = replicas[0].log_for("widgets")
    rv = await log.current_resource_version()
    async with anyio.create_task_group() as tg:

        async def waiter() -> None:
            with pytest.raises(anyio.ClosedResourceError):
                await log.read_after(rv, wait=True)

        tg.start_soon(waiter)
        with anyio.move_on_after(1):  # other tasks tick: this may never return on asyncio
            await anyio.wait_all_tasks_blocked()
        await log.aclose()
    await log.aclose()  # idempotent
    for call in (
        log.append(Write(WriteOp.PUT, "x", {})),
        log.read_after(0),
        log.snapshot(),
        log.current_resource_version(),
        log.oldest_resource_version(),
    ):
        with pytest.raises(anyio.ClosedResourceError):
            await call
    assert replicas[0].log_for("widgets") is not log  # a closed log is replaced


async def run_in(scope: anyio.CancelScope, log: RedisEventLog) -> None:
    with scope:
        await log.run()


def test_backoff_has_jitter_and_a_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 40
    assert max(delays[:1]) <= 0.1
    backoff.reset()
    assert backoff.next_delay() <= 0.1


async def test_invalid_backend_options(redis_url: str) -> None:
    with pytest.raises(ValueError, match="retention must be >= 1"):
        async with open_redis_backend(redis_url, retention=0):
            pass
    async with AsyncExitStack() as stack:
        with pytest.raises(ValueError, match="window must be >= 1"):
            await stack.enter_async_context(open_redis_backend(redis_url, window=0))


async def test_racing_conditional_updates_one_winner(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    logs = [replicas[0].log_for("widgets"), replicas[1].log_for("widgets")]
    base = (await create(logs[0], "x", widget("x", n=0))).resource_version
    wins: list[LogEntry] = []
    conflicts = 0

    async def racer(i: int) -> None:
        nonlocal conflicts
        try:
            wins.append(await update(logs[i % 2], "x", widget("x", n=i), expect=base))
        except PreconditionFailedError as exc:
            if exc.reason != "Conflict":
                raise
            conflicts += 1

    async with anyio.create_task_group() as tg:
        for i in range(1, 41):
            tg.start_soon(racer, i)
    assert len(wins) == 1
    assert conflicts == 39
    snap = await logs[1].snapshot()
    assert snap.objects["x"] == wins[0].object


async def test_reader_survives_unexpected_redis_errors(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with create_client(redis_url) as client:
        stream_key = StreamClient(client, prefix, "widgets").keys[1]
        await client.set(stream_key, "not a stream")  # WRONGTYPE for every stream command
        async with open_redis_backend(redis_url, prefix=prefix) as backend:
            log = backend.log_for("widgets")
            for _ in range(1500):  # until the reader has hit the error (it logs it)
                if "wrong kind of value" in caplog.text:
                    break
                await anyio.sleep(0.02)
            else:
                pytest.fail("the reader never reported the error")
            await client.delete([stream_key])
            entry = await create(log, "x", widget("x"))  # the log recovers by itself
            assert [e.resource_version for e in await collect(log, 0, 1)] == [
                entry.resource_version
            ]


@attrs.define(eq=False)
class StuckableStream(StreamClient):
    """A stream whose blocking reads (the mirror's reader) can be made to hang.

    With ``append_reads`` False, appends do not read the stream either.
    """

    stuck: bool = False
    append_reads: bool = True
    xreads: int = 0
    unstuck: anyio.Event = attrs.field(factory=anyio.Event)

    def unstick(self) -> None:
        self.stuck = False
        self.unstuck.set()

    async def read_after(self, rv: int, *, count: int = 1000, block: float | None = None) -> Any:
        if self.stuck and block is not None:
            await self.unstuck.wait()
        if block is not None:
            self.xreads += 1
        return await super().read_after(rv, count=count, block=block)

    async def append_batch(self, ops: Any, **read: Any) -> Any:
        return await super().append_batch(ops, **(read if self.append_reads else {}))


async def test_an_append_reads_the_stream_for_its_mirror(redis_url: str, prefix: str) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix) as a_backend,
        create_client(redis_url) as client,
    ):
        a = a_backend.log_for("widgets")
        stream = StuckableStream(client, prefix, "widgets")
        b = RedisEventLog(stream, block=0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_in, anyio.CancelScope(), b)
            await b.read_after(0)  # the mirror has started
            stream.stuck = True  # B's reader hangs from its next XREAD on
            await anyio.sleep(0.2)
            xreads = stream.xreads
            others = [await create(a, f"default/a{i}", widget(f"a{i}")) for i in range(3)]
            with anyio.fail_after(5):
                mine = await create(b, "default/b", widget("b"))
            # B's append brought A's earlier writes and its own into B's mirror, in order
            assert b.mirrored_resource_version == mine.resource_version
            got = await b.read_after(others[0].resource_version - 1)
            assert [e.key for e in got] == ["default/a0", "default/a1", "default/a2", "default/b"]
            assert got[-1] is mine
            assert stream.xreads == xreads  # without an XREAD of B's
            tg.cancel_scope.cancel()


async def test_an_append_reads_at_most_read_batch_the_reader_takes_the_rest(
    redis_url: str, prefix: str
) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix) as a_backend,
        create_client(redis_url) as client,
    ):
        a = a_backend.log_for("widgets")
        stream = StuckableStream(client, prefix, "widgets")
        b = RedisEventLog(stream, block=0.05, read_batch=2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_in, anyio.CancelScope(), b)
            await b.read_after(0)  # the mirror has started
            stream.stuck = True
            await anyio.sleep(0.2)
            others = [await create(a, f"default/a{i}", widget(f"a{i}")) for i in range(5)]
            result: list[LogEntry] = []
            written = anyio.Event()

            async def write() -> None:
                result.append(await create(b, "default/b", widget("b")))
                written.set()

            tg.start_soon(write)
            await collect(b, others[0].resource_version - 1, 2)
            await anyio.sleep(0.1)
            # the append read two entries; its writer waits for the mirror to reach its own
            assert b.mirrored_resource_version == others[1].resource_version
            assert not result
            stream.unstick()
            with anyio.fail_after(5):
                await written.wait()
            got = await collect(b, others[0].resource_version - 1, 6)
            assert [e.resource_version for e in got] == [
                *(e.resource_version for e in others),
                result[0].resource_version,
            ]
            assert got[-1] is result[0]
            tg.cancel_scope.cancel()


async def test_an_append_reading_past_a_trimmed_gap_leaves_the_410_to_the_reader(
    redis_url: str, prefix: str
) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix, retention=50) as a_backend,
        create_client(redis_url) as client,
    ):
        a = a_backend.log_for("widgets")
        first = (await create(a, "default/w0", widget("w0"))).resource_version
        stream = StuckableStream(client, prefix, "widgets", retention=50)
        b = RedisEventLog(stream, block=0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_in, anyio.CancelScope(), b)
            await collect(b, 0, 1)
            stream.stuck = True
            await anyio.sleep(0.2)
            for i in range(1, 300):  # far more than the stream keeps
                await create(a, f"default/w{i}", widget(f"w{i}"))
            result: list[LogEntry] = []
            written = anyio.Event()

            async def write() -> None:
                result.append(await create(b, "default/b", widget("b")))
                written.set()

            tg.start_soon(write)
            await anyio.sleep(0.2)
            assert b.mirrored_resource_version == first  # the append's read was not used
            assert not result
            stream.unstick()
            with anyio.fail_after(5):
                await written.wait()
            assert b.resets == 1  # the reader found the gap and restarted the mirror
            assert b.mirrored_resource_version >= result[0].resource_version == first + 300
            with pytest.raises(StatusError) as err:
                await b.read_after(first)
            assert err.value.status.code == 410
            tg.cancel_scope.cancel()


async def test_append_gives_up_waiting_for_a_stuck_mirror(redis_url: str, prefix: str) -> None:
    async with create_client(redis_url) as client:
        stream = StuckableStream(client, prefix, "widgets")
        log = RedisEventLog(stream, block=0.05, write_wait=0.4)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_in, anyio.CancelScope(), log)
            first = await create(log, "default/a", widget("a"))
            assert log.mirrored_resource_version == first.resource_version  # read your writes
            # ... and the entry handed back is the mirror's, shared with every reader
            assert (await log.read_after(first.resource_version - 1))[0] is first
            assert first.object["metadata"]["resourceVersion"] == str(first.resource_version)
            stream.stuck = True
            stream.append_reads = False
            await anyio.sleep(0.2)  # the reader's current XREAD ends; the next one hangs
            start = anyio.current_time()
            with anyio.fail_after(10):
                second = await create(log, "default/b", widget("b"))
            assert 0.4 <= anyio.current_time() - start < 5
            assert second.resource_version == first.resource_version + 1  # it was applied
            assert log.mirrored_resource_version == first.resource_version
            # not mirrored: built from the write itself, with its resourceVersion
            assert second.object["metadata"] == {
                "name": "b",
                "namespace": "default",
                "resourceVersion": str(second.resource_version),
            }
            tg.cancel_scope.cancel()


async def test_observe_command_times_every_command_but_blocking_reads(
    redis_url: str, prefix: str
) -> None:
    seen: list[tuple[str, float, bool]] = []

    def observe(command: str, seconds: float, ok: bool) -> None:
        seen.append((command, seconds, ok))

    async with (
        open_redis_backend(redis_url, prefix=prefix, observe_command=observe) as backend,
        open_redis_backend(redis_url, prefix=prefix) as other,
    ):
        log = backend.log_for("widgets", group="example.com")
        created = await create(log, "default/a", widget("a"))
        # a watcher on this replica waits for the next entry: the log's
        # blocking XREAD, which waits for data by design and is not timed
        (entry,) = await collect(log, created.resource_version - 1, 1)
        await create(other.log_for("widgets", group="example.com"), "default/b", widget("b"))
        await collect(log, created.resource_version, 1)
    assert entry.key == "default/a"
    names = {name for name, _, _ in seen}
    assert names & {"EVALSHA", "EVAL"}, names
    assert "XREAD" not in names
    assert all(seconds >= 0 for _, seconds, _ in seen)
    # a script Redis has not cached yet fails (NOSCRIPT) and is loaded: both timed
    assert ("EVALSHA", True) in {(name, ok) for name, _, ok in seen}
