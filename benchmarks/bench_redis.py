"""Redis Streams backend benchmark: end-to-end events/s and write->watch latency.

Starts its own ``redis-server`` (127.0.0.1, random port, temporary directory, no
persistence) and measures, in the same run and on asyncio:

* **redis, 2 replica processes**: two replicas, each in its own process as in a
  deployment, each a ``MemoryStorage`` on the Redis event log with its own
  client, log mirror and watch cache, and 1 or 100 watchers. Half the
  concurrent writers run in each replica and create objects through it; the
  figure is events/s from the first write until every watcher on both
  replicas has every event, plus the write->watch latency (p50/p99) seen by
  one watcher on each replica (both processes read the same monotonic clock).
  Each row also shows the CPU time per event of each replica process and of
  redis-server.
* **redis, log.append**: the same, but the writers append ``PUT`` writes to
  their replica's event log directly (as an out-of-band poller does),
  without the storage's per-write work (validation, copies, read-your-writes
  catch-up).
* **memory, 1 storage**: the same writers and as many watchers (2 or 200) on
  one ``MemoryStorage`` with its in-memory event log, in this process (what
  one process does without Redis).
* **log appends**: raw ``EventLog.append()`` throughput, RedisEventLog (with
  its batching) vs MemoryEventLog, without caches or watchers.

The replicas, redis-server and the writers share this machine's cores. Floor:
>= 10,000 events/s end to end through Redis with 100 watchers per replica
(20,000 does not fit two cores in CPython); goal: <= 30 µs of CPU per event per
replica.
Run: ``python benchmarks/bench_redis.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.to_thread

from k8swatch import ListOptions, MemoryStorage
from k8swatch._eventlog import EventLog, MemoryEventLog, Write, WriteOp
from k8swatch.redis import open_redis_backend

QUICK = "--quick" in sys.argv
EVENTS = 2_000 if QUICK else 10_000
WATCHERS_PER_REPLICA = 10 if QUICK else 100
WRITERS = 128
APPENDS = 2_000 if QUICK else 10_000


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """Run a throwaway redis-server; yield its URL and process id."""
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
            yield f"redis://127.0.0.1:{port}/0", proc.pid
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
    *,
    events: Sequence[int] = range(EVENTS),
    writers: int = WRITERS,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> tuple[float, float, list[float]]:
    """Write *events* spread over *writers_to*; return (start, end, latencies in ms).

    A storage is written with ``create()``; an event log directly with
    ``append(PUT)`` (as an out-of-band poller does), skipping the storage's
    per-write work. *end* is when every watcher of *watched* had EVENTS
    events. *ready* is awaited once every watcher is open, before writing.
    """
    rv = (await watched[0].list("")).resource_version
    for storage in watched[1:]:
        await storage.list("")  # every replica at least as fresh
    done = anyio.Event()
    remaining = len(watched) * watchers
    latencies: list[float] = []
    opened = anyio.Event()
    ready_count = 0

    async def watcher(storage: MemoryStorage, measure: bool) -> None:
        nonlocal remaining, ready_count
        watch = await storage.watch("", ListOptions(watch=True, resource_version=rv))
        ready_count += 1
        if ready_count == remaining:
            opened.set()
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

    counter = iter(events)

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
        await opened.wait()
        if ready is not None:
            await ready()
        t0 = time.perf_counter()
        for k in range(writers):
            tg.start_soon(writer, k)
        await done.wait()
        t1 = time.perf_counter()
    return t0, t1, latencies


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
    return values[min(len(values) - 1, int(q * len(values)))] if values else math.nan


# -- one replica process --------------------------------------------------------------


async def replica(config: dict[str, Any]) -> None:
    """Run one replica (``--replica CONFIG``): watchers, its share of the writers.

    Prints ``ready`` once its watchers are open, starts writing when a line
    arrives on stdin, then prints its result as one JSON line.
    """
    me, replicas = config["index"], config["replicas"]
    async with open_redis_backend(config["url"], prefix=config["prefix"]) as backend:
        log = backend.log_for("widgets", group="example.com")
        async with MemoryStorage("example.com/v1", "Widget", log=log, window=EVENTS) as storage:

            async def ready() -> None:
                print("ready", flush=True)
                await anyio.to_thread.run_sync(sys.stdin.readline)

            target: MemoryStorage | EventLog = log if config["append"] else storage
            cpu = time.process_time()
            t0, t1, latencies = await run_end_to_end(
                [target],
                [storage],
                config["watchers"],
                events=range(me, EVENTS, replicas),
                writers=WRITERS // replicas,
                ready=ready,
            )
            cpu = time.process_time() - cpu
    print(json.dumps({"t0": t0, "t1": t1, "latencies": latencies, "cpu": cpu}), flush=True)


class _CPUClock:
    """CPU seconds a process used so far (Linux /proc; NaN elsewhere)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __call__(self) -> float:
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_replica_processes(
    url: str, redis_cpu: Callable[[], float], prefix: str, watchers: int, append: bool
) -> tuple[float, list[float], list[float], float]:
    """Two replica processes; return (events/s, latencies, CPU µs/event each, redis's)."""
    procs = []
    for index in range(2):
        config = {
            "url": url,
            "prefix": prefix,
            "index": index,
            "replicas": 2,
            "watchers": watchers,
            "append": append,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, *sys.argv[1:], "--replica", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a replica process failed to start")
        redis_before = redis_cpu()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            results.append(json.loads(proc.stdout.readline()))
        redis_used = redis_cpu() - redis_before
    finally:
        for proc in procs:
            proc.wait(timeout=60)
    if any(proc.returncode for proc in procs):
        raise RuntimeError("a replica process failed")
    elapsed = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    cpu = [1e6 * r["cpu"] / EVENTS for r in results]
    return EVENTS / elapsed, latencies, cpu, 1e6 * redis_used / EVENTS


async def run_memory(watchers: int) -> tuple[float, list[float]]:
    async with MemoryStorage("example.com/v1", "Widget", window=EVENTS) as single:
        t0, t1, latencies = await run_end_to_end([single], [single, single], watchers)
    return EVENTS / (t1 - t0), latencies


async def run_raw_appends(url: str) -> tuple[float, float]:
    async with open_redis_backend(url, prefix="appends") as backend:
        redis_appends = await run_appends(backend.log_for("widgets"))
    return redis_appends, await run_appends(MemoryEventLog(window=APPENDS))


def main(url: str, redis_cpu: Callable[[], float]) -> None:
    print(f"{EVENTS} events, {WRITERS} concurrent writers, asyncio, {os.cpu_count()} cores")
    header = (
        f"{'end to end (write -> every watcher)':<44}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    )
    print(f"{header}  CPU µs/event: replicas, redis-server")
    rows: dict[str, float] = {}
    latency: dict[str, tuple[float, float]] = {}
    cpu_per_replica: dict[str, list[float]] = {}
    for append in (False, True):
        for watchers in (1, WATCHERS_PER_REPLICA):
            name = f"redis, {'log.append' if append else 'create'}, 2 processes x {watchers}"
            prefix = f"{'log' if append else 'e2e'}{watchers}"
            rate, lat, cpu, redis = run_replica_processes(url, redis_cpu, prefix, watchers, append)
            rows[name] = rate
            latency[name] = pct(lat, 0.5), pct(lat, 0.99)
            cpu_per_replica[name] = cpu
            print(
                f"{name:<44}{rate:>10,.0f}{pct(lat, 0.5):>9.1f}{pct(lat, 0.99):>9.1f}"
                f"  {cpu[0]:.0f} + {cpu[1]:.0f}, {redis:.0f}"
            )
    for watchers in (1, WATCHERS_PER_REPLICA):
        name = f"memory, create, 1 storage x {2 * watchers}"
        rate, lat = anyio.run(run_memory, watchers)
        rows[name] = rate
        latency[name] = pct(lat, 0.5), pct(lat, 0.99)
        print(f"{name:<44}{rate:>10,.0f}{pct(lat, 0.5):>9.1f}{pct(lat, 0.99):>9.1f}")
    for watchers in (1, WATCHERS_PER_REPLICA):
        redis_rate = rows[f"redis, create, 2 processes x {watchers}"]
        memory_rate = rows[f"memory, create, 1 storage x {2 * watchers}"]
        print(
            f"redis (2 processes) / memory (1 process) events/s, {watchers} watchers "
            f"per replica: {redis_rate / memory_rate:.2f}"
        )
    redis_appends, memory_appends = anyio.run(run_raw_appends, url)
    print(f"{'EventLog.append (128 writers, one process)':<44}{'appends/s':>10}")
    print(f"{'RedisEventLog':<44}{redis_appends:>10,.0f}")
    print(f"{'MemoryEventLog':<44}{memory_appends:>10,.0f}")
    hundred = f"redis, create, 2 processes x {WATCHERS_PER_REPLICA}"
    floor = "met" if rows[hundred] >= 10_000 else "NOT met"
    per_replica = max(cpu_per_replica[hundred])
    goal = "met" if per_replica <= 30 else "NOT met"
    print(
        f"floor >= 10,000 events/s end to end through Redis ({WATCHERS_PER_REPLICA} "
        f"watchers/replica, create): {floor} ({rows[hundred]:,.0f}); goal <= 30 µs of CPU "
        f"per event per replica: {goal} ({per_replica:.0f} µs, the busier replica)"
    )
    from _record import record

    record(
        "redis",
        {
            "events": EVENTS,
            "writers": WRITERS,
            "watchers_per_replica": WATCHERS_PER_REPLICA,
            "events_per_second": rows,
            "cpu_us_per_event_per_replica": cpu_per_replica,
            "latency_ms": {name: {"p50": p50, "p99": p99} for name, (p50, p99) in latency.items()},
            "appends_per_second": {
                "RedisEventLog": redis_appends,
                "MemoryEventLog": memory_appends,
            },
        },
    )


if __name__ == "__main__":
    if "--replica" in sys.argv:
        anyio.run(replica, json.loads(sys.argv[sys.argv.index("--replica") + 1]))
    else:
        with redis_server() as (redis_url, redis_pid):
            main(redis_url, _CPUClock(redis_pid))
