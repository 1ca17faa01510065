"""Conformance cases on resuming from a resourceVersion, and on 410 Expired."""

from __future__ import annotations

from typing import Any

import pytest

from k8swatch._events import EventType
from k8swatch._status import StatusError

from ._conformance_base import ConformanceBase, assert_status, only_with, only_without, rv_of

__all__ = ["ResumeConformance"]


class ResumeConformance(ConformanceBase, group=True):
    """Resume: watching from a past resourceVersion, and 410 Expired.

    Needs ``supports_resume``: a watch from any resourceVersion in the history
    window replays exactly the events after it (no gap, no duplicate), one
    older than the window gets one ``ERROR`` 410 ``Expired`` and ends, and
    resourceVersions increase. Without ``supports_resume`` the group checks the
    documented 400 rejection of ``resourceVersionMatch=NotOlderThan`` instead.

    Cases:

    * ``test_watch_from_list_rv_sees_writes_made_before_the_watch``: A write between the
      list and the watch is delivered (no gap), once (no dup).
    * ``test_resume_from_older_rv_replays_exactly``: Resuming from the RV of any past event
      replays exactly the events after it.
    * ``test_explicit_resume_with_send_initial_events_false``: ``sendInitialEvents=false`` +
      ``NotOlderThan`` + RV resumes like a plain RV.
    * ``test_too_old_rv_gives_one_410_expired_then_ends``: An RV older than the history
      window: one ERROR 410 Expired, then the watch ends.
    * ``test_resource_versions_increase``: Live events carry strictly increasing integer
      resourceVersions.
    * ``test_resource_version_match_is_rejected``: Without resume support,
      ``sendInitialEvents=false`` + ``NotOlderThan`` is a 400.
    """

    @only_with("supports_resume")
    async def test_watch_from_list_rv_sees_writes_made_before_the_watch(self, storage: Any) -> None:
        """A write between the list and the watch is delivered (no gap), once (no dup)."""
        await self.create(storage, "old")
        rv = await self.list_rv(storage)
        await self.create(storage, "gap")
        async with self._recorder(await self.watch(storage, resource_version=rv)) as rec:
            await self.create(storage, "live")
            assert await self._wait_changes(rec, 2) == [("ADDED", "gap"), ("ADDED", "live")]
            await rec.settle()
            assert len(self._changes(rec.events)) == 2, rec.describe()

    @only_with("supports_resume")
    async def test_resume_from_older_rv_replays_exactly(self, storage: Any) -> None:
        """Resuming from the RV of any past event replays exactly the events after it."""
        async with self._recorder(await self.live_watch(storage)) as first:
            obj = await self.create(storage, "r")
            for _ in range(3):
                obj = await self.update(storage, obj)
            await self.create(storage, "s")
            await self.delete(storage, obj)
            await self._wait_changes(first, 6)
        original = self._own_events(first.events)
        for k in (0, 2, 4):
            rv = rv_of(original[k].object)
            async with self._recorder(await self.watch(storage, resource_version=rv)) as rec:
                expected = [
                    (e.type.value, self._short(e.object), rv_of(e.object))
                    for e in original[k + 1 :]
                ]
                await self._wait_changes(rec, len(expected))
                await rec.settle()
                got = [
                    (e.type.value, self._short(e.object), rv_of(e.object))
                    for e in self._own_events(rec.events)
                ]
                assert got == expected

    @only_with("supports_resume")
    async def test_explicit_resume_with_send_initial_events_false(self, storage: Any) -> None:
        """``sendInitialEvents=false`` + ``NotOlderThan`` + RV resumes like a plain RV."""
        await self.create(storage, "old")
        rv = await self.list_rv(storage)
        await self.create(storage, "a")
        watch = await self.watch(
            storage,
            resource_version=rv,
            send_initial_events=False,
            resource_version_match="NotOlderThan",
        )
        async with self._recorder(watch) as rec:
            assert await self._wait_changes(rec, 1) == [("ADDED", "a")]

    @only_with("supports_resume")
    async def test_too_old_rv_gives_one_410_expired_then_ends(self, storage: Any) -> None:
        """An RV older than the history window: one ERROR 410 Expired, then the watch ends."""
        first = await self.create(storage, "old")
        obj = first
        for _ in range(self.history_window * 2 + 5):
            obj = await self.update(storage, obj)
        try:
            watch = await self.watch(storage, resource_version=rv_of(first))
        except StatusError as exc:  # pragma: no cover - reported as a failure below
            pytest.fail(f"a too-old RV must be an ERROR event in the stream, not {exc!r}")
        async with self._recorder(watch) as rec:
            events = await rec.wait_ended(timeout=self.timeout)
        assert [e.type for e in events] == [EventType.ERROR], rec.describe()
        status = events[0].object
        assert status.get("kind") == "Status"
        assert (status.get("code"), status.get("reason")) == (410, "Expired"), status
        assert str(status.get("message", "")).startswith("too old resource version:"), status

    @only_with("supports_resume")
    async def test_resource_versions_increase(self, storage: Any) -> None:
        """Live events carry strictly increasing integer resourceVersions."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            obj = await self.create(storage, "a")
            await self.create(storage, "b")
            obj = await self.update(storage, obj)
            await self.delete(storage, obj)
            await self._wait_changes(rec, 4)
        rvs = [int(rv) for rv in rec.resource_versions()]
        assert rvs == sorted(rvs), rvs
        assert len(set(rvs)) == len(rvs), rvs

    @only_without("supports_resume")
    async def test_resource_version_match_is_rejected(self, storage: Any) -> None:
        """Without resume support, ``sendInitialEvents=false`` + ``NotOlderThan`` is a 400."""
        rv = await self.list_rv(storage)
        with pytest.raises(StatusError) as exc:
            await self.watch(
                storage,
                resource_version=rv,
                send_initial_events=False,
                resource_version_match="NotOlderThan",
            )
        assert_status(exc, 400, "BadRequest")
