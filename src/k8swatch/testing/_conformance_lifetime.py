"""Conformance cases on how watches end: ``timeoutSeconds``, ``stop()``, ``aclose()``."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from k8swatch._events import EventType

from ._conformance_base import ConformanceBase

__all__ = ["LifetimeConformance"]


class LifetimeConformance(ConformanceBase, group=True):
    """Lifetime: how watches end (``timeoutSeconds``, ``stop()``, ``aclose()``).

    ``timeoutSeconds`` ends a watch without an ``ERROR``; ``stop()`` is
    idempotent, ends iteration and wakes a blocked reader; the storage's
    ``aclose()`` ends every open watch and is idempotent. No capability needed.

    Cases:

    * ``test_timeout_seconds_ends_cleanly``: ``timeoutSeconds`` ends the watch without an
      ERROR event.
    * ``test_stop_is_idempotent_and_ends_iteration``: ``stop()`` twice is fine, iteration
      ends, and writes afterwards still work.
    * ``test_stop_from_another_task_wakes_the_reader``: ``stop()`` from another task ends a
      reader blocked waiting for events.
    * ``test_aclose_ends_open_watches``: ``aclose()`` ends every open watch and is
      idempotent (server shutdown).
    """

    async def test_timeout_seconds_ends_cleanly(self, storage: Any) -> None:
        """``timeoutSeconds`` ends the watch without an ERROR event."""
        async with self._recorder(await self.live_watch(storage, timeout_seconds=1)) as rec:
            await self.create(storage, "a")
            events = await rec.wait_ended(timeout=self.timeout)
        assert [e for e in events if e.type is EventType.ERROR] == [], rec.describe()
        assert ("ADDED", "a") in self._changes(events)

    async def test_stop_is_idempotent_and_ends_iteration(self, storage: Any) -> None:
        """``stop()`` twice is fine, iteration ends, and writes afterwards still work."""
        watch = await self.live_watch(storage)
        async with self._recorder(watch) as rec:
            await self.create(storage, "a")
            await self._wait_changes(rec, 1)
            watch.stop()
            watch.stop()
            assert watch.stopped
            await rec.wait_ended(timeout=self.timeout)
        with anyio.fail_after(self.timeout):
            async for _event in watch:
                pytest.fail("a stopped watch delivered an event")  # pragma: no cover
        await self.create(storage, "b")
        watch.stop()

    async def test_stop_from_another_task_wakes_the_reader(self, storage: Any) -> None:
        """``stop()`` from another task ends a reader blocked waiting for events."""
        watch = await self.live_watch(storage)
        async with self._recorder(watch) as rec:
            await rec.settle()
            watch.stop()
            await rec.wait_ended(timeout=self.timeout)

    async def test_aclose_ends_open_watches(self, storage: Any) -> None:
        """``aclose()`` ends every open watch and is idempotent (server shutdown)."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            await self.create(storage, "a")
            await self._wait_changes(rec, 1)
            with anyio.fail_after(self.timeout):
                await storage.aclose()
            await rec.wait_ended(timeout=self.timeout)
            with anyio.fail_after(self.timeout):
                await storage.aclose()
