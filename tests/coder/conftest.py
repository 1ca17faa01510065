"""Fixtures for the Coder tests: a `FakeCoder` served over real HTTP on 127.0.0.1.

- ``fake_coder``: a seeded ``FakeCoder`` (instant builds, token ``test-session-token``
  as in coder-k8s's tests).  Override it in a test module to change the knobs.
- ``fake_coder_server``: serves ``fake_coder`` on a random port and yields a
  ``FakeCoderServer(url, token, fake)`` (a named tuple, so ``url, token, fake =
  fake_coder_server`` works).  The server runs in the test's own event loop: uvicorn
  on asyncio, hypercorn's trio worker on trio, so the fake's inspectors, out-of-band
  helpers and change feed can be used directly from the test.
- ``serve_fake_coder``: the async context manager behind it, for tests that need
  several fakes or custom ones: ``async with serve_fake_coder(FakeCoder(...)) as srv``.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import anyio
import pytest

from k8swatch.coder import StaticClientProvider
from k8swatch.coder._fake import FakeCoder

TEST_TOKEN = "test-session-token"
#: The Kubernetes namespace the storage tests serve Coder in (``provider``).
CODER_NAMESPACE = "control-plane"


class FakeCoderServer(NamedTuple):
    """A served fake: base URL (no trailing slash), session token, the fake itself."""

    url: str
    token: str
    fake: FakeCoder


ServeFakeCoder = Callable[[FakeCoder], contextlib.AbstractAsyncContextManager[FakeCoderServer]]


@contextlib.asynccontextmanager
async def _serve_asyncio(app: Any) -> AsyncIterator[str]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        try:
            with anyio.fail_after(30):
                while not server.started:  # noqa: ASYNC110 - uvicorn has no startup event
                    await anyio.sleep(0.005)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


@contextlib.asynccontextmanager
async def _serve_trio(app: Any) -> AsyncIterator[str]:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 2
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=shutdown.wait)
        )
        try:
            yield binds[0]
        finally:
            shutdown.set()


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, backend: str) -> AsyncIterator[str]:
    """Serve an ASGI *app* on 127.0.0.1:<random port> in the current event loop."""
    serve = _serve_trio if backend == "trio" else _serve_asyncio
    async with serve(app) as url:
        yield url


@pytest.fixture
def fake_coder() -> FakeCoder:
    """A seeded fake Coder with instant builds and token ``test-session-token``."""
    return FakeCoder(token=TEST_TOKEN)


@pytest.fixture
def serve_fake_coder(
    anyio_backend_name: str,
) -> ServeFakeCoder:
    """Return ``serve(fake)``: an async context manager serving *fake* over HTTP."""

    @contextlib.asynccontextmanager
    async def serve(fake: FakeCoder) -> AsyncIterator[FakeCoderServer]:
        async with serve_asgi(fake, anyio_backend_name) as url:
            try:
                yield FakeCoderServer(url, fake.token, fake)
            finally:
                fake.close()  # ends open watch streams so the server can stop

    return serve


@pytest.fixture
async def fake_coder_server(
    fake_coder: FakeCoder,
    serve_fake_coder: ServeFakeCoder,
) -> AsyncIterator[FakeCoderServer]:
    """``fake_coder`` served on 127.0.0.1:<random port>: ``(url, token, fake)``."""
    async with serve_fake_coder(fake_coder) as server:
        yield server


@pytest.fixture
async def provider(fake_coder_server: FakeCoderServer) -> AsyncIterator[StaticClientProvider]:
    """A client provider for ``fake_coder_server``, serving namespace ``control-plane``."""
    provider = StaticClientProvider(fake_coder_server.url, fake_coder_server.token, CODER_NAMESPACE)
    yield provider
    await provider.aclose()


@pytest.fixture
def fake(fake_coder_server: FakeCoderServer) -> FakeCoder:
    """The fake Coder behind ``fake_coder_server`` (to seed it or count its requests)."""
    return fake_coder_server.fake
