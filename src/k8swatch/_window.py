"""The pure core of the watch cache: current objects and a window of recent changes.

``EventWindow`` has no ``await`` and no anyio: it holds the current objects
and a bounded window of recent changes, numbered by resourceVersion (RV), and
answers questions with data: *where* a watch from RV ``N`` starts (a position
in the window, found by binary search, so resuming costs O(log n) whatever the
window size), whether ``N`` is too old (a 410 ``StatusError``) or too new (wait
for it), what the state was at an older RV (for ``resourceVersionMatch=Exact``
and continue tokens). [`WatchCache`][k8swatch.WatchCache] is its anyio shell.

Each change also caches what watchers compute about it (its objects'
labels and fields, the outcome per selector), so watchers that share a
selector share the work.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
from typing_extensions import final

from ._eventlog import with_resource_version
from ._events import Event, EventType
from ._filters import GetAttrsFunc, ObjectAttrs
from ._json import JSONObject
from ._status import StatusCause, StatusError, expired
from ._status import timeout as timeout_error

__all__ = [
    "NOTHING",
    "NOW_ADDED",
    "NOW_DELETED",
    "SAME",
    "Change",
    "EventWindow",
    "Outcome",
    "Plan",
    "Start",
    "Wait",
    "too_large",
    "too_old",
]


def too_old(requested: int, oldest: int) -> StatusError:
    """The 410 Expired of a resourceVersion older than the window."""
    return expired(f"too old resource version: {requested} ({oldest})")


def too_large(requested: int, current: int) -> StatusError:
    """The 504 Timeout of a resourceVersion the cache did not reach in time."""
    return timeout_error(
        f"Too large resource version: {requested}, current: {current}",
        1,
        causes=(
            StatusCause(reason="ResourceVersionTooLarge", message="Too large resource version"),
        ),
    )


@final
class Change:
    """One change in the window: its RV, key, the shared event and the previous state."""

    __slots__ = (
        "_added",
        "_attrs",
        "_deleted",
        "_prev_attrs",
        "event",
        "key",
        "prev",
        "rv",
        "verdicts",
    )

    def __init__(
        self, rv: int, key: str, event: Event[JSONObject], prev: JSONObject | None
    ) -> None:
        self.rv = rv
        self.key = key
        self.event = event
        self.prev = prev
        self._deleted: Event[JSONObject] | None = None
        self._added: Event[JSONObject] | None = None
        self.verdicts: dict[str, Outcome] | None = None
        self._attrs: ObjectAttrs | _Unset | None = _UNSET
        self._prev_attrs: ObjectAttrs | _Unset | None = _UNSET

    def attrs(self, get_attrs: GetAttrsFunc) -> ObjectAttrs | None:
        """``(labels, fields)`` of the new object, computed once for every watcher."""
        value = self._attrs
        if isinstance(value, _Unset):
            value = self._attrs = get_attrs(self.event.object)
        return value

    def prev_attrs(self, get_attrs: GetAttrsFunc) -> ObjectAttrs | None:
        """``(labels, fields)`` of the previous object (call only when there is one)."""
        value = self._prev_attrs
        if isinstance(value, _Unset):
            value = self._prev_attrs = get_attrs(self.prev)
        return value

    def outcome(
        self, match: Callable[[ObjectAttrs | None], bool], get_attrs: GetAttrsFunc
    ) -> Outcome:
        """What a watcher with selector *match* gets for this change (§5.6)."""
        prev = self.prev
        old = prev is not None and match(self.prev_attrs(get_attrs))
        if self.event.type is EventType.DELETED:
            if old or (prev is None and match(self.attrs(get_attrs))):
                return SAME
            return NOTHING
        if match(self.attrs(get_attrs)):
            return SAME if old else NOW_ADDED
        return NOW_DELETED if old else NOTHING

    def added_event(self) -> Event[JSONObject]:
        """The ADDED event for a watcher whose selector starts matching (§5.6), shared."""
        if self._added is None:
            self._added = Event(EventType.ADDED, self.event.object)
        return self._added

    def deleted_event(self) -> Event[JSONObject]:
        """The DELETED event for a watcher whose selector stops matching (§5.6), shared."""
        if self._deleted is None:
            assert self.prev is not None
            self._deleted = Event(EventType.DELETED, with_resource_version(self.prev, self.rv))
        return self._deleted


@final
class Outcome:
    """What a change means to one selector (a sentinel with a readable repr)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NOTHING: Final = Outcome("NOTHING")
SAME: Final = Outcome("SAME")
NOW_ADDED: Final = Outcome("NOW_ADDED")
NOW_DELETED: Final = Outcome("NOW_DELETED")


@final
class _Unset:
    """Marks a lazily computed value that was not computed yet."""

    __slots__ = ()


_UNSET: Final = _Unset()


def _rv_of_change(change: Change) -> int:
    return change.rv


@attrs.frozen
class Start:
    """Plan: start reading at *position*, skipping RVs <= *after*; send *initial* first."""

    position: int
    after: int
    initial: tuple[JSONObject, ...] | None = None


@attrs.frozen
class Wait:
    """Plan: wait until the cache reaches *resource_version*, then plan again."""

    resource_version: int


Plan = Start | Wait | StatusError


@attrs.define(eq=False)
class EventWindow:
    """Pure core: current objects plus a bounded window of changes (no I/O).

    Positions are absolute (the n-th change ever added has position n), so a
    cursor stays valid while the window moves; a cursor below ``start`` fell
    out of the window.
    """

    capacity: int
    resource_version: int = 0
    resumable_from: int = 0
    epoch: int = 0
    objects: dict[str, JSONObject] = attrs.field(factory=lambda: dict[str, JSONObject]())
    _changes: list[Change] = attrs.field(factory=lambda: list[Change]())
    # each change's event, in step with _changes: watchers without a selector
    # take slices of it (copied in C) rather than collecting events one by one
    _events: list[Event[Any]] = attrs.field(factory=lambda: list[Event[Any]]())
    _head: int = 0
    _offset: int = 0
    _sorted_keys: list[str] | None = None

    @property
    def start(self) -> int:
        """Position of the oldest change still in the window."""
        return self._offset + self._head

    @property
    def end(self) -> int:
        """Position after the newest change."""
        return self._offset + len(self._changes)

    def __len__(self) -> int:
        return len(self._changes) - self._head

    def add(self, rv: int, kind: EventType, key: str, obj: JSONObject) -> Change | None:
        """Record a change with RV *rv* (> the current RV); *obj* already carries it.

        Returns None (and records nothing) for an RV not newer than the
        window's, so entries read twice are ignored.
        """
        if rv <= self.resource_version:
            return None
        prev = self.objects.get(key)
        if kind is EventType.DELETED:
            if prev is not None:
                del self.objects[key]
                self._sorted_keys = None
        else:
            if prev is None:
                self._sorted_keys = None
            self.objects[key] = obj
        change = Change(rv, key, Event(kind, obj), prev)
        self._changes.append(change)
        self._events.append(change.event)
        self.resource_version = rv
        if len(self._changes) - self._head > self.capacity:
            self.resumable_from = self._changes[self._head].rv
            self._changes[self._head] = _EVICTED
            self._events[self._head] = _EVICTED.event
            self._head += 1
            if self._head >= 1024 and self._head * 2 >= len(self._changes):
                del self._changes[: self._head]
                del self._events[: self._head]
                self._offset += self._head
                self._head = 0
        return change

    def reset(self, resource_version: int, objects: Mapping[str, JSONObject]) -> None:
        """Replace everything by *objects* at *resource_version*; old cursors become invalid."""
        self.objects = dict(objects)
        self._sorted_keys = None
        self._offset = self.end
        self._changes = []
        self._events = []
        self._head = 0
        self.resource_version = resource_version
        self.resumable_from = resource_version
        self.epoch += 1

    def sorted_keys(self) -> list[str]:
        """The keys of the current objects, sorted (cached until a key appears or goes)."""
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self.objects)
        return self._sorted_keys

    def events_at(self, position: int, count: int) -> list[Event[Any]]:
        """The events of the *count* changes from *position* on (all in the window)."""
        index = position - self._offset
        return self._events[index : index + count]

    def changes_from(self, position: int, limit: int | None = None) -> list[Change] | None:
        """Up to *limit* changes from *position* on, or None when *position* was evicted."""
        if position < self.start:
            return None
        index = position - self._offset
        if index >= len(self._changes):
            return []
        if limit is None:
            return self._changes[index:]
        return self._changes[index : index + limit]

    def position_after(self, rv: int) -> int | StatusError:
        """The position of the first change with an RV > *rv*, or the 410 when *rv* is too old.

        Binary search: O(log n) in the window size.
        """
        if rv < self.resumable_from:
            return too_old(rv, self.resumable_from)
        index = bisect.bisect_right(self._changes, rv, lo=self._head, key=_rv_of_change)
        return self._offset + index

    def state_at(self, rv: int) -> dict[str, JSONObject] | StatusError:
        """The objects as they were at *rv* (undoing newer changes), or 410 when not covered."""
        if rv >= self.resource_version:
            return self.objects
        position = self.position_after(rv)
        if isinstance(position, StatusError):
            return position
        state = dict(self.objects)
        changes = self._changes
        for index in range(len(changes) - 1, position - self._offset - 1, -1):
            change = changes[index]
            if change.prev is None:
                state.pop(change.key, None)
            else:
                state[change.key] = change.prev
        return state

    def plan_watch(self, requested: int, exact: bool, initial: bool, minimum: int) -> Plan:
        """Decide where a watch starts.

        Args:
            requested: The parsed resourceVersion (0 for ``""``/``"0"``).
            exact: A specific RV was given (not ``""``/``"0"``).
            initial: Send the current state first (``sendInitialEvents=true``,
                or the legacy ``""``/``"0"`` watch).
            minimum: The RV the cache must reach before an initial-state
                watch starts (consistent reads); 0 for none.
        """
        if initial:
            wanted = max(minimum, requested if exact else 0)
            if wanted > self.resource_version:
                return Wait(wanted)
            keys = self.sorted_keys()
            objects = self.objects
            return Start(self.end, self.resource_version, tuple(objects[k] for k in keys))
        if not exact:
            if minimum > self.resource_version:
                return Wait(minimum)
            return Start(self.end, self.resource_version)
        if requested >= self.resource_version:
            return Start(self.end, requested)
        position = self.position_after(requested)
        if isinstance(position, StatusError):
            return position
        return Start(position, requested)


_EVICTED: Final = Change(0, "", Event(EventType.BOOKMARK, {}), None)
