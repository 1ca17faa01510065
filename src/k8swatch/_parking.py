"""ParkingLot: where tasks wait to be woken, shared by every waiter of one source.

In the spirit of trio's ``ParkingLot``, built for fan-out where many waiters
are woken at once and woken often:

* Tasks in ``park()`` wait in *slices* of up to 64 tasks, each slice on one
  shared ``anyio.Event``, so no waiter object exists per task. A wake-up
  sets the first slice; the first task of each slice to resume sets the
  next one. A slice's tasks therefore run in one iteration of the event loop
  and the next slice's in the next one: I/O (a writer's request, say) is
  served between two slices instead of after thousands of woken tasks. A
  deadline is merged into the wait; only a finite one costs a cancel scope.
* A task waiting for something else at the same time (e.g. "events *or* the
  client left") parks its cancel scope instead (``park_scope()``): a
  wake-up cancels it.
* Waking never blocks; it is safe from any task of the event loop.

It counts the woken waiters that have not resumed yet (``woken``), so a
writer can yield until the watchers it woke have run.

A wake-up can also be coalesced (``wake_all_within()``): when the previous
one ended less than an interval ago, it is deferred until the interval has
passed, without a task of its own: the first
task to park after a wake-up, the *sentinel*, waits in a cancel scope whose
deadline the lot moves to the deferred time; when it passes, the sentinel
wakes everyone. Exactly one parked task pays for a cancel scope, whatever
the number of waiters. Should the sentinel leave first (its own deadline, or
cancelled), the deferred wake-up happens then: early, never late.
"""

from __future__ import annotations

import math

import anyio
import attrs
from typing_extensions import final

__all__ = ["ParkingLot", "ParkingLotStatistics"]

#: Tasks per slice: woken together, in one iteration of the event loop.
SLICE = 64
#: A coalesced wake-up waits at most this many intervals (see wake_all_within).
_MAX_HOLD = 5


@final
@attrs.frozen
class ParkingLotStatistics:
    """A snapshot of a ``ParkingLot``.

    Attributes:
        tasks: Tasks waiting in ``park()`` that no wake-up reached yet.
        scopes: Cancel scopes parked with ``park_scope()``, not cancelled yet.
        woken: Waiters woken (task or scope) that have not resumed yet: a task
            until its ``park()`` returns, a scope until ``unpark_scope()``.
        wake_ups: Wake-ups so far that woke at least one waiter.
    """

    tasks: int
    scopes: int
    woken: int
    wake_ups: int


@final
class _Slice:
    """Up to `SLICE` parked tasks that share one event."""

    __slots__ = ("count", "event", "next", "passed", "woken")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.count = 0  # tasks waiting on the event (parked, not gone)
        self.next: _Slice | None = None  # the slice to wake after this one
        self.woken = False  # claimed by a wake-up (its event is set now or later)
        self.passed = False  # the next slice was woken


@final
class ParkingLot:
    """Waiters of one source, woken all at once when it changes."""

    __slots__ = (
        "_active_at",
        "_due",
        "_first",
        "_last",
        "_pending",
        "_round",
        "_scopes",
        "_sentinel",
        "_tasks",
        "_wake_ups",
        "_woken",
        "_woken_at",
        "idle",
    )

    def __init__(self) -> None:
        self._first: _Slice | None = None  # the parked slices, in order
        self._last: _Slice | None = None  # where the next task parks
        self._tasks = 0  # tasks parked in those slices
        self._scopes: dict[anyio.CancelScope, None] = {}
        self._woken = 0
        self._wake_ups = 0
        self._due = math.inf  # a deferred wake-up (wake_all_within)
        self._sentinel: anyio.CancelScope | None = None  # the parked task keeping time
        self._active_at = -math.inf  # the last wake-up, or when it was over
        self._woken_at = -math.inf  # the last wake-up
        self._round = 0.0  # how long the last wake-up took until all woken had resumed
        self._pending = math.inf  # the interval of a wake_all_within() during a wake-up
        # Nobody is parked, so a wake-up would wake no one. A plain attribute
        # (read-only to others): writers check it on every event.
        self.idle = True

    def __repr__(self) -> str:
        return f"<ParkingLot tasks={self._tasks} scopes={len(self._scopes)} woken={self._woken}>"

    @property
    def woken(self) -> int:
        """Waiters woken that have not resumed yet (see `ParkingLotStatistics`)."""
        return self._woken

    def statistics(self) -> ParkingLotStatistics:
        """Return a snapshot of the waiters and wake-ups."""
        return ParkingLotStatistics(
            tasks=self._tasks,
            scopes=len(self._scopes),
            woken=self._woken,
            wake_ups=self._wake_ups,
        )

    async def park(self, deadline: float = math.inf) -> None:
        """Wait until the next wake-up, or until *deadline* (anyio's clock; ``inf``: none).

        Always a checkpoint. Returns normally at the deadline; cancellation
        propagates. Either way the task is no longer parked afterwards.
        """
        slice_ = self._last
        if slice_ is None or slice_.count >= SLICE:
            slice_ = _Slice()
            if self._last is None:
                self._first = slice_
            else:
                self._last.next = slice_
            self._last = slice_
        slice_.count += 1
        self._tasks += 1
        self.idle = False
        event = slice_.event
        sentinel = self._sentinel is None
        try:
            if sentinel:
                await self._keep_time(event, deadline)
            elif deadline == math.inf:
                await event.wait()
            else:
                with anyio.CancelScope(deadline=deadline):
                    await event.wait()
        finally:
            slice_.count -= 1
            if slice_.woken:
                self._woken -= 1
                if event.is_set() and not slice_.passed:
                    self._pass(slice_)
                if not self._woken:
                    self._over()
            else:  # the deadline passed or the task was cancelled, still parked
                self._tasks -= 1
                if not self._tasks and not self._scopes:
                    self.idle = True
                if sentinel and self._due != math.inf:
                    self.wake_all()  # nobody keeps time for it any more: now, not late

    def _over(self) -> None:
        """The wake-up is over (every woken waiter resumed): time the next one."""
        self._active_at = now = anyio.current_time()
        self._round = now - self._woken_at
        interval = self._pending
        if interval != math.inf:
            self._pending = math.inf
            self.wake_all_within(interval)

    def _pass(self, slice_: _Slice) -> None:
        """Wake the slice after *slice_* (skipping emptied ones): its tasks run next."""
        slice_.passed = True
        following = slice_.next
        while following is not None and not following.count:
            following.passed = True
            following = following.next
        if following is not None:
            following.event.set()

    async def _keep_time(self, event: anyio.Event, deadline: float) -> None:
        """Wait as the sentinel: until the wake-up, *deadline*, or a deferred wake-up."""
        try:
            while not event.is_set():
                with anyio.CancelScope(deadline=min(deadline, self._due)) as scope:
                    self._sentinel = scope
                    await event.wait()
                if event.is_set() or anyio.current_time() >= deadline:
                    return
                if self._due != math.inf and anyio.current_time() >= self._due:
                    self.wake_all()
        finally:
            self._sentinel = None

    def wake_all_within(self, interval: float) -> None:
        """Wake every waiter, now if the lot was quiet long enough, else a little later.

        A wake-up lasts from the moment it wakes the waiters until every one
        of them has resumed. Once the last one has been over for *interval*
        seconds, or for as long as it lasted (at most five times *interval*),
        whichever is longer, the wake-up happens at once; else it is deferred
        until then (the earliest deferred time wins; any wake-up meanwhile
        delivers it). During a wake-up, it is deferred until that is over
        (its waiters that have not run yet see the change anyway), but no
        longer than five times *interval*, or the length of the previous
        wake-up, after it began. Waiters that keep being woken get fewer,
        bigger batches, and whoever causes the wake-ups (writers) gets about
        as much time as the waiters take, while an isolated change still
        wakes them at once. It happens at once when no parked task can keep
        time (none parked, or scopes parked). Never blocks.
        """
        if self.idle:
            return
        if self._woken:
            # A wake-up is going on: its waiters that have not run yet will see
            # the change; those back asleep are woken once it is over, or when
            # it has lasted five intervals or as long as the previous one.
            self._pending = min(self._pending, interval)
            self._defer(self._woken_at + max(_MAX_HOLD * interval, self._round))
            return
        when = self._active_at + max(interval, min(self._round, _MAX_HOLD * interval))
        sentinel = self._sentinel
        if sentinel is None or self._scopes or when <= anyio.current_time():
            self.wake_all()
            return
        self._defer(when)

    def _defer(self, when: float) -> None:
        """Have the sentinel (this one, or the next to park) wake everyone at *when*."""
        if when < self._due:
            self._due = when
            sentinel = self._sentinel
            if sentinel is not None and when < sentinel.deadline:
                sentinel.deadline = when

    def park_scope(self, scope: anyio.CancelScope) -> None:
        """Cancel *scope* at the next wake-up (its task waits on something else too).

        Call ``unpark_scope()`` once the scope is no longer needed, woken or not.
        """
        self._scopes[scope] = None
        self.idle = False

    def unpark_scope(self, scope: anyio.CancelScope) -> None:
        """Forget *scope*, given to ``park_scope()``; it resumed (woken or not)."""
        if self._scopes.pop(scope, 0) is not None:  # gone: a wake-up cancelled it
            self._woken -= 1
            if not self._woken:
                self._over()
        elif not self._tasks and not self._scopes:
            self.idle = True

    def _wake_slices(self) -> None:
        """Claim every parked slice for a wake-up and wake the first (it wakes the rest)."""
        first = self._first
        self._first = self._last = None
        self._woken += self._tasks
        self._tasks = 0
        self._wake_ups += 1
        self._woken_at = self._active_at = anyio.current_time()
        slice_ = first
        while slice_ is not None:
            slice_.woken = True
            slice_ = slice_.next
        while first is not None and not first.count:
            first.passed = True
            first = first.next
        if first is not None:
            first.event.set()

    def wake_tasks(self) -> None:
        """Wake every task in ``park()``, not the parked scopes. Never blocks.

        The tasks share their wake-ups, so none can be woken alone: this is
        how one of them learns that its own wait is over; the others re-check
        and park again. A deferred wake-up (``wake_all_within``) is delivered
        now, to everyone.
        """
        if self._due != math.inf or self._pending != math.inf:
            self.wake_all()
            return
        if self._tasks:
            self._wake_slices()
            self.idle = not self._scopes

    def wake_all(self) -> None:
        """Wake every parked task and cancel every parked scope. Never blocks."""
        self._due = self._pending = math.inf
        if self.idle:
            return
        self.idle = True
        if self._tasks:
            self._wake_slices()
        else:
            self._wake_ups += 1
            self._woken_at = self._active_at = anyio.current_time()
        scopes = self._scopes
        if scopes:
            self._scopes = {}
            self._woken += len(scopes)
            for scope in scopes:
                scope.cancel()
