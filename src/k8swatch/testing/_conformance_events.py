"""Conformance cases on events: what a live watch delivers, in order, once each."""

from __future__ import annotations

from typing import Any, cast

import anyio

from k8swatch._json import JSONObject

from ._conformance_base import ConformanceBase, rv_of

__all__ = ["EventConformance"]


class EventConformance(ConformanceBase, group=True):
    """Events: what a live watch delivers, in order, once each.

    A watch started from a list's resourceVersion gets ADDED, MODIFIED and
    DELETED with the right objects and resourceVersions, exactly the writes made
    after the list, and every event of concurrent writers. No capability needed.

    Cases:

    * ``test_create_update_delete_events_in_order``: Create, update, delete give ADDED,
      MODIFIED, DELETED with the right objects.
    * ``test_watch_from_list_rv_sees_exactly_later_writes``: Watching from a list's
      resourceVersion delivers every later write once.
    * ``test_concurrent_writers_lose_no_events``: Events of writers in several tasks all
      arrive, each once.
    """

    async def test_create_update_delete_events_in_order(self, storage: Any) -> None:
        """Create, update, delete give ADDED, MODIFIED, DELETED with the right objects."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            created = await self.create(storage, "a")
            updated = await self.update(storage, created)
            deleted = await self.delete(storage, updated)
            assert await self._wait_changes(rec, 3) == [
                ("ADDED", "a"),
                ("MODIFIED", "a"),
                ("DELETED", "a"),
            ]
            events = self._own_events(rec.events)
            assert events[1].object.get("spec") == updated.get("spec")
            if not self.graceful_delete:  # else the last state is the marked one
                assert events[2].object.get("spec") == updated.get("spec")
            last = cast("JSONObject", deleted) if isinstance(deleted, dict) else {"kind": "Status"}
            if last.get("kind") != "Status" and not self.graceful_delete:
                # delete answers the last state (or a Status, as some resources do)
                assert last.get("spec") == updated.get("spec")
            assert rv_of(events[0].object) == rv_of(created)
            assert rv_of(events[1].object) == rv_of(updated)
            await rec.settle()
            assert len(self._changes(rec.events)) == 3, rec.describe()

    async def test_watch_from_list_rv_sees_exactly_later_writes(self, storage: Any) -> None:
        """Watching from a list's resourceVersion delivers every later write once."""
        await self.create(storage, "before")
        async with self._recorder(await self.live_watch(storage)) as rec:
            for i in range(5):
                await self.create(storage, f"x{i}")
            changes = await self._wait_changes(rec, 5)
            await rec.settle()
            assert self._changes(rec.events) == changes == [(("ADDED", f"x{i}")) for i in range(5)]

    async def test_concurrent_writers_lose_no_events(self, storage: Any) -> None:
        """Events of writers in several tasks all arrive, each once."""
        writers, per_writer = 4, 10
        async with self._recorder(await self.live_watch(storage)) as rec:

            async def write(w: int) -> None:
                for i in range(per_writer):
                    await self.create(storage, f"w{w}-{i}")

            async with anyio.create_task_group() as tg:
                for w in range(writers):
                    tg.start_soon(write, w)
            changes = await self._wait_changes(rec, writers * per_writer)
            await rec.settle()
            assert len(self._changes(rec.events)) == writers * per_writer
        expected = {("ADDED", f"w{w}-{i}") for w in range(writers) for i in range(per_writer)}
        assert set(changes) == expected
        for w in range(writers):  # each writer's own order is kept
            mine = [n for _, n in changes if n.startswith(f"w{w}-")]
            assert mine == [f"w{w}-{i}" for i in range(per_writer)]
