"""stop_aware_watch: timeout, done signal, own stop, inner end, and no leaks."""

from __future__ import annotations

import gc
import math
import tracemalloc
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from k8swatch import (
    Broadcaster,
    Event,
    EventType,
    StopAwareWatch,
    Watch,
    WatchBase,
    filter_watch,
    stop_aware_watch,
)

ADDED = EventType.ADDED


class StreamWatch(WatchBase[int]):
    """A third-party watch fed by a memory stream (it waits, no fast path)."""

    def __init__(self, receive: MemoryObjectReceiveStream[int]) -> None:
        self.receive = receive
        self._stopped = False

    async def __anext__(self) -> Event[int]:
        if self._stopped:
            raise StopAsyncIteration
        try:
            item = await self.receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._stopped = True
            raise StopAsyncIteration from None
        if item < 0:
            raise ValueError("negative item")
        return Event(ADDED, item)

    def stop(self) -> None:
        self._stopped = True
        self.receive.close()

    @property
    def stopped(self) -> bool:
        return self._stopped


class WaitOnly:
    """A done signal with an awaitable wait() and no is_set()."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    async def wait(self) -> None:
        await self.event.wait()


def stream_watch() -> tuple[StreamWatch, Any]:
    send, receive = anyio.create_memory_object_stream[int](100)
    return StreamWatch(receive), send


@pytest.fixture(params=["events", "batches"])
def consume(request: pytest.FixtureRequest) -> Callable[[Watch[Any]], Any]:
    """Read a watch to its end per event or per batch; return the objects."""

    async def run(watch: Watch[Any]) -> list[Any]:
        out: list[Any] = []
        if request.param == "events":
            async for event in watch:
                out.append(event.object)
        else:
            async for batch in watch.batches():
                out.extend(event.object for event in batch)
        return out

    return run


async def test_timeout_ends_an_idle_watch(consume: Callable[[Watch[Any]], Any]) -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    inner = broadcaster.watch()
    watch = stop_aware_watch(inner, timeout=0.05)
    assert isinstance(watch, StopAwareWatch)
    assert watch.inner is inner
    with anyio.fail_after(10):
        assert await consume(watch) == []
    assert watch.stopped
    assert inner.stopped
    assert broadcaster.statistics().watchers == 0


async def test_timeout_ends_a_busy_watch() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = stop_aware_watch(broadcaster.watch(), timeout=0.05)
    got: list[int] = []

    async def produce() -> None:
        i = 0
        while not watch.stopped:
            await broadcaster.action(ADDED, i)
            await anyio.lowlevel.checkpoint()
            i += 1

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            async for event in watch:
                got.append(event.object)
    assert got == list(range(len(got)))
    assert broadcaster.statistics().watchers == 0


async def test_timeout_zero_ends_at_once() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = stop_aware_watch(broadcaster.watch(), timeout=0)
    broadcaster.action_or_drop(ADDED, 1)
    with pytest.raises(StopAsyncIteration):
        await watch.batches().__anext__()
    assert watch.stopped


@pytest.mark.parametrize("signal", ["event", "wait-only"])
async def test_done_ends_a_waiting_watch(signal: str, consume: Callable[[Watch[Any]], Any]) -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    done: Any = anyio.Event() if signal == "event" else WaitOnly()
    inner = broadcaster.watch()
    watch = stop_aware_watch(inner, done=done)
    result: list[Any] = []

    async def run() -> None:
        result.extend(await consume(watch))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            await broadcaster.action(ADDED, 1)
            await anyio.wait_all_tasks_blocked()
            (done if signal == "event" else done.event).set()
    assert result == [1]
    assert inner.stopped
    assert broadcaster.statistics().watchers == 0


async def test_done_already_set_delivers_nothing() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    done = anyio.Event()
    watch = stop_aware_watch(broadcaster.watch(), done=done)
    broadcaster.action_or_drop(ADDED, 1)
    done.set()
    with pytest.raises(StopAsyncIteration):
        await watch.__anext__()
    assert watch.stopped


async def test_own_stop_from_another_task(consume: Callable[[Watch[Any]], Any]) -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = stop_aware_watch(broadcaster.watch(), timeout=3600, done=anyio.Event())
    result: list[Any] = []

    async def run() -> None:
        result.extend(await consume(watch))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            watch.stop()
            watch.stop()
    assert result == []
    assert watch.stopped
    assert broadcaster.statistics().watchers == 0


async def test_async_with_stops_it() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    async with stop_aware_watch(broadcaster.watch(), timeout=60) as watch:
        await broadcaster.action(ADDED, 1)
        assert (await watch.__anext__()).object == 1
    assert watch.stopped
    assert "stopped" in repr(watch)


async def test_inner_end_ends_it(consume: Callable[[Watch[Any]], Any]) -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = stop_aware_watch(broadcaster.watch(), timeout=60, done=anyio.Event())
    for i in range(3):
        await broadcaster.action(ADDED, i)
    broadcaster.shutdown()
    with anyio.fail_after(10):
        assert await consume(watch) == [0, 1, 2]
    assert watch.stopped


async def test_nested_inner_timeout_fires_while_the_outer_waits() -> None:
    """The storage applies timeoutSeconds, the server adds its disconnect signal."""
    broadcaster: Broadcaster[int] = Broadcaster()
    inner = filter_watch(stop_aware_watch(broadcaster.watch(), timeout=0.05), lambda e: e)
    done = anyio.Event()
    watch = stop_aware_watch(inner, timeout=3600, done=done)
    with anyio.fail_after(10):
        batches = [list(b) async for b in watch.batches()]
    assert batches == []
    assert not done.is_set()
    assert broadcaster.statistics().watchers == 0


async def test_nested_outer_done_stops_everything() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    inner = stop_aware_watch(broadcaster.watch(), timeout=3600)
    done = anyio.Event()
    watch = stop_aware_watch(inner, done=done)
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            async for _event in watch:
                pass

        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        done.set()
    assert inner.stopped
    assert broadcaster.statistics().watchers == 0


async def test_created_outside_the_loop_starts_the_clock_on_first_use() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()

    def build() -> StopAwareWatch[int]:
        return stop_aware_watch(broadcaster.watch(), timeout=0.05)

    watch = await anyio.to_thread.run_sync(build)  # no event loop in the thread
    with anyio.fail_after(10):
        assert [e async for e in watch] == []


# --- third-party inner watches (no fast path) ------------------------------------


async def test_generic_inner_with_done_and_timeout(
    consume: Callable[[Watch[Any]], Any],
) -> None:
    inner, send = stream_watch()
    done = anyio.Event()
    watch = stop_aware_watch(inner, done=done, timeout=3600)
    result: list[Any] = []

    async def run() -> None:
        result.extend(await consume(watch))

    async with send:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                await send.send(1)
                await anyio.wait_all_tasks_blocked()
                done.set()
    assert result == [1]
    assert inner.stopped

    inner, send = stream_watch()
    async with send:
        with anyio.fail_after(10):
            assert await consume(stop_aware_watch(inner, timeout=0.05)) == []
    assert inner.stopped


async def test_generic_inner_end_and_stop() -> None:
    inner, send = stream_watch()
    watch = stop_aware_watch(inner, done=WaitOnly())
    await send.send(1)
    send.close()
    with anyio.fail_after(10):
        assert [e.object async for e in watch] == [1]
    assert watch.stopped

    inner, send = stream_watch()
    watch = stop_aware_watch(inner)
    async with send, anyio.create_task_group() as tg:

        async def run() -> None:
            async for _batch in watch.batches():
                pass

        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        watch.stop()
    assert inner.stopped


@pytest.mark.parametrize("with_done", [True, False])
async def test_generic_inner_errors_propagate_unwrapped(
    with_done: bool, consume: Callable[[Watch[Any]], Any]
) -> None:
    inner, send = stream_watch()
    watch = stop_aware_watch(inner, done=anyio.Event() if with_done else None)
    async with send:
        await send.send(-1)
        with pytest.raises(ValueError, match="negative item"):
            await consume(watch)
    watch.stop()


# --- no leaks --------------------------------------------------------------------


async def test_no_leak_over_10000_open_stop_cycles() -> None:
    """Nothing (task, memory, cursor, parked scope) outlives a stopped watch."""
    broadcaster: Broadcaster[int] = Broadcaster()
    done = anyio.Event()

    async def cycle(i: int) -> None:
        watch = stop_aware_watch(broadcaster.watch(), timeout=3600, done=done)
        if i % 50:
            broadcaster.action_or_drop(ADDED, i)
            assert (await watch.__anext__()).object == i
        else:
            # park: nothing to read yet, wait with a deadline of "now"
            with anyio.move_on_after(0):
                await watch.__anext__()
        watch.stop()

    async def waiting_cycle() -> None:
        watch = stop_aware_watch(broadcaster.watch(), timeout=3600, done=done)
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                async for _batch in watch.batches():
                    pass

            tg.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            watch.stop()

    tasks_before = len(anyio.get_running_tasks())
    for i in range(100):  # warm caches before measuring
        await cycle(i)
        await waiting_cycle()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(10_000):
            await cycle(i)
            if i % 100 == 0:
                await waiting_cycle()
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert len(anyio.get_running_tasks()) == tasks_before
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.log_length, stats.waiting_watchers) == (0, 0, False)
    assert not broadcaster._next_event.statistics().scopes
    assert broadcaster._next_event.woken == 0
    assert growth < 256 * 1024, growth
    assert math.isfinite(growth)


async def test_many_stop_aware_consumers_with_random_disconnects() -> None:
    """Server-like load: batches through stop_aware_watch, clients leaving at random."""
    import random

    rng = random.Random(7)
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=16)
    received: dict[int, list[int]] = {}
    first: dict[int, int] = {}
    signals = [anyio.Event() for _ in range(40)]
    produced = 0

    async def client(key: int, watch: Watch[int], received: dict[int, list[int]]) -> None:
        out = received.setdefault(key, [])
        async with watch:
            async for batch in watch.batches():
                out.extend(event.object for event in batch)
                if rng.random() < 0.3:
                    await anyio.lowlevel.checkpoint()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for key, done in enumerate(signals):
                first[key] = produced
                timeout = rng.choice([None, 3600.0])
                watch = stop_aware_watch(broadcaster.watch(), timeout=timeout, done=done)
                tg.start_soon(client, key, watch, received)
                for _ in range(rng.randint(0, 25)):
                    await broadcaster.action(ADDED, produced)
                    produced += 1
                if rng.random() < 0.3:
                    rng.choice(signals).set()
            broadcaster.shutdown()
    for key, objects in received.items():
        # a contiguous run of the events after the watch was created, in order
        # (a disconnect cuts it short; a full watcher ends with its 410 ERROR,
        # whose object is a Status, not an int)
        ints = [o for o in objects if isinstance(o, int)]
        assert ints == list(range(first[key], first[key] + len(ints)))
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.log_length, stats.waiting_watchers) == (0, 0, False)
    assert not broadcaster._next_event.statistics().scopes
    assert broadcaster._next_event.woken == 0
