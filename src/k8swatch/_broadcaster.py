"""Broadcaster: fan events out to many watchers from one shared log.

Design (see ``docs/explanation/full-channel-behavior.md``):

* Every accepted event is appended once to a shared list, the *log*. Each
  watcher holds a cursor, an index into the log (trimming the log shifts
  every cursor); nothing is copied per watcher.
* Watchers that run out of events park in one ``ParkingLot`` (one shared
  ``anyio.Event``); the next append wakes them, so a burst of events costs
  one wake-up per waiting watcher, and no waiter object exists when nobody
  waits. Writers waiting for room (``WAIT_IF_FULL``) park in another.
* The log is trimmed up to the slowest live cursor. The broadcaster keeps a
  lower bound of that cursor and only rescans the watchers (a *sweep*) when
  the bound says some watcher might be (nearly) full, so the scan is
  amortised over many events.
* A watcher that falls more than ``queue_length`` events behind is handled by
  the ``FullChannelBehavior`` during a sweep: its share of the log is moved
  into a small private buffer (at most ``queue_length`` events), so a stuck
  watcher never pins the log.

No background task exists; everything happens in the tasks calling
``action()`` and iterating the watches, on asyncio or trio.
"""

from __future__ import annotations

import enum
import math
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

import anyio
import attrs
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled
from typing_extensions import final

from ._events import Event, EventType
from ._parking import ParkingLot
from ._status import expired
from ._watch import CHECK_EVERY, Watch, _PollableWatch

__all__ = ["Broadcaster", "BroadcasterStatistics", "FullChannelBehavior"]

T = TypeVar("T")

#: Cursor of a watcher that no longer reads the shared log.
_DETACHED = sys.maxsize

#: The fast path's view of the log for a watcher that must take the slow path.
_EMPTY: list[Any] = []

_STOPPED_MESSAGE = "broadcaster already stopped"

#: How many times action() yields in a row, at most, for woken watchers to run.
_MAX_YIELDS = 8


class FullChannelBehavior(enum.Enum):
    """What a [`Broadcaster`][k8swatch.Broadcaster] does with a slow watcher.

    A watcher is *full* when ``queue_length`` events are waiting for it.
    """

    WAIT_IF_FULL = "WaitIfChannelFull"
    """The writer waits until the slowest watcher has room (or is stopped).

    One slow watcher stalls every writer and so every other watcher; this is
    the Go default (``WaitIfChannelFull``).
    """

    DROP_IF_FULL = "DropIfChannelFull"
    """The full watcher silently misses the event; everyone else gets it.

    Go compatible (``DropIfChannelFull``) and **lossy**: the watcher cannot
    tell that it missed anything. Prefer ``TERMINATE_IF_FULL``.
    """

    TERMINATE_IF_FULL = "TerminateIfChannelFull"
    """The full watcher receives what it had, one 410 ``Expired`` ERROR, then ends.

    Writers never wait and no event is ever silently lost: a client that sees
    the ERROR re-lists or resumes, as Kubernetes clients do. The default.
    """


@final
@attrs.frozen
class BroadcasterStatistics:
    """A snapshot of a [`Broadcaster`][k8swatch.Broadcaster]'s state.

    Attributes:
        watchers: Watchers currently reading the shared log.
        log_length: Events held in the shared log (not yet read by every
            watcher; at most ``queue_length``).
        waiting_watchers: Whether some watcher is parked waiting for events.
        waiting_writers: Whether a writer is waiting for room (``WAIT_IF_FULL``).
        dropped: Events missed by full watchers (``DROP_IF_FULL``), in total.
        terminated: Watchers ended because they were full (``TERMINATE_IF_FULL``).
        closed: True after ``shutdown()``.
    """

    watchers: int
    log_length: int
    waiting_watchers: bool
    waiting_writers: bool
    dropped: int
    terminated: int
    closed: bool


@final
class Broadcaster(Generic[T]):
    """Distribute events to any number of watchers, in order.

    The Python counterpart of apimachinery's ``watch.Broadcaster``: every
    accepted event is delivered to every watcher that existed when it was
    accepted, in acceptance order. It needs no background task and works on
    asyncio and trio.

    Args:
        queue_length: How many events may wait for one watcher before
            *full_channel_behavior* applies (Go's per-watcher channel size).
            Prefix events of [`watch_with_prefix`][k8swatch.Broadcaster.watch_with_prefix]
            do not count.
        full_channel_behavior: What to do with a watcher that is full; see
            [`FullChannelBehavior`][k8swatch.FullChannelBehavior].

    Raises:
        ValueError: if *queue_length* is less than 1.

    Example:
        ```python
        broadcaster: Broadcaster[dict] = Broadcaster()
        async with broadcaster.watch() as watch:
            await broadcaster.action(EventType.ADDED, {"metadata": {"name": "a"}})
            broadcaster.shutdown()
            async for event in watch:
                print(event.type, event.object)
        ```
    """

    __slots__ = (
        "_budget",
        "_closed",
        "_dropped",
        "_log",
        "_low",
        "_next_event",
        "_policy",
        "_queue_length",
        "_room",
        "_room_at",
        "_terminated",
        "_watchers",
        "_yield_at",
    )

    def __init__(
        self,
        queue_length: int = 100,
        full_channel_behavior: FullChannelBehavior = FullChannelBehavior.TERMINATE_IF_FULL,
    ) -> None:
        if queue_length < 1:
            raise ValueError(f"queue_length must be >= 1, got {queue_length}")
        if not isinstance(full_channel_behavior, FullChannelBehavior):
            raise TypeError(
                "full_channel_behavior must be a FullChannelBehavior, "
                f"got {full_channel_behavior!r}"
            )
        self._queue_length = queue_length
        # action() yields to other tasks when the slowest watcher has this many
        # events waiting, before it accepts another one.
        self._yield_at = max(1, queue_length - queue_length // 8)
        self._budget = CHECK_EVERY
        self._policy = full_channel_behavior
        # Cursors are indexes into _log; trimming the log shifts them all.
        self._log: list[Event[T]] = []
        self._low = 0  # lower bound of every live cursor
        self._watchers: dict[_BroadcastWatch[T], None] = {}
        self._next_event = ParkingLot()  # watchers that read everything park here
        self._room = ParkingLot()  # writers wait here while a watcher is full
        self._room_at = 0  # a cursor <= this blocks the waiting writers
        self._closed = False
        self._dropped = 0
        self._terminated = 0

    def __repr__(self) -> str:
        return (
            f"<Broadcaster queue_length={self._queue_length} "
            f"{self._policy.name} watchers={len(self._watchers)}"
            f"{' closed' if self._closed else ''}>"
        )

    @property
    def queue_length(self) -> int:
        """Events that may wait for one watcher before it counts as full."""
        return self._queue_length

    @property
    def full_channel_behavior(self) -> FullChannelBehavior:
        """The policy for full watchers."""
        return self._policy

    @property
    def closed(self) -> bool:
        """True once [`shutdown`][k8swatch.Broadcaster.shutdown] was called."""
        return self._closed

    def statistics(self) -> BroadcasterStatistics:
        """Return a snapshot of the number of watchers, the log length and counters."""
        return BroadcasterStatistics(
            watchers=len(self._watchers),
            log_length=len(self._log),
            waiting_watchers=not self._next_event.idle,
            waiting_writers=not self._room.idle,
            dropped=self._dropped,
            terminated=self._terminated,
            closed=self._closed,
        )

    # --- watchers -------------------------------------------------------------

    def watch(self) -> Watch[T]:
        """Return a new watch that receives every event accepted from now on.

        Events accepted before this call are never delivered to it.

        Raises:
            RuntimeError: ``broadcaster already stopped`` after
                [`shutdown`][k8swatch.Broadcaster.shutdown]; not recoverable,
                create a new broadcaster.
        """
        return self._add(None)

    def watch_with_prefix(self, events: Iterable[Event[T]]) -> Watch[T]:
        """Return a new watch that first yields *events*, then every later event.

        The prefix is delivered before any event accepted after this call
        (atomically: no action can slip in between). Prefix events do not
        count toward ``queue_length``.

        Raises:
            RuntimeError: ``broadcaster already stopped`` after
                [`shutdown`][k8swatch.Broadcaster.shutdown].
        """
        prefix = deque(events)
        return self._add(prefix or None)

    def _add(self, prefix: deque[Event[T]] | None) -> _BroadcastWatch[T]:
        if self._closed:
            raise RuntimeError(_STOPPED_MESSAGE)
        if not self._watchers:
            # Nobody reads the log: drop it and start afresh at the end.
            self._log.clear()
            self._low = 0
        watch = _BroadcastWatch(self, len(self._log), prefix, self._next_event, self._room)
        self._watchers[watch] = None
        return watch

    # --- writers --------------------------------------------------------------

    async def action(self, type: EventType, obj: T) -> None:
        """Distribute an event to every current watcher.

        With ``WAIT_IF_FULL`` it waits while some watcher is full. The other
        policies never wait for watchers, but before accepting an event
        ``action()`` yields to other tasks (a full checkpoint) when the
        slowest watcher is seven eighths full, so a producer in a tight
        loop leaves watchers time to catch up. Otherwise it checks for
        cancellation at least every 64 calls (checking costs more than
        accepting an event). If cancelled, the event was not accepted.

        Raises:
            RuntimeError: ``broadcaster already stopped`` after
                [`shutdown`][k8swatch.Broadcaster.shutdown] (also when the
                shutdown happens while this call waits for room); the event
                was not distributed.
        """
        self._budget -= 1
        if not self._budget:
            self._budget = CHECK_EVERY
            await checkpoint_if_cancelled()
        if self._closed:
            raise RuntimeError(_STOPPED_MESSAGE)
        event = Event(type, obj)
        if self._policy is FullChannelBehavior.WAIT_IF_FULL:
            while self._watchers and len(self._log) - self._low >= self._queue_length:
                self._sweep()
                if len(self._log) - self._low < self._queue_length:
                    break
                self._room_at = len(self._log) - self._queue_length
                await self._room.park()
                if self._closed:
                    raise RuntimeError(_STOPPED_MESSAGE)
            self._append(event)
            return
        if self._watchers and len(self._log) - self._low >= self._yield_at:
            self._sweep()
            for _ in range(_MAX_YIELDS):
                if not self._watchers or len(self._log) - self._low < self._yield_at:
                    break
                # Let the watchers run; keep yielding while some that were
                # woken up have not run yet (trio may run this task first).
                self._budget = CHECK_EVERY
                await checkpoint()
                if self._closed:
                    raise RuntimeError(_STOPPED_MESSAGE)
                if not self._next_event.woken:
                    break
                self._sweep()
        self._append(event)

    def action_or_drop(self, type: EventType, obj: T) -> bool:
        """Distribute an event without waiting; return False if it was not accepted.

        With ``WAIT_IF_FULL`` the event is refused (False) when some watcher is
        full; the other policies always accept it. After
        [`shutdown`][k8swatch.Broadcaster.shutdown] it returns False and does
        not raise.
        """
        if self._closed:
            return False
        if (
            self._policy is FullChannelBehavior.WAIT_IF_FULL
            and self._watchers
            and len(self._log) - self._low >= self._queue_length
        ):
            self._sweep()
            if len(self._log) - self._low >= self._queue_length:
                return False
        self._append(Event(type, obj))
        return True

    def shutdown(self) -> None:
        """Stop accepting events; watchers drain what was accepted, then end.

        Idempotent and synchronous. Afterwards [`watch`][k8swatch.Broadcaster.watch]
        and [`action`][k8swatch.Broadcaster.action] raise ``RuntimeError``,
        [`action_or_drop`][k8swatch.Broadcaster.action_or_drop] returns False,
        and writers waiting for room raise ``RuntimeError``.
        """
        if self._closed:
            return
        self._closed = True
        self._next_event.wake_all()
        self._room.wake_all()

    # --- internals ------------------------------------------------------------

    def _append(self, event: Event[T]) -> None:
        if not self._watchers:
            return
        self._log.append(event)
        next_event = self._next_event
        if not next_event.idle:
            next_event.wake_all()
        if len(self._log) - self._low > self._queue_length and (
            self._policy is not FullChannelBehavior.WAIT_IF_FULL
        ):
            self._sweep()

    def _sweep(self) -> None:
        """Rescan the cursors: apply the policy to full watchers, trim the log."""
        log = self._log
        end = len(log)
        limit = self._queue_length
        low = end
        full: list[_BroadcastWatch[T]] = []
        for watch in self._watchers:
            pos = watch._pos
            if watch._live + end - pos > limit and (
                self._policy is not FullChannelBehavior.WAIT_IF_FULL
            ):
                full.append(watch)
            elif pos < low:
                low = pos
        for watch in full:
            watch._overflow()
        if low:
            del log[:low]
            for watch in self._watchers:
                watch._pos -= low
                watch._check_at -= low
            self._room_at -= low
        self._low = 0

    def _advanced(self, pos: int) -> None:
        """A watcher read the event at *pos*; wake waiting writers it may have blocked.

        Readers take up to CHECK_EVERY - 1 events on the fast path without calling this,
        hence the margin.
        """
        if pos <= self._room_at + CHECK_EVERY:
            self._room.wake_all()

    def _detach(self, watch: _BroadcastWatch[T]) -> None:
        if self._watchers.pop(watch, 0) is None:
            self._room.wake_all()
        if not self._watchers:
            self._log.clear()
            self._low = 0


class _BroadcastWatch(_PollableWatch[T]):
    """A watcher of a [`Broadcaster`][k8swatch.Broadcaster]: a cursor into its log."""

    __slots__ = (
        "_budget",
        "_check_at",
        "_ended",
        "_live",
        "_next_event",
        "_owner",
        "_parked",
        "_pending",
        "_pos",
        "_room",
        "_stopped",
        "_view",
        "_waiting",
    )

    def __init__(
        self,
        owner: Broadcaster[T],
        pos: int,
        prefix: deque[Event[T]] | None,
        next_event: ParkingLot,
        room: ParkingLot,
    ) -> None:
        self._owner = owner
        self._next_event = next_event  # where this watcher waits for events
        self._room = room  # writers waiting for room: reading may let them go
        self._pos = pos
        self._check_at = pos  # the fast path serves positions below this
        # Events handed out before the log: the prefix, then (after an
        # overflow) the events this watcher still had when it was full.
        self._pending = prefix
        # The log while the fast path may read it, else an empty list.
        self._view: list[Event[T]] = _EMPTY if prefix else owner._log
        self._live = 0  # how many of _pending (at its tail) came from the log
        self._budget = CHECK_EVERY
        self._waiting = False  # parked in _next_event
        self._parked: anyio.CancelScope | None = None  # a stop-aware waiter's scope
        self._stopped = False
        self._ended = False  # no more events will ever come (detached)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "ended" if self._ended else "live"
        return f"<broadcaster watch {state}>"

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` was called or the watch has ended."""
        return self._stopped

    def stop(self) -> None:
        """Stop the watch and release its cursor and buffer. Idempotent.

        Safe from any task: a consumer waiting in ``async for`` wakes up and
        its loop ends (the broadcaster's other waiting watchers wake up too,
        find nothing and wait again). Events not yet read are discarded.
        """
        if self._stopped:
            return
        self._stopped = True
        self._pending = None
        self._view = _EMPTY
        self._live = 0
        if not self._ended:
            self._ended = True
            self._pos = _DETACHED
            self._owner._detach(self)
        self._wake_self()

    def _wake_self(self) -> None:
        if self._waiting:
            # The waiter shares one wake-up with every other waiting watcher;
            # wake them all (they re-check and wait again) so this one sees the stop.
            self._waiting = False
            self._next_event.wake_tasks()
        parked = self._parked
        if parked is not None:
            self._parked = None
            self._next_event.unpark_scope(parked)
            parked.cancel()

    def _overflow(self) -> None:
        """This watcher is full (called from a sweep or before it reads)."""
        owner = self._owner
        pos = self._pos
        room = owner._queue_length - self._live
        kept = owner._log[pos : pos + room] if room > 0 else []
        self._view = _EMPTY
        if self._pending is None:
            self._pending = deque(kept)
        else:
            self._pending.extend(kept)
        if owner._policy is FullChannelBehavior.TERMINATE_IF_FULL:
            status = expired(
                f"the watch fell more than {owner._queue_length} events behind "
                "and was terminated; restart it"
            ).status
            self._pending.append(cast("Event[T]", Event(EventType.ERROR, status)))
            self._live = 0
            self._ended = True
            self._pos = _DETACHED
            owner._terminated += 1
            owner._detach(self)
        else:
            owner._dropped += len(owner._log) - pos - len(kept)
            self._live += len(kept)
            self._pos = len(owner._log)

    def _finish(self) -> None:
        """Iteration is over: the watch counts as stopped and holds nothing."""
        self._stopped = True
        self._pending = None
        self._view = _EMPTY
        if not self._ended:
            self._ended = True
            self._pos = _DETACHED
            self._owner._detach(self)

    # --- non-blocking reads (also used by StopAwareWatch and filter_watch) ----

    def _poll(self) -> Event[T] | None:
        """Return the next event, None if there is none yet.

        Raises:
            StopAsyncIteration: the watch has ended.
        """
        pending = self._pending
        owner = self._owner
        if pending:
            if self._live and len(owner._log) - self._pos + self._live > owner._queue_length:
                self._overflow()
            if len(pending) == self._live:
                self._live -= 1
            event = pending.popleft()
            if not pending and not self._ended:
                self._view = owner._log
            return event
        pos = self._pos
        if pos < len(owner._log):
            self._pos = pos + 1
            if not self._room.idle:
                owner._advanced(pos)
            return owner._log[pos]
        if self._ended or owner._closed or self._stopped:
            self._finish()
            raise StopAsyncIteration
        return None

    def _poll_batch(self) -> Sequence[Event[T]] | None:
        """Return every available event, None if there is none yet.

        Raises:
            StopAsyncIteration: the watch has ended.
        """
        owner = self._owner
        pending = self._pending
        batch: list[Event[T]]
        if pending:
            if self._live and len(owner._log) - self._pos + self._live > owner._queue_length:
                self._overflow()
            batch = list(pending)
            pending.clear()
            self._live = 0
            if not self._ended:
                self._view = owner._log
        else:
            batch = []
        pos = self._pos
        log = owner._log
        end = len(log)
        if pos < end:
            if batch:
                batch.extend(log[pos:end])
            else:
                batch = log[pos:end]
            self._pos = end
            if not self._room.idle:
                owner._advanced(pos)
        if batch:
            return batch
        if self._ended or owner._closed or self._stopped:
            self._finish()
            raise StopAsyncIteration
        return None

    def _ready(self) -> bool:
        return (
            bool(self._pending)
            or self._pos < len(self._owner._log)
            or self._ended
            or self._owner._closed
        )

    async def _wait_readable(self, deadline: float = math.inf) -> None:
        """Wait until ``_poll`` may return something, or until *deadline* (a checkpoint)."""
        if not self._room.idle:  # caught up: a waiting writer may have room now
            self._owner._advanced(self._pos - 1)
        self._waiting = True
        try:
            await self._next_event.park(deadline)
        finally:
            self._waiting = False

    def _park(self, scope: anyio.CancelScope) -> None:
        """Cancel *scope* as soon as ``_poll`` may return something."""
        if self._pending or self._pos < len(self._owner._log) or self._ended or self._owner._closed:
            scope.cancel()
            return
        if not self._room.idle:  # caught up: a waiting writer may have room now
            self._owner._advanced(self._pos - 1)
        self._parked = scope
        self._next_event.park_scope(scope)

    def _unpark(self, scope: anyio.CancelScope) -> None:
        if self._parked is scope:
            self._parked = None
            self._next_event.unpark_scope(scope)

    # --- iteration ------------------------------------------------------------

    async def __anext__(self) -> Event[T]:
        """Return the next event, waiting for one if needed.

        Checks for cancellation whenever it waits and at least every 64
        buffered events.

        Raises:
            StopAsyncIteration: after ``stop()``, after the broadcaster shut
                down and every accepted event was delivered, or after the
                410 ERROR of ``TERMINATE_IF_FULL``.
        """
        # Fast path: the next event is in the log, nothing is pending, and
        # fewer than CHECK_EVERY events were handed out since the slow path
        # last ran (it checks for cancellation and wakes a waiting writer).
        pos = self._pos
        view = self._view
        if pos < self._check_at and pos < len(view):
            self._pos = pos + 1
            return view[pos]
        return await self._next_slow()

    async def _next_slow(self) -> Event[T]:
        if self._pending:
            self._budget -= 1
            if not self._budget:
                self._budget = CHECK_EVERY
                await checkpoint_if_cancelled()
        elif self._ready():  # otherwise the wait below is the checkpoint
            await checkpoint_if_cancelled()
        event = await self._poll_or_wait()
        self._check_at = self._pos + CHECK_EVERY - 1
        return event
