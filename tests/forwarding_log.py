"""ForwardingLog: an EventLog that hands every call to a MemoryEventLog.

Tests subclass it and override one or two methods to inject failures or
count calls; the rest of the protocol keeps working unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from k8swatch._eventlog import LogEntry, LogSnapshot, MemoryEventLog, Write


class ForwardingLog:
    """An `EventLog` forwarding to *inner*."""

    def __init__(self, inner: MemoryEventLog) -> None:
        self.inner = inner

    async def append(self, write: Write) -> LogEntry | None:
        return await self.inner.append(write)

    async def read_after(
        self, resource_version: int, *, limit: int = 1000, wait: bool = False
    ) -> Sequence[LogEntry]:
        return await self.inner.read_after(resource_version, limit=limit, wait=wait)

    async def oldest_resource_version(self) -> int:
        return await self.inner.oldest_resource_version()

    async def current_resource_version(self) -> int:
        return await self.inner.current_resource_version()

    async def snapshot(self) -> LogSnapshot:
        return await self.inner.snapshot()

    async def aclose(self) -> None:
        await self.inner.aclose()
