"""The watch cache: current objects, a window of recent events, resume, 410, bookmarks.

Two layers, as in h11:

* ``_EventWindow`` is pure (no ``await``, no anyio): it holds the current
  objects and a bounded window of recent changes, numbered by
  resourceVersion (RV), and answers questions with data: *where* a watch
  from RV ``N`` starts (a position in the window, found by binary search, so
  resuming costs O(log n) whatever the window size), whether ``N`` is too
  old (a 410 ``StatusError``) or too new (wait for it), what the state was at
  an older RV (for ``resourceVersionMatch=Exact`` and continue tokens).
* [`WatchCache`][k8swatch.WatchCache] is the anyio shell: it feeds the
  window (``apply()`` numbers changes itself, ``ingest()`` takes entries
  already numbered by an [event log][k8swatch.EventLog]), wakes
  sleeping watchers once per batch, and carries out the window's plans.

Fan-out: every watcher is a cursor (an absolute position) into the one
shared window. A write never waits for a watcher; a watcher that falls so far
behind that its next change was evicted gets one ``ERROR`` event with a 410
``Expired`` Status and ends, so nothing is ever dropped silently. Bookmarks
and ``timeoutSeconds`` are deadlines computed inside the watcher's own
iteration: no task per watcher.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Generic, cast

import anyio
import anyio.lowlevel
import attrs
from anyio.lowlevel import checkpoint_if_cancelled
from typing_extensions import TypeVar, final

from ._eventlog import LogEntry, LogSnapshot, object_key, with_resource_version
from ._events import Event, EventType
from ._filters import (
    DEFAULT_SUPPORTED_FIELDS,
    GetAttrsFunc,
    ObjectAttrs,
    SelectionPredicate,
    default_get_attrs,
)
from ._json import JSONObject
from ._options import (
    RESOURCE_VERSION_MATCH_EXACT,
    ListOptions,
    parse_watch_resource_version,
    validate_list_resource_version,
)
from ._status import StatusCause, StatusError, bad_request, expired, timeout
from ._storage import ObjectList
from ._watch import CHECK_EVERY, Watch, _PollableWatch, wait_until

__all__ = ["INITIAL_EVENTS_ANNOTATION", "WatchCache", "decode_continue", "encode_continue"]

T = TypeVar("T", bound=Mapping[str, Any], default=dict[str, Any])


INITIAL_EVENTS_ANNOTATION: Final = "k8s.io/initial-events-end"
"""Annotation on the bookmark that ends the initial events of a ``sendInitialEvents`` watch."""

_CONTINUE_VERSION: Final = "meta.k8s.io/v1"
_BOOKMARK_BEFORE_TIMEOUT: Final = 2.0
_MAX_BATCH: Final = 1024
"""At most this many changes per wake-up: a resume far back costs the same to start."""


def _too_old(requested: int, oldest: int) -> StatusError:
    return expired(f"too old resource version: {requested} ({oldest})")


def _too_large(requested: int, current: int) -> StatusError:
    return timeout(
        f"Too large resource version: {requested}, current: {current}",
        1,
        causes=(
            StatusCause(reason="ResourceVersionTooLarge", message="Too large resource version"),
        ),
    )


def _continue_expired() -> StatusError:
    return expired(
        "The provided continue parameter is too old to display a consistent list result. "
        "You can start a new list without the continue parameter."
    )


def encode_continue(resource_version: int, start: str) -> str:
    """Encode a continue token: list at *resource_version*, keys from *start* on.

    The format is kube-apiserver's: unpadded URL-safe base64 of
    ``{"v":"meta.k8s.io/v1","rv":<rv>,"start":"<key>"}``. Clients treat it as opaque.
    """
    raw = json.dumps(
        {"v": _CONTINUE_VERSION, "rv": resource_version, "start": start}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, str]:
    """Decode a continue token into ``(resource_version, start_key)``.

    Raises:
        StatusError: 400 BadRequest ``invalid continue token: continue key is
            not valid: <detail>``.
    """

    def fail(detail: str) -> StatusError:
        return bad_request(f"invalid continue token: continue key is not valid: {detail}")

    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise fail(f"illegal base64 data: {exc}") from None
    try:
        data: Any = json.loads(raw)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not isinstance(data, dict):
        raise fail("the token is not a JSON object")
    fields = cast("dict[str, Any]", data)
    if fields.get("v") != _CONTINUE_VERSION:
        raise fail("server does not recognize this encoded version")
    rv = fields.get("rv")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv <= 0:
        raise fail(f"incorrect encoded start resourceVersion (version {_CONTINUE_VERSION})")
    start = fields.get("start")
    if not isinstance(start, str) or not start:
        raise fail("encoded start key empty")
    return rv, start


def _key_of(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        raise ValueError("object has no metadata")
    meta = cast("Mapping[str, Any]", metadata)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("object has no metadata.name")
    namespace = meta.get("namespace") or ""
    return object_key(str(namespace), name)


@final
class _Change:
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
        self.verdicts: dict[str, _Outcome] | None = None
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
    ) -> _Outcome:
        """What a watcher with selector *match* gets for this change (§5.6)."""
        prev = self.prev
        old = prev is not None and match(self.prev_attrs(get_attrs))
        if self.event.type is EventType.DELETED:
            if old or (prev is None and match(self.attrs(get_attrs))):
                return _SAME
            return _NOTHING
        if match(self.attrs(get_attrs)):
            return _SAME if old else _NOW_ADDED
        return _NOW_DELETED if old else _NOTHING

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
class _Outcome:
    """What a change means to one selector (a sentinel with a readable repr)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_NOTHING: Final = _Outcome("NOTHING")
_SAME: Final = _Outcome("SAME")
_NOW_ADDED: Final = _Outcome("NOW_ADDED")
_NOW_DELETED: Final = _Outcome("NOW_DELETED")


@final
class _Unset:
    """Marks a lazily computed value that was not computed yet."""

    __slots__ = ()


_UNSET: Final = _Unset()


def _rv_of_change(change: _Change) -> int:
    return change.rv


@attrs.frozen
class _Start:
    """Plan: start reading at *position*, skipping RVs <= *after*; send *initial* first."""

    position: int
    after: int
    initial: tuple[JSONObject, ...] | None = None


@attrs.frozen
class _Wait:
    """Plan: wait until the cache reaches *resource_version*, then plan again."""

    resource_version: int


_Plan = _Start | _Wait | StatusError


@attrs.define(eq=False)
class _EventWindow:
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
    _changes: list[_Change] = attrs.field(factory=lambda: list[_Change]())
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

    def add(self, rv: int, kind: EventType, key: str, obj: JSONObject) -> _Change | None:
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
        change = _Change(rv, key, Event(kind, obj), prev)
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

    def changes_from(self, position: int, limit: int | None = None) -> list[_Change] | None:
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
            return _too_old(rv, self.resumable_from)
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

    def plan_watch(self, requested: int, exact: bool, initial: bool, minimum: int) -> _Plan:
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
                return _Wait(wanted)
            keys = self.sorted_keys()
            objects = self.objects
            return _Start(self.end, self.resource_version, tuple(objects[k] for k in keys))
        if not exact:
            if minimum > self.resource_version:
                return _Wait(minimum)
            return _Start(self.end, self.resource_version)
        if requested >= self.resource_version:
            return _Start(self.end, requested)
        position = self.position_after(requested)
        if isinstance(position, StatusError):
            return position
        return _Start(position, requested)


_EVICTED: Final = _Change(0, "", Event(EventType.BOOKMARK, {}), None)


@final
class WatchCache(Generic[T]):
    """Current objects plus a bounded window of recent events, as kube-apiserver's cacher.

    Every change gets a monotonically increasing integer resourceVersion,
    written into ``metadata.resourceVersion`` of the stored object. Lists
    are served from the current state with a resourceVersion a later watch
    can resume from; watches replay the window from any RV it still covers.
    Objects are Kubernetes-shaped dicts keyed by ``namespace/name``; stored
    objects and events are shared, so treat them as read-only.

    Feed the cache either with [`apply`][k8swatch.WatchCache.apply] (the
    cache numbers the changes) or with [`ingest`][k8swatch.WatchCache.ingest]
    (entries numbered by an event log), not both.

    Args:
        api_version: ``apiVersion`` of bookmark objects (e.g. ``example.com/v1``).
        kind: ``kind`` of bookmark objects (e.g. ``Widget``).
        resource: Plural resource name, for error messages (default: lowercase
            *kind* + ``s``).
        group: API group, for error messages (default: from *api_version*).
        window: How many recent events to keep for resuming (>= 1).
        bookmark_interval: Seconds between bookmarks on an idle watch that
            asked for them (``allowWatchBookmarks``).
        wait_timeout: Seconds to wait for a resourceVersion newer than the
            cache before answering 504 ``Too large resource version``.
        get_attrs: Extracts ``(labels, fields)`` for selectors.
        supported_fields: Fields allowed in a field selector.
    """

    def __init__(
        self,
        api_version: str = "v1",
        kind: str = "",
        *,
        resource: str = "",
        group: str | None = None,
        window: int = 1000,
        bookmark_interval: float = 60.0,
        wait_timeout: float = 3.0,
        get_attrs: GetAttrsFunc = default_get_attrs,
        supported_fields: Iterable[str] = DEFAULT_SUPPORTED_FIELDS,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if bookmark_interval <= 0:
            raise ValueError(f"bookmark_interval must be > 0, got {bookmark_interval}")
        if wait_timeout < 0:
            raise ValueError(f"wait_timeout must be >= 0, got {wait_timeout}")
        self.api_version = api_version
        self.kind = kind
        self.resource: str = resource or (kind.lower() + "s" if kind else "")
        self.group: str = group if group is not None else api_version.rpartition("/")[0]
        self.bookmark_interval = bookmark_interval
        self.wait_timeout = wait_timeout
        self.get_attrs = get_attrs
        self.supported_fields: frozenset[str] = frozenset(supported_fields)
        self._window = _EventWindow(window)
        # Watchers with nothing to read wait on one shared wake-up, or park a
        # cancel scope (a StopAwareWatch waiting for "events or done").
        self._wakeup: anyio.Event | None = None
        self._waiting = 0
        self._parked: dict[anyio.CancelScope, None] = {}
        self._closed = False

    # -- state ------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The RV of the newest change the cache holds (its freshness)."""
        return self._window.resource_version

    @property
    def oldest_resource_version(self) -> int:
        """The oldest RV a watch can resume from; older ones get 410 Expired."""
        return self._window.resumable_from

    @property
    def window(self) -> int:
        """How many recent events the cache keeps."""
        return self._window.capacity

    @property
    def closed(self) -> bool:
        """True after [`close`][k8swatch.WatchCache.close]."""
        return self._closed

    def __len__(self) -> int:
        """The number of current objects."""
        return len(self._window.objects)

    def get(self, namespace: str, name: str) -> T | None:
        """Return the current object *namespace*/*name* (shared, read-only), or None."""
        return cast("T | None", self._window.objects.get(object_key(namespace, name)))

    # -- feeding ------------------------------------------------------------------

    def apply(self, type: EventType, obj: Mapping[str, Any]) -> Event[T]:
        """Record a change; return the stored event (numbered with the next RV).

        The stored object is a copy of *obj*'s top level and ``metadata``
        with ``metadata.resourceVersion`` set; nested values are shared with
        *obj*, so do not mutate *obj* afterwards. ``DELETED`` keeps *obj* as
        the last state. Never waits; sleeping watchers wake once.

        Raises:
            ValueError: *type* is not ADDED/MODIFIED/DELETED, or *obj* has no
                ``metadata.name``.
            RuntimeError: The cache is closed.
        """
        if type not in (EventType.ADDED, EventType.MODIFIED, EventType.DELETED):
            raise ValueError(f"apply() records ADDED, MODIFIED or DELETED, not {type}")
        if self._closed:
            raise RuntimeError("the watch cache is closed")
        key = _key_of(obj)
        rv = self._window.resource_version + 1
        change = self._window.add(rv, type, key, with_resource_version(obj, rv))
        assert change is not None
        self._wake()
        return cast("Event[T]", change.event)

    def ingest(self, entries: Sequence[LogEntry], *, wake: bool = True) -> int:
        """Add changes already numbered by an event log, in log order.

        Entries with an RV not newer than the cache's are skipped (so the
        same entries may be handed over twice); returns how many were added.
        Sleeping watchers wake once per call; with ``wake=False`` they sleep
        on until `wake()` (a feeder that gathers several batches into one
        wake-up). Watchers that are not asleep see the changes at once either way.

        Raises:
            RuntimeError: The cache is closed.
        """
        if self._closed:
            raise RuntimeError("the watch cache is closed")
        window = self._window
        if not entries or entries[-1].resource_version <= window.resource_version:
            return 0  # all seen already (e.g. concurrent catch-ups read the same batch)
        added = 0
        for entry in entries:
            if window.add(entry.resource_version, entry.type, entry.key, entry.object):
                added += 1
        if added and wake:
            self._wake()
        return added

    def wake(self) -> None:
        """Wake every sleeping watcher (and `wait_for`) to take what the cache holds now.

        Only needed after `ingest(..., wake=False)`; never waits.
        """
        self._wake()

    def reset(self, snapshot: LogSnapshot) -> None:
        """Replace the cache's content by *snapshot* (e.g. after the log was trimmed).

        Open watches cannot be continued across the jump: each gets one
        ``ERROR`` event with a 410 Expired Status and ends, so its client relists.
        """
        self._window.reset(snapshot.resource_version, snapshot.objects)
        self._wake()

    def close(self) -> None:
        """Close the cache: open watches end (after what they already read); idempotent."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        """Wake every waiting reader once (called once per batch of changes)."""
        if self._wakeup is not None:
            self._release()
        parked = self._parked
        if parked:
            self._parked = {}
            for scope in parked:
                scope.cancel()

    def _release(self) -> None:
        """Set the shared wake-up; waiting watchers re-check and wait again if need be."""
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            self._waiting = 0
            wakeup.set()

    async def _next_change(self, deadline: float = math.inf) -> None:
        """Wait for the next batch of changes (or close, reset, a watcher's stop), or *deadline*."""
        wakeup = self._wakeup
        if wakeup is None:
            wakeup = self._wakeup = anyio.Event()
        self._waiting += 1
        try:
            await wait_until(wakeup, deadline)
        finally:
            if not wakeup.is_set():  # cancelled or timed out: still counted
                self._waiting -= 1

    async def wait_for(self, resource_version: int, timeout: float | None = None) -> None:
        """Wait until the cache holds *resource_version* (``wait_timeout`` seconds by default).

        Raises:
            StatusError: 504 Timeout ``Too large resource version: N, current: M``
                (cause ``ResourceVersionTooLarge``, ``retryAfterSeconds`` 1).
        """
        if self._window.resource_version >= resource_version:
            return
        deadline = anyio.current_time() + (self.wait_timeout if timeout is None else timeout)
        while (
            self._window.resource_version < resource_version
            and not self._closed
            and anyio.current_time() < deadline
        ):
            await self._next_change(deadline)
        if self._window.resource_version < resource_version:
            raise _too_large(resource_version, self._window.resource_version)

    # -- list -----------------------------------------------------------------------

    def _predicate(self, namespace: str, options: ListOptions | None) -> SelectionPredicate:
        return SelectionPredicate.from_list_options(
            namespace, options, get_attrs=self.get_attrs, supported_fields=self.supported_fields
        )

    async def list(
        self, namespace: str, options: ListOptions | None = None, *, min_resource_version: int = 0
    ) -> ObjectList:
        """List the objects of *namespace* (``""``: all) matching *options*.

        resourceVersion rules (kube-apiserver's, see the docs' "resource
        versions" page): ``""``/``"0"`` serve the current state; ``N`` with
        ``resourceVersionMatch=Exact`` (or with ``limit`` and no match) the
        state exactly at ``N``; ``N`` otherwise a state not older than ``N``.
        A newer ``N`` than the cache is waited for up to ``wait_timeout``.
        ``limit``/``continue`` paginate in key order with opaque tokens; every
        page of one list is served at the first page's resourceVersion.
        The items are shared: treat them as read-only.

        Args:
            namespace: The namespace, or ``""`` for every namespace.
            options: The (validated) list options.
            min_resource_version: An RV the cache must reach first (used by
                storages for consistent reads of an external log).

        Raises:
            StatusError: 400 for bad selectors, tokens or resourceVersions;
                410 Expired for an RV or continue token older than the
                window; 504 Timeout for an RV the cache does not reach in time.
        """
        options = options or ListOptions()
        predicate = self._predicate(namespace, options)
        start = ""
        if options.continue_token:
            list_rv, start = decode_continue(options.continue_token)
            validate_list_resource_version(options)
            state = self._window.state_at(list_rv)
            if isinstance(state, StatusError) or list_rv > self._window.resource_version:
                # Out of the window, or from another incarnation of the cache.
                raise _continue_expired()
        else:
            requested = validate_list_resource_version(options)
            wanted = max(requested, min_resource_version)
            if wanted > self._window.resource_version:
                await self.wait_for(wanted)
            exact = requested > 0 and (
                options.resource_version_match == RESOURCE_VERSION_MATCH_EXACT
                or (not options.resource_version_match and options.limit > 0)
            )
            if exact:
                list_rv = requested
                state = self._window.state_at(requested)
                if isinstance(state, StatusError):
                    raise state
            else:
                list_rv = self._window.resource_version
                state = self._window.objects
        window = self._window
        keys = window.sorted_keys() if state is window.objects else sorted(state)
        return _paginate(state, keys, start, namespace, predicate, options.limit, list_rv)

    # -- watch ----------------------------------------------------------------------

    async def watch(
        self, namespace: str, options: ListOptions | None = None, *, min_resource_version: int = 0
    ) -> Watch[T]:
        """Watch the objects of *namespace* (``""``: all) matching *options*.

        * resourceVersion ``""``/``"0"``: synthetic ``ADDED`` for every current
          object, then live events;
        * ``N`` inside the window: exactly the events after ``N``, then live
          (no gap, no duplicate); ``N`` older than the window: one ``ERROR``
          event (410 ``too old resource version: N (M)``), then the end; ``N``
          newer than the cache: events start once they pass ``N``;
        * ``sendInitialEvents=true``: ``ADDED`` for the state at (at least)
          ``N``, waiting up to ``wait_timeout`` for the cache to reach it (else
          one 504 ``ERROR``), then, with ``allowWatchBookmarks``, a
          ``BOOKMARK`` annotated ``k8s.io/initial-events-end: "true"``, then live;
          ``sendInitialEvents=false``: no initial state;
        * ``allowWatchBookmarks``: a ``BOOKMARK`` after ``bookmark_interval``
          seconds without events, and about 2 s before the timeout;
        * ``timeoutSeconds``: the stream ends cleanly after that long;
        * selectors apply to replayed and live events, with transitions: an
          object that starts matching arrives as ``ADDED``, one that stops
          matching as ``DELETED``.

        A watcher that falls behind by more than the window gets one 410
        ``ERROR`` event and ends. Events are shared: treat them as read-only.

        Args:
            namespace: The namespace, or ``""`` for every namespace.
            options: The (defaulted, validated) watch options.
            min_resource_version: An RV the cache must reach before the initial
                state is taken (consistent reads of an external log).

        Raises:
            StatusError: 400 for bad selectors; 422 Invalid for a
                resourceVersion that is not a decimal.
        """
        options = options or ListOptions(watch=True)
        predicate = self._predicate(namespace, options)
        requested = parse_watch_resource_version(
            options.resource_version, self.resource, group=self.group
        )
        exact = options.resource_version not in ("", "0")
        initial = options.send_initial_events is True or (
            options.send_initial_events is None and not exact
        )
        end_bookmark = options.send_initial_events is True and options.allow_watch_bookmarks
        seconds = options.timeout_seconds
        watcher: _CacheWatcher[T] = _CacheWatcher(
            self,
            predicate,
            requested,
            exact=exact,
            initial=initial,
            minimum=min_resource_version,
            end_bookmark=end_bookmark,
            bookmarks=options.allow_watch_bookmarks,
            timeout=float(seconds) if seconds is not None and seconds > 0 else None,
        )
        await anyio.lowlevel.checkpoint()
        return watcher

    def _bookmark(self, rv: int, *, initial_end: bool = False) -> Event[JSONObject]:
        metadata: JSONObject = {"resourceVersion": str(rv)}
        if initial_end:
            metadata["annotations"] = {INITIAL_EVENTS_ANNOTATION: "true"}
        return Event(
            EventType.BOOKMARK,
            {"kind": self.kind, "apiVersion": self.api_version, "metadata": metadata},
        )


def _paginate(
    state: Mapping[str, JSONObject],
    keys: Sequence[str],
    start: str,
    namespace: str,
    predicate: SelectionPredicate,
    limit: int,
    list_rv: int,
) -> ObjectList:
    lo = 0
    hi = len(keys)
    if namespace:
        # Keys are "namespace/name": one namespace is one contiguous run.
        lo = bisect.bisect_left(keys, namespace + "/")
        hi = bisect.bisect_left(keys, namespace + "0", lo)
    if start:
        lo = max(lo, bisect.bisect_left(keys, start))
    match = predicate.matches
    select_all = predicate.empty or (
        bool(namespace) and predicate.label.empty and predicate.field.empty
    )
    items: list[JSONObject] = []
    if limit <= 0:
        if select_all:
            items = [state[k] for k in keys[lo:hi]]
        else:
            items = [obj for k in keys[lo:hi] if match(obj := state[k])]
        return _object_list(items, str(list_rv))
    index = lo
    while index < hi and len(items) < limit:
        obj = state[keys[index]]
        index += 1
        if select_all or match(obj):
            items.append(obj)
    more = index < hi if select_all else any(match(state[k]) for k in keys[index:hi])
    if not more:
        return _object_list(items, str(list_rv))
    token = encode_continue(list_rv, keys[index - 1] + "\x00")
    remaining = hi - index if select_all else None
    return _object_list(items, str(list_rv), token, remaining)


def _object_list(
    items: list[JSONObject], rv: str, token: str = "", remaining: int | None = None
) -> ObjectList:
    return ObjectList(cast("Any", items), rv, token, remaining)


@final
class _CacheWatcher(_PollableWatch[T]):
    """A cursor into a WatchCache's window; see [`WatchCache.watch`][k8swatch.WatchCache.watch].

    Reading never blocks the cache: ``_poll``/``_poll_batch`` take what is
    there; a reader with nothing to read waits on the cache's one shared
    wake-up (``_wait_readable``), or parks a cancel scope with it (``_park``,
    how ``stop_aware_watch`` waits without a helper task). Time-driven events
    (bookmarks, the end at ``timeoutSeconds``, the 504 of a resourceVersion
    that never came) are produced by the next poll once their time is due;
    waits end at that time.
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
        "_parked",
        "_pending",
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
        "_waiting_on",
    )

    def __init__(
        self,
        cache: WatchCache[Any],
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
        self._cache: WatchCache[Any] | None = cache
        self._predicate = predicate
        self._selector_key = f"{predicate.namespace}\x00{predicate.label}\x00{predicate.field}"
        self._requested = requested
        self._exact = exact
        self._initial = initial
        self._minimum = minimum
        self._end_bookmark = end_bookmark
        self._bookmarks = bookmarks
        self._pending: deque[Event[JSONObject]] = deque()
        self._stopped = False
        self._started = False
        self._position = 0
        self._planned_at = 0
        self._last_rv = requested
        self._epoch = cache._window.epoch
        self._parked: anyio.CancelScope | None = None
        self._waiting_on: WatchCache[Any] | None = None
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
        self._pending.clear()
        self._detach()

    def _detach(self) -> None:
        """Let go of the cache and end this watcher's wait, if any."""
        cache = self._cache
        self._cache = None
        parked = self._parked
        if parked is not None:
            self._parked = None
            if cache is not None:
                cache._parked.pop(parked, None)
            parked.cancel()
        waiting_on = self._waiting_on
        if waiting_on is not None:
            # The wake-up is shared: set it (the others re-check and wait
            # again) so that this watcher sees that it is over.
            self._waiting_on = None
            waiting_on._release()

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
        window = cache._window
        self._planned_at = window.resource_version
        plan = window.plan_watch(self._requested, self._exact, self._initial, self._minimum)
        if isinstance(plan, StatusError):
            self._finish(plan)
            return False
        if isinstance(plan, _Wait):
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
                pending.append(cache._bookmark(plan.after, initial_end=True))
        return True

    def _collect(self, cache: WatchCache[Any]) -> None:
        """Move every available change into ``_pending`` (or end with 410)."""
        window = cache._window
        if not self._started:
            self._epoch = window.epoch
            if not self._plan():
                if cache._closed:
                    self._finish(None)
                elif anyio.current_time() >= self._wait_deadline:
                    wanted = max(self._minimum, self._requested if self._exact else 0)
                    self._finish(_too_large(wanted, window.resource_version))
                return
            self._retime()
        if self._epoch != window.epoch:
            self._finish(_too_old(self._last_rv, window.resumable_from))
            return
        changes = window.changes_from(self._position, _MAX_BATCH)
        if changes is None:
            self._finish(_too_old(self._last_rv, window.resumable_from))
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
                if outcome is _SAME:
                    pending.append(change.event)
                elif outcome is _NOW_ADDED:
                    pending.append(change.added_event())
                elif outcome is _NOW_DELETED:
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
        if cache._closed:
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
                rv = max(self._last_rv, cache._window.resource_version)
                self._pending.append(cache._bookmark(rv))

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

    def _poll(self) -> Event[T] | None:
        if not self._available():
            return None
        return cast("Event[T]", self._pending.popleft())

    def _poll_batch(self) -> Sequence[Event[T]] | None:
        if not self._available():
            return None
        batch = list(self._pending)
        self._pending.clear()
        return cast("list[Event[T]]", batch)

    def _ready(self) -> bool:
        cache = self._cache
        if self._pending or cache is None or cache._closed:
            return True
        window = cache._window
        if self._epoch != window.epoch:
            return True
        if self._started:
            if self._position < window.end:
                return True
        elif window.resource_version != self._planned_at:
            return True  # it may start now
        return self._timed and anyio.current_time() >= self._next_timer()

    async def _wait_readable(self, deadline: float = math.inf) -> None:
        cache = self._cache
        if cache is None:
            await anyio.lowlevel.checkpoint()
            return
        if self._timed:
            deadline = min(deadline, self._next_timer())
        self._waiting_on = cache
        try:
            await cache._next_change(deadline)
        finally:
            self._waiting_on = None

    def _park(self, scope: anyio.CancelScope) -> None:
        if self._ready():
            scope.cancel()
            return
        cache = self._cache
        assert cache is not None
        if self._timed:
            scope.deadline = min(scope.deadline, self._next_timer())
        self._parked = scope
        cache._parked[scope] = None

    def _unpark(self, scope: anyio.CancelScope) -> None:
        if self._parked is scope:
            self._parked = None
            cache = self._cache
            if cache is not None:
                cache._parked.pop(scope, None)

    # --- iteration ------------------------------------------------------------

    async def __anext__(self) -> Event[T]:
        """Return the next event, waiting for one if needed.

        Checks for cancellation whenever it waits and at least every 64
        buffered events.

        Raises:
            StopAsyncIteration: after ``stop()``, or when the watch ended
                (timeout, cache closed, or after its ERROR event).
        """
        pending = self._pending
        if pending:
            self._budget -= 1
            if self._budget:
                return cast("Event[T]", pending.popleft())
            self._budget = CHECK_EVERY
            await checkpoint_if_cancelled()
        elif self._ready():  # otherwise the wait below is the checkpoint
            await checkpoint_if_cancelled()
        return await self._poll_or_wait()
