"""ParkingLot: the one wake-up primitive of the broadcaster and the watch cache."""

from __future__ import annotations

import math

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8swatch._parking import ParkingLot, ParkingLotStatistics


def stats(
    tasks: int = 0, scopes: int = 0, woken: int = 0, wake_ups: int = 0
) -> ParkingLotStatistics:
    return ParkingLotStatistics(tasks=tasks, scopes=scopes, woken=woken, wake_ups=wake_ups)


# --- without an event loop ------------------------------------------------------


def test_an_empty_lot_is_idle_and_waking_it_counts_nothing() -> None:
    lot = ParkingLot()
    lot.wake_all()
    lot.wake_tasks()
    assert lot.idle
    assert lot.woken == 0
    assert lot.statistics() == stats()


def test_statistics_are_an_immutable_snapshot() -> None:
    lot = ParkingLot()
    snapshot = lot.statistics()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.tasks = 1  # type: ignore[misc]


# --- parked tasks ---------------------------------------------------------------


async def test_wake_all_wakes_every_parked_task_once() -> None:
    lot = ParkingLot()
    woke: list[int] = []

    async def sleeper(n: int) -> None:
        await lot.park()
        woke.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(sleeper, n)
        await anyio.wait_all_tasks_blocked()
        assert not lot.idle
        assert lot.statistics() == stats(tasks=3)
        lot.wake_all()
        assert lot.idle
        assert lot.statistics() == stats(woken=3, wake_ups=1)
        lot.wake_all()  # nobody parked any more: not a wake-up
        assert lot.statistics() == stats(woken=3, wake_ups=1)
    assert sorted(woke) == [0, 1, 2]
    assert lot.statistics() == stats(wake_ups=1)


async def test_a_task_parked_after_a_wake_up_waits_for_the_next_one() -> None:
    lot = ParkingLot()
    rounds: list[str] = []

    async def sleeper() -> None:
        await lot.park()
        rounds.append("first")
        await lot.park()
        rounds.append("second")

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        await anyio.wait_all_tasks_blocked()
        assert rounds == ["first"]
        assert lot.statistics() == stats(tasks=1, wake_ups=1)
        lot.wake_tasks()
    assert rounds == ["first", "second"]
    assert lot.statistics() == stats(wake_ups=2)


async def test_park_returns_at_its_deadline_and_leaves_nothing_parked() -> None:
    lot = ParkingLot()
    start = anyio.current_time()
    await lot.park(start + 0.02)
    assert anyio.current_time() >= start + 0.02
    assert lot.idle
    assert lot.statistics() == stats()


async def test_a_past_deadline_returns_at_once() -> None:
    lot = ParkingLot()
    with anyio.fail_after(5):
        await lot.park(-math.inf)
        await lot.park(anyio.current_time() - 1)
    assert lot.statistics() == stats()


async def test_cancellation_leaves_nothing_parked() -> None:
    lot = ParkingLot()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lot.park)
        tg.start_soon(lot.park, anyio.current_time() + 3600)
        await anyio.wait_all_tasks_blocked()
        assert lot.statistics() == stats(tasks=2)
        tg.cancel_scope.cancel()
    assert lot.idle
    assert lot.statistics() == stats()


async def test_cancellation_after_the_wake_up_consumes_it() -> None:
    lot = ParkingLot()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lot.park)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        tg.cancel_scope.cancel()  # before the woken task ran
    assert lot.statistics() == stats(wake_ups=1)


# --- parked scopes --------------------------------------------------------------


async def test_wake_all_cancels_parked_scopes_and_unpark_consumes_the_wake_up() -> None:
    lot = ParkingLot()
    with anyio.CancelScope() as scope:
        lot.park_scope(scope)
        assert not lot.idle
        assert lot.statistics() == stats(scopes=1)
        lot.wake_all()
        assert lot.idle
        assert lot.statistics() == stats(woken=1, wake_ups=1)
        await anyio.sleep_forever()
    assert scope.cancelled_caught
    lot.unpark_scope(scope)
    assert lot.statistics() == stats(wake_ups=1)


async def test_unpark_scope_without_a_wake_up_forgets_it() -> None:
    lot = ParkingLot()
    scope = anyio.CancelScope()
    lot.park_scope(scope)
    lot.unpark_scope(scope)
    assert lot.idle
    assert not scope.cancel_called
    assert lot.statistics() == stats()
    lot.wake_all()
    assert not scope.cancel_called


async def test_wake_tasks_leaves_the_scopes_parked() -> None:
    lot = ParkingLot()
    scope = anyio.CancelScope()
    lot.park_scope(scope)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lot.park)
        await anyio.wait_all_tasks_blocked()
        lot.wake_tasks()
        assert not lot.idle  # the scope is still parked
        assert lot.statistics() == stats(scopes=1, woken=1, wake_ups=1)
    assert not scope.cancel_called
    assert lot.statistics() == stats(scopes=1, wake_ups=1)
    lot.wake_tasks()  # no task parked: not a wake-up
    assert lot.statistics() == stats(scopes=1, wake_ups=1)
    lot.wake_all()
    assert scope.cancel_called
    assert lot.statistics() == stats(woken=1, wake_ups=2)


# --- random interleavings -------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "park",
                "park_expired",
                "park_scope",
                "unpark_scope",
                "cancel",
                "wake_all",
                "wake_tasks",
            ]
        ),
        st.integers(0, 20),  # which task or scope, for unpark_scope and cancel
    ),
    max_size=40,
)


async def _run_ops(ops: list[tuple[str, int]]) -> None:
    lot = ParkingLot()
    tasks: list[anyio.CancelScope] = []  # each task parks inside its own scope
    task_state: list[str] = []  # parked, woken, cancelled or expired
    scopes: list[anyio.CancelScope] = []
    scope_state: list[str] = []  # parked, woken or gone (unparked)
    cancelled: list[bool] = []  # which scopes a wake-up cancelled
    wake_ups = 0

    async def sleeper(scope: anyio.CancelScope, index: int, deadline: float) -> None:
        with scope:
            await lot.park(deadline)
            if task_state[index] == "parked":
                task_state[index] = "expired"
            assert task_state[index] in ("woken", "expired")

    def wake(states: list[str], scope_flags: list[bool] | None) -> bool:
        woke = False
        for i, state in enumerate(states):
            if state == "parked":
                states[i] = "woken"
                woke = True
                if scope_flags is not None:
                    scope_flags[i] = True
        return woke

    async with anyio.create_task_group() as tg:
        for kind, which in ops:
            if kind in ("park", "park_expired"):
                tasks.append(anyio.CancelScope())
                task_state.append("parked")
                deadline = -math.inf if kind == "park_expired" else math.inf
                tg.start_soon(sleeper, tasks[-1], len(tasks) - 1, deadline)
            elif kind == "park_scope":
                scopes.append(anyio.CancelScope())
                scope_state.append("parked")
                cancelled.append(False)
                lot.park_scope(scopes[-1])
            elif kind == "unpark_scope" and scopes:
                index = which % len(scopes)
                if scope_state[index] != "gone":
                    lot.unpark_scope(scopes[index])
                    scope_state[index] = "gone"
            elif kind == "cancel" and tasks:
                index = which % len(tasks)
                tasks[index].cancel()
                if task_state[index] == "parked":
                    task_state[index] = "cancelled"
            elif kind == "wake_all":
                woke_tasks = wake(task_state, None)
                woke_scopes = wake(scope_state, cancelled)
                wake_ups += woke_tasks or woke_scopes
                lot.wake_all()
            elif kind == "wake_tasks":
                wake_ups += wake(task_state, None)
                lot.wake_tasks()
            await anyio.wait_all_tasks_blocked()
            parked_tasks = task_state.count("parked")
            parked_scopes = scope_state.count("parked")
            assert lot.statistics() == stats(
                tasks=parked_tasks,
                scopes=parked_scopes,
                woken=scope_state.count("woken"),  # woken tasks have all run
                wake_ups=wake_ups,
            )
            assert lot.idle == (not parked_tasks and not parked_scopes)
            assert [scope.cancel_called for scope in scopes] == cancelled
        tg.cancel_scope.cancel()


@settings(max_examples=100)
@given(_OPS)
def test_random_interleavings_keep_the_counts(ops: list[tuple[str, int]]) -> None:
    """Every count in the statistics matches a model of who is parked and who was woken."""
    for backend in ("asyncio", "trio"):
        anyio.run(_run_ops, ops, backend=backend)


# --- slices and coalesced wake-ups ----------------------------------------------


async def test_a_wake_up_runs_its_tasks_in_slices_with_other_work_between() -> None:
    """Woken tasks run a slice per scheduler pass: other ready tasks get turns in between."""
    from k8swatch._parking import SLICE

    lot = ParkingLot()
    log: list[str] = []
    count = SLICE * 3 + 5

    async def sleeper() -> None:
        await lot.park()
        log.append("woken")

    async def ticker() -> None:
        while log.count("woken") < count:
            log.append("tick")
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(sleeper)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        tg.start_soon(ticker)
    assert log.count("woken") == count
    runs = [len(run) for run in "".join("w" if e == "woken" else "|" for e in log).split("|")]
    # At most two slices between two ticks (a pass may run a slice before and
    # one after the ticker), and never all of them at once.
    assert max(runs) <= 2 * SLICE
    assert len([run for run in runs if run]) >= 3
    assert lot.statistics() == stats(wake_ups=1)


async def test_tasks_leaving_a_claimed_slice_do_not_stall_the_others() -> None:
    """Tasks cancelled before their slice's turn: the following slices are still woken."""
    from k8swatch._parking import SLICE

    lot = ParkingLot()
    woken: list[int] = []
    parked: list[int] = []  # in the order they parked: slice by slice
    scopes: dict[int, anyio.CancelScope] = {}

    async def sleeper(n: int) -> None:
        with anyio.CancelScope() as scope:
            scopes[n] = scope
            parked.append(n)
            await lot.park()
            woken.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(SLICE * 3):
            tg.start_soon(sleeper, n)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        for n in parked[SLICE : 2 * SLICE]:  # the whole second slice leaves
            scopes[n].cancel()
    assert sorted(woken) == sorted(parked[:SLICE] + parked[2 * SLICE :])
    assert lot.statistics() == stats(wake_ups=1)


async def _parked_after_a_wake_up(lot: ParkingLot, woke: list[float]) -> None:
    """A task that records when it is woken and parks again, forever."""
    while True:
        await lot.park()
        woke.append(anyio.current_time())


async def test_wake_all_within_defers_a_wake_up_right_after_another() -> None:
    lot = ParkingLot()
    woke: list[float] = []
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(_parked_after_a_wake_up, lot, woke)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        await anyio.wait_all_tasks_blocked()
        assert len(woke) == 3
        asked = anyio.current_time()
        lot.wake_all_within(0.3)  # the last wake-up just ended: held
        await anyio.wait_all_tasks_blocked()
        assert len(woke) == 3
        lot.wake_all_within(0.3)  # merges with the held one
        await anyio.sleep(0.5)  # well past the interval
        # One sleeper kept time: everyone was woken once, after the interval.
        assert len(woke) == 6
        assert min(woke[3:]) - asked >= 0.25
        assert lot.statistics().wake_ups == 2
        tg.cancel_scope.cancel()


async def test_wake_all_within_wakes_at_once_after_a_quiet_interval() -> None:
    lot = ParkingLot()
    woke: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_parked_after_a_wake_up, lot, woke)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all_within(0.05)  # never woken before: an isolated change
        await anyio.wait_all_tasks_blocked()
        assert len(woke) == 1
        await anyio.sleep(0.1)
        lot.wake_all_within(0.05)  # quiet for longer than the interval
        await anyio.wait_all_tasks_blocked()
        assert len(woke) == 2
        tg.cancel_scope.cancel()


async def test_a_held_wake_up_is_delivered_when_its_timekeeper_leaves() -> None:
    """The sentinel cancelled while a wake-up is held: the others are woken then, not never."""
    lot = ParkingLot()
    woke: list[str] = []
    first = anyio.CancelScope()

    async def sleeper(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            while True:
                await lot.park()
                woke.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "sentinel", first)  # parks first: keeps time
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(sleeper, "other", anyio.CancelScope())
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        await anyio.wait_all_tasks_blocked()
        woke.clear()
        lot.wake_all_within(60.0)  # held for a minute
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        first.cancel()  # whoever keeps time leaves
        await anyio.wait_all_tasks_blocked()
        assert "other" in woke
        tg.cancel_scope.cancel()


async def test_wake_all_within_during_a_wake_up_waits_until_it_is_over() -> None:
    lot = ParkingLot()
    woke: list[float] = []
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(_parked_after_a_wake_up, lot, woke)
        await anyio.wait_all_tasks_blocked()
        lot.wake_all()
        lot.wake_all_within(60.0)  # nobody resumed yet: they will see the change
        await anyio.wait_all_tasks_blocked()
        assert len(woke) == 2  # one wake-up, not two
        assert lot.statistics() == stats(tasks=2, wake_ups=1)
        lot.wake_all()  # any wake-up delivers the held one
        await anyio.wait_all_tasks_blocked()
        assert len(woke) == 4
        tg.cancel_scope.cancel()
