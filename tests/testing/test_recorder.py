"""EventRecorder: background recording, waits, helpers (asyncio and trio)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from k8swatch import Broadcaster, EventType
from k8swatch.testing import EventRecorder


def obj(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": str(rv)}}


async def test_records_in_order_and_helpers() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    async with EventRecorder(b.watch()) as rec:
        await b.action(EventType.ADDED, obj("a", 1))
        await b.action(EventType.MODIFIED, obj("a", 2))
        await b.action(EventType.BOOKMARK, {"metadata": {"resourceVersion": "2"}})
        await b.action(EventType.DELETED, obj("a", 3))
        events = await rec.wait_for(4)
        assert len(events) == 4
        assert len(rec) == 4
        assert rec.types() == ["ADDED", "MODIFIED", "BOOKMARK", "DELETED"]
        assert rec.types(bookmarks=False) == ["ADDED", "MODIFIED", "DELETED"]
        assert rec.names() == ["a", "a", "a"]
        assert rec.names(bookmarks=True) == ["a", "a", "None", "a"]
        assert rec.pairs() == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
        assert rec.resource_versions() == ["1", "2", "3"]
        assert rec.resource_versions(bookmarks=True) == ["1", "2", "2", "3"]
        assert [e.object["metadata"]["resourceVersion"] for e in rec.of_type("MODIFIED")] == ["2"]
        assert "MODIFIED a@2" in rec.describe()
        assert rec.describe().endswith("(open)")
        assert not rec.ended
    assert rec.watch.stopped
    assert rec.ended


async def test_wait_for_predicate_and_type() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    async with EventRecorder(b.watch()) as rec:
        async with anyio.create_task_group() as tg:

            async def write() -> None:
                for i in range(5):
                    await b.action(EventType.ADDED, obj(f"o{i}", i))
                    await anyio.lowlevel.checkpoint()
                await b.action(EventType.DELETED, obj("o1", 6))

            tg.start_soon(write)
            events = await rec.wait_for(lambda evs: any(e.type is EventType.DELETED for e in evs))
        assert events[-1].type is EventType.DELETED
        first = await rec.wait_for_type("ADDED")
        second = await rec.wait_for_type(EventType.ADDED)
        assert [first.object["metadata"]["name"], second.object["metadata"]["name"]] == [
            "o0",
            "o1",
        ]
        deleted = await rec.wait_for_type("DELETED")
        assert deleted.object["metadata"]["resourceVersion"] == "6"


async def test_wait_for_times_out_with_a_description() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    async with EventRecorder(b.watch()) as rec:
        await b.action(EventType.ADDED, obj("a", 1))
        with pytest.raises(TimeoutError, match=r"got \[ADDED a@1\] \(open\)"):
            await rec.wait_for(2, timeout=0.05)


async def test_wait_for_fails_when_the_watch_ends_first() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    async with EventRecorder(b.watch()) as rec:
        await b.action(EventType.ADDED, obj("a", 1))
        b.shutdown()
        with pytest.raises(RuntimeError, match="ended before"):
            await rec.wait_for(2)
        assert [e.type for e in await rec.wait_ended()] == [EventType.ADDED]
        assert rec.ended


async def test_wait_ended_times_out_on_an_open_watch() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    async with EventRecorder(b.watch()) as rec:
        with pytest.raises(TimeoutError, match="did not end"):
            await rec.wait_ended(timeout=0.05)
        rec.stop()
        rec.stop()
        assert await rec.wait_ended() == []


async def test_settle_sees_queued_events() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    async with EventRecorder(b.watch()) as rec:
        assert b.action_or_drop(EventType.ADDED, obj("a", 1))
        assert [e.type for e in await rec.settle()] == [EventType.ADDED]


async def test_settle_returns_although_a_task_never_blocks() -> None:
    # A task that is always runnable keeps wait_all_tasks_blocked() waiting for
    # ever (as a server tick in step with anyio's 0.1 s check can on asyncio).
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    spinning = True

    async def spin() -> None:
        while spinning:
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg, EventRecorder(b.watch()) as rec:
            tg.start_soon(spin)
            assert b.action_or_drop(EventType.ADDED, obj("a", 1))
            start = anyio.current_time()
            assert [e.type for e in await rec.settle(timeout=0.3)] == [EventType.ADDED]
            assert 0.3 <= anyio.current_time() - start < 5
            spinning = False


async def test_a_failing_watch_is_reported() -> None:
    class Failing:
        stopped = False

        def __aiter__(self) -> Failing:
            return self

        async def __anext__(self) -> Any:
            raise ValueError("boom")

        def stop(self) -> None:
            self.stopped = True

    rec: EventRecorder[Any] = EventRecorder(Failing())  # type: ignore[arg-type]
    async with rec:
        with pytest.raises(RuntimeError, match="boom"):
            await rec.wait_for(1)
        with pytest.raises(RuntimeError, match="boom"):
            await rec.wait_ended()


async def test_enter_twice_is_an_error() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    rec = EventRecorder(b.watch())
    async with rec:
        with pytest.raises(RuntimeError, match="only once"):
            await rec.__aenter__()


def test_construct_outside_an_event_loop() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    rec = EventRecorder(b.watch())
    assert rec.events == []
    assert not rec.ended
    rec.stop()
    assert rec.watch.stopped


async def test_waiting_needs_the_async_with_block() -> None:
    b: Broadcaster[dict[str, Any]] = Broadcaster()
    rec = EventRecorder(b.watch())
    with pytest.raises(RuntimeError, match="async with"):
        await rec.wait_for(1, timeout=1)
    rec.stop()
