"""The event log behind a watch cache: a small backend interface and its in-memory implementation.

A [`WatchCache`][k8swatch.WatchCache] keeps the current objects and a window of
recent events *in memory*; an [`EventLog`][k8swatch.EventLog] is the
source of truth it is fed from. One process with one storage needs nothing
more than [`MemoryEventLog`][k8swatch.MemoryEventLog]; several server
replicas share one log in a shared engine (``k8swatch.redis`` implements it on
Redis Streams) and each replica's cache follows it.

Contract for implementers
-------------------------

A log holds the changes of **one resource** (one kind), in one order:

* Every change is a [`LogEntry`][k8swatch.LogEntry] numbered with a
  **strictly increasing** integer resourceVersion (RV). RVs need not be
  contiguous (a counter shared by several resources leaves gaps), but they
  never repeat and never go backwards, and every reader sees the same order.
* ``append(write)`` applies one [`Write`][k8swatch.Write]
  **atomically and conditionally**: it checks the precondition, assigns the
  next RV, stores the new state of the key and records the entry, all or
  nothing. Preconditions:

  * ``CREATE``: records ``ADDED``; the key must be absent, else
    `PreconditionFailedError` ``AlreadyExists``.
  * ``UPDATE``: records ``MODIFIED``; the key must exist (else ``NotFound``)
    and, when ``expected_resource_version`` is not None, have that RV (else
    ``Conflict``).
  * ``DELETE``: records ``DELETED``; same preconditions as ``UPDATE``.
  * ``PUT``: ``ADDED`` if absent, ``MODIFIED`` if the object differs
    (ignoring ``metadata.resourceVersion``), nothing if identical (returns
    None). Never refused.
  * ``REMOVE``: ``DELETED`` if present, nothing if absent (returns None).

  ``PUT``/``REMOVE`` let several out-of-band pollers report one external
  change without recording it twice. The returned entry's ``object`` carries
  ``metadata.resourceVersion = str(rv)``; for ``DELETED`` it is the last
  state (the write's object when given, else the stored one) with the
  deletion's RV. ``prev_object`` is the state before the change when the log
  knows it (None for ``ADDED``); consumers may ignore it.
* ``read_after(rv, limit=..., wait=False)`` returns the entries with RV
  ``> rv``, oldest first, at most *limit*; an empty sequence means "nothing
  newer yet". With ``wait=True`` it blocks until at least one entry exists
  (cancel it with an anyio cancel scope; it must not swallow cancellation).
  When entries after *rv* were already discarded (retention), it raises a
  410 ``Expired`` [`StatusError`][k8swatch.StatusError] with the message
  ``too old resource version: <rv> (<oldest>)``: a reader can never miss an
  entry silently.
* ``oldest_resource_version()`` is the smallest RV one may still read after
  (``read_after(r)`` is complete for every ``r >=`` it): the RV of the last
  discarded entry, or the RV the log started at (0) when nothing was discarded.
* ``current_resource_version()`` is the RV of the newest entry (0 if none): a
  cache that reached it serves a consistent ("most recent") read.
* ``snapshot()`` returns the current objects and the RV they are at,
  consistently (no entry half-applied): a fresh replica starts from it and
  then reads after its RV.
* Infrastructure failures raise a 503 ``ServiceUnavailable`` ``StatusError``
  and leave nothing half-applied; readers retry.
* ``aclose()`` is idempotent; afterwards every method raises
  ``anyio.ClosedResourceError`` and blocked ``read_after(wait=True)`` calls
  end with it.

Objects are Kubernetes-shaped JSON dicts. A log takes ownership of the
object inside a ``Write`` (the caller must not mutate it afterwards), and the
objects it returns are shared and read-only: copy before mutating.

How a storage uses a log
------------------------

[`MemoryStorage`][k8swatch.MemoryStorage] writes with ``append`` and then
brings its cache up to the returned entry's RV by reading after the cache's
RV (so every entry reaches the cache in log order, also those written by
other replicas meanwhile). Entered with ``async with``, it also runs one
follower task that loops on ``read_after(cache_rv, wait=True)`` and hands
each batch to ``WatchCache.ingest()``, so writes made elsewhere reach local
watchers: N local watchers cost one read, not N. A fresh cache starts from
``snapshot()``; a follower that gets 410 (it fell behind the log's retention)
reloads from ``snapshot()``, and the cache ends its watchers with 410 so
their clients relist. A 503 makes the follower retry with jittered backoff;
watches stay open meanwhile.

Keys are opaque strings; storages use [`object_key`][k8swatch.object_key]
(``"namespace/name"``, or ``"name"`` for cluster-scoped objects).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, cast, runtime_checkable

import anyio
import anyio.lowlevel
import attrs
from typing_extensions import final

from ._events import EventType
from ._json import JSONObject
from ._status import expired

__all__ = [
    "EventLog",
    "LogEntry",
    "LogSnapshot",
    "MemoryEventLog",
    "PreconditionFailedError",
    "Write",
    "WriteOp",
    "object_key",
    "too_old_resource_version",
    "with_resource_version",
]


def object_key(namespace: str, name: str) -> str:
    """Return the log key of an object: ``"namespace/name"``, or ``"name"`` without namespace."""
    return f"{namespace}/{name}" if namespace else name


def too_old_resource_version(requested: int, oldest: int) -> Exception:
    """The 410 Expired error for reading after *requested* when *oldest* is the oldest readable RV.

    Message: ``too old resource version: <requested> (<oldest>)``, as the
    apiserver's watch cache words it.
    """
    return expired(f"too old resource version: {requested} ({oldest})")


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    metadata = obj.get("metadata")
    return cast("Mapping[str, Any]", metadata) if isinstance(metadata, Mapping) else None


def with_resource_version(obj: Mapping[str, Any], resource_version: int) -> JSONObject:
    """Return a shallow copy of *obj* whose ``metadata.resourceVersion`` is *resource_version*.

    Only the top-level dict and ``metadata`` are copied; the rest is shared.
    """
    metadata = _metadata(obj)
    meta: dict[str, Any] = dict(metadata) if metadata is not None else {}
    meta["resourceVersion"] = str(resource_version)
    out = dict(obj)
    out["metadata"] = meta
    return out


def _without_resource_version(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _metadata(obj)
    if metadata is None or "resourceVersion" not in metadata:
        return dict(obj)
    out = dict(obj)
    out["metadata"] = {k: v for k, v in metadata.items() if k != "resourceVersion"}
    return out


@final
@attrs.frozen
class LogEntry:
    """One recorded change, numbered by the log.

    Attributes:
        resource_version: The change's RV (strictly increasing along the log).
        type: ``ADDED``, ``MODIFIED`` or ``DELETED``.
        key: The object's key ([`object_key`][k8swatch.object_key]).
        object: The object after the change, ``metadata.resourceVersion`` set
            to ``str(resource_version)``; for ``DELETED`` the last state, with
            the deletion's RV. Shared and read-only.
        prev_object: The state before the change when the log knows it (None
            for ``ADDED`` or when unknown). Read-only.
    """

    resource_version: int
    type: EventType
    key: str
    object: JSONObject = attrs.field(repr=False)
    prev_object: JSONObject | None = attrs.field(default=None, repr=False)


class WriteOp(str, enum.Enum):
    """The conditional operations of [`EventLog.append`][k8swatch.EventLog.append]."""

    CREATE = "CREATE"
    """Record ``ADDED``; the key must be absent (else ``AlreadyExists``)."""
    UPDATE = "UPDATE"
    """Record ``MODIFIED``; the key must exist (``NotFound``) with the expected RV."""
    DELETE = "DELETE"
    """Record ``DELETED``; same preconditions as ``UPDATE``."""
    PUT = "PUT"
    """``ADDED`` if absent, ``MODIFIED`` if different, nothing if identical."""
    REMOVE = "REMOVE"
    """``DELETED`` if present, nothing if absent."""


@final
@attrs.frozen
class Write:
    """One conditional write for [`EventLog.append`][k8swatch.EventLog.append].

    Attributes:
        op: What to do.
        key: The object's key.
        object: The new object (required for ``CREATE``, ``UPDATE``, ``PUT``;
            for ``DELETE``/``REMOVE`` the last state to record, or None to
            record the stored one). Its ``metadata.resourceVersion`` is
            ignored and replaced. The log takes ownership of it.
        expected_resource_version: For ``UPDATE``/``DELETE``: the RV the
            stored object must have (optimistic concurrency); None for any.
    """

    op: WriteOp
    key: str
    object: JSONObject | None = attrs.field(default=None, repr=False)
    expected_resource_version: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.object is None and self.op in (WriteOp.CREATE, WriteOp.UPDATE, WriteOp.PUT):
            raise ValueError(f"a {self.op.value} write needs an object")


class PreconditionFailedError(Exception):
    """Raised by ``EventLog.append`` when a write's condition fails.

    Nothing was applied. A storage turns it into the matching
    [`StatusError`][k8swatch.StatusError] (409 AlreadyExists, 404 NotFound,
    409 Conflict), since only it knows the resource's name.

    Attributes:
        reason: ``"AlreadyExists"``, ``"NotFound"`` or ``"Conflict"``.
        key: The key written.
        current_resource_version: The key's current RV (0 when absent).
    """

    def __init__(
        self,
        reason: Literal["AlreadyExists", "NotFound", "Conflict"],
        key: str,
        current_resource_version: int = 0,
    ) -> None:
        super().__init__(f"{reason}: {key!r} (current resource version {current_resource_version})")
        self.reason: Literal["AlreadyExists", "NotFound", "Conflict"] = reason
        self.key = key
        self.current_resource_version = current_resource_version


@final
@attrs.frozen
class LogSnapshot:
    """The current objects of a log at one resourceVersion.

    Attributes:
        resource_version: The RV the state is at (the newest entry's RV).
        objects: Key -> object (each with its own ``metadata.resourceVersion``).
            Read-only.
    """

    resource_version: int
    objects: Mapping[str, JSONObject] = attrs.field(repr=False)


@runtime_checkable
class EventLog(Protocol):
    """The backend interface of a watch cache's event log: one resource's changes, in order.

    [`MemoryStorage`][k8swatch.MemoryStorage] writes through it and feeds its
    [`WatchCache`][k8swatch.WatchCache] from it;
    [`MemoryEventLog`][k8swatch.MemoryEventLog] is the in-memory reference
    implementation and ``k8swatch.redis.RedisEventLog`` shares one log
    between server replicas. The contract:

    * every change is a [`LogEntry`][k8swatch.LogEntry] with a strictly
      increasing integer resourceVersion (RV); gaps are allowed, repeats and
      reordering are not, and every reader sees the same order;
    * ``append`` applies one [`Write`][k8swatch.Write] atomically and
      conditionally (see [`WriteOp`][k8swatch.WriteOp]); a failed condition
      raises [`PreconditionFailedError`][k8swatch.PreconditionFailedError]
      and applies nothing;
    * ``read_after(rv)`` never skips an entry silently: entries after *rv*
      that were discarded make it raise 410 Expired
      (``too old resource version: <rv> (<oldest>)``);
    * backend outages raise 503 ServiceUnavailable, with nothing
      half-applied;
    * objects handed out are shared and read-only; ``aclose`` is idempotent
      and makes every later call (and blocked ``read_after(wait=True)``)
      raise ``anyio.ClosedResourceError``.
    """

    async def append(self, write: Write) -> LogEntry | None:
        """Apply *write* atomically; return the recorded entry (None: nothing to record).

        Raises:
            PreconditionFailedError: The write's condition failed; nothing applied.
            StatusError: 503 ServiceUnavailable when the backend is unreachable.
            anyio.ClosedResourceError: The log was closed.
        """
        ...

    async def read_after(
        self, resource_version: int, *, limit: int = 1000, wait: bool = False
    ) -> Sequence[LogEntry]:
        """Return up to *limit* entries with RV > *resource_version*, oldest first.

        With *wait*, block until there is at least one.

        Raises:
            StatusError: 410 Expired when entries after *resource_version*
                were discarded; 503 when the backend is unreachable.
            anyio.ClosedResourceError: The log was (or got) closed.
        """
        ...

    async def oldest_resource_version(self) -> int:
        """Return the smallest RV one can still read after (0: nothing was discarded)."""
        ...

    async def current_resource_version(self) -> int:
        """Return the RV of the newest entry (0 when the log is empty)."""
        ...

    async def snapshot(self) -> LogSnapshot:
        """Return the current objects and the RV they are at, consistently."""
        ...

    async def aclose(self) -> None:
        """Release the backend; idempotent."""
        ...


@final
@attrs.define(eq=False)
class MemoryEventLog:
    """An [`EventLog`][k8swatch.EventLog] in process memory.

    RVs are contiguous integers starting at ``start + 1``. The newest
    *window* entries are kept; reading after an older RV raises 410 Expired.
    Writers never wait; ``read_after(wait=True)`` wakes every blocked reader
    once per write, with one shared event.

    Memory does not survive a restart, but clients keep their
    resourceVersions: pass ``start=time.time_ns() // 1000`` so every RV of a
    restarted process is above any RV of the previous one. A client resuming
    with an old RV then gets 410 and relists, instead of waiting for the new
    counter to catch up with it.

    Attributes:
        window: How many recent entries to keep (at least 1; the first
            constructor argument).
        start: The RV the log starts at (keyword-only; reading after an
            RV below it raises 410).
    """

    window: int = attrs.field(default=1000, kw_only=False)
    start: int = attrs.field(default=0, kw_only=True)
    _entries: deque[LogEntry] = attrs.field(init=False, factory=lambda: deque[LogEntry]())
    _objects: dict[str, JSONObject] = attrs.field(init=False, factory=lambda: dict[str, Any]())
    _rv: int = attrs.field(init=False, default=0)
    _discarded: int = attrs.field(init=False, default=0)
    _closed: bool = attrs.field(init=False, default=False)
    _wakeup: anyio.Event | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.start < 0:
            raise ValueError(f"start must be >= 0, got {self.start}")
        self._rv = self._discarded = self.start

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    def _record(
        self, kind: EventType, key: str, obj: Mapping[str, Any], prev: JSONObject | None
    ) -> LogEntry:
        self._rv += 1
        stored = with_resource_version(obj, self._rv)
        entry = LogEntry(self._rv, kind, key, stored, prev)
        if kind is EventType.DELETED:
            self._objects.pop(key, None)
        else:
            self._objects[key] = stored
        self._entries.append(entry)
        if len(self._entries) > self.window:
            self._discarded = self._entries.popleft().resource_version
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
        return entry

    def apply(self, write: Write) -> LogEntry | None:
        """Apply *write* now (the synchronous core of ``append``)."""
        self._check_open()
        key = write.key
        current = self._objects.get(key)
        op = write.op
        if op is WriteOp.CREATE:
            if current is not None:
                raise PreconditionFailedError("AlreadyExists", key, _rv_of(current))
            assert write.object is not None
            return self._record(EventType.ADDED, key, write.object, None)
        if op is WriteOp.PUT:
            assert write.object is not None
            if current is None:
                return self._record(EventType.ADDED, key, write.object, None)
            if _without_resource_version(current) == _without_resource_version(write.object):
                return None
            return self._record(EventType.MODIFIED, key, write.object, current)
        if op is WriteOp.REMOVE and current is None:
            return None
        if current is None:
            raise PreconditionFailedError("NotFound", key, 0)
        expected = write.expected_resource_version
        if expected is not None and expected != _rv_of(current):
            raise PreconditionFailedError("Conflict", key, _rv_of(current))
        if op is WriteOp.UPDATE:
            assert write.object is not None
            return self._record(EventType.MODIFIED, key, write.object, current)
        last = write.object if write.object is not None else current
        return self._record(EventType.DELETED, key, last, current)

    async def append(self, write: Write) -> LogEntry | None:
        """Apply *write* atomically (see ``EventLog.append``)."""
        return self.apply(write)

    def _read(self, resource_version: int, limit: int) -> list[LogEntry]:
        if resource_version < self._discarded:
            raise too_old_resource_version(resource_version, self._discarded)
        entries = self._entries
        if not entries or resource_version >= self._rv:
            return []
        # RVs are contiguous: the entry after `resource_version` sits at a known index.
        start = max(0, resource_version + 1 - entries[0].resource_version)
        stop = min(len(entries), start + max(limit, 1))
        if start == 0 and stop == len(entries):
            return list(entries)
        return [entries[i] for i in range(start, stop)]

    async def read_after(
        self, resource_version: int, *, limit: int = 1000, wait: bool = False
    ) -> Sequence[LogEntry]:
        """Return entries after *resource_version* (see ``EventLog.read_after``)."""
        self._check_open()
        while True:
            found = self._read(resource_version, limit)
            if found or not wait:
                await anyio.lowlevel.checkpoint()
                return found
            if self._wakeup is None:
                self._wakeup = anyio.Event()
            await self._wakeup.wait()
            self._check_open()

    async def oldest_resource_version(self) -> int:
        """Return the RV of the last discarded entry (0 when none was discarded)."""
        self._check_open()
        return self._discarded

    async def current_resource_version(self) -> int:
        """Return the RV of the newest entry (0 when empty)."""
        self._check_open()
        return self._rv

    async def snapshot(self) -> LogSnapshot:
        """Return the current objects and the RV they are at."""
        self._check_open()
        return LogSnapshot(self._rv, dict(self._objects))

    async def aclose(self) -> None:
        """Close the log and wake blocked readers (they raise ``ClosedResourceError``)."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
        await anyio.lowlevel.checkpoint()


def _rv_of(obj: Mapping[str, Any]) -> int:
    metadata = _metadata(obj)
    if metadata is not None:
        value = metadata.get("resourceVersion")
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return 0
