"""Broadcaster: ordering, policies for full watchers, shutdown, stop, batches."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings

from k8swatch import (
    Broadcaster,
    BroadcasterStatistics,
    Event,
    EventType,
    FullChannelBehavior,
    Status,
    Watch,
)

from .strategies_broadcaster import (
    ERROR as MODEL_ERROR,
)
from .strategies_broadcaster import (
    Act,
    Create,
    Model,
    ModelWatcher,
    Op,
    Read,
    Stop,
    policies,
    programs,
    queue_lengths,
)

ADDED = EventType.ADDED
TERMINATE = FullChannelBehavior.TERMINATE_IF_FULL
DROP = FullChannelBehavior.DROP_IF_FULL
WAIT = FullChannelBehavior.WAIT_IF_FULL


async def take(watch: Watch[Any], n: int) -> list[Any]:
    """Read *n* events (bounded in time) and return their objects."""
    out = []
    with anyio.fail_after(10):
        for _ in range(n):
            out.append((await watch.__anext__()).object)
    return out


async def drain(watch: Watch[Any]) -> list[Event[Any]]:
    with anyio.fail_after(10):
        return [event async for event in watch]


def is_expired(event: Event[Any]) -> bool:
    obj = event.object
    return (
        event.type is EventType.ERROR
        and isinstance(obj, Status)
        and obj.code == 410
        and obj.reason == "Expired"
    )


# --- construction ----------------------------------------------------------------


def test_defaults_and_validation() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    assert broadcaster.queue_length == 100
    assert broadcaster.full_channel_behavior is TERMINATE
    assert not broadcaster.closed
    assert "TERMINATE_IF_FULL" in repr(broadcaster)
    with pytest.raises(ValueError, match="queue_length must be >= 1"):
        Broadcaster(0)
    with pytest.raises(TypeError, match="full_channel_behavior"):
        Broadcaster(10, "drop")  # type: ignore[arg-type]


def test_statistics_snapshot() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=5)
    assert broadcaster.statistics() == BroadcasterStatistics(
        watchers=0,
        log_length=0,
        waiting_watchers=False,
        waiting_writers=False,
        dropped=0,
        terminated=0,
        closed=False,
    )
    watch = broadcaster.watch()
    assert broadcaster.action_or_drop(ADDED, 1)
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.log_length) == (1, 1)
    watch.stop()
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.log_length) == (0, 0)


def test_actions_without_watchers_are_accepted_and_forgotten() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=2)
    for i in range(10):
        assert broadcaster.action_or_drop(ADDED, i)
    assert broadcaster.statistics().log_length == 0


# --- ordering --------------------------------------------------------------------


async def test_watchers_see_events_after_their_creation_in_order() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    first = broadcaster.watch()
    await broadcaster.action(ADDED, 1)
    second = broadcaster.watch()
    await broadcaster.action(EventType.MODIFIED, 2)
    await broadcaster.action(EventType.DELETED, 3)
    assert await take(first, 3) == [1, 2, 3]
    assert await take(second, 2) == [2, 3]
    broadcaster.shutdown()
    events = await drain(first)
    assert events == []


async def test_events_are_shared_not_copied() -> None:
    broadcaster: Broadcaster[dict[str, int]] = Broadcaster()
    a, b = broadcaster.watch(), broadcaster.watch()
    obj = {"x": 1}
    await broadcaster.action(ADDED, obj)
    ea, eb = await a.__anext__(), await b.__anext__()
    assert ea is eb
    assert ea.object is obj
    assert ea == Event(ADDED, obj)


async def test_prefix_comes_first_and_does_not_count_toward_the_queue() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=2)
    watch = broadcaster.watch_with_prefix([Event(ADDED, -i) for i in range(5)])
    assert broadcaster.action_or_drop(ADDED, 1)
    assert broadcaster.action_or_drop(ADDED, 2)
    assert await take(watch, 7) == [0, -1, -2, -3, -4, 1, 2]
    # an empty prefix is a plain watch
    plain = broadcaster.watch_with_prefix([])
    await broadcaster.action(ADDED, 3)
    assert await take(plain, 1) == [3]
    assert await take(watch, 1) == [3]


async def test_consumer_task_wakes_for_a_burst() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    got: list[int] = []

    async def consume(watch: Watch[int]) -> None:
        async for event in watch:
            got.append(event.object)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, broadcaster.watch())
        await anyio.wait_all_tasks_blocked()
        assert broadcaster.statistics().waiting_watchers
        for i in range(10):
            broadcaster.action_or_drop(ADDED, i)
        await anyio.wait_all_tasks_blocked()
        assert got == list(range(10))
        broadcaster.shutdown()
    assert broadcaster.statistics().watchers == 0


async def test_tight_producer_loop_does_not_terminate_a_live_consumer() -> None:
    """action() yields when the slowest watcher is 3/4 full."""
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=8)
    got: list[int] = []

    async def consume(watch: Watch[int]) -> None:
        async for event in watch:
            got.append(event.object)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(consume, broadcaster.watch())
        await anyio.wait_all_tasks_blocked()
        for i in range(500):
            await broadcaster.action(ADDED, i)
        broadcaster.shutdown()
    assert broadcaster.statistics().terminated == 0
    assert sorted(got) == sorted(list(range(500)) * 3)


# --- TERMINATE_IF_FULL -----------------------------------------------------------


async def test_terminate_sends_one_410_after_what_was_queued() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=3)
    slow = broadcaster.watch()
    fast = broadcaster.watch()
    for i in range(6):
        assert broadcaster.action_or_drop(ADDED, i)
        assert await take(fast, 1) == [i]
    events = await drain(slow)
    assert [e.object for e in events[:3]] == [0, 1, 2]
    assert len(events) == 4
    assert is_expired(events[3])
    assert "more than 3 events behind" in events[3].object.message
    assert slow.stopped
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.terminated) == (1, 1)
    # a writer never waited and the other watcher keeps going
    await broadcaster.action(ADDED, 6)
    assert await take(fast, 1) == [6]


async def test_terminated_watcher_batches_end_with_the_error() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=2)
    slow = broadcaster.watch()
    for i in range(5):
        broadcaster.action_or_drop(ADDED, i)
    batches = [list(batch) async for batch in slow.batches()]
    assert len(batches) == 1
    assert [e.object for e in batches[0][:2]] == [0, 1]
    assert is_expired(batches[0][2])


async def test_terminate_keeps_the_prefix() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=1)
    watch = broadcaster.watch_with_prefix([Event(ADDED, -1)])
    for i in range(3):
        broadcaster.action_or_drop(ADDED, i)
    events = await drain(watch)
    assert [e.object for e in events[:2]] == [-1, 0]
    assert is_expired(events[2])


# --- DROP_IF_FULL ----------------------------------------------------------------


async def test_drop_skips_events_while_full_then_resumes() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=3, full_channel_behavior=DROP)
    slow = broadcaster.watch()
    fast = broadcaster.watch()
    for i in range(6):  # 3, 4, 5 do not fit
        broadcaster.action_or_drop(ADDED, i)
        assert await take(fast, 1) == [i]
    assert await take(slow, 1) == [0]  # one slot free again
    broadcaster.action_or_drop(ADDED, 6)
    broadcaster.action_or_drop(ADDED, 7)  # dropped: full again
    assert await take(slow, 3) == [1, 2, 6]
    assert broadcaster.statistics().dropped == 4
    broadcaster.shutdown()
    assert await drain(slow) == []
    assert [e.object for e in await drain(fast)] == [6, 7]


async def test_drop_applies_to_every_full_watcher() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=2, full_channel_behavior=DROP)
    watches = [broadcaster.watch() for _ in range(3)]
    for i in range(5):
        broadcaster.action_or_drop(ADDED, i)
    broadcaster.shutdown()
    for watch in watches:
        assert [e.object for e in await drain(watch)] == [0, 1]


async def test_drop_bounds_memory_of_a_stuck_watcher() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=4, full_channel_behavior=DROP)
    stuck = broadcaster.watch()
    for i in range(1000):
        broadcaster.action_or_drop(ADDED, i)
        assert broadcaster.statistics().log_length <= 4
    assert await take(stuck, 4) == [0, 1, 2, 3]
    assert broadcaster.statistics().dropped == 996


# --- WAIT_IF_FULL ----------------------------------------------------------------


async def test_wait_blocks_the_writer_until_the_slowest_reads() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=2, full_channel_behavior=WAIT)
    watch = broadcaster.watch()
    await broadcaster.action(ADDED, 0)
    await broadcaster.action(ADDED, 1)
    assert not broadcaster.action_or_drop(ADDED, -1)  # full: refused, not queued
    written = anyio.Event()

    async def write() -> None:
        await broadcaster.action(ADDED, 2)
        written.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        await anyio.wait_all_tasks_blocked()
        assert not written.is_set()
        assert broadcaster.statistics().waiting_writers
        assert await take(watch, 1) == [0]
        with anyio.fail_after(10):
            await written.wait()
    assert await take(watch, 2) == [1, 2]


async def test_wait_stopping_the_slow_watcher_unblocks_the_writer() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=1, full_channel_behavior=WAIT)
    slow = broadcaster.watch()
    other = broadcaster.watch()
    await broadcaster.action(ADDED, 0)
    assert await take(other, 1) == [0]

    async with anyio.create_task_group() as tg:
        tg.start_soon(broadcaster.action, ADDED, 1)
        await anyio.wait_all_tasks_blocked()
        slow.stop()
    assert await take(other, 1) == [1]
    assert await drain(slow) == []


async def test_wait_writer_is_refused_when_shut_down_while_waiting() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=1, full_channel_behavior=WAIT)
    watch = broadcaster.watch()
    await broadcaster.action(ADDED, 0)
    errors: list[BaseException] = []

    async def write() -> None:
        try:
            await broadcaster.action(ADDED, 1)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        await anyio.wait_all_tasks_blocked()
        broadcaster.shutdown()
    assert [str(e) for e in errors] == ["broadcaster already stopped"]
    assert [e.object for e in await drain(watch)] == [0]


async def test_wait_writer_can_be_cancelled() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=1, full_channel_behavior=WAIT)
    watch = broadcaster.watch()
    await broadcaster.action(ADDED, 0)
    with anyio.move_on_after(0.01) as scope:
        await broadcaster.action(ADDED, 1)
    assert scope.cancelled_caught
    broadcaster.shutdown()
    assert [e.object for e in await drain(watch)] == [0]


# --- shutdown --------------------------------------------------------------------


async def test_shutdown_drains_then_ends_every_watch() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watches = [broadcaster.watch() for _ in range(3)]
    ended: list[list[int]] = []

    async def consume(watch: Watch[int]) -> None:
        ended.append([event.object async for event in watch])

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, watches[0])
        await anyio.wait_all_tasks_blocked()
        for i in range(3):
            await broadcaster.action(ADDED, i)
        broadcaster.shutdown()
        broadcaster.shutdown()  # idempotent
    assert ended == [[0, 1, 2]]
    assert [e.object for e in await drain(watches[1])] == [0, 1, 2]
    batches = [list(b) async for b in watches[2].batches()]
    assert [[e.object for e in b] for b in batches] == [[0, 1, 2]]
    assert all(w.stopped for w in watches)
    stats = broadcaster.statistics()
    assert stats.closed
    assert (stats.watchers, stats.log_length) == (0, 0)


async def test_after_shutdown_watch_and_action_raise_action_or_drop_refuses() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    broadcaster.shutdown()
    assert broadcaster.closed
    with pytest.raises(RuntimeError, match=r"^broadcaster already stopped$"):
        broadcaster.watch()
    with pytest.raises(RuntimeError, match=r"^broadcaster already stopped$"):
        broadcaster.watch_with_prefix([Event(ADDED, 1)])
    with pytest.raises(RuntimeError, match=r"^broadcaster already stopped$"):
        await broadcaster.action(ADDED, 1)
    assert broadcaster.action_or_drop(ADDED, 1) is False


async def test_stop_after_shutdown_is_a_no_op() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch()
    broadcaster.shutdown()
    watch.stop()
    watch.stop()
    assert await drain(watch) == []


# --- stop ------------------------------------------------------------------------


async def test_stop_is_idempotent_and_releases_the_cursor() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch_with_prefix([Event(ADDED, 0)])
    await broadcaster.action(ADDED, 1)
    assert not watch.stopped
    watch.stop()
    watch.stop()
    assert watch.stopped
    assert await drain(watch) == []
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.log_length) == (0, 0)


async def test_stop_from_another_task_wakes_the_waiting_consumer() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch()
    bystander = broadcaster.watch()
    results: list[list[Event[int]]] = []

    async def consume(w: Watch[int]) -> None:
        results.append([event async for event in w])

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, watch)
        tg.start_soon(consume, bystander)
        await anyio.wait_all_tasks_blocked()
        watch.stop()
        await anyio.wait_all_tasks_blocked()
        assert results == [[]]
        # the bystander was woken too but keeps waiting for events
        await broadcaster.action(ADDED, 1)
        await anyio.wait_all_tasks_blocked()
        bystander.stop()
    assert [e.object for e in results[1]] == [1]


async def test_stop_during_delivery_is_safe() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watches = [broadcaster.watch() for _ in range(5)]
    seen: list[int] = []

    async def consume(index: int, w: Watch[int]) -> None:
        async for event in w:
            seen.append(index)
            # each consumer stops a neighbour (and itself) mid-delivery
            watches[(index + 1) % len(watches)].stop()
            if event.object == 1:
                w.stop()

    async with anyio.create_task_group() as tg:
        for i, w in enumerate(watches):
            tg.start_soon(consume, i, w)
        await anyio.wait_all_tasks_blocked()
        for i in range(3):
            await broadcaster.action(ADDED, i)
        await anyio.wait_all_tasks_blocked()
        broadcaster.shutdown()
    assert all(w.stopped for w in watches)
    assert broadcaster.statistics().watchers == 0


async def test_async_with_stops_the_watch() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    async with broadcaster.watch() as watch:
        await broadcaster.action(ADDED, 1)
        assert await take(watch, 1) == [1]
    assert watch.stopped
    assert broadcaster.statistics().watchers == 0


# --- batches and cancellation ----------------------------------------------------


async def test_batches_take_everything_available() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch_with_prefix([Event(ADDED, -1)])
    for i in range(4):
        broadcaster.action_or_drop(ADDED, i)
    batches = watch.batches()
    assert [e.object for e in await batches.__anext__()] == [-1, 0, 1, 2, 3]
    got: list[list[int]] = []

    async def consume() -> None:
        async for batch in batches:
            got.append([e.object for e in batch])

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        broadcaster.action_or_drop(ADDED, 4)
        broadcaster.action_or_drop(ADDED, 5)
        await anyio.wait_all_tasks_blocked()
        broadcaster.action_or_drop(ADDED, 6)
        broadcaster.shutdown()
    assert got == [[4, 5], [6]]


async def test_waiting_consumer_can_be_cancelled_without_losing_events() -> None:
    broadcaster: Broadcaster[int] = Broadcaster()
    watch = broadcaster.watch()
    with anyio.move_on_after(0.01) as scope:
        await watch.__anext__()
    assert scope.cancelled_caught
    with anyio.move_on_after(0.01) as scope:
        await watch.batches().__anext__()
    assert scope.cancelled_caught
    await broadcaster.action(ADDED, 1)
    assert await take(watch, 1) == [1]


async def test_iteration_is_a_cancellation_point_with_buffered_events() -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=1000)
    watch = broadcaster.watch()
    for i in range(200):
        broadcaster.action_or_drop(ADDED, i)
    got: list[int] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        async for event in watch:  # no other await in the body
            got.append(event.object)
    assert len(got) < 64  # checked at least every 64 buffered events
    # nothing was lost: the rest is still there, in order
    rest = await take(watch, 200 - len(got))
    assert got + rest == list(range(200))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await watch.batches().__anext__()
    assert scope.cancelled_caught


@pytest.mark.parametrize("queue_length", [1, 3, 100])
async def test_many_watchers_one_event_each_batch(queue_length: int) -> None:
    broadcaster: Broadcaster[int] = Broadcaster(queue_length=queue_length)
    n = 50
    totals = [0] * n

    async def consume(i: int, w: Watch[int]) -> None:
        async for batch in w.batches():
            totals[i] += len(batch)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(consume, i, broadcaster.watch())
        await anyio.wait_all_tasks_blocked()
        for i in range(200):
            await broadcaster.action(ADDED, i)
        broadcaster.shutdown()
    assert totals == [200] * n
    assert broadcaster.statistics().terminated == 0
    assert math.isfinite(broadcaster.queue_length)


# --- model-based: random interleavings -------------------------------------------


async def _run_program(
    program: list[Op], shutdown_at_end: bool, queue_length: int, policy: FullChannelBehavior
) -> None:
    broadcaster: Broadcaster[object] = Broadcaster(queue_length, policy)
    model = Model(queue_length, policy)
    watches: list[Watch[object]] = []
    counter = 0

    def check(event: Event[object], expected: object) -> None:
        if expected is MODEL_ERROR:
            assert is_expired(event), event
        else:
            assert event == Event(ADDED, expected)

    async def read(index: int, count: int, batch: bool) -> None:
        w, m = watches[index], model.watchers[index]
        if not m.expected and (m.stopped or m.finished or m.terminated or model.closed):
            with anyio.fail_after(10):
                if batch:
                    with pytest.raises(StopAsyncIteration):
                        await w.batches().__anext__()
                else:
                    with pytest.raises(StopAsyncIteration):
                        await w.__anext__()
            m.finished = True
            assert w.stopped
            return
        if not m.expected:
            return  # it would wait
        with anyio.fail_after(10):
            if batch:
                got = list(await w.batches().__anext__())
                assert len(got) == len(m.expected)
                for event in got:
                    check(event, model.take(m))
            else:
                for _ in range(min(count, len(m.expected))):
                    check(await w.__anext__(), model.take(m))

    for op in program:
        if isinstance(op, Create):
            if model.closed:
                with pytest.raises(RuntimeError, match="broadcaster already stopped"):
                    broadcaster.watch()
                continue
            prefix = [f"p{i}" for i in range(op.prefix)]
            if op.prefix:
                watches.append(broadcaster.watch_with_prefix([Event(ADDED, p) for p in prefix]))
            else:
                watches.append(broadcaster.watch())
            model.watchers.append(ModelWatcher(expected=deque(prefix)))
        elif isinstance(op, Act):
            for _ in range(op.count):
                counter += 1
                full = policy is WAIT and any(
                    w.attached and w.live >= queue_length for w in model.watchers
                )
                expected = model.accept(counter)
                if op.awaited and not model.closed and not full:
                    await broadcaster.action(ADDED, counter)
                else:
                    assert broadcaster.action_or_drop(ADDED, counter) is expected
        elif isinstance(op, Read):
            if watches:
                await read(op.index % len(watches), op.count, op.batch)
        elif isinstance(op, Stop):
            if watches:
                index = op.index % len(watches)
                watches[index].stop()
                m = model.watchers[index]
                m.stopped = True
                m.expected.clear()
        else:  # pragma: no cover - not generated mid-program
            raise AssertionError(op)
        stats = broadcaster.statistics()
        assert stats.watchers == sum(m.attached for m in model.watchers)
        assert stats.log_length <= queue_length
        assert broadcaster._next_event.woken == 0
    if shutdown_at_end:
        broadcaster.shutdown()
        model.closed = True
        for index in range(len(watches)):
            m = model.watchers[index]
            remaining = list(m.expected)
            events = await drain(watches[index])
            assert len(events) == len(remaining)
            for event, expected in zip(events, remaining, strict=True):
                check(event, expected)
    else:
        for w in watches:
            w.stop()
    stats = broadcaster.statistics()
    assert (stats.watchers, stats.log_length) == (0, 0)


@settings(max_examples=150)
@given(programs, queue_lengths, policies)
def test_random_interleavings_match_the_model(
    program: tuple[list[Op], bool], queue_length: int, policy: FullChannelBehavior
) -> None:
    """Every live watcher receives exactly the events after its creation, in order.

    Under TERMINATE_IF_FULL a slow watcher receives a prefix of them followed by
    exactly one 410 ERROR; under DROP_IF_FULL it misses exactly the events that
    arrived while it was full; under WAIT_IF_FULL nothing is lost and
    ``action_or_drop`` refuses events while a watcher is full.
    """
    ops, shutdown_at_end = program
    for backend in ("asyncio", "trio"):
        anyio.run(_run_program, ops, shutdown_at_end, queue_length, policy, backend=backend)


async def test_random_concurrent_consumers_receive_everything_in_order() -> None:
    """Concurrent slow consumers: each gets all events in order, or a prefix + one 410."""
    import random

    rng = random.Random(1234)
    for policy in (TERMINATE, WAIT):
        broadcaster: Broadcaster[int] = Broadcaster(4, policy)
        results: dict[int, list[Event[int]]] = {}
        starts: dict[int, int] = {}
        produced = 0

        async def consume(
            key: int, w: Watch[int], delay_every: int, results: dict[int, list[Event[int]]]
        ) -> None:
            out: list[Event[int]] = []
            results[key] = out
            async with w:
                async for event in w:
                    out.append(event)
                    if len(out) % delay_every == 0:
                        await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            for key in range(30):
                starts[key] = produced
                tg.start_soon(consume, key, broadcaster.watch(), rng.randint(1, 5), results)
                for _ in range(rng.randint(0, 30)):
                    await broadcaster.action(ADDED, produced)
                    produced += 1
            broadcaster.shutdown()
        for key, events in results.items():
            expected = list(range(starts[key], produced))
            objects = [e.object for e in events]
            if events and is_expired(events[-1]):
                assert policy is TERMINATE
                assert objects[:-1] == expected[: len(objects) - 1]
            else:
                assert objects == expected
