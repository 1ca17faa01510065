"""ParkingLot: where tasks wait to be woken, shared by every waiter of one source.

In the spirit of trio's ``ParkingLot``, built for fan-out where many waiters
are woken at once and woken often:

* Tasks in ``park()`` wait on one shared
  ``anyio.Event``. A wake-up sets it and forgets it (the next park makes a new
  one), so waking n tasks costs one ``set()``, and no waiter object exists per
  task. A deadline is merged into that wait; only a finite one costs a cancel
  scope.
* A task waiting for something else at the same time (e.g. "events *or* the
  client left") parks its cancel scope instead (``park_scope()``): a
  wake-up cancels it.
* Waking never blocks; it is safe from any task of the event loop.

It counts the woken waiters that have not resumed yet (``woken``), so a
writer can yield until the watchers it woke have run, and notes when the
last of them resumed (``quiet_since``).

A wake-up can also be deferred (``wake_all_at()``) without a task of its
own: the first task to park after a wake-up, the *sentinel*, waits in a
cancel scope whose deadline the lot moves to the deferred time; when it
passes, the sentinel wakes everyone. Exactly one parked task pays for a
cancel scope, whatever the number of waiters. Should the sentinel leave
first (its own deadline, or cancelled), the deferred wake-up happens then:
early, never late.
"""

from __future__ import annotations

import math

import anyio
import attrs
from typing_extensions import final

__all__ = ["ParkingLot", "ParkingLotStatistics"]


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
class ParkingLot:
    """Waiters of one source, woken all at once when it changes."""

    __slots__ = (
        "_due",
        "_event",
        "_scopes",
        "_sentinel",
        "_tasks",
        "_wake_ups",
        "_woken",
        "idle",
        "quiet_since",
    )

    def __init__(self) -> None:
        self._event: anyio.Event | None = None  # what parked tasks wait on
        self._tasks = 0  # tasks waiting on _event
        self._scopes: dict[anyio.CancelScope, None] = {}
        self._woken = 0
        self._wake_ups = 0
        self._due = math.inf  # a deferred wake-up (wake_all_at)
        self._sentinel: anyio.CancelScope | None = None  # the parked task keeping time
        self.quiet_since = -math.inf
        """When the last waiter woken by a wake-up resumed (anyio's clock)."""
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
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        self._tasks += 1
        self.idle = False
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
            if event.is_set():
                self._woken -= 1
                if not self._woken:
                    self.quiet_since = anyio.current_time()
            else:  # the deadline passed or the task was cancelled
                self._tasks -= 1
                if not self._tasks and not self._scopes:
                    self.idle = True
                if sentinel and self._due != math.inf:
                    self.wake_all()  # nobody keeps time for it any more: now, not late

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

    def wake_all_at(self, when: float) -> None:
        """Wake every waiter at *when* (anyio's clock), or at once if no task can keep time.

        Deferred wake-ups merge (the earliest wins); any wake-up meanwhile
        delivers them. Never blocks.
        """
        if when >= self._due:
            return
        sentinel = self._sentinel
        if sentinel is None or self._scopes:
            self.wake_all()
            return
        self._due = when
        if when < sentinel.deadline:
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
        elif not self._tasks and not self._scopes:
            self.idle = True

    def wake_tasks(self) -> None:
        """Wake every task in ``park()``, not the parked scopes. Never blocks.

        The tasks share one wake-up, so none can be woken alone: this is how
        one of them learns that its own wait is over; the others re-check and
        park again. A deferred wake-up (``wake_all_at``) is delivered now, to
        everyone.
        """
        if self._due != math.inf:
            self.wake_all()
            return
        event = self._event
        if event is not None and self._tasks:
            self._event = None
            self._woken += self._tasks
            self._tasks = 0
            self._wake_ups += 1
            self.idle = not self._scopes
            event.set()

    def wake_all(self) -> None:
        """Wake every parked task and cancel every parked scope. Never blocks."""
        self._due = math.inf
        if self.idle:
            return
        self.idle = True
        self._wake_ups += 1
        event = self._event
        if event is not None and self._tasks:
            self._event = None
            self._woken += self._tasks
            self._tasks = 0
            event.set()
        scopes = self._scopes
        if scopes:
            self._scopes = {}
            self._woken += len(scopes)
            for scope in scopes:
                scope.cancel()
