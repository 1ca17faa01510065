"""The watch conformance suite against a MemoryStorage on the Redis Streams log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from k8swatch import MemoryStorage
from k8swatch.redis import open_redis_backend
from k8swatch.testing import WatchConformance

pytestmark = pytest.mark.redis


class TestRedisMemoryStorageConformance(WatchConformance):
    """A replica's storage on a real redis-server: every capability."""

    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix

    @asynccontextmanager
    async def make_storage(self) -> AsyncIterator[MemoryStorage]:
        async with open_redis_backend(
            self.redis_url, prefix=self.prefix, window=self.history_window
        ) as backend:
            log = backend.log_for("widgets", group="example.com")
            async with MemoryStorage(
                "example.com/v1",
                "Widget",
                log=log,
                window=self.history_window,
                bookmark_interval=self.bookmark_interval,
            ) as storage:
                yield storage
