"""Serve an ASGI app on 127.0.0.1 from a background thread (uvicorn or hypercorn+trio).

Synchronous clients such as kubectl or the ``kubernetes`` package need a real
socket; [`serve_app`][k8swatch.testing.serve_app] runs the server in its own
thread with its own event loop (through an anyio blocking portal) and yields
the base URL.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Literal, cast

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["SERVERS", "serve_app"]

ServerName = Literal["uvicorn", "hypercorn-trio"]
SERVERS: tuple[ServerName, ...] = ("uvicorn", "hypercorn-trio")
"""The servers [`serve_app`][k8swatch.testing.serve_app] can run."""


def _bound_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def _wait_until_listening(host: str, port: int, deadline: float, failed: Any) -> None:
    while True:
        if failed():
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect((host, port))
            except OSError:
                pass
            else:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not start listening on {host}:{port}")
        time.sleep(0.02)


async def _aclose_app(app: Any) -> None:
    closer = getattr(app, "aclose", None)
    if closer is not None:
        await closer()


@contextlib.contextmanager
def _serve_uvicorn(app: Any, host: str, timeout: float) -> Generator[str, None, None]:
    import uvicorn

    sock = _bound_socket(host)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    server = uvicorn.Server(config)
    with start_blocking_portal("asyncio") as portal:
        future = portal.start_task_soon(server.serve, [sock])
        deadline = time.monotonic() + timeout
        while not server.started:
            if future.done():
                future.result()
                raise RuntimeError("uvicorn stopped before it started")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.01)
        try:
            yield f"http://{host}:{port}"
        finally:
            with contextlib.suppress(Exception):
                portal.call(_aclose_app, app)
            server.should_exit = True
            future.result(timeout=timeout)
            sock.close()


async def _make_event() -> anyio.Event:
    return anyio.Event()


@contextlib.contextmanager
def _serve_hypercorn(app: Any, host: str, timeout: float) -> Generator[str, None, None]:
    import hypercorn.trio
    from hypercorn.config import Config

    serve = cast(
        "Callable[..., Awaitable[None]]",
        hypercorn.trio.serve,  # pyright: ignore[reportUnknownMemberType]
    )

    sock = _bound_socket(host)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 5.0
    config.accesslog = None
    config.errorlog = None
    portal: BlockingPortal
    with start_blocking_portal("trio") as portal:
        stop = portal.call(_make_event)
        future = portal.start_task_soon(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait)
        )
        _wait_until_listening(host, port, time.monotonic() + timeout, future.done)
        if future.done():
            future.result()
            raise RuntimeError("hypercorn stopped before it started")
        try:
            yield f"http://{host}:{port}"
        finally:
            with contextlib.suppress(Exception):
                portal.call(_aclose_app, app)
            portal.call(stop.set)
            future.result(timeout=timeout)


@contextlib.contextmanager
def serve_app(
    app: Any,
    *,
    server: ServerName = "uvicorn",
    host: str = "127.0.0.1",
    timeout: float = 30.0,
) -> Generator[str, None, None]:
    """Run *app* on *host* with a free port in a background thread; yield the base URL.

    Args:
        app: An ASGI application.
        server: ``"uvicorn"`` (asyncio) or ``"hypercorn-trio"`` (hypercorn's
            trio worker). Needs the respective package installed.
        host: The address to listen on.
        timeout: Seconds allowed for start-up and shut-down.

    On exit the app's ``aclose()`` (if it has one) is called first, which ends
    open watch streams, then the server shuts down gracefully.
    """
    if server == "uvicorn":
        with _serve_uvicorn(app, host, timeout) as url:
            yield url
    elif server == "hypercorn-trio":
        with _serve_hypercorn(app, host, timeout) as url:
            yield url
    else:
        raise ValueError(f"unknown server {server!r}; choose one of {SERVERS}")
