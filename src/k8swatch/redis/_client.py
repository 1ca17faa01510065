"""The coredis client the backend uses: no automatic retries, no leaked buffers."""

from __future__ import annotations

from typing import Any

import coredis
from coredis.connection import TCPConnection, UnixDomainSocketConnection
from coredis.pool import ConnectionPool
from coredis.retry import NoRetryPolicy

__all__ = ["create_client"]


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


def create_client(url: str, **options: Any) -> coredis.Redis[bytes]:
    """Return a coredis client for *url* (enter it with ``async with``).

    Commands are never retried automatically: a write whose reply was lost
    might have been applied, and re-sending it could apply it twice. Callers
    decide what to retry.
    """
    pool: Any = ConnectionPool.from_url(url, **options)
    if pool.connection_class is TCPConnection:
        pool.connection_class = _TCPConnection
    elif pool.connection_class is UnixDomainSocketConnection:
        pool.connection_class = _UnixConnection
    client: coredis.Redis[bytes] = coredis.Redis(connection_pool=pool, retry_policy=NoRetryPolicy())
    return client
