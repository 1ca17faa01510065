"""RedisEventLog on a real redis-server: RV order, conditions, resume, 410, replicas, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from k8swatch import EventType, StatusError
from k8swatch.redis import LogEntry, RedisBackend, RedisEventLog, open_redis_backend
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
            await log.wait_for_new(after)
            got = await log.read_after(after)
            out.extend(got)
            if got:
                after = got[-1].rv
    return out


async def test_conditional_writes_and_messages(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    log = replicas[0].log_for("widgets", group="example.com")
    await log.wait_ready()
    created = await log.create("default/a", widget("a", size=1))
    assert created.type is EventType.ADDED
    assert created.object["metadata"]["resourceVersion"] == str(created.rv)
    assert created.object["spec"] == {"size": 1}

    with pytest.raises(StatusError) as err:
        await log.create("default/a", widget("a"))
    assert err.value.status.code == 409
    assert err.value.status.reason == "AlreadyExists"
    assert str(err.value) == 'widgets.example.com "a" already exists'

    with pytest.raises(StatusError) as err:
        await log.update("default/b", widget("b"))
    assert err.value.status.code == 404
    assert str(err.value) == 'widgets.example.com "b" not found'

    with pytest.raises(StatusError) as err:
        await log.update("default/a", widget("a", size=2), expect_rv=str(created.rv + 1000))
    assert err.value.status.code == 409
    assert err.value.status.reason == "Conflict"
    assert str(err.value) == (
        'Operation cannot be fulfilled on widgets.example.com "a": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )

    updated = await log.update("default/a", widget("a", size=2), expect_rv=str(created.rv))
    assert updated.type is EventType.MODIFIED
    assert updated.rv > created.rv
    unconditional = await log.update("default/a", widget("a", size=3))
    assert unconditional.rv > updated.rv

    with pytest.raises(StatusError) as err:
        await log.delete("default/a", expect_rv=str(updated.rv))
    assert str(err.value) == (
        'Operation cannot be fulfilled on widgets.example.com "a": Precondition failed: '
        f"ResourceVersion in precondition: {updated.rv}, "
        f"ResourceVersion in object meta: {unconditional.rv}"
    )
    deleted = await log.delete("default/a")
    assert deleted.type is EventType.DELETED
    assert deleted.object["spec"] == {"size": 3}  # the last state ...
    assert deleted.object["metadata"]["resourceVersion"] == str(
        deleted.rv
    )  # ... at the delete's RV
    assert await log.get("default/a") is None
    with pytest.raises(StatusError) as err:
        await log.delete("default/a")
    assert err.value.status.code == 404

    # Nothing refused was recorded: the log holds exactly the four applied changes.
    got = await log.read_after(0)
    assert [(e.type, e.rv) for e in got] == [
        (EventType.ADDED, created.rv),
        (EventType.MODIFIED, updated.rv),
        (EventType.MODIFIED, unconditional.rv),
        (EventType.DELETED, deleted.rv),
    ]


async def test_put_and_remove_record_each_change_once(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    a = replicas[0].log_for("widgets")
    b = replicas[1].log_for("widgets")
    await a.wait_ready()
    await b.wait_ready()
    # Two pollers (one per replica) report the same external state.
    first = await a.put("default/w", widget("w", size=1))
    assert first is not None
    assert first.type is EventType.ADDED
    assert await b.put("default/w", widget("w", size=1)) is None
    second = await b.put("default/w", widget("w", size=2))
    assert second is not None
    assert second.type is EventType.MODIFIED
    assert await a.put("default/w", widget("w", size=2)) is None
    gone = await a.remove("default/w")
    assert gone is not None
    assert gone.type is EventType.DELETED
    assert await b.remove("default/w") is None
    entries = await collect(b, 0, 3)
    assert [e.type for e in entries] == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]


async def test_replicas_see_one_order(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    a = replicas[0].log_for("widgets")
    b = replicas[1].log_for("widgets")
    await a.wait_ready()
    await b.wait_ready()
    start = b.current_rv
    results: list[LogEntry] = []

    async def write(log: RedisEventLog, tag: str) -> None:
        for i in range(50):
            results.append(await log.create(f"default/{tag}{i}", widget(f"{tag}{i}")))

    async with anyio.create_task_group() as tg:
        for tag, log in (("a", a), ("b", b), ("c", a), ("d", b)):
            tg.start_soon(write, log, tag)
    rvs = sorted(e.rv for e in results)
    assert len(set(rvs)) == 200  # every write got its own RV
    seen_a = await collect(a, start, 200)
    seen_b = await collect(b, start, 200)
    assert [e.rv for e in seen_a] == rvs  # strictly increasing, nothing missing
    assert [(e.rv, e.key) for e in seen_b] == [(e.rv, e.key) for e in seen_a]
    writers = {e.key[8] for e in seen_b[:100]}  # writes from both replicas interleave
    assert len(writers) > 1


async def test_rv_is_global_across_resources(replicas: tuple[RedisBackend, RedisBackend]) -> None:
    widgets = replicas[0].log_for("widgets")
    gadgets = replicas[1].log_for("gadgets")
    w1 = await widgets.create("default/x", widget("x"))
    g1 = await gadgets.create("default/x", widget("x"))
    w2 = await widgets.update("default/x", widget("x", size=1))
    assert w1.rv < g1.rv < w2.rv
    assert [e.rv for e in await widgets.read_after(0)] == [w1.rv, w2.rv]


async def test_resume_from_an_rv_got_on_another_replica(redis_url: str, prefix: str) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix, window=10_000) as a_backend,
        open_redis_backend(redis_url, prefix=prefix, window=5) as b_backend,
    ):
        a = a_backend.log_for("widgets")
        created = [await a.create(f"default/w{i}", widget(f"w{i}")) for i in range(30)]
        b = b_backend.log_for("widgets")
        await b.wait_ready()
        middle = created[9].rv
        # B's mirror started after these writes: the older part comes from Redis.
        assert b.oldest_rv > middle
        got = await b.read_after(middle)
        assert [e.rv for e in got] == [e.rv for e in created[10:]]
        assert got[0].object["metadata"]["name"] == "w10"
        # Later writes reach B's mirror, which keeps only its window.
        more = [await a.create(f"default/v{i}", widget(f"v{i}")) for i in range(20)]
        tail = await collect(b, created[-1].rv, 20)
        assert [e.rv for e in tail] == [e.rv for e in more]
        assert b.read_local(more[-6].rv) == tail[-5:]
        assert [e.rv for e in await b.read_after(created[0].rv)] == [
            e.rv for e in created[1:] + more
        ]


async def test_rv_older_than_retention_is_410(redis_url: str, prefix: str) -> None:
    async with open_redis_backend(redis_url, prefix=prefix, retention=100, window=50) as backend:
        log = backend.log_for("widgets")
        first = await log.create("default/w0", widget("w0"))
        async with anyio.create_task_group() as tg:
            for i in range(1, 400):
                tg.start_soon(log.create, f"default/w{i}", widget(f"w{i}"))
        await log.wait_for_new(first.rv + 398)
        with pytest.raises(StatusError) as err:
            await log.read_after(first.rv)
        status = err.value.status
        assert (status.code, status.reason) == (410, "Expired")
        oldest = int(status.message.rsplit("(", 1)[1].rstrip(")"))
        assert status.message == f"too old resource version: {first.rv} ({oldest})"
        assert first.rv < oldest < first.rv + 399 - 100
        # From the oldest resumable RV on, every later change is there.
        got = await log.read_after(oldest)
        assert [e.rv for e in got] == list(range(oldest + 1, first.rv + 400))


async def test_snapshot_then_follow_misses_nothing(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    a = replicas[0].log_for("widgets")
    b = replicas[1].log_for("widgets")
    for i in range(10):
        await a.create(f"default/w{i}", widget(f"w{i}"))
    rv, objects = await b.snapshot()
    assert sorted(objects) == [f"default/w{i}" for i in range(10)]
    assert objects["default/w3"]["metadata"]["resourceVersion"] == str(rv - 6)
    await a.delete("default/w3")
    later = await collect(b, rv, 1)
    assert [(e.type, e.key) for e in later] == [(EventType.DELETED, "default/w3")]


async def test_503_while_redis_is_down_then_resume(own_redis_server: RedisServer) -> None:
    async with (
        open_redis_backend(own_redis_server.url, prefix="p") as a_backend,
        open_redis_backend(own_redis_server.url, prefix="p") as b_backend,
    ):
        a = a_backend.log_for("widgets")
        b = b_backend.log_for("widgets")
        await b.wait_ready()
        before = [await a.create(f"default/w{i}", widget(f"w{i}")) for i in range(5)]
        await collect(b, 0, 5)

        own_redis_server.stop(kill=True)  # crash: appendfsync always kept every reply
        with pytest.raises(StatusError) as err:
            await a.create("default/down", widget("down"))
        assert err.value.status.code == 503
        assert err.value.status.reason == "ServiceUnavailable"
        with anyio.fail_after(30):
            while b.connected:
                await anyio.sleep(0.01)
        # Reads of the mirror keep working while Redis is away.
        assert [e.rv for e in await b.read_after(0)] == [e.rv for e in before]

        own_redis_server.start()
        after: list[LogEntry] = []
        with anyio.fail_after(30):
            while len(after) < 5:
                try:
                    after.append(await a.create(f"default/v{len(after)}", widget("v")))
                except StatusError as exc:
                    assert exc.status.code == 503
                    await anyio.sleep(0.05)
        seen = await collect(b, 0, 10)
        assert [e.rv for e in seen] == [e.rv for e in before + after]  # no loss, no duplicate
        assert b.resets == 0
        assert await a.get("default/down") is None  # the refused write left nothing behind


async def test_gap_trimmed_while_away_is_410_and_reload(redis_url: str, prefix: str) -> None:
    async with (
        open_redis_backend(redis_url, prefix=prefix, retention=50) as a_backend,
        create_client(redis_url) as client,
    ):
        a = a_backend.log_for("widgets")
        first = await a.create("default/w0", widget("w0"))
        b = RedisEventLog(StreamClient(client, prefix, "widgets", retention=50), "widgets")
        async with anyio.create_task_group() as tg:
            tg.start_soon(StreamClient.run_batcher, b._stream)
            reader = anyio.CancelScope()
            tg.start_soon(run_in, reader, b)
            await b.wait_ready()
            await collect(b, 0, 1)
            reader.cancel()  # B's reader is away ...
            for i in range(1, 300):  # ... while A writes far more than the stream keeps
                await a.create(f"default/w{i}", widget(f"w{i}"))
            tg.start_soon(run_in, anyio.CancelScope(), b)
            with anyio.fail_after(30):
                while b.resets == 0 or b.current_rv < first.rv + 299:
                    await b.wait_for_new(b.current_rv, timeout=0.1)
            with pytest.raises(StatusError) as err:
                await b.read_after(first.rv)
            assert err.value.status.code == 410
            _, objects = await b.snapshot()
            assert len(objects) == 300
            b.close()
            tg.cancel_scope.cancel()


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
