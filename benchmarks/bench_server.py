"""HTTP watch fan-out: k8swatch's ASGI app against a lean Go server, measured by one Go client.

The client is ``watchload`` and the reference server ``watchanchor``, two small
Go programs (standard library only) from the shared bench tools (``../shared/bench``
next to the repository, or ``K8SWATCH_BENCH_TOOLS``), built with their
``build.sh`` into a cache directory (``K8SWATCH_BENCH_BIN``, default
``$XDG_CACHE_HOME/k8swatch/bench-go``), never into the repository.

Every server runs in a child process and is started fresh for each
measurement; each round measures them one after the other, so compare them
as ratios within a round (the machine may be shared). Servers:

* ``go``: the lean Go server (a goroutine and a buffered channel per watcher,
  each event encoded once, a flush when the channel is drained);
* ``uvicorn``: ``create_app`` over a ``MemoryStorage``, served as
  ``k8swatch serve`` serves it (its uvicorn protocol with the connection
  timeouts, the app without a send timeout of its own, anyio's asyncio
  backend, uvloop and httptools when installed);
* ``hypercorn-trio``: the same app (with ``create_app``'s default send
  timeout) under hypercorn's trio worker.

It prints, per round and as ranges over the rounds:

* deliveries/s at 1,000 watchers (watchers x events / time from the first
  write until every watcher had every event) and p50/p99 from a write's start
  to the last watcher getting it, each with its ratio to the Go server's;
* the RSS per idle watch connection with 10,000 of them open (the servers'
  RSS before and after, from ``/proc``);
* write latency (p50/p99 of a ``POST``) with no watcher and with 1,000 watch
  connections reading, for writes one every 50 ms and back to back.

Targets (issue 18): uvicorn >= 1.0x the Go server's deliveries/s with p99 <=
2x its p99; hypercorn-trio >= 0.3x; <= 16 KB RSS per idle connection; write
latency at 1,000 watchers <= 1.5x the latency with none.

Run: ``python benchmarks/bench_server.py`` (``--quick`` for a smoke run;
``BENCH_ROUNDS``, ``BENCH_WATCHERS``, ``BENCH_EVENTS``, ``BENCH_IDLE`` change
the sizes; ``BENCH_METRICS=1`` serves the k8swatch app with
``k8swatch.metrics.PrometheusMetrics``, to compare the watch path with and
without metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QUICK = "--quick" in sys.argv
ROUNDS = 1 if QUICK else int(os.environ.get("BENCH_ROUNDS", "3"))
WATCHERS = 100 if QUICK else int(os.environ.get("BENCH_WATCHERS", "1000"))
EVENTS = 50 if QUICK else int(os.environ.get("BENCH_EVENTS", "300"))
IDLE = 500 if QUICK else int(os.environ.get("BENCH_IDLE", "10000"))
METRICS = os.environ.get("BENCH_METRICS", "") not in ("", "0")
WRITES = 40 if QUICK else 200
NAMESPACE = "bench"
PATH = f"/apis/example.com/v1/namespaces/{NAMESPACE}/widgets"
SERVERS = ("go", "uvicorn", "hypercorn-trio")
REPO = Path(__file__).resolve().parent.parent


# --- the Go tools ---------------------------------------------------------------


def go_tools() -> Path:
    """Build watchload and watchanchor (once per source change); return their directory."""
    tools = Path(os.environ.get("K8SWATCH_BENCH_TOOLS", REPO.parent / "shared" / "bench"))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    out = Path(os.environ.get("K8SWATCH_BENCH_BIN", cache / "k8swatch" / "bench-go"))
    sources = [p for d in ("watchload", "watchanchor") for p in (tools / d).glob("*.go")]
    if not sources:
        sys.exit(f"the Go bench tools are not in {tools} (set K8SWATCH_BENCH_TOOLS)")
    binaries = [out / "watchload", out / "watchanchor"]
    newest = max(p.stat().st_mtime for p in sources)
    if not all(b.exists() and b.stat().st_mtime >= newest for b in binaries):
        subprocess.run([str(tools / "build.sh"), str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


# --- the servers (child processes) ---------------------------------------------


def make_app(send_timeout: float | None = 30.0) -> Any:
    from k8swatch import MemoryStorage
    from k8swatch.server import ResourceSpec, create_app

    storage = MemoryStorage("example.com/v1", "Widget", window=10_000)
    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", storage)
    metrics = None
    if METRICS:
        from k8swatch.metrics import PrometheusMetrics

        metrics = PrometheusMetrics()
    return create_app(
        [spec], max_watches=IDLE + WATCHERS + 100, metrics=metrics, send_timeout=send_timeout
    )


def listening_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    return sock


def serve_uvicorn(port: int) -> None:
    """As ``k8swatch serve`` runs uvicorn: its protocol (connection timeouts, no
    app-level send timeout), anyio's asyncio backend, uvloop and httptools when installed."""
    import anyio

    from k8swatch._cli_uvicorn import build_server  # pyright: ignore[reportPrivateUsage]
    from k8swatch.cli import _loop_options  # pyright: ignore[reportPrivateUsage]

    sock = listening_socket(port)
    server = build_server(make_app(send_timeout=None), log_level="warning")

    async def main() -> None:
        await server.serve([sock])

    anyio.run(main, backend="asyncio", backend_options=_loop_options())


def serve_hypercorn_trio(port: int) -> None:
    import hypercorn.trio
    import trio
    from hypercorn.config import Config

    sock = listening_socket(port)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.backlog = 4096
    config.accesslog = None
    config.errorlog = None
    app = make_app()
    trio.run(hypercorn.trio.serve, app, config)  # pyright: ignore[reportUnknownMemberType]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(server: str, bin_dir: Path) -> Iterator[tuple[str, int]]:
    """Start *server* on a free port; yield its collection URL and pid."""
    port = free_port()
    if server == "go":
        argv = [str(bin_dir / "watchanchor"), "-addr", f"127.0.0.1:{port}"]
    else:
        argv = [sys.executable, __file__, "--serve", server, str(port), *sys.argv[1:]]
    child = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}{PATH}", child.pid
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --- deliveries/s: watchload ------------------------------------------------------

LINE = re.compile(r"deliveries/s=(\d+).*p50_ms=([\d.]+) p99_ms=([\d.]+)")


def watchload(bin_dir: Path, url: str) -> tuple[float, float, float]:
    """Run the Go client once: (deliveries/s, p50 ms, p99 ms)."""
    argv = [str(bin_dir / "watchload"), "-url", url]
    argv += ["-watchers", str(WATCHERS), "-events", str(EVENTS), "-timeout", "300s"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    match = LINE.search(result.stdout)
    if match is None:
        raise RuntimeError(f"watchload failed: {result.stdout}{result.stderr}")
    return float(match.group(1)), float(match.group(2)), float(match.group(3))


def fmt_range(values: list[float], spec: str = ",.0f", unit: str = "") -> str:
    low, high = min(values), max(values)
    if len(values) == 1 or f"{low:{spec}}" == f"{high:{spec}}":
        return f"{low:{spec}}{unit}"
    return f"{low:{spec}}-{high:{spec}}{unit}"


def bench_deliveries(bin_dir: Path) -> dict[str, Any]:
    print(
        f"deliveries: {WATCHERS:,} watch connections, {EVENTS} objects created by POST "
        f"(4 in flight), client watchload, {ROUNDS} round(s)"
    )
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SERVERS}
    for round_ in range(ROUNDS):
        for name in SERVERS:
            with running(name, bin_dir) as (url, _pid):
                runs[name].append(watchload(bin_dir, url))
        go_rate, _, go_p99 = runs["go"][-1]
        cells = []
        for name in SERVERS:
            rate, p50, p99 = runs[name][-1]
            cells.append(
                f"{name} {rate:,.0f}/s ({rate / go_rate:.2f}x) p50 {p50:.0f} ms "
                f"p99 {p99:.0f} ms ({p99 / go_p99:.2f}x)"
            )
        print(f"  round {round_ + 1}: " + "; ".join(cells))
    header = ("deliveries/s", "x Go", "p50 ms", "p99 ms", "p99 x Go")
    print(f"  {'server':<16}{header[0]:>20}" + "".join(f"{h:>12}" for h in header[1:]))
    figures: dict[str, Any] = {}
    for name in SERVERS:
        rates = [r for r, _, _ in runs[name]]
        ratios = [r / g for (r, _, _), (g, _, _) in zip(runs[name], runs["go"], strict=True)]
        p99_ratios = [p / g for (_, _, p), (_, _, g) in zip(runs[name], runs["go"], strict=True)]
        p50s = [p for _, p, _ in runs[name]]
        p99s = [p for _, _, p in runs[name]]
        print(
            f"  {name:<16}{fmt_range(rates):>20}{fmt_range(ratios, '.2f'):>12}"
            f"{fmt_range(p50s):>12}{fmt_range(p99s):>12}{fmt_range(p99_ratios, '.2f'):>12}"
        )
        figures[name] = {
            "deliveries_per_second": rates,
            "ratio_to_go": ratios,
            "p50_ms": p50s,
            "p99_ms": p99s,
            "p99_ratio_to_go": p99_ratios,
        }
    print(
        "  targets: uvicorn >= 1.0x Go with p99 <= 2x Go's; hypercorn-trio >= 0.3x Go "
        f"(uvicorn: {min(figures['uvicorn']['ratio_to_go']):.2f}x at worst, "
        f"p99 {max(figures['uvicorn']['p99_ratio_to_go']):.2f}x; hypercorn-trio: "
        f"{min(figures['hypercorn-trio']['ratio_to_go']):.2f}x)"
    )
    return figures


# --- idle connections and write latency ----------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class _Sink(asyncio.Protocol):
    """A watch connection that reads and drops what arrives (cheap on the client)."""

    def __init__(self, opened: asyncio.Future[None]) -> None:
        self.opened = opened

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.opened.set_exception(RuntimeError(data[:200].decode("latin-1")))
            else:
                self.opened.set_result(None)


async def open_watches(url: str, count: int) -> list[asyncio.Transport]:
    """Open *count* watch connections and wait for their response headers."""
    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]
    request = f"GET {path}?watch=1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    for start in range(0, count, 500):
        pending: list[asyncio.Future[None]] = []
        for _ in range(min(500, count - start)):
            opened: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(lambda o=opened: _Sink(o), host, int(port))
            transport.write(request)
            transports.append(transport)
            pending.append(opened)
        await asyncio.gather(*pending)
    return transports


def watchers_child(url: str, count: int) -> None:
    """Child process: hold *count* watch connections open and read them until stdin closes."""

    async def main() -> None:
        transports = await open_watches(url, count)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for transport in transports:
            transport.close()

    asyncio.run(main())


@contextlib.contextmanager
def watch_connections(url: str, count: int) -> Iterator[None]:
    """Hold *count* watch connections to *url* open in a child process."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--watchers", url, str(count), *sys.argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the watch connections did not open")
        time.sleep(0.5)
        yield
    finally:
        child.stdin.close()
        child.wait(60)


def bench_idle(bin_dir: Path) -> dict[str, float]:
    print(f"idle watch connections: RSS per connection with {IDLE:,} open (target <= 16 KB)")
    figures: dict[str, float] = {}
    for name in SERVERS:
        with running(name, bin_dir) as (url, pid):
            http_get(url)  # warm up: the first request loads code
            before = rss_kb(pid)
            with watch_connections(url, IDLE):
                after = rss_kb(pid)
        per = (after - before) / IDLE
        figures[name] = per
        mb = f"{before / 1024:.0f} -> {after / 1024:.0f} MB"
        print(f"  {name:<16}{per:8.1f} KB per connection ({mb})")
    return figures


def http_get(url: str) -> None:
    host, port = url.split("/")[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/" + url.split("/", 3)[3])
    conn.getresponse().read()
    conn.close()


def write_latencies(url: str, prefix: str, pause: float) -> list[float]:
    """POST latencies (ms) of WRITES creates, *pause* seconds apart, on one connection."""
    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[float] = []
    for i in range(WRITES):
        body = f'{{"metadata":{{"name":"{prefix}{i}"}},"spec":{{"pad":"{"x" * 300}"}}}}'
        t0 = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - t0) * 1000)
        assert response.status == 201, response.status
        if pause:
            time.sleep(pause)
    conn.close()
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def bench_write_latency(bin_dir: Path) -> dict[str, Any]:
    print(
        f"write latency: {WRITES} POSTs on one connection, with no watcher and with "
        f"{WATCHERS:,} watch connections reading (target: p50 <= 1.5x none, writes 50 ms apart)"
    )
    figures: dict[str, Any] = {}
    for pause, label in ((0.05, "50 ms apart"), (0.0, "back to back")):
        with running("uvicorn", bin_dir) as (url, _pid):
            http_get(url)
            alone = write_latencies(url, "alone", pause)
            with watch_connections(url, WATCHERS):
                watched = write_latencies(url, "watched", pause)
        p50 = (statistics.median(alone), statistics.median(watched))
        p99 = (pct(alone, 0.99), pct(watched, 0.99))
        print(
            f"  uvicorn, {label:<13} none: p50 {p50[0]:.2f} ms p99 {p99[0]:.2f} ms; "
            f"{WATCHERS:,} watchers: p50 {p50[1]:.2f} ms p99 {p99[1]:.2f} ms "
            f"(p50 {p50[1] / p50[0]:.2f}x, p99 {p99[1] / p99[0]:.2f}x)"
        )
        figures[label] = {"p50_ms": list(p50), "p99_ms": list(p99)}
    return figures


# --- main -----------------------------------------------------------------------


def raise_file_limit() -> None:
    """Thousands of connections need more file descriptors than the usual soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    from _record import record

    bin_dir = go_tools()
    print(f"python {sys.version.split()[0]}; Go tools in {bin_dir}")
    deliveries = bench_deliveries(bin_dir)
    idle = bench_idle(bin_dir)
    latency = bench_write_latency(bin_dir)
    record(
        "server",
        {
            "watchers": WATCHERS,
            "events": EVENTS,
            "rounds": ROUNDS,
            "deliveries": deliveries,
            "idle_connections": IDLE,
            "idle_kb_per_connection": idle,
            "write_latency": latency,
        },
    )


if __name__ == "__main__":
    raise_file_limit()
    if "--serve" in sys.argv:
        at = sys.argv.index("--serve")
        name, port = sys.argv[at + 1], int(sys.argv[at + 2])
        serve_uvicorn(port) if name == "uvicorn" else serve_hypercorn_trio(port)
    elif "--watchers" in sys.argv:
        at = sys.argv.index("--watchers")
        watchers_child(sys.argv[at + 1], int(sys.argv[at + 2]))
    else:
        main()
