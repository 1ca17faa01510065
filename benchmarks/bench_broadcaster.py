"""Fan-out benchmark: deliveries per second (watchers x events / wall time).

Compares, in the same run and on asyncio:

* k8swatch's ``Broadcaster`` consumed per event (``async for event in watch``)
  and in batches (``async for batch in watch.batches()``);
* the ``broadcaster`` package (0.3.x) with its in-memory backend;
* one anyio memory object stream per watcher.

Each writer sends every event with its natural API (``await action()``,
``await publish()``, ``send_nowait()`` into an unbounded stream, which
favours the streams). It also prints k8swatch on trio, and the traced memory
of 10,000 idle watchers. Run: ``python benchmarks/bench_broadcaster.py``
(``--quick`` for a smoke run).
"""

from __future__ import annotations

import gc
import math
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream

from _settle import settle
from k8swatch import Broadcaster, EventType

WATCHERS = (1, 100, 1000)
# deliveries per measurement (events = DELIVERIES // watchers, at least 500)
DELIVERIES = 100_000
REPEATS = 2
QUICK = "--quick" in sys.argv
if QUICK:
    DELIVERIES = 20_000
    REPEATS = 1


def _events(watchers: int) -> int:
    return max(DELIVERIES // watchers, 500 if not QUICK else 50)


async def k8swatch_per_event(watchers: int, events: int) -> float:
    """Seconds for *events* actions to reach every watcher, per-event ``async for``."""
    broadcaster: Broadcaster[int] = Broadcaster()
    done = anyio.Event()
    remaining = watchers

    async def consume() -> None:
        nonlocal remaining
        seen = 0
        async with broadcaster.watch() as watch:
            async for _event in watch:
                seen += 1
                if seen == events:
                    break
        remaining -= 1
        if not remaining:
            done.set()

    async with anyio.create_task_group() as tg:
        for _ in range(watchers):
            tg.start_soon(consume)
        await settle()
        start = time.perf_counter()
        for i in range(events):
            await broadcaster.action(EventType.MODIFIED, i)
        await done.wait()
        elapsed = time.perf_counter() - start
    stats = broadcaster.statistics()
    assert stats.terminated == 0, stats
    return elapsed


async def k8swatch_batched(watchers: int, events: int) -> float:
    """Seconds for *events* actions to reach every watcher via ``batches()``."""
    broadcaster: Broadcaster[int] = Broadcaster()
    done = anyio.Event()
    remaining = watchers

    async def consume() -> None:
        nonlocal remaining
        seen = 0
        async with broadcaster.watch() as watch:
            async for batch in watch.batches():
                seen += len(batch)
                if seen >= events:
                    break
        remaining -= 1
        if not remaining:
            done.set()

    async with anyio.create_task_group() as tg:
        for _ in range(watchers):
            tg.start_soon(consume)
        await settle()
        start = time.perf_counter()
        for i in range(events):
            await broadcaster.action(EventType.MODIFIED, i)
        await done.wait()
        elapsed = time.perf_counter() - start
    stats = broadcaster.statistics()
    assert stats.terminated == 0, stats
    return elapsed


async def broadcaster_package(watchers: int, events: int) -> float:
    """The ``broadcaster`` package's memory backend (asyncio only)."""
    from broadcaster import Broadcast

    done = anyio.Event()
    remaining = watchers
    ready = 0
    async with Broadcast("memory://") as broadcast:

        async def consume() -> None:
            nonlocal remaining, ready
            seen = 0
            async with broadcast.subscribe("bench") as subscriber:
                ready += 1
                while True:
                    await subscriber.get()
                    seen += 1
                    if seen == events:
                        break
            remaining -= 1
            if not remaining:
                done.set()

        async with anyio.create_task_group() as tg:
            for _ in range(watchers):
                tg.start_soon(consume)
            while ready < watchers:
                await anyio.lowlevel.checkpoint()
            await settle()
            start = time.perf_counter()
            for i in range(events):
                await broadcast.publish("bench", i)
            await done.wait()
            elapsed = time.perf_counter() - start
    return elapsed


async def anyio_streams(watchers: int, events: int) -> float:
    """One anyio memory object stream per watcher (unbounded, ``send_nowait``)."""
    done = anyio.Event()
    remaining = watchers
    pairs = [anyio.create_memory_object_stream[int](math.inf) for _ in range(watchers)]

    async def consume(receive: MemoryObjectReceiveStream[int]) -> None:
        nonlocal remaining
        seen = 0
        async with receive:
            async for _item in receive:
                seen += 1
                if seen == events:
                    break
        remaining -= 1
        if not remaining:
            done.set()

    async with anyio.create_task_group() as tg:
        for _, receive in pairs:
            tg.start_soon(consume, receive)
        await settle()
        sends = [send for send, _ in pairs]
        start = time.perf_counter()
        for i in range(events):
            for send in sends:
                send.send_nowait(i)
            if i % 100 == 99:
                await anyio.lowlevel.checkpoint()
        await done.wait()
        elapsed = time.perf_counter() - start
        for send in sends:
            send.close()
    return elapsed


Runner = Callable[[int, int], Awaitable[float]]


def measure_all(watchers: int, repeats: int) -> dict[str, float]:
    """Deliveries per second of every system, best of *repeats* interleaved runs."""
    events = _events(watchers)
    runs: dict[str, tuple[Runner, str]] = {
        "k8s/event": (k8swatch_per_event, "asyncio"),
        "k8s/batch": (k8swatch_batched, "asyncio"),
        "bcast pkg": (broadcaster_package, "asyncio"),
        "anyio str": (anyio_streams, "asyncio"),
        "trio ev": (k8swatch_per_event, "trio"),
        "trio bat": (k8swatch_batched, "trio"),
    }
    best = dict.fromkeys(runs, math.inf)
    for _ in range(repeats):
        for name, (runner, backend) in runs.items():
            gc.collect()
            best[name] = min(best[name], anyio.run(runner, watchers, events, backend=backend))
    return {name: watchers * events / seconds for name, seconds in best.items()}


def idle_watchers_memory(count: int = 10_000) -> float:
    """Traced MB held by *count* idle watchers (objects only, no tasks)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    broadcaster: Broadcaster[int] = Broadcaster()
    watches = [broadcaster.watch() for _ in range(count)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert broadcaster.statistics().watchers == len(watches)
    return (after - before) / 1e6


def idle_waiting_memory(count: int = 10_000) -> float:
    """Traced MB for *count* watchers parked in ``async for``, tasks included."""

    async def main() -> float:
        broadcaster: Broadcaster[int] = Broadcaster()

        async def consume() -> None:
            async for _event in broadcaster.watch():
                pass

        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(consume)
            await settle()
            after = tracemalloc.get_traced_memory()[0]
            broadcaster.shutdown()
        tracemalloc.stop()
        return (after - before) / 1e6

    return anyio.run(main)


def main() -> None:
    from _record import record

    start = time.perf_counter()
    rows: dict[int, dict[str, float]] = {}
    print(
        f"fan-out, deliveries/s (M/s), >= {DELIVERIES:,} deliveries (>= 500 events) per run,"
        f" best of {REPEATS} interleaved runs, asyncio unless noted"
    )
    header = f"{'watchers':>8} {'k8s/event':>10} {'k8s/batch':>10} {'bcast pkg':>10}"
    header += f" {'anyio str':>10} | {'ev/pkg':>7} {'ev/str':>7} {'batch/pkg':>9}"
    header += f" | {'trio ev':>8} {'trio bat':>8}"
    print(header)
    for watchers in WATCHERS:
        r = rows[watchers] = measure_all(watchers, REPEATS)
        print(
            f"{watchers:>8} {r['k8s/event'] / 1e6:>10.2f} {r['k8s/batch'] / 1e6:>10.2f}"
            f" {r['bcast pkg'] / 1e6:>10.2f} {r['anyio str'] / 1e6:>10.2f} |"
            f" {r['k8s/event'] / r['bcast pkg']:>6.1f}x {r['k8s/event'] / r['anyio str']:>6.1f}x"
            f" {r['k8s/batch'] / r['bcast pkg']:>8.1f}x |"
            f" {r['trio ev'] / 1e6:>8.2f} {r['trio bat'] / 1e6:>8.2f}"
        )
    print("targets at 100/1000 watchers: ev/pkg >= 3x, ev/str >= 10x, batch/pkg >= 10x")
    idle, waiting = idle_watchers_memory(), idle_waiting_memory()
    print(f"memory, 10,000 idle watchers (objects): {idle:.2f} MB (target <= 20)")
    print(f"memory, 10,000 watchers waiting in tasks: {waiting:.2f} MB (tasks incl.)")
    print(f"total {time.perf_counter() - start:.1f} s")
    record(
        "broadcaster",
        {
            "deliveries_per_second": {str(watchers): r for watchers, r in rows.items()},
            "deliveries": DELIVERIES,
            "repeats": REPEATS,
            "idle_watchers_mb": idle,
            "waiting_watchers_mb": waiting,
        },
    )


if __name__ == "__main__":
    main()
