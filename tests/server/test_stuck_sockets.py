"""Stuck and slow clients on real sockets: watches that never read, half-sent requests.

* ``create_app(send_timeout=...)`` under uvicorn and hypercorn's trio worker
  (``k8swatch.testing.serve_app``): a watch whose client never reads is ended
  and its slot freed.
* ``k8swatch serve``'s uvicorn protocol (``k8swatch._cli_uvicorn``): the
  connection of such a watch is reset and its file descriptor freed; request
  heads and bodies that do not arrive in time close the connection; idle
  kept-alive connections are left to the keep-alive timeout.
* ``k8swatch serve`` itself: 500 half-sent requests are closed after
  ``--header-timeout``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import serve_app

pytest.importorskip("uvicorn")

from k8swatch._cli_uvicorn import ServeTimeouts, build_server

NS = "/apis/example.com/v1/namespaces/default/widgets"


def make_app(send_timeout: float | None = 0.5) -> App:
    storage = MemoryStorage("example.com/v1", "Widget")
    return create_app(
        [ResourceSpec("example.com", "v1", "widgets", "Widget", storage)],
        send_timeout=send_timeout,
        max_body_bytes=3 * 1024 * 1024,
    )


def address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


def request(url: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on a new connection; (status, body)."""
    with socket.create_connection(address(url), timeout=10) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one response with a Content-Length from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def stuck_watchers(url: str, count: int) -> list[socket.socket]:
    """Watch connections with a tiny receive buffer that never read."""
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(address(url))
        sock.sendall(f"GET {NS}?watch=1 HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        socks.append(sock)
    return socks


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll *condition*; return how long it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def fill(url: str, app: App, size: int, writes: int) -> None:
    """Write *writes* objects of *size* bytes: more than the watchers' sockets hold."""
    for i in range(writes):
        body = json.dumps({"metadata": {"name": f"big-{i}"}, "spec": {"x": "x" * size}})
        status, _ = request(url, "POST", NS, body.encode())
        assert status == 201
        if not app.active_watches:
            return


def ended_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    """Read what the server sent; True once it closed or reset the connection."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


# -- create_app's bound, under plain uvicorn and hypercorn's trio worker ---------


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn-trio"])
def test_a_watch_that_never_reads_is_ended(server: Any) -> None:
    app = make_app(send_timeout=0.5)
    with serve_app(app, server=server) as url:
        socks = stuck_watchers(url, 3)
        wait_until(lambda: app.active_watches == 3, 10, "the watches")
        # 1 MiB objects: a few fill whatever the kernel buffers for these sockets.
        fill(url, app, 1 << 20, writes=40)
        wait_until(lambda: app.active_watches == 0, 10, "the stuck watches to end")
        # The app still serves.
        assert request(url, "GET", NS)[0] == 200
        for sock in socks:
            sock.close()


# -- k8swatch serve's uvicorn protocol --------------------------------------------


LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


@pytest.fixture(params=LOOPS)
def loop(request: pytest.FixtureRequest) -> str:
    """The event loop under ``k8swatch serve``'s uvicorn: asyncio's, and uvloop (serve's)."""
    return str(request.param)


@contextlib.contextmanager
def glued(app: App, timeouts: ServeTimeouts, loop: str) -> Iterator[tuple[str, Any]]:
    """*app* under ``k8swatch serve``'s uvicorn server, in a thread; (url, server)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = build_server(app, log_level="warning", timeouts=timeouts)
    options = {"use_uvloop": loop == "uvloop"}
    with start_blocking_portal("asyncio", backend_options=options) as portal:
        future = portal.start_task_soon(server.serve, [sock])
        wait_until(lambda: bool(server.started) or future.done(), 30, "uvicorn to start")
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", server
        finally:
            portal.call(app.aclose)
            server.should_exit = True
            future.result(timeout=30)
            sock.close()


def connections(server: Any) -> int:
    return len(server.server_state.connections)


def test_serve_resets_the_connection_of_a_watch_that_never_reads(
    loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    # As k8swatch serve: the app has no bound of its own; the connection's ends the stream.
    caplog.set_level(logging.INFO, "k8swatch.server")
    app = make_app(send_timeout=None)
    with glued(app, ServeTimeouts(send=1.0), loop) as (url, server):
        socks = stuck_watchers(url, 5)
        wait_until(lambda: app.active_watches == 5, 10, "the watches")
        assert connections(server) == 5
        # 64 KiB objects: TCP_NOTSENT_LOWAT keeps the server's kernel buffer small,
        # so about ten of them fill it.
        fill(url, app, 64 * 1024, writes=200)
        wait_until(lambda: app.active_watches == 0, 10, "the stuck watches to end")
        assert "ending a watch stream" not in caplog.text  # the reset ended it, as a disconnect
        wait_until(lambda: connections(server) == 0, 5, "the connections to close")
        assert all(ended_by_server(sock) for sock in socks)
        for sock in socks:
            sock.close()


def test_serve_leaves_a_slow_reader_alone(loop: str) -> None:
    # A 1 MiB list read 16 KiB every 50 ms takes about 3 s, six times the bound:
    # the client is slow, not stuck, and gets all of it.
    app = make_app(send_timeout=0.5)
    with glued(app, ServeTimeouts(send=0.5), loop) as (url, _):
        body = json.dumps({"metadata": {"name": "big"}, "spec": {"x": "x" * (1 << 20)}})
        assert request(url, "POST", NS, body.encode())[0] == 201
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(address(url))
        sock.sendall(f"GET {NS} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(16 * 1024):
            data += chunk
            time.sleep(0.05)
        sock.close()
        head, _, listed = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert json.loads(listed)["items"][0]["spec"]["x"] == "x" * (1 << 20)


def test_serve_closes_half_sent_requests_after_the_header_timeout(loop: str) -> None:
    app = make_app()
    with glued(app, ServeTimeouts(header=0.5), loop) as (url, server):
        silent = socket.create_connection(address(url))
        partial = []
        for _ in range(20):
            sock = socket.create_connection(address(url))
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: test\r\n")  # no blank line
            partial.append(sock)
        time.sleep(0.2)
        assert connections(server) == 21
        wait_until(lambda: connections(server) == 0, 5, "the half-sent requests to be closed")
        for sock in partial:
            sock.settimeout(5)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 ")
            status = json.loads(body)
            assert status["kind"] == "Status"
            assert status["code"] == 408
            assert status["message"] == "the request header was not received within 0.5s"
            sock.close()
        silent.settimeout(5)
        assert silent.recv(65536) == b""  # closed without a word: it said nothing
        silent.close()


@pytest.mark.parametrize(
    "request_bytes",
    [b"\x00\x01garbage\r\n\r\n", b"GET /version HTTP/1.1\r\nHost test\r\n\r\n"],
)
def test_serve_answers_a_request_the_parser_refuses_with_a_status(
    loop: str, request_bytes: bytes
) -> None:
    app = make_app()
    with glued(app, ServeTimeouts(), loop) as (url, _server):
        sock = socket.create_connection(address(url))
        sock.settimeout(5)
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"content-type: application/json" in head.lower()
    status = json.loads(body)
    assert status["kind"] == "Status"
    assert (status["code"], status["reason"]) == (400, "BadRequest")


def test_serve_leaves_idle_kept_alive_connections_to_the_keep_alive_timeout(loop: str) -> None:
    app = make_app()
    with glued(app, ServeTimeouts(header=0.3, keep_alive=5), loop) as (url, server):
        sock = socket.create_connection(address(url), timeout=5)
        for _ in range(2):
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: test\r\n\r\n")
            assert read_response(sock)[0] == 200
            time.sleep(0.8)  # idle for longer than the header timeout
        assert connections(server) == 1
        sock.close()


def test_serve_resets_a_request_whose_body_does_not_arrive(loop: str) -> None:
    app = make_app()
    with glued(app, ServeTimeouts(read=0.5), loop) as (url, server):
        with socket.create_connection(address(url), timeout=5) as sock:
            body = json.dumps({"metadata": {"name": "slow"}}).encode()
            sock.sendall(
                f"POST {NS} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:5]
            )
            assert ended_by_server(sock)
        wait_until(lambda: connections(server) == 0, 5, "the connection to close")
        status, listed = request(url, "GET", NS)
        assert status == 200
        assert json.loads(listed)["items"] == []


# -- k8swatch serve --------------------------------------------------------------


def test_k8swatch_serve_closes_500_half_sent_requests(tmp_path: Any) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "k8swatch.cli",
            "serve",
            "--port",
            "0",
            "--header-timeout",
            "1",
            "--kubeconfig",
            str(tmp_path / "kubeconfig"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if line.startswith("URL: "):
                url = line.split()[1]
                break
        assert url, "k8swatch serve did not print its URL"
        socks = []
        for _ in range(500):
            sock = socket.create_connection(address(url))
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: test\r\n")
            socks.append(sock)
        start = time.monotonic()
        closed = 0
        for sock in socks:
            sock.settimeout(max(0.1, start + 10 - time.monotonic()))
            try:
                while sock.recv(65536):
                    pass
                closed += 1
            except (TimeoutError, ConnectionResetError):
                pass
            sock.close()
        assert closed == 500
        assert time.monotonic() - start < 10
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
