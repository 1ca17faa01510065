"""RedisBackend and open_redis_backend(): one Redis connection pool per process."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
from anyio.abc import TaskGroup
from typing_extensions import final

from ._client import CommandObserver, create_client
from ._lease import RedisLease
from ._log import RedisEventLog
from ._metadata import RedisMetadataStore
from ._stream import StreamClient
from ._watermark import Watermark

__all__ = ["RedisBackend", "open_redis_backend"]


@final
@attrs.define(eq=False)
class RedisBackend:
    """The Redis side of one replica: a client, a key prefix and the logs using them.

    Get one from [`open_redis_backend()`][k8swatch.redis.open_redis_backend];
    every replica that opens the same Redis with the same *prefix* shares the
    same resources, resourceVersion counter and leases.

    Attributes:
        client: The coredis client (``coredis.Redis``), for anything else you
            want to keep in the same Redis.
        prefix: The key prefix (a Redis Cluster hash tag, so all keys of one
            prefix live on one node).
        retention: Entries kept per stream in Redis (``XADD MAXLEN ~``).
        window: Entries each log mirrors in memory.
    """

    client: Any
    prefix: str
    retention: int
    window: int
    _task_group: TaskGroup = attrs.field(alias="task_group")
    _logs: dict[str, RedisEventLog] = attrs.field(
        init=False, factory=lambda: dict[str, RedisEventLog]()
    )
    # shared by the logs: one counter per prefix, so a loss one finds concerns all
    _mark: Watermark = attrs.field(init=False, factory=Watermark)

    def log_for(self, resource: str, *, group: str = "") -> RedisEventLog:
        """Return the event log of *resource* (a plural name) in *group*, starting it if new.

        The log's task runs until the log or the backend is closed; it starts
        following the stream in the background, and the log's operations wait
        for that (503 ServiceUnavailable when Redis stays unreachable). The
        same names return the same log until it is closed.
        """
        name = f"{resource}.{group}" if group else resource
        log = self._logs.get(name)
        if log is None or log.closed:
            stream = StreamClient(
                self.client, self.prefix, name, retention=self.retention, mark=self._mark
            )
            log = RedisEventLog(stream, window=self.window)
            self._logs[name] = log
            self._task_group.start_soon(log.run, name=f"k8swatch-redis-{name}")
        return log

    def metadata_store_for(self, resource: str, *, group: str = "") -> RedisMetadataStore:
        """Return the metadata store of *resource* (a plural name) in *group*.

        For a Coder storage's ``metadata_store=``: the labels, annotations,
        finalizers etc. of its objects, shared by every replica on this
        prefix and kept across restarts (as long as Redis keeps its data).
        """
        name = f"{resource}.{group}" if group else resource
        return RedisMetadataStore(self.client, "{" + self.prefix + "}:meta:" + name)

    def lease(self, name: str, *, ttl: float = 10.0) -> RedisLease:
        """Return the lease *name* (shared by every replica on this prefix)."""
        return RedisLease(self.client, "{" + self.prefix + "}:lease:" + name, ttl=ttl)


@asynccontextmanager
async def open_redis_backend(
    url: str,
    *,
    prefix: str = "k8swatch",
    retention: int = 10_000,
    window: int = 1000,
    observe_command: CommandObserver | None = None,
) -> AsyncGenerator[RedisBackend]:
    """Connect to Redis at *url* and yield a [`RedisBackend`][k8swatch.redis.RedisBackend].

    ```python
    async with open_redis_backend("redis://127.0.0.1:6379/0") as backend:
        log = backend.log_for("widgets", group="example.com")
        storage = MemoryStorage("example.com/v1", "Widget", log=log)
        ...
    ```

    Connecting is lazy: the backend opens even when Redis is down (operations
    then fail with 503 until it is back). On exit every reader and writer task
    of the backend is cancelled and the connections are closed.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
            or ``unix:///path/to/socket``.
        prefix: The key prefix shared by the replicas of one API.
        retention: Entries kept per stream in Redis (approximately: ``MAXLEN ~``);
            a watch from an RV older than that gets 410 Expired.
        window: Entries each log mirrors in memory for local watchers.
        observe_command: Called after every non-blocking Redis command with
            its name (``EVALSHA``, ``HGET``...), its duration in seconds and
            whether it succeeded: no I/O there, it runs on the command's path
            (``PrometheusMetrics.observe_redis_command`` of ``k8swatch.metrics``
            records it as ``k8swatch_redis_command_duration_seconds``).
    """
    if retention < 1:
        raise ValueError(f"retention must be >= 1, got {retention}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    async with (
        create_client(url, observe=observe_command) as client,
        anyio.create_task_group() as tg,
    ):
        backend = RedisBackend(client, prefix, retention, window, task_group=tg)
        try:
            yield backend
        finally:
            with anyio.CancelScope(shield=True):
                for log in backend._logs.values():
                    await log.aclose()
            tg.cancel_scope.cancel()
