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
writer can yield until the watchers it woke have run.
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

    __slots__ = ("_event", "_scopes", "_tasks", "_wake_ups", "_woken", "idle")

    def __init__(self) -> None:
        self._event: anyio.Event | None = None  # what parked tasks wait on
        self._tasks = 0  # tasks waiting on _event
        self._scopes: dict[anyio.CancelScope, None] = {}
        self._woken = 0
        self._wake_ups = 0
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
        try:
            if deadline == math.inf:
                await event.wait()
            else:
                with anyio.CancelScope(deadline=deadline):
                    await event.wait()
        finally:
            if event.is_set():
                self._woken -= 1
            else:  # the deadline passed or the task was cancelled
                self._tasks -= 1
                if not self._tasks and not self._scopes:
                    self.idle = True

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
        park again.
        """
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
