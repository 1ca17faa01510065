"""Conformance cases on ``sendInitialEvents`` and the defaulted watch-list."""

from __future__ import annotations

from typing import Any

import pytest

from k8swatch._events import EventType
from k8swatch._status import StatusError

from ._conformance_base import (
    INITIAL_EVENTS_END,
    ConformanceBase,
    assert_status,
    metadata_of,
    only_with,
    only_without,
    rv_of,
)

__all__ = ["InitialEventsConformance"]


class InitialEventsConformance(ConformanceBase, group=True):
    """Initial events: ``sendInitialEvents`` and the defaulted watch-list.

    Needs ``supports_initial_events``: the current state arrives as ``ADDED``,
    then the ``k8s.io/initial-events-end`` bookmark (only with
    ``allowWatchBookmarks``), then live events; a bare ``watch=true`` is
    defaulted to such a watch-list. Without ``supports_initial_events`` the group
    checks the documented 400 rejection of ``sendInitialEvents=true`` instead.

    Cases:

    * ``test_send_initial_events_sends_state_then_end_bookmark``:
      ``sendInitialEvents=true``: ADDED per object, the end bookmark, then live events.
    * ``test_initial_events_end_bookmark_needs_allow_watch_bookmarks``: Without
      ``allowWatchBookmarks`` the initial state comes without an end bookmark.
    * ``test_default_watch_sends_current_state``: A bare ``watch=true`` is defaulted to a
      watch-list: current state first.
    * ``test_send_initial_events_is_rejected``: Without initial events support,
      ``sendInitialEvents=true`` is a 400 BadRequest.
    """

    @only_with("supports_initial_events")
    async def test_send_initial_events_sends_state_then_end_bookmark(self, storage: Any) -> None:
        """``sendInitialEvents=true``: ADDED per object, the end bookmark, then live events."""
        for name in ("a", "b", "c"):
            await self.create(storage, name)
        watch = await self.watch(
            storage,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        )
        async with self._recorder(watch) as rec:
            events = await rec.wait_for(
                lambda evs: any(
                    metadata_of(e.object).get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
                    for e in evs
                ),
                timeout=self.timeout,
            )
            end = next(
                i
                for i, e in enumerate(events)
                if metadata_of(e.object).get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
            )
            assert all(e.type is EventType.ADDED for e in events[:end]), rec.describe()
            initial = self._own_events(events[:end])
            assert sorted((e.type.value, self._short(e.object)) for e in initial) == [
                ("ADDED", "a"),
                ("ADDED", "b"),
                ("ADDED", "c"),
            ]
            assert events[end].type is EventType.BOOKMARK
            marker_rv = int(rv_of(events[end].object))
            assert marker_rv >= max(int(rv_of(e.object)) for e in initial)
            await self.create(storage, "d")
            await rec.wait_for(
                lambda evs: ("ADDED", "d") in self._changes(list(evs)), timeout=self.timeout
            )
            assert self._changes(rec.events[end + 1 :]) == [("ADDED", "d")]
            ends = [
                e
                for e in rec.events
                if metadata_of(e.object).get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
            ]
            assert len(ends) == 1

    @only_with("supports_initial_events")
    async def test_initial_events_end_bookmark_needs_allow_watch_bookmarks(
        self, storage: Any
    ) -> None:
        """Without ``allowWatchBookmarks`` the initial state comes without an end bookmark."""
        await self.create(storage, "a")
        watch = await self.watch(
            storage, send_initial_events=True, resource_version_match="NotOlderThan"
        )
        async with self._recorder(watch) as rec:
            await self._wait_changes(rec, 1)
            await self.create(storage, "b")
            assert await self._wait_changes(rec, 2) == [("ADDED", "a"), ("ADDED", "b")]
            assert rec.of_type(EventType.BOOKMARK) == [], rec.describe()

    @only_with("supports_initial_events")
    async def test_default_watch_sends_current_state(self, storage: Any) -> None:
        """A bare ``watch=true`` is defaulted to a watch-list: current state first."""
        await self.create(storage, "a")
        await self.create(storage, "b")
        async with self._recorder(await self.watch(storage)) as rec:
            assert sorted(await self._wait_changes(rec, 2)) == [("ADDED", "a"), ("ADDED", "b")]
            await self.create(storage, "c")
            assert (await self._wait_changes(rec, 3))[2] == ("ADDED", "c")

    @only_without("supports_initial_events")
    async def test_send_initial_events_is_rejected(self, storage: Any) -> None:
        """Without initial events support, ``sendInitialEvents=true`` is a 400 BadRequest."""
        with pytest.raises(StatusError) as exc:
            await self.watch(
                storage, send_initial_events=True, resource_version_match="NotOlderThan"
            )
        assert_status(exc, 400, "BadRequest")
        with pytest.raises(StatusError) as exc:
            await self.watch(storage)  # defaulted to sendInitialEvents=true
        assert_status(exc, 400, "BadRequest")
