"""Redis Streams backend benchmark: end-to-end events/s and write->watch latency.

Starts its own ``redis-server`` (127.0.0.1, random port, temporary directory, no
persistence) and measures, in the same run and on asyncio:

* **redis, 2 replicas**: two ``MemoryStorage`` replicas in this process, each
  with its own Redis client, log mirror and watch cache, and 1 or 100
  watchers on each. Concurrent writers create objects through both replicas;
  the figure is events/s from the first write until every watcher has every
  event, plus the write->watch latency (p50/p99) seen by one watcher on each
  replica.
* **memory, 1 storage**: the same writers and as many watchers (2 or 200) on
  one ``MemoryStorage`` with its in-memory event log (what one process does
  without Redis).
* **redis, log.append**: the same, but the writers append ``PUT`` writes to
  the replicas' event logs directly (as an out-of-band poller does), without
  the storage's per-write work (validation, copies, read-your-writes catch-up).
* **log appends**: raw ``EventLog.append()`` throughput, RedisEventLog (with
  its batching) vs MemoryEventLog, without caches or watchers.

Both replicas share this process and its one core, so the Redis figures are a
lower bound for real replicas on separate machines. Target: >= 20,000 events/s
end to end. Run: ``python benchmarks/bench_redis.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

import anyio

from k8swatch import ListOptions, MemoryStorage
from k8swatch._eventlog import EventLog, MemoryEventLog, Write, WriteOp
from k8swatch.redis import open_redis_backend

QUICK = "--quick" in sys.argv
EVENTS = 2_000 if QUICK else 10_000
WATCHERS_PER_REPLICA = 10 if QUICK else 100
WRITERS = 128
APPENDS = 2_000 if QUICK else 10_000


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
    writers_to: Sequence[MemoryStorage | EventLog],
    watched: Sequence[MemoryStorage],
    watchers: int,
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
    remaining = len(watched) * watchers
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
            for j in range(watchers):
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


@asynccontextmanager
async def two_replicas(url: str, prefix: str) -> AsyncIterator[list[MemoryStorage]]:
    """Two replicas in this process, each with its own client, log mirror and cache."""
    async with AsyncExitStack() as stack:
        replicas = []
        for _ in range(2):
            backend = await stack.enter_async_context(open_redis_backend(url, prefix=prefix))
            log = backend.log_for("widgets", group="example.com")
            replicas.append(
                await stack.enter_async_context(
                    MemoryStorage("example.com/v1", "Widget", log=log, window=EVENTS)
                )
            )
        yield replicas


async def main(url: str) -> None:
    print(f"{EVENTS} events, {WRITERS} concurrent writers, asyncio, one process")
    rows: list[tuple[str, float, list[float]]] = []
    for watchers in (1, WATCHERS_PER_REPLICA):
        async with two_replicas(url, f"e2e{watchers}") as replicas:
            rate, lat = await run_end_to_end(replicas, replicas, watchers)
        rows.append((f"redis, 2 replicas x {watchers} watchers", rate, lat))
        async with MemoryStorage("example.com/v1", "Widget", window=EVENTS) as single:
            rate, lat = await run_end_to_end([single], [single, single], watchers)
        rows.append((f"memory, 1 storage x {2 * watchers} watchers", rate, lat))
    for watchers in (1, WATCHERS_PER_REPLICA):
        async with two_replicas(url, f"log{watchers}") as replicas:
            logs = [replica.log for replica in replicas]
            rate, lat = await run_end_to_end(logs, replicas, watchers)
        rows.append((f"redis, log.append, 2 x {watchers} watchers", rate, lat))

    async with open_redis_backend(url, prefix="appends") as backend:
        redis_appends = await run_appends(backend.log_for("widgets"))
    memory_appends = await run_appends(MemoryEventLog(window=APPENDS))

    print(f"{'end to end (create -> every watcher)':<40}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, rate, lat in rows:
        print(f"{name:<40}{rate:>10,.0f}{pct(lat, 0.5):>9.1f}{pct(lat, 0.99):>9.1f}")
    for i in (0, 2):
        print(
            f"redis / memory events/s, {rows[i][0].rsplit(' x ', 1)[1]} per replica: "
            f"{rows[i][1] / rows[i + 1][1]:.2f}"
        )
    print(f"{'EventLog.append (128 writers)':<40}{'appends/s':>10}")
    print(f"{'RedisEventLog':<40}{redis_appends:>10,.0f}")
    print(f"{'MemoryEventLog':<40}{memory_appends:>10,.0f}")
    hundred = max(rows[2][1], rows[5][1])
    best = max(rows[i][1] for i in (0, 2, 4, 5))
    target = "met" if hundred >= 20_000 else "NOT met"
    print(
        f"target >= 20,000 events/s end to end through Redis (100 watchers/replica): {target}"
        f" (best such row {hundred:,.0f}; best redis row {best:,.0f})"
    )


if __name__ == "__main__":
    with redis_server() as redis_url:
        anyio.run(main, redis_url)
