"""HTTP watch fan-out benchmark: 1,000 concurrent watchers on one uvicorn server.

The app (``k8swatch.server.create_app`` over a ``MemoryStorage``) runs under
uvicorn in a child process; 1,000 watch connections are raw asyncio sockets in
this process reading the chunked JSON-lines stream, and one writer creates
objects over HTTP. The child also answers ``GET /bench/encodes`` with the
app's encode counter.

It prints:

* events/s delivered end to end (watchers x events / wall time from the first
  write to the last watcher receiving the last event);
* p50/p99 latency from the start of a write to the *last* watcher receiving
  that event;
* the number of JSON encodings the server did (``App.encoder.encode_count``)
  per event — 1.0 means every event was encoded once for all watchers — and,
  as the peer, what encoding per watcher would have cost in this run.

Run: ``python benchmarks/bench_server.py`` (``--quick`` for a smoke run;
``BENCH_METRICS=1`` serves with ``k8swatch.metrics.PrometheusMetrics``, to
compare the watch path with and without metrics).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from k8swatch import Event, EventType, MemoryStorage, encode_event
from k8swatch.server import ResourceSpec, create_app

QUICK = "--quick" in sys.argv
WATCHERS = 100 if QUICK else int(os.environ.get("BENCH_WATCHERS", "1000"))
EVENTS = 20 if QUICK else int(os.environ.get("BENCH_EVENTS", "40"))
METRICS = os.environ.get("BENCH_METRICS", "") not in ("", "0")
NAMESPACE = "bench"
PATH = f"/apis/example.com/v1/namespaces/{NAMESPACE}/widgets"
RV = re.compile(rb'"resourceVersion":"(\d+)"')


class Watcher:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.done = asyncio.Event()

    async def run(
        self,
        host: str,
        port: int,
        since: str,
        expected: int,
        ready: asyncio.Event,
        connected: list[int],
        total: int,
    ) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        query = f"watch=1&resourceVersion={since}"
        writer.write(
            f"GET {PATH}?{query} HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: application/json\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        assert b" 200 " in status, status
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        connected[0] += 1
        if connected[0] == total:
            ready.set()
        try:
            while len(self.arrivals) < expected:
                size = int((await reader.readline()).strip(), 16)
                if size == 0:
                    break
                data = await reader.readexactly(size + 2)
                now = time.perf_counter()
                for match in RV.finditer(data):
                    self.arrivals.setdefault(int(match.group(1)), now)
        finally:
            writer.close()
            self.done.set()


async def main(url: str, app_encodes: Callable[[], int]) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        seed = await http.post(PATH, json={"metadata": {"name": "seed"}})
        since = seed.json()["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        connected = [0]
        watchers = [Watcher() for _ in range(WATCHERS)]
        t0 = time.perf_counter()
        tasks = [
            asyncio.create_task(w.run(host, port, since, EVENTS, ready, connected, WATCHERS))
            for w in watchers
        ]
        await asyncio.wait_for(ready.wait(), 60)
        print(f"{WATCHERS} watchers connected in {time.perf_counter() - t0:.2f} s")

        encodes_before = app_encodes()
        written: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(EVENTS):
            t = time.perf_counter()
            response = await http.post(PATH, json={"metadata": {"name": f"w{i}"}, "spec": {"i": i}})
            written[int(response.json()["metadata"]["resourceVersion"])] = t
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        end = max(max(w.arrivals.values()) for w in watchers)
        encodes = app_encodes() - encodes_before

    elapsed = end - start
    deliveries = sum(len(w.arrivals) for w in watchers)
    latencies = sorted(max(w.arrivals[rv] for w in watchers) - t for rv, t in written.items())
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"metrics:                   {'PrometheusMetrics' if METRICS else 'off'}")
    print(f"events written:            {EVENTS}")
    print(f"deliveries:                {deliveries} ({deliveries / (EVENTS * WATCHERS):.0%})")
    print(f"delivered events/s:        {deliveries / elapsed:,.0f}")
    print(f"write -> last watcher p50: {p50:.1f} ms, p99: {p99:.1f} ms")
    print(
        f"JSON encodings:            {encodes} for {EVENTS} events "
        f"({encodes / EVENTS:.2f} per event, {WATCHERS} watchers)"
    )

    # Peer: what encoding every event once per watcher costs, measured now.
    sample = Event(
        EventType.ADDED,
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w1", "namespace": NAMESPACE, "resourceVersion": "12"},
            "spec": {"i": 1},
        },
    )
    t = time.perf_counter()
    for _ in range(EVENTS):
        encode_event(sample)
    once = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(EVENTS * WATCHERS):
        encode_event(sample)
    per_watcher = time.perf_counter() - t
    print(f"encode once per event:     {once * 1000:.2f} ms CPU for the run")
    print(
        f"encode once per watcher:   {per_watcher * 1000:.1f} ms CPU "
        f"({per_watcher / once:.0f}x more)"
    )
    from _record import record

    record(
        "server",
        {
            "watchers": WATCHERS,
            "events": EVENTS,
            "deliveries": deliveries,
            "delivered_events_per_second": deliveries / elapsed,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "encodes": encodes,
            "encode_once_per_event_ms": once * 1000,
            "encode_once_per_watcher_ms": per_watcher * 1000,
        },
    )


def serve(port: int) -> None:
    """Child process: the app under uvicorn, plus the encode counter."""
    import uvicorn

    storage = MemoryStorage("example.com/v1", "Widget", window=EVENTS * 2 + 10)
    metrics = None
    if METRICS:
        from k8swatch.metrics import PrometheusMetrics

        metrics = PrometheusMetrics()
    app = create_app(
        [ResourceSpec("example.com", "v1", "widgets", "Widget", storage)],
        max_watches=WATCHERS + 10,
        metrics=metrics,
    )

    async def with_counter(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/encodes":
            body = json.dumps(app.encoder.encode_count).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    uvicorn.run(
        with_counter,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_file_limit(needed: int) -> None:
    """1,000 connections need more file descriptors than the usual soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    raise_file_limit(2 * WATCHERS + 256)
    if "--serve" in sys.argv:
        serve(int(sys.argv[sys.argv.index("--serve") + 1]))
        sys.exit(0)
    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port), *sys.argv[1:]])
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base_url}/version", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)

        def encodes() -> int:
            return int(httpx.get(f"{base_url}/bench/encodes").text)

        asyncio.run(main(base_url, encodes))
    finally:
        child.terminate()
        child.wait(30)
