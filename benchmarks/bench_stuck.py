"""Stuck watchers: 500 watch connections that never read, and one writer.

The app (``k8swatch.server.create_app`` over a ``MemoryStorage``) runs in a
child process under the uvicorn configuration ``k8swatch serve`` uses (its
header, read and send timeouts; uvloop and httptools when installed), with
a short send timeout so the run is quick (``BENCH_SEND_TIMEOUT``, default
10 s). The child also answers
``GET /bench/stats`` with its open file descriptors, RSS, asyncio tasks and
open watches.

This process then:

1. writes ``BENCH_WRITES`` objects (1 KiB of spec each), one after the
   other over one keep-alive connection, and times each write: the baseline;
2. opens ``BENCH_WATCHERS`` (500) real TCP watch connections that send their
   request and never read a byte;
3. writes until their buffers are full (no socket queue grows any more, on
   either side): until then every event is still delivered to all of them;
4. writes ``BENCH_WRITES`` objects with the 500 watchers stuck;
5. goes on writing until the send timeout has freed them all;
6. writes ``BENCH_WRITES`` objects again.

It prints write p50/p99 for each phase with its ratio to the baseline's p99,
the server's file descriptors, tasks, open watches and RSS before, with the
watchers connected, stuck and after the bound, memory per stuck watcher (RSS
and the kernel's socket buffers, from ``ss -tm``), and how many of the
stuck connections the server ended. Machines shared with other work make
p99 noisy: compare the ratios of one run, and repeat.

Run: ``python benchmarks/bench_stuck.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import termios
import time
from typing import Any

QUICK = "--quick" in sys.argv
WATCHERS = 50 if QUICK else int(os.environ.get("BENCH_WATCHERS", "500"))
WRITES = 500 if QUICK else int(os.environ.get("BENCH_WRITES", "2000"))
SEND_TIMEOUT = float(os.environ.get("BENCH_SEND_TIMEOUT", "10"))
PAYLOAD = int(os.environ.get("BENCH_PAYLOAD", "1024"))  # bytes of spec per object
NAMESPACE = "bench"
PATH = f"/apis/example.com/v1/namespaces/{NAMESPACE}/widgets"
HOST = "127.0.0.1"
PROFILE = os.environ.get("BENCH_PROFILE", "")  # a file: cProfile the server, see PROFILE_PHASE
PROFILE_PHASE = os.environ.get("BENCH_PROFILE_PHASE", "fill")  # "fill" (+ stuck) or "release"


# -- the server (child process) -------------------------------------------------


def serve(port: int) -> None:
    """Child process: the app under ``k8swatch serve``'s uvicorn protocol, plus stats."""
    import cProfile
    import gc

    from k8swatch import MemoryStorage, _cli_uvicorn
    from k8swatch._cli_uvicorn import ServeTimeouts, build_server
    from k8swatch.server import ResourceSpec, create_app

    profiler = cProfile.Profile()
    if "BENCH_NOTSENT_LOWAT" in os.environ:  # compare with other values (0: the kernel's)
        _cli_uvicorn.NOTSENT_LOWAT = int(os.environ["BENCH_NOTSENT_LOWAT"])
    storage = MemoryStorage("example.com/v1", "Widget", window=1000)
    timeouts = ServeTimeouts(send=SEND_TIMEOUT)
    app = create_app(
        [ResourceSpec("example.com", "v1", "widgets", "Widget", storage)],
        max_watches=WATCHERS + 10,
        send_timeout=2 * timeouts.send,  # as k8swatch serve: the connection's bound acts first
    )

    gc_pauses: list[float] = []  # the longest garbage collections, in ms
    gc_start = [0.0]

    explicit = [False]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if explicit[0]:
            return
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_pauses.append(round((time.perf_counter() - gc_start[0]) * 1000, 1))
            gc_pauses.sort(reverse=True)
            del gc_pauses[3:]

    gc.callbacks.append(gc_timer)
    if os.environ.get("BENCH_NO_GC"):  # to tell garbage collection pauses from the rest
        gc.disable()

    def rss_kib() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    async def with_stats(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/stats":
            query = scope["query_string"]
            if query == b"gc=1":
                explicit[0] = True
                gc.collect()
                explicit[0] = False
            elif query == b"profile=on" and PROFILE:
                profiler.enable()
            elif query == b"profile=off" and PROFILE:
                profiler.disable()
                profiler.dump_stats(PROFILE)
            stats = {
                "fds": len(os.listdir("/proc/self/fd")),
                "rss_kib": rss_kib(),
                "tasks": len(asyncio.all_tasks()),
                "watches": app.active_watches,
                "gc_counts": gc.get_count(),
                "gc_pauses_ms": gc_pauses,
            }
            body = json.dumps(stats).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(4096)
    server = build_server(with_stats, log_level="warning", timeouts=timeouts)
    try:  # k8swatch serve runs on uvloop when it is installed
        import uvloop
    except ImportError:
        asyncio.run(server.serve([sock]))
    else:
        uvloop.run(server.serve([sock]))


# -- the client (this process) --------------------------------------------------


class HTTP:
    """A minimal HTTP/1.1 keep-alive client: little overhead, so the timings are the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> HTTP:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def stats(port: int, *, collect: bool = False, query: str = "") -> dict[str, Any]:
    http = await HTTP.connect(port)
    query = "gc=1" if collect else query
    try:
        _, body = await http.request("GET", "/bench/stats" + (f"?{query}" if query else ""))
    finally:
        http.close()
    return dict(json.loads(body))


OBJECTS = 100  # the writes update these objects in turn, so the server's memory stays flat


async def write_many(http: HTTP, prefix: str, count: int) -> list[tuple[float, float]]:
    """Update *count* objects one after the other; (start, seconds) of each write."""
    timings: list[tuple[float, float]] = []
    for i in range(count):
        name = f"w{i % OBJECTS}"
        spec = {"data": "x" * PAYLOAD, "by": f"{prefix}-{i}"}
        body = json.dumps({"metadata": {"name": name}, "spec": spec}).encode()
        t = time.perf_counter()
        status, _ = await http.request("PUT", f"{PATH}/{name}", body)
        timings.append((t, time.perf_counter() - t))
        assert status == 200, status
    return timings


async def create_objects(http: HTTP) -> None:
    for i in range(OBJECTS):
        body = json.dumps({"metadata": {"name": f"w{i}"}, "spec": {}}).encode()
        status, _ = await http.request("POST", PATH, body)
        assert status == 201, status


def percentiles(timings: list[tuple[float, float]]) -> tuple[float, float]:
    values = sorted(seconds for _, seconds in timings)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return statistics.median(values) * 1000, p99 * 1000


async def open_stuck_watchers(port: int, rv: str) -> list[socket.socket]:
    """Watch connections that send their request and never read a byte."""
    socks: list[socket.socket] = []
    request = (
        f"GET {PATH}?watch=1&resourceVersion={rv} HTTP/1.1\r\nHost: {HOST}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    for _ in range(WATCHERS):
        sock = socket.create_connection((HOST, port))
        sock.sendall(request)
        socks.append(sock)
    return socks


def kernel_socket_kib(port: int) -> int | None:
    """The kernel's memory for the server side of our connections (``ss -tm``), in KiB."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    out = subprocess.run(
        [ss, "-tmnH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    total = 0
    for token in out.replace("(", " ").replace(")", " ").replace(",", " ").split():
        # skmem:(r<rmem_alloc>,rb<rcvbuf>,t<wmem_alloc>,tb<sndbuf>,f<fwd_alloc>,w<wmem_queued>,...)
        if token[:1] in ("w", "r") and token[1:].isdigit():
            total += int(token[1:])
    return total // 1024


def reset_or_closed(sock: socket.socket) -> bool:
    """Whether the server ended this connection (read what it sent, then EOF or reset)."""
    sock.settimeout(0.5)
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def queued_bytes(socks: list[socket.socket]) -> list[int]:
    """Bytes waiting in each client socket's receive queue (``FIONREAD``)."""
    buf = array.array("i", [0])
    out = []
    for sock in socks:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf, True)
        out.append(buf[0])
    return out


def server_send_queues(port: int) -> list[int]:
    """Send-Q (bytes not yet acknowledged) of the server side of each connection, from ``ss``."""
    ss = shutil.which("ss")
    if ss is None:
        return []
    out = subprocess.run(
        [ss, "-tnH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sorted(int(row.split()[1]) for row in out.splitlines() if row.split())


async def fill(http: HTTP, port: int, socks: list[socket.socket]) -> list[tuple[float, float]]:
    """Write until the watchers take no more data: no socket queue changes any more.

    Until then the "stuck" watchers still accept data (into the client's
    receive queue, the server's kernel buffer and its transport), and every
    write is delivered to all of them as to any watcher.
    """
    timings: list[tuple[float, float]] = []
    last = (queued_bytes(socks), server_send_queues(port))
    unchanged = 0
    while unchanged < 3:
        timings += await write_many(http, f"fill{len(timings)}", 10)
        now = (queued_bytes(socks), server_send_queues(port))
        unchanged = unchanged + 1 if now == last and min(now[0]) > 0 else 0
        last = now
        assert len(timings) < 20_000, "the watchers' buffers never filled"
    return timings


def line(name: str, timings: list[tuple[float, float]], base99: float) -> str:
    p50, p99 = percentiles(timings)
    return f"{name:<34} {len(timings):>6} {p50:8.2f} {p99:8.2f} {p99 / base99:8.2f}x"


async def main(port: int) -> dict[str, Any]:
    http = await HTTP.connect(port)
    # Warm up (imports, caches; the storage's window of 1,000 events fills up),
    # then the baseline.
    await create_objects(http)
    await write_many(http, "warm", 1200)
    base = await write_many(http, "base", WRITES)
    before = await stats(port, collect=True)
    status, body = await http.request("GET", PATH + "?limit=1")
    assert status == 200, status
    rv = json.loads(body)["metadata"]["resourceVersion"]

    socks = await open_stuck_watchers(port, rv)
    deadline = time.monotonic() + 60
    while (await stats(port))["watches"] < WATCHERS:
        assert time.monotonic() < deadline, "the watches did not all start"
        await asyncio.sleep(0.05)
    connected = await stats(port, collect=True)
    if PROFILE and PROFILE_PHASE == "fill":
        await stats(port, query="profile=on")
    filling = await fill(http, port, socks)
    t_stuck = time.perf_counter()
    client_kib = sum(queued_bytes(socks)) / 1024 / WATCHERS
    stuck = await write_many(http, "stuck", WRITES)
    if PROFILE and PROFILE_PHASE == "fill":
        await stats(port, query="profile=off")
    during = await stats(port, collect=True)
    kernel = kernel_socket_kib(port)
    if PROFILE and PROFILE_PHASE == "release":
        await stats(port, query="profile=on")
    # Go on writing until the server has let every watch go: these writes
    # see the moment the bound frees 500 connections at once.
    releasing: list[tuple[float, float]] = []
    deadline = time.perf_counter() + 3 * SEND_TIMEOUT + 10
    while (await stats(port))["watches"] and time.perf_counter() < deadline:
        releasing += await write_many(http, f"release{len(releasing)}", 100)
    freed_after = time.perf_counter() - t_stuck
    if PROFILE and PROFILE_PHASE == "release":
        await stats(port, query="profile=off")
    after = await stats(port, collect=True)
    again = await write_many(http, "after", WRITES)
    ended = sum(reset_or_closed(sock) for sock in socks)
    for sock in socks:
        sock.close()
    http.close()

    b50, b99 = percentiles(base)
    f50, f99 = percentiles(filling)
    s50, s99 = percentiles(stuck)
    a50, a99 = percentiles(again)
    per_watcher = (during["rss_kib"] - before["rss_kib"]) / WATCHERS
    print(
        f"{WATCHERS} watchers that never read; {PAYLOAD} B objects; send timeout {SEND_TIMEOUT:g} s"
    )
    print(f"{'writes (ms)':<34} {'count':>6} {'p50':>8} {'p99':>8} {'p99/base':>9}")
    print(line("no watchers (baseline)", base, b99))
    print(line(f"{WATCHERS} watchers, buffers filling", filling, b99))
    print(line(f"{WATCHERS} stuck watchers", stuck, b99))
    print(line("filling + stuck", filling + stuck, b99))
    print(line("stuck, until the bound frees them", releasing, b99))
    worst = max(releasing, key=lambda timing: timing[1], default=(t_stuck, 0.0))
    print(
        f"{'':<34} slowest {worst[1] * 1000:.1f} ms, "
        f"{worst[0] - t_stuck:.1f} s after the end of the fill"
    )
    print(line("after the bound", again, b99))
    for name, s in (
        ("before", before),
        ("connected", connected),
        ("stuck", during),
        ("after", after),
    ):
        print(
            f"server {name:<10} fds {s['fds']:>5}  tasks {s['tasks']:>5}  "
            f"watches {s['watches']:>5}  RSS {s['rss_kib'] / 1024:7.1f} MiB"
        )
    print(f"server RSS per stuck watcher:           {per_watcher:.1f} KiB")
    if kernel is not None:
        print(f"server kernel socket memory per watcher: {kernel / WATCHERS:.1f} KiB (ss -tm)")
    print(f"client receive queue per watcher:       {client_kib:.1f} KiB")
    print(f"connections ended by the server:        {ended}/{WATCHERS}")
    print(f"longest automatic garbage collections in the server: {after['gc_pauses_ms']} ms")
    print(f"every watch ended after:                {freed_after:.1f} s (from the end of the fill)")
    return {
        "watchers": WATCHERS,
        "writes": WRITES,
        "payload_bytes": PAYLOAD,
        "send_timeout_s": SEND_TIMEOUT,
        "baseline_p50_ms": b50,
        "baseline_p99_ms": b99,
        "fill_writes": len(filling),
        "fill_p50_ms": f50,
        "fill_p99_ms": f99,
        "stuck_p50_ms": s50,
        "stuck_p99_ms": s99,
        "releasing_p99_ms": percentiles(releasing)[1] if releasing else None,
        "releasing_max_ms": max((x for _, x in releasing), default=0.0) * 1000,
        "after_p50_ms": a50,
        "after_p99_ms": a99,
        "p99_ratio": s99 / b99,
        "rss_per_watcher_kib": per_watcher,
        "kernel_per_watcher_kib": None if kernel is None else kernel / WATCHERS,
        "client_queue_per_watcher_kib": client_kib,
        "fds": [before["fds"], connected["fds"], during["fds"], after["fds"]],
        "tasks": [before["tasks"], connected["tasks"], during["tasks"], after["tasks"]],
        "rss_mib": [x["rss_kib"] / 1024 for x in (before, connected, during, after)],
        "watches_after": after["watches"],
        "ended": ended,
        "freed_after_s": freed_after,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def raise_file_limit(needed: int) -> None:
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
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        figures = asyncio.run(main(port))
        sys.path.insert(0, os.path.dirname(__file__))
        from _record import record

        record("stuck", figures)
    finally:
        child.terminate()
        child.wait(30)
