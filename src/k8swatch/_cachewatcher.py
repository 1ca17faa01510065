"""The watcher of a WatchCache: a cursor into its window, with its own timers.

Reading never blocks the cache: ``_poll``/``_poll_batch`` take what is there;
a reader with nothing to read parks in the cache's ``ParkingLot`` until the
next batch of changes (``_wait_readable``), or parks a cancel scope there
(``_park``, how ``stop_aware_watch`` waits without a helper task).
Time-driven events (bookmarks, the end at ``timeoutSeconds``, the 504 of a
resourceVersion that never came) are produced by the next poll once their
time is due; waits end at that time. No task per watcher.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import anyio
import anyio.lowlevel
from anyio.lowlevel import checkpoint_if_cancelled
from typing_extensions import TypeVar, final

from ._events import Event, EventType
from ._filters import ObjectAttrs, SelectionPredicate
from ._json import JSONObject
from ._parking import ParkingLot
from ._status import StatusError
from ._watch import CHECK_EVERY, _PollableWatch
from ._window import NOW_ADDED, NOW_DELETED, SAME, EventWindow, Wait, too_large, too_old

if TYPE_CHECKING:
    from ._cache import WatchCache

__all__ = ["INITIAL_EVENTS_ANNOTATION", "CacheWatcher"]

T = TypeVar("T", bound=Mapping[str, Any], default=dict[str, Any])

INITIAL_EVENTS_ANNOTATION: Final = "k8s.io/initial-events-end"
"""Annotation on the bookmark that ends the initial events of a ``sendInitialEvents`` watch."""

_BOOKMARK_BEFORE_TIMEOUT: Final = 2.0
_MAX_BATCH: Final = 1024
"""At most this many changes per wake-up: a resume far back costs the same to start."""


@final
class CacheWatcher(_PollableWatch[T]):
    """A cursor into a WatchCache's window; see [`WatchCache.watch`][k8swatch.WatchCache.watch].

    It reads the cache's window and waits in the cache's parking lot, both
    given at construction; of the cache itself it uses only public members.
    """

    __slots__ = (
        "_bookmark_at",
        "_bookmarks",
        "_budget",
        "_cache",
        "_deadline",
        "_end_bookmark",
        "_epoch",
        "_exact",
        "_initial",
        "_last_rv",
        "_minimum",
        "_next_change",
        "_parked",
        "_pending",
        "_pending_at",
        "_planned_at",
        "_position",
        "_pre_timeout_bookmark",
        "_predicate",
        "_requested",
        "_selector_key",
        "_started",
        "_stopped",
        "_timed",
        "_wait_deadline",
        "_waiting",
        "_window",
    )

    def __init__(
        self,
        cache: WatchCache[Any],
        window: EventWindow,
        next_change: ParkingLot,
        predicate: SelectionPredicate,
        requested: int,
        *,
        exact: bool,
        initial: bool,
        minimum: int,
        end_bookmark: bool,
        bookmarks: bool,
        timeout: float | None,
    ) -> None:
        self._cache: WatchCache[Any] | None = cache  # None once the watch is over
        self._window = window
        self._next_change = next_change  # where this watcher waits for changes
        self._predicate = predicate
        self._selector_key = f"{predicate.namespace}\x00{predicate.label}\x00{predicate.field}"
        self._requested = requested
        self._exact = exact
        self._initial = initial
        self._minimum = minimum
        self._end_bookmark = end_bookmark
        self._bookmarks = bookmarks
        # Events to hand out, from _pending_at on (a list: an idle watcher's
        # empty list costs a tenth of an empty deque).
        self._pending: list[Event[JSONObject]] = []
        self._pending_at = 0
        self._stopped = False
        self._started = False
        self._position = 0
        self._planned_at = 0
        self._last_rv = requested
        self._epoch = window.epoch
        self._parked: anyio.CancelScope | None = None  # a stop-aware waiter's scope
        self._waiting = False  # parked in _next_change
        self._budget = CHECK_EVERY
        now = anyio.current_time()
        self._deadline = math.inf if timeout is None else now + timeout
        self._wait_deadline = now + cache.wait_timeout
        self._bookmark_at = now + cache.bookmark_interval if bookmarks else math.inf
        self._pre_timeout_bookmark = (
            bookmarks and timeout is not None and timeout > _BOOKMARK_BEFORE_TIMEOUT
        )
        # Pin the start now, so writes racing the first read are neither lost nor repeated.
        self._plan()
        self._retime()

    @property
    def stopped(self) -> bool:
        """True once stopped or ended."""
        return self._stopped

    def stop(self) -> None:
        """Stop the watch: iteration ends; the cursor and buffer are released. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._pending = []
        self._pending_at = 0
        self._detach()

    def _detach(self) -> None:
        """Let go of the cache and end this watcher's wait, if any."""
        self._cache = None
        parked = self._parked
        if parked is not None:
            self._parked = None
            self._next_change.unpark_scope(parked)
            parked.cancel()
        if self._waiting:
            # The wake-up is shared: wake every parked task (the others re-check
            # and park again) so that this watcher sees that it is over.
            self._waiting = False
            self._next_change.wake_tasks()

    def _finish(self, error: StatusError | None) -> None:
        """End after *error* (if any) is delivered."""
        if error is not None:
            self._pending.append(Event(EventType.ERROR, error.status.to_dict()))
        self._detach()

    def _retime(self) -> None:
        """Set ``_timed``: whether anything but cache changes can bring an event or the end."""
        self._timed = (
            not self._started or self._deadline != math.inf or self._bookmark_at != math.inf
        )

    def _plan(self) -> bool:
        """Find where the watch starts; False when it cannot start (yet)."""
        cache = self._cache
        assert cache is not None
        window = self._window
        self._planned_at = window.resource_version
        plan = window.plan_watch(self._requested, self._exact, self._initial, self._minimum)
        if isinstance(plan, StatusError):
            self._finish(plan)
            return False
        if isinstance(plan, Wait):
            return False
        self._started = True
        self._position = plan.position
        self._last_rv = plan.after
        if plan.initial is not None:
            match = self._predicate.matches
            select_all = self._predicate.empty
            pending = self._pending
            pending.extend(
                Event(EventType.ADDED, obj) for obj in plan.initial if select_all or match(obj)
            )
            if self._end_bookmark:
                pending.append(_bookmark(cache, plan.after, initial_end=True))
        return True

    def _collect(self, cache: WatchCache[Any]) -> None:
        """Move every available change into ``_pending`` (or end with 410)."""
        window = self._window
        if not self._started:
            self._epoch = window.epoch
            if not self._plan():
                if cache.closed:
                    self._finish(None)
                elif anyio.current_time() >= self._wait_deadline:
                    wanted = max(self._minimum, self._requested if self._exact else 0)
                    self._finish(too_large(wanted, window.resource_version))
                return
            self._retime()
        if self._epoch != window.epoch:
            self._finish(too_old(self._last_rv, window.resumable_from))
            return
        changes = window.changes_from(self._position, _MAX_BATCH)
        if changes is None:
            self._finish(too_old(self._last_rv, window.resumable_from))
            return
        if not changes:
            return
        position = self._position
        self._position += len(changes)
        after = self._last_rv
        pending = self._pending
        predicate = self._predicate
        if predicate.empty:
            if changes[0].rv <= after:
                changes = [c for c in changes if c.rv > after]
                pending.extend([c.event for c in changes])
            else:
                pending.extend(window.events_at(position, len(changes)))
        else:
            # Each change computes its (labels, fields) once, and its outcome once per
            # distinct selector: watchers that share a selector share the work.
            get_attrs = cache.get_attrs
            matches_attrs = predicate.matches_attrs
            key = self._selector_key

            def match(attrs_: ObjectAttrs | None) -> bool:
                return attrs_ is None or matches_attrs(attrs_[0], attrs_[1])

            for change in changes:
                if change.rv <= after:
                    continue
                verdicts = change.verdicts
                if verdicts is None:
                    verdicts = change.verdicts = {}
                outcome = verdicts.get(key)
                if outcome is None:
                    outcome = verdicts[key] = change.outcome(match, get_attrs)
                if outcome is SAME:
                    pending.append(change.event)
                elif outcome is NOW_ADDED:
                    pending.append(change.added_event())
                elif outcome is NOW_DELETED:
                    pending.append(change.deleted_event())
        if changes:
            self._last_rv = max(after, changes[-1].rv)

    def _next_timer(self) -> float:
        """When a time-driven event or the end is due (``inf``: never)."""
        wake_at = self._deadline
        if not self._started:
            return min(wake_at, self._wait_deadline)
        if self._bookmarks:
            wake_at = min(wake_at, self._bookmark_due())
        return wake_at

    def _bookmark_due(self) -> float:
        bookmark_at = self._bookmark_at
        if self._pre_timeout_bookmark and self._deadline != math.inf:
            bookmark_at = min(bookmark_at, self._deadline - _BOOKMARK_BEFORE_TIMEOUT)
        return bookmark_at

    def _step(self) -> None:
        """Fill ``_pending`` with what is available now, without waiting.

        Afterwards ``_pending`` has events, or the watch is over (no cache),
        or there is nothing yet.
        """
        cache = self._cache
        if cache is None:
            return
        self._collect(cache)
        if self._pending:
            if self._bookmarks and self._cache is not None:
                self._bookmark_at = anyio.current_time() + cache.bookmark_interval
            return
        if self._cache is None:
            return
        if cache.closed:
            self._finish(None)
            return
        if not self._timed:
            return
        now = anyio.current_time()
        if now >= self._deadline:
            self._finish(None)
            return
        if self._started and self._bookmarks:
            bookmark_at = self._bookmark_due()
            if now >= bookmark_at:
                if bookmark_at != self._bookmark_at:
                    self._pre_timeout_bookmark = False
                self._bookmark_at = now + cache.bookmark_interval
                rv = max(self._last_rv, self._window.resource_version)
                self._pending.append(_bookmark(cache, rv))

    # --- the non-blocking fast path (also used by StopAwareWatch and filter_watch) ---

    def _available(self) -> bool:
        """Whether ``_pending`` has events, after taking what there is now.

        Raises:
            StopAsyncIteration: the watch is over.
        """
        if self._pending:
            return True
        self._step()
        if self._pending:
            return True
        if self._cache is None:
            self._stopped = True
            raise StopAsyncIteration
        return False

    def _pop(self) -> Event[T]:
        """Take the next pending event (there is one)."""
        pending = self._pending
        at = self._pending_at
        event = pending[at]
        at += 1
        if at == len(pending):
            self._pending = []
            at = 0
        self._pending_at = at
        return cast("Event[T]", event)

    def _poll(self) -> Event[T] | None:
        if not self._available():
            return None
        return self._pop()

    def _poll_batch(self) -> Sequence[Event[T]] | None:
        if not self._available():
            return None
        batch = self._pending
        if self._pending_at:
            batch = batch[self._pending_at :]
            self._pending_at = 0
        self._pending = []
        return cast("list[Event[T]]", batch)

    def _ready(self) -> bool:
        cache = self._cache
        if self._pending or cache is None or cache.closed:
            return True
        window = self._window
        if self._epoch != window.epoch:
            return True
        if self._started:
            if self._position < window.end:
                return True
        elif window.resource_version != self._planned_at:
            return True  # it may start now
        return self._timed and anyio.current_time() >= self._next_timer()

    async def _wait_readable(self, deadline: float = math.inf) -> None:
        if self._cache is None:
            await anyio.lowlevel.checkpoint()
            return
        if self._timed:
            deadline = min(deadline, self._next_timer())
        self._waiting = True
        try:
            await self._next_change.park(deadline)
        finally:
            self._waiting = False

    def _park(self, scope: anyio.CancelScope) -> None:
        if self._ready():
            scope.cancel()
            return
        if self._timed:
            scope.deadline = min(scope.deadline, self._next_timer())
        self._parked = scope
        self._next_change.park_scope(scope)

    def _unpark(self, scope: anyio.CancelScope) -> None:
        if self._parked is scope:
            self._parked = None
            self._next_change.unpark_scope(scope)

    # --- iteration ------------------------------------------------------------

    async def __anext__(self) -> Event[T]:
        """Return the next event, waiting for one if needed.

        Checks for cancellation whenever it waits and at least every 64
        buffered events.

        Raises:
            StopAsyncIteration: after ``stop()``, or when the watch ended
                (timeout, cache closed, or after its ERROR event).
        """
        if self._pending:
            self._budget -= 1
            if self._budget:
                return self._pop()
            self._budget = CHECK_EVERY
            await checkpoint_if_cancelled()
        elif self._ready():  # otherwise the wait below is the checkpoint
            await checkpoint_if_cancelled()
        return await self._poll_or_wait()


def _bookmark(cache: WatchCache[Any], rv: int, *, initial_end: bool = False) -> Event[JSONObject]:
    metadata: JSONObject = {"resourceVersion": str(rv)}
    if initial_end:
        metadata["annotations"] = {INITIAL_EVENTS_ANNOTATION: "true"}
    return Event(
        EventType.BOOKMARK,
        {"kind": cache.kind, "apiVersion": cache.api_version, "metadata": metadata},
    )
