"""The Watch protocol, WatchBase and filter_watch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from k8swatch import Broadcaster, Event, EventType, Watch, WatchBase, filter_watch

ADDED = EventType.ADDED


class ListWatch(WatchBase[int]):
    """A minimal third-party watch over a list (no private fast path)."""

    def __init__(self, items: Sequence[int]) -> None:
        self.items = list(items)
        self._stopped = False

    async def __anext__(self) -> Event[int]:
        await anyio.lowlevel.checkpoint()
        if self._stopped or not self.items:
            self._stopped = True
            raise StopAsyncIteration
        return Event(ADDED, self.items.pop(0))

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped


def odd_times_ten(event: Event[Any]) -> Event[Any] | None:
    if event.object % 2 == 0:
        return None
    return Event(EventType.MODIFIED, event.object * 10)


async def test_watch_base_defaults() -> None:
    watch = ListWatch([1, 2])
    assert isinstance(watch, Watch)
    assert watch.__aiter__() is watch
    batches = watch.batches()
    assert [list(b) async for b in batches] == [[Event(ADDED, 1)], [Event(ADDED, 2)]]
    await batches.aclose()  # type: ignore[attr-defined]
    async with ListWatch([3]) as other:
        assert [e.object async for e in other] == [3]
    assert other.stopped


def test_broadcaster_watch_satisfies_the_protocol() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch()
    assert isinstance(watch, Watch)
    assert isinstance(filter_watch(watch, odd_times_ten), Watch)
    assert "live" in repr(watch)
    watch.stop()
    assert "stopped" in repr(watch)


@pytest.mark.parametrize("fast", [True, False], ids=["broadcaster", "third-party"])
async def test_filter_drops_and_transforms(fast: bool) -> None:
    items = list(range(8))
    if fast:
        broadcaster: Broadcaster[int] = Broadcaster()
        upstream: Watch[int] = broadcaster.watch()
        for i in items:
            broadcaster.action_or_drop(ADDED, i)
        broadcaster.shutdown()
    else:
        upstream = ListWatch(items)
    filtered = filter_watch(upstream, odd_times_ten)
    assert "filter_watch" in repr(filtered)
    with anyio.fail_after(10):
        events = [event async for event in filtered]
    assert events == [Event(EventType.MODIFIED, i * 10) for i in (1, 3, 5, 7)]
    assert filtered.stopped


@pytest.mark.parametrize("fast", [True, False], ids=["broadcaster", "third-party"])
async def test_filter_batches_skip_empty_batches(fast: bool) -> None:
    if fast:
        broadcaster: Broadcaster[int] = Broadcaster()
        upstream: Watch[int] = broadcaster.watch()
        for i in (0, 2, 4, 5, 6, 7):
            broadcaster.action_or_drop(ADDED, i)
        broadcaster.shutdown()
        expected = [[50, 70]]
    else:
        upstream = ListWatch([0, 2, 4, 5, 6, 7])
        expected = [[50], [70]]
    batches = filter_watch(upstream, odd_times_ten).batches()
    with anyio.fail_after(10):
        got = [[e.object for e in batch] async for batch in batches]
    assert got == expected
    await batches.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("fast", [True, False], ids=["broadcaster", "third-party"])
async def test_filter_stop_stops_upstream(fast: bool) -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    upstream: Watch[int] = broadcaster.watch() if fast else ListWatch([1, 2, 3])
    filtered = filter_watch(upstream, odd_times_ten)
    filtered.stop()
    filtered.stop()
    assert upstream.stopped
    assert filtered.stopped
    with anyio.fail_after(10):
        assert [event async for event in filtered] == []
    assert broadcaster.statistics().watchers == 0


async def test_filter_wakes_for_matching_events_only() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    filtered = filter_watch(broadcaster.watch(), odd_times_ten)
    got: list[int] = []

    async def consume() -> None:
        async for event in filtered:
            got.append(event.object)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        for i in range(6):
            await broadcaster.action(ADDED, i)
        await anyio.wait_all_tasks_blocked()
        assert got == [10, 30, 50]
        filtered.stop()  # from another task: the consumer ends
    assert filtered.stopped


async def test_filter_errors_propagate() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch()

    def boom(event: Event[Any]) -> Event[Any] | None:
        raise ValueError("bad filter")

    filtered = filter_watch(watch, boom)
    await broadcaster.action(ADDED, 1)
    with pytest.raises(ValueError, match="bad filter"):
        await filtered.__anext__()


async def test_filters_compose() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()

    def keep_small(event: Event[Any]) -> Event[Any] | None:
        return event if event.object < 40 else None

    watch = filter_watch(filter_watch(broadcaster.watch(), odd_times_ten), keep_small)
    for i in range(8):
        await broadcaster.action(ADDED, i)
    broadcaster.shutdown()
    with anyio.fail_after(10):
        assert [e.object async for e in watch] == [10, 30]
