"""TEMPORARY development shim for stop_aware_watch (removed once the foundation lands)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from k8swatch import Event, WatchBase


class _Aware(WatchBase[Any]):
    def __init__(self, inner: Any, timeout: float | None, done: Any) -> None:
        self.inner = inner
        self.timeout = timeout
        self.done = done

    async def __anext__(self) -> Event[Any]:
        return await self.inner.__anext__()

    async def batches(self) -> AsyncIterator[Sequence[Event[Any]]]:
        deadline = anyio.current_time() + (self.timeout if self.timeout is not None else 1e9)
        iterator = self.inner.batches().__aiter__()
        try:
            while True:
                if self.done is not None and self.done.is_set():
                    self.inner.stop()
                batch = None
                with anyio.move_on_after(min(0.05, max(0.0, deadline - anyio.current_time()))):
                    try:
                        batch = await iterator.__anext__()
                    except StopAsyncIteration:
                        return
                if batch is None:
                    if anyio.current_time() >= deadline:
                        self.inner.stop()
                    continue
                yield batch
        finally:
            await iterator.aclose()

    def stop(self) -> None:
        self.inner.stop()

    @property
    def stopped(self) -> bool:
        return bool(self.inner.stopped)


def stop_aware_watch(watch: Any, *, timeout: float | None = None, done: Any = None) -> _Aware:
    return _Aware(watch, timeout, done)
