"""Two replicas (two MemoryStorages, each with its own backend) on one real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from k8swatch import Event, EventType, ListOptions, MemoryStorage, StatusError, Watch
from k8swatch.redis import RedisEventLog, open_redis_backend
from k8swatch.redis._client import create_client
from k8swatch.redis._stream import StreamClient

from .conftest import RedisServer

pytestmark = pytest.mark.redis

Obj = dict[str, Any]


@asynccontextmanager
async def replica(
    url: str, prefix: str, *, retention: int = 10_000, window: int = 1000
) -> AsyncIterator[MemoryStorage]:
    """One server replica's storage: its own Redis client, log mirror and watch cache."""
    async with open_redis_backend(url, prefix=prefix, retention=retention, window=window) as b:
        log = b.log_for("widgets", group="example.com")
        async with MemoryStorage("example.com/v1", "Widget", log=log, window=window) as storage:
            yield storage


def widget(name: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": spec}


def rv_of(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def take(watch: Watch[Obj], count: int) -> list[Event[Obj]]:
    out: list[Event[Obj]] = []
    with anyio.fail_after(30):
        async for event in watch:
            out.append(event)
            if len(out) == count:
                break
    return out


async def test_watch_on_b_sees_writes_on_a_and_b_in_one_order(redis_url: str, prefix: str) -> None:
    async with replica(redis_url, prefix) as a, replica(redis_url, prefix) as b:
        await a.create("default", widget("seed"))
        listed = await b.list("")  # a list RV on B ...
        assert listed.resource_version != "0"
        watch = await b.watch("", ListOptions(watch=True, resource_version=listed.resource_version))
        written: list[Obj] = []

        async def writer(storage: MemoryStorage, tag: str) -> None:
            for i in range(25):
                written.append(await storage.create("default", widget(f"{tag}{i}", i=i)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, a, "a")
            tg.start_soon(writer, b, "b")
        events = await take(watch, 50)
        watch.stop()
        assert all(e.type is EventType.ADDED for e in events)
        rvs = [rv_of(e.object) for e in events]
        assert rvs == sorted(rv_of(o) for o in written)  # one order, nothing lost or repeated
        names = [e.object["metadata"]["name"] for e in events]
        assert {n[0] for n in names} == {"a", "b"}
        # ... is a valid resume point on A too: the same stream.
        watch_a = await a.watch(
            "", ListOptions(watch=True, resource_version=listed.resource_version)
        )
        assert [rv_of(e.object) for e in await take(watch_a, 50)] == rvs
        watch_a.stop()
        # Both replicas list the same state at the same RV.
        list_a, list_b = await a.list(""), await b.list("")
        assert list_a.resource_version == list_b.resource_version == str(rvs[-1])
        assert len(list_a.items) == 51
        assert list_a.items == list_b.items


async def test_resume_on_b_from_an_rv_got_on_a(redis_url: str, prefix: str) -> None:
    async with replica(redis_url, prefix) as a, replica(redis_url, prefix) as b:
        first = await a.create("default", widget("w", size=1))
        second = await a.update("default", "w", {**first, "spec": {"size": 2}})
        third = await b.delete("default", "w")
        watch = await b.watch("", ListOptions(watch=True, resource_version=str(rv_of(first))))
        events = await take(watch, 2)
        watch.stop()
        assert [(e.type, rv_of(e.object)) for e in events] == [
            (EventType.MODIFIED, rv_of(second)),
            (EventType.DELETED, rv_of(third)),
        ]
        assert events[0].object["spec"] == {"size": 2}


async def test_a_fresh_replica_starts_consistent(redis_url: str, prefix: str) -> None:
    async with replica(redis_url, prefix) as a:
        created = [await a.create("default", widget(f"w{i}")) for i in range(40)]
        await a.delete("default", "w7")
        async with replica(redis_url, prefix, window=10) as b:  # starts later, small window
            listed = await b.list("")
            assert len(listed.items) == 39
            assert listed.resource_version == (await a.list("")).resource_version
            watch = await b.watch(
                "", ListOptions(watch=True, resource_version=listed.resource_version)
            )
            # (fewer than the window: a watcher further behind is ended with 410)
            later = [await a.create("default", widget(f"v{i}")) for i in range(8)]
            events = await take(watch, 8)
            watch.stop()
            assert [rv_of(e.object) for e in events] == [rv_of(o) for o in later]
            assert created[0]["metadata"]["name"] == "w0"


async def test_rv_older_than_redis_retention_is_410(redis_url: str, prefix: str) -> None:
    async with replica(redis_url, prefix, retention=100, window=20) as a:
        first = await a.create("default", widget("w0"))
        for i in range(1, 400):
            await a.create("default", widget(f"w{i}"))
        async with replica(redis_url, prefix, retention=100, window=20) as b:
            watch = await b.watch("", ListOptions(watch=True, resource_version=str(rv_of(first))))
            (event,) = await take(watch, 1)
            assert event.type is EventType.ERROR
            status = event.object
            assert isinstance(status, dict)
            assert status["code"] == 410
            assert status["reason"] == "Expired"
            assert status["message"].startswith(f"too old resource version: {rv_of(first)} (")
            with anyio.fail_after(10):
                assert [e async for e in watch] == []  # and the stream ends


async def test_503_while_redis_is_down_watches_stay_open(own_redis_server: RedisServer) -> None:
    url = own_redis_server.url
    async with replica(url, "p") as a, replica(url, "p") as b:
        before = [await a.create("default", widget(f"w{i}")) for i in range(3)]
        watch = await b.watch("", ListOptions(watch=True, resource_version="0"))
        assert len(await take(watch, 3)) == 3

        own_redis_server.stop(kill=True)
        with pytest.raises(StatusError) as err:
            await a.create("default", widget("down"))
        assert (err.value.status.code, err.value.status.reason) == (503, "ServiceUnavailable")
        with pytest.raises(StatusError) as err:
            await b.update("default", "w0", widget("w0", changed=True))
        assert err.value.status.code == 503

        own_redis_server.start()  # same data dir, appendonly: nothing was lost
        after: list[Obj] = []
        with anyio.fail_after(30):
            while len(after) < 3:
                try:
                    after.append(await a.create("default", widget(f"v{len(after)}")))
                except StatusError as exc:
                    if exc.status.code != 503:
                        raise
                    await anyio.sleep(0.05)
        events = await take(watch, 3)  # the same watch, still open: resumes, no gap, no repeat
        watch.stop()
        assert [(e.type, rv_of(e.object)) for e in events] == [
            (EventType.ADDED, rv_of(o)) for o in after
        ]
        assert rv_of(after[0]) == rv_of(before[-1]) + 1  # the refused write used no RV
        names = sorted(o["metadata"]["name"] for o in (await b.list("")).items)
        assert names == ["v0", "v1", "v2", "w0", "w1", "w2"]


async def test_restart_mid_stream_loses_and_repeats_nothing(
    own_redis_server: RedisServer,
) -> None:
    url = own_redis_server.url
    async with replica(url, "p") as a, replica(url, "p") as b:
        watch = await b.watch("", ListOptions(watch=True, resource_version="0"))
        written: list[Obj] = []

        async def write_until(count: int) -> None:
            while len(written) < count:
                try:
                    written.append(await a.create("default", widget(f"w{len(written)}")))
                except StatusError as exc:
                    if exc.status.code != 503:
                        raise
                    await anyio.sleep(0.02)

        seen: list[Event[Obj]] = []

        async def watcher() -> None:
            seen.extend(await take(watch, 60))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher)
            with anyio.fail_after(60):
                await write_until(20)
                own_redis_server.stop()  # clean shutdown mid-stream
                own_redis_server.start()
                await write_until(40)
                own_redis_server.stop(kill=True)  # and a crash
                own_redis_server.start()
                await write_until(60)
        watch.stop()
        assert [rv_of(e.object) for e in seen] == [rv_of(o) for o in written]
        assert [e.object["metadata"]["name"] for e in seen] == [f"w{i}" for i in range(60)]


async def test_gap_trimmed_while_away_ends_watches_with_410(redis_url: str, prefix: str) -> None:
    async with (
        replica(redis_url, prefix, retention=50) as a,
        create_client(redis_url) as client,
    ):
        first = await a.create("default", widget("w0"))
        log = RedisEventLog(StreamClient(client, prefix, "widgets.example.com", retention=50))
        async with anyio.create_task_group() as tg:
            reader = anyio.CancelScope()
            tg.start_soon(run_in, reader, log)
            async with MemoryStorage("example.com/v1", "Widget", log=log) as b:
                watch = await b.watch(
                    "", ListOptions(watch=True, resource_version=str(rv_of(first)))
                )
                reader.cancel()  # B loses Redis ...
                for i in range(1, 300):  # ... while A writes far more than the stream keeps
                    await a.create("default", widget(f"w{i}"))
                tg.start_soon(run_in, anyio.CancelScope(), log)  # B is back
                (event,) = await take(watch, 1)
                assert event.type is EventType.ERROR
                assert isinstance(event.object, dict)
                assert event.object["code"] == 410
                listed = await b.list("")  # the relist a client does next is complete
                assert len(listed.items) == 300
            tg.cancel_scope.cancel()


async def run_in(scope: anyio.CancelScope, log: RedisEventLog) -> None:
    with scope:
        await log.run()


async def test_redis_restarted_without_its_data(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=False)
    server.start()
    try:
        async with replica(server.url, "p") as a:
            old = [await a.create("default", widget(f"w{i}")) for i in range(10)]
            watch = await a.watch("", ListOptions(watch=True, resource_version=str(rv_of(old[4]))))
            assert len(await take(watch, 5)) == 5
            server.stop()
            server.start()  # empty: every object and the counter are gone
            (event,) = await take(watch, 1)  # the open watch learns it must relist
            assert event.type is EventType.ERROR
            assert isinstance(event.object, dict)
            assert event.object["code"] == 410
            created: Obj | None = None
            with anyio.fail_after(30):
                while created is None:
                    try:
                        created = await a.create("default", widget("new"))
                    except StatusError as exc:
                        if exc.status.code != 503:
                            raise
                        await anyio.sleep(0.05)
            # RVs a client may still hold are never handed out again
            assert rv_of(created) > rv_of(old[-1])
            listed = await a.list("")
            assert [o["metadata"]["name"] for o in listed.items] == ["new"]
            stale = await a.watch("", ListOptions(watch=True, resource_version=str(rv_of(old[2]))))
            (event,) = await take(stale, 1)
            assert event.type is EventType.ERROR
    finally:
        server.stop()
