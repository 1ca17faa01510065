"""Coder storage replicas on one real Redis, in front of one served FakeCoder.

``coder_replica`` is one server replica as ``k8swatch serve --redis-url`` builds it:
its own Redis client, the resource's event log in Redis (optionally its metadata store
too), its own watch cache and a follower reading the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage
from k8swatch.redis import open_redis_backend
from tests.coder.conftest import FakeCoderServer
from tests.coder.test_log_mode import following

NS = "control-plane"
GROUP = "aggregation.coder.com"
SEED = "acme.alice.dev-workspace"
"""The workspace the FakeCoder is seeded with."""

StorageT = TypeVar("StorageT", WorkspaceStorage, TemplateStorage)

_RESOURCES: dict[type[Any], str] = {
    WorkspaceStorage: "coderworkspaces",
    TemplateStorage: "codertemplates",
}


@asynccontextmanager
async def coder_replica(
    storage_type: type[StorageT],
    redis_url: str,
    prefix: str,
    coder: FakeCoderServer,
    *,
    window: int | None = None,
    shared_metadata: bool = False,
    **storage_options: Any,
) -> AsyncIterator[StorageT]:
    """Yield one replica's *storage_type* storage, following its log until the block ends.

    *window* is the Redis backend's watch window (its default when ``None``); with
    *shared_metadata* the objects' metadata is kept in Redis too, shared by the
    replicas; *storage_options* go to the storage as they are.
    """
    resource = _RESOURCES[storage_type]
    backend_options: dict[str, Any] = {} if window is None else {"window": window}
    provider = StaticClientProvider(coder.url, coder.token, NS)
    try:
        async with open_redis_backend(redis_url, prefix=prefix, **backend_options) as backend:
            if shared_metadata:
                storage_options["metadata_store"] = backend.metadata_store_for(
                    resource, group=GROUP
                )
            storage = storage_type(
                provider, log=backend.log_for(resource, group=GROUP), **storage_options
            )
            async with following(storage):
                yield storage
    finally:
        await provider.aclose()


def workspace_replica(
    redis_url: str, prefix: str, coder: FakeCoderServer, **options: Any
) -> AbstractAsyncContextManager[WorkspaceStorage]:
    """One replica's ``WorkspaceStorage``: ``coder_replica(WorkspaceStorage, ...)``."""
    return coder_replica(WorkspaceStorage, redis_url, prefix, coder, **options)


@asynccontextmanager
async def two_workspace_replicas(
    redis_url: str, prefix: str, coder: FakeCoderServer, **options: Any
) -> AsyncIterator[tuple[WorkspaceStorage, WorkspaceStorage]]:
    """Replicas A and B of ``workspace_replica``, on the same Redis and Coder."""
    async with (
        workspace_replica(redis_url, prefix, coder, **options) as a,
        workspace_replica(redis_url, prefix, coder, **options) as b,
    ):
        yield a, b
