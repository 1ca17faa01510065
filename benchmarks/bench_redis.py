"""Redis Streams backend benchmark: end-to-end events/s and write->watch latency.

Starts its own ``redis-server`` (127.0.0.1, random port, temporary directory, no
persistence) and measures, in the same run and on asyncio:

* **redis, 2 replicas**: two ``MemoryStorage`` replicas in this process, each
  with its own Redis client, log mirror and watch cache, and 100 watchers on
  each (200 in all). Concurrent writers create objects through both replicas;
  the figure is events/s from the first write until all 200 watchers have
  every event, plus the write->watch latency (p50/p99) seen by one watcher on
  each replica.
* **redis, log PUT writers**: the same two replicas and watchers, written
  with ``RedisEventLog.append(PUT)`` directly (as an out-of-band poller
  writes), which skips ``MemoryStorage.create``'s per-write work.
* **memory, 1 process**: the same writers and 200 watchers on one
  ``MemoryStorage`` with its in-memory event log (what one process does
  without Redis).
* **log appends**: raw ``EventLog.append()`` throughput, RedisEventLog (with
  its batching) vs MemoryEventLog, without caches or watchers.

Both replicas share this process and its one core, so the Redis figures are a
lower bound for real replicas on separate machines. Target: >= 20,000 events/s
end to end. Run: ``python benchmarks/bench_redis.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import anyio

from k8swatch import ListOptions, MemoryStorage
from k8swatch._eventlog import EventLog, MemoryEventLog, Write, WriteOp
from k8swatch.redis import open_redis_backend

QUICK = "--quick" in sys.argv
EVENTS = 2_000 if QUICK else 20_000
WATCHERS_PER_REPLICA = 10 if QUICK else 100
WRITERS = 128
APPENDS = 2_000 if QUICK else 20_000


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server; yield its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", tmp,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait()


def widget(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"w{i}", "labels": {"app": "bench", "n": str(i % 10)}},
        "spec": {"size": i, "t": time.perf_counter()},
    }


async def run_end_to_end(
    writers_to: Sequence[MemoryStorage | EventLog], watched: Sequence[MemoryStorage]
) -> tuple[float, list[float]]:
    """Return (events/s, latencies in ms) for EVENTS creates spread over *writers_to*.

    A storage is written with ``create()``; an event log directly with
    ``append(PUT)`` (as an out-of-band poller does), skipping the storage's
    per-write work.
    """
    rv = (await watched[0].list("")).resource_version
    for storage in watched[1:]:
        await storage.list("")  # every replica at least as fresh
    done = anyio.Event()
    remaining = len(watched) * WATCHERS_PER_REPLICA
    latencies: list[float] = []
    started = anyio.Event()
    ready = 0

    async def watcher(storage: MemoryStorage, measure: bool) -> None:
        nonlocal remaining, ready
        watch = await storage.watch("", ListOptions(watch=True, resource_version=rv))
        ready += 1
        if ready == remaining:
            started.set()
        seen = 0
        async with watch:
            async for batch in watch.batches():
                if measure:
                    now = time.perf_counter()
                    latencies.extend((now - e.object["spec"]["t"]) * 1000 for e in batch)
                seen += len(batch)
                if seen >= EVENTS:
                    break
        remaining -= 1
        if not remaining:
            done.set()

    counter = iter(range(EVENTS))

    async def writer(k: int) -> None:
        target = writers_to[k % len(writers_to)]
        if isinstance(target, MemoryStorage):
            for i in counter:
                await target.create("default", widget(i))
        else:
            for i in counter:
                obj = widget(i)
                obj["apiVersion"], obj["kind"] = "example.com/v1", "Widget"
                obj["metadata"]["namespace"] = "default"
                await target.append(Write(WriteOp.PUT, f"default/w{i}", obj))

    async with anyio.create_task_group() as tg:
        for storage in watched:
            for j in range(WATCHERS_PER_REPLICA):
                tg.start_soon(watcher, storage, j == 0)
        await started.wait()
        t0 = time.perf_counter()
        for k in range(WRITERS):
            tg.start_soon(writer, k)
        await done.wait()
        elapsed = time.perf_counter() - t0
    return EVENTS / elapsed, latencies


async def run_appends(log: EventLog) -> float:
    counter = iter(range(APPENDS))

    async def writer() -> None:
        for i in counter:
            await log.append(Write(WriteOp.CREATE, f"default/w{i}", widget(i)))

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(WRITERS):
            tg.start_soon(writer)
    return APPENDS / (time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main(url: str) -> None:
    print(
        f"{EVENTS} events, {WATCHERS_PER_REPLICA} watchers per replica, {WRITERS} concurrent "
        "writers, asyncio"
    )
    async with AsyncExitStack() as stack:
        replicas = []
        for _ in range(2):
            backend = await stack.enter_async_context(open_redis_backend(url, prefix="e2e"))
            log = backend.log_for("widgets", group="example.com")
            replicas.append(
                await stack.enter_async_context(
                    MemoryStorage("example.com/v1", "Widget", log=log, window=EVENTS)
                )
            )
        redis_rate, redis_lat = await run_end_to_end(replicas, replicas)
    async with AsyncExitStack() as stack:
        replicas, logs = [], []
        for _ in range(2):
            backend = await stack.enter_async_context(open_redis_backend(url, prefix="put"))
            logs.append(backend.log_for("widgets", group="example.com"))
            replicas.append(
                await stack.enter_async_context(
                    MemoryStorage("example.com/v1", "Widget", log=logs[-1], window=EVENTS)
                )
            )
        # the storages own the logs; write through the same log objects
        put_rate, put_lat = await run_end_to_end(logs, replicas)

    async with MemoryStorage("example.com/v1", "Widget", window=EVENTS) as single:
        memory_rate, memory_lat = await run_end_to_end([single], [single, single])

    async with open_redis_backend(url, prefix="appends") as backend:
        redis_appends = await run_appends(backend.log_for("widgets"))
    memory_appends = await run_appends(MemoryEventLog(window=APPENDS))

    rows = [
        ("redis, 2 replicas", redis_rate, redis_lat),
        ("  (log PUT writers)", put_rate, put_lat),
        ("memory, 1 process", memory_rate, memory_lat),
    ]
    print(f"{'end to end':<22}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, rate, lat in rows:
        print(f"{name:<22}{rate:>12,.0f}{pct(lat, 0.5):>10.1f}{pct(lat, 0.99):>10.1f}")
    print(f"redis / memory events/s: {redis_rate / memory_rate:.2f}")
    print(
        f"mean latency ms: redis {statistics.fmean(redis_lat):.1f}, "
        f"memory {statistics.fmean(memory_lat):.1f}"
    )
    print(f"{'log appends':<22}{'appends/s':>12}")
    print(f"{'RedisEventLog':<22}{redis_appends:>12,.0f}")
    print(f"{'MemoryEventLog':<22}{memory_appends:>12,.0f}")
    target = "met" if redis_rate >= 20_000 else "NOT met"
    print(f"target >= 20,000 events/s end to end through Redis: {target}")


if __name__ == "__main__":
    with redis_server() as redis_url:
        anyio.run(main, redis_url)
