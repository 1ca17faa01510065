"""The coredis client the backend uses: no automatic retries, no leaked buffers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import coredis
from coredis.connection import TCPConnection, UnixDomainSocketConnection
from coredis.pool import ConnectionPool
from coredis.retry import NoRetryPolicy

__all__ = ["CommandObserver", "create_client"]

CommandObserver = Callable[[str, float, bool], None]
"""Called after each non-blocking Redis command: (name, seconds, succeeded)."""


def _close_buffers(conn: Any) -> None:
    # coredis creates a connection's memory streams in __init__ and closes them
    # only once connected; close them when connecting fails, or each failed
    # attempt (Redis down) leaks them and the GC warns (ResourceWarning).
    for name in (
        "_write_buffer_in",
        "_write_buffer_out",
        "_push_message_buffer_in",
        "_push_message_buffer_out",
        "_streamed_message_buffer_in",
        "_streamed_message_buffer_out",
    ):
        stream = getattr(conn, name, None)
        if stream is not None:
            stream.close()


class _TCPConnection(TCPConnection):
    async def _connect(self) -> Any:
        try:
            return await super()._connect()
        except BaseException:
            _close_buffers(self)
            raise


class _UnixConnection(UnixDomainSocketConnection):
    async def _connect(self) -> Any:
        try:
            return await super()._connect()
        except BaseException:
            _close_buffers(self)
            raise


class _ObservedRedis(coredis.Redis):  # type: ignore[type-arg,misc,unused-ignore]
    """A client that times each command for a `CommandObserver`.

    Blocking commands (``XREAD BLOCK``) wait for data by design; their time
    says nothing about Redis, so they are not reported.
    """

    observe: CommandObserver | None = None

    async def execute_command(self, command: Any) -> Any:
        observe = self.observe
        if observe is None or command.blocking:
            return await super().execute_command(command)
        started = time.perf_counter()
        ok = False
        try:
            result = await super().execute_command(command)
            ok = True
            return result
        finally:
            name = command.name
            observe(
                name.decode("ascii", "replace") if isinstance(name, bytes) else str(name),
                time.perf_counter() - started,
                ok,
            )


def create_client(
    url: str, *, observe: CommandObserver | None = None, **options: Any
) -> coredis.Redis[bytes]:
    """Return a coredis client for *url* (enter it with ``async with``).

    Commands are never retried automatically: a write whose reply was lost
    might have been applied, and re-sending it could apply it twice. Callers
    decide what to retry. *observe*, when given, is told the name, duration
    and outcome of every non-blocking command (metrics).
    """
    pool: Any = ConnectionPool.from_url(url, **options)
    if pool.connection_class is TCPConnection:
        pool.connection_class = _TCPConnection
    elif pool.connection_class is UnixDomainSocketConnection:
        pool.connection_class = _UnixConnection
    if observe is None:
        client: coredis.Redis[bytes] = coredis.Redis(
            connection_pool=pool, retry_policy=NoRetryPolicy()
        )
        return client
    observed: Any = _ObservedRedis(connection_pool=pool, retry_policy=NoRetryPolicy())
    observed.observe = observe
    result: coredis.Redis[bytes] = observed
    return result
