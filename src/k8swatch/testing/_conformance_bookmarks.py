"""Conformance cases on bookmarks: sent to idle watches that allow them only."""

from __future__ import annotations

from typing import Any

import anyio

from k8swatch._events import EventType

from ._conformance_base import ConformanceBase, only_with, rv_of

__all__ = ["BookmarkConformance"]


class BookmarkConformance(ConformanceBase, group=True):
    """Bookmarks: sent to idle watches that allow them, never to others.

    With ``supports_bookmarks``, an idle watch with ``allowWatchBookmarks``
    gets a bookmark of the right shape whose resourceVersion resumes without
    loss or repeat; without ``allowWatchBookmarks`` no bookmark is ever sent
    (checked for every storage).

    Cases:

    * ``test_bookmarks_when_allowed``: An idle watch with ``allowWatchBookmarks`` gets a
      bookmark with a resumable RV.
    * ``test_no_bookmarks_unless_allowed``: Without ``allowWatchBookmarks`` no BOOKMARK is
      ever sent.
    """

    @only_with("supports_bookmarks")
    async def test_bookmarks_when_allowed(self, storage: Any) -> None:
        """An idle watch with ``allowWatchBookmarks`` gets a bookmark with a resumable RV."""
        await self.create(storage, "a")
        watch = await self.live_watch(storage, allow_watch_bookmarks=True)
        async with self._recorder(watch) as rec:
            bookmark = await rec.wait_for_type(EventType.BOOKMARK, timeout=self.timeout)
        obj = bookmark.object
        assert set(obj) >= {"apiVersion", "kind", "metadata"}, obj
        assert rv_of(obj), obj
        assert "spec" not in obj, obj
        if self.supports_resume:
            await self.create(storage, "b")
            async with self._recorder(
                await self.watch(storage, resource_version=rv_of(obj))
            ) as rec2:
                assert await self._wait_changes(rec2, 1) == [("ADDED", "b")]
                await rec2.settle()
                assert len(self._changes(rec2.events)) == 1, rec2.describe()

    async def test_no_bookmarks_unless_allowed(self, storage: Any) -> None:
        """Without ``allowWatchBookmarks`` no BOOKMARK is ever sent."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            await self.create(storage, "a")
            await self._wait_changes(rec, 1)
            await anyio.sleep(self.bookmark_interval * 4)
            await self.create(storage, "b")
            await self._wait_changes(rec, 2)
            assert rec.of_type(EventType.BOOKMARK) == [], rec.describe()
