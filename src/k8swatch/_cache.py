"""The watch cache: current objects, a window of recent events, resume, 410, bookmarks.

Two layers, as in h11:

* ``EventWindow`` (``_window.py``) is pure (no ``await``, no anyio): it
  holds the current objects and a bounded window of recent changes,
  numbered by resourceVersion (RV), and answers questions with data: where
  a watch from RV ``N`` starts, whether ``N`` is too old (a 410) or too new
  (wait for it), what the state was at an older RV.
* [`WatchCache`][k8swatch.WatchCache] is the anyio shell: it feeds the
  window (``apply()`` numbers changes itself, ``ingest()`` takes entries
  already numbered by an [event log][k8swatch.EventLog]), wakes
  sleeping watchers once per batch, serves lists and continue tokens, and
  starts watchers (``_cachewatcher.py``) that carry out the window's plans.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Generic, cast

import anyio
import anyio.lowlevel
from typing_extensions import TypeVar, final

from ._cachewatcher import INITIAL_EVENTS_ANNOTATION, CacheWatcher
from ._eventlog import LogEntry, LogSnapshot, object_key, with_resource_version
from ._events import Event, EventType
from ._filters import (
    DEFAULT_SUPPORTED_FIELDS,
    GetAttrsFunc,
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
from ._parking import ParkingLot
from ._status import StatusError, bad_request, expired
from ._storage import ObjectList
from ._watch import Watch
from ._window import EventWindow, too_large

__all__ = ["INITIAL_EVENTS_ANNOTATION", "WatchCache", "decode_continue", "encode_continue"]

#: Namespaces whose selector-less predicate is kept for sharing (see ``_predicate``).
_MAX_SHARED_PREDICATES = 1024

T = TypeVar("T", bound=Mapping[str, Any], default=dict[str, Any])

_CONTINUE_VERSION: Final = "meta.k8s.io/v1"


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
        self._window = EventWindow(window)
        # Watchers with nothing to read (and wait_for) park here until the
        # next batch of changes.
        self._next_change = ParkingLot()
        self._closed = False
        # The predicate of requests without selectors, per namespace: shared
        # (it is immutable) by the many watches that select everything.
        self._unselective: dict[str, SelectionPredicate] = {}

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
        self._next_change.wake_all()
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
            self._next_change.wake_all()
        return added

    def wake(self, *, within: float = 0.0) -> None:
        """Wake every sleeping watcher (and `wait_for`) to take what the cache holds now.

        Only needed after `ingest(..., wake=False)`; never waits. With
        *within* (seconds), the wake-up is coalesced: it happens at once if
        the watchers were quiet (neither woken nor going back to sleep) for
        that long, else *within* seconds after they last were, together with
        any other wake-up asked for meanwhile. No task is started for it: a
        sleeping watcher keeps time. A feeder uses it to give its watchers
        fewer, bigger batches under load.
        """
        if within > 0:
            self._next_change.wake_all_within(within)
        else:
            self._next_change.wake_all()

    @property
    def wake_ups(self) -> int:
        """How many wake-ups so far woke at least one sleeping watcher."""
        return self._next_change.statistics().wake_ups

    def reset(self, snapshot: LogSnapshot) -> None:
        """Replace the cache's content by *snapshot* (e.g. after the log was trimmed).

        Open watches cannot be continued across the jump: each gets one
        ``ERROR`` event with a 410 Expired Status and ends, so its client relists.
        """
        self._window.reset(snapshot.resource_version, snapshot.objects)
        self._next_change.wake_all()

    def close(self) -> None:
        """Close the cache: open watches end (after what they already read); idempotent."""
        self._closed = True
        self._next_change.wake_all()

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
            await self._next_change.park(deadline)
        if self._window.resource_version < resource_version:
            raise too_large(resource_version, self._window.resource_version)

    # -- list -----------------------------------------------------------------------

    def _predicate(self, namespace: str, options: ListOptions | None) -> SelectionPredicate:
        selective = options is not None and bool(options.label_selector or options.field_selector)
        if not selective:
            predicate = self._unselective.get(namespace)
            if predicate is not None:
                return predicate
        predicate = SelectionPredicate.from_list_options(
            namespace, options, get_attrs=self.get_attrs, supported_fields=self.supported_fields
        )
        if not selective:
            if len(self._unselective) >= _MAX_SHARED_PREDICATES:
                self._unselective.clear()
            self._unselective[namespace] = predicate
        return predicate

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
        watcher: CacheWatcher[T] = CacheWatcher(
            self,
            self._window,
            self._next_change,
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
