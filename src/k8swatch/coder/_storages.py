"""`WorkspaceStorage` and `TemplateStorage`: Coder objects behind the storage protocol.

Verb by verb they do what the Go original (coder/coder-k8s) does
(``coder-adapters.md`` §2), with the same messages. Two event sources:

* default: a per-storage `Broadcaster` fed in mutation order, and the
  original's watch option rules (no resume, no initial events, no bookmarks);
* ``watch_cache=True``: a `WatchCache` fed by this server's writes and by the
  poller is the source of truth for list and watch; resume, bookmarks and
  ``sendInitialEvents`` work. Its resourceVersions are the cache's own
  counter, not Coder's ``updated_at``; get, create and update answer with the
  cache's resourceVersion of the state they return, so get, list and watch
  agree (see the explanation page "Coder adapters");
* ``log=``: the same, but every change is recorded in a shared `EventLog`
  (e.g. Redis Streams) and the cache follows the log, so several replicas in
  front of one Coder serve one API with global resourceVersions. Every
  entry is a write conditional on the object's last known state (``CREATE``,
  or ``UPDATE``/``DELETE`` with its resourceVersion), so a change seen by
  several replicas is recorded once and a replica with a stale view never
  reverts a newer state; entries of every replica update the last known
  state as the follower reads them.

In every mode the storage remembers the last state it saw of every object (its
own writes included); `resync` lists Coder and turns differences into
ADDED/MODIFIED/DELETED events, which is how `CoderPoller` reports changes made
outside this server without repeating the storage's own events.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, cast

import anyio
import attrs
from anyio.abc import TaskStatus
from typing_extensions import final

from k8swatch._broadcaster import Broadcaster, FullChannelBehavior
from k8swatch._cache import WatchCache
from k8swatch._eventlog import (
    EventLog,
    LogEntry,
    LogSnapshot,
    PreconditionFailedError,
    Write,
    WriteOp,
    object_key,
    with_resource_version,
)
from k8swatch._events import EventType
from k8swatch._fields import parse_field_selector
from k8swatch._filters import filter_for_list_options
from k8swatch._follower import DEFAULT_COALESCE, LogFeed
from k8swatch._go import format_go_duration, go_quote
from k8swatch._options import ListOptions, WatchCapabilities, validate_watch_options
from k8swatch._selectors import SelectorError
from k8swatch._status import (
    Status,
    StatusError,
    bad_request,
    conflict,
    internal_error,
    not_found,
    service_unavailable,
    timeout,
)
from k8swatch._storage import ObjectList
from k8swatch._watch import Watch, filter_watch, stop_aware_watch
from k8swatch.coder._client import CoderClient, map_coder_error
from k8swatch.coder._convert import parse_rfc3339_ns, parse_uuid
from k8swatch.coder._files import build_archive, merge_archive, normalize_files, read_archive
from k8swatch.coder._models import (
    API_VERSION,
    GROUP,
    CoderTemplate,
    CoderWorkspace,
)
from k8swatch.coder._names import build_template_name, parse_template_name, parse_workspace_name
from k8swatch.coder._provider import ClientProvider, NamespaceLister, NamespaceResolver

__all__ = ["WATCH_QUEUE_LENGTH", "TemplateStorage", "WorkspaceStorage"]

logger = logging.getLogger("k8swatch.coder")

WATCH_QUEUE_LENGTH = 100
"""Per-watcher event buffer of the broadcaster, as in the Go original."""

_Key = tuple[str, str]
_T = TypeVar("_T")


@attrs.define
class _Known:
    """The last state of one object this storage emitted or observed."""

    fingerprint: Any
    version: int
    seq: int
    object: dict[str, Any]


def _name_of(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _without_files(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    if isinstance(spec, dict) and "files" in spec:
        out = dict(obj)
        out["spec"] = {k: v for k, v in spec.items() if k != "files"}  # pyright: ignore[reportUnknownVariableType]
        return out
    return obj


def _with_files_of(stored: dict[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    """*stored* (a copy) with ``spec.files`` of *obj*, when *obj* has them."""
    spec = _sub(obj, "spec")
    if "files" in spec:
        stored["spec"]["files"] = copy.deepcopy(spec["files"])
    return stored


_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def _sub(obj: Any, key: str) -> Mapping[str, Any]:
    """``obj[key]`` when both are JSON objects, else an empty mapping."""
    if isinstance(obj, Mapping):
        value: Any = cast("Mapping[str, Any]", obj).get(key)
        if isinstance(value, Mapping):
            return cast("Mapping[str, Any]", value)
    return {}


def _name_from_object(obj: Any, *_: Any, **__: Any) -> str:
    return str(_sub(obj, "metadata").get("name") or "")


def _name_from_name(name: str, *_: Any, **__: Any) -> str:
    return name


def _write(name_of: Callable[..., str]) -> Callable[[_F], _F]:
    """Mark the object a mutation works on while it runs (see `_reconcile`)."""

    def decorate(method: _F) -> _F:
        @functools.wraps(method)
        async def wrapper(self: _CoderStorage, namespace: str, *args: Any, **kwargs: Any) -> Any:
            key = (namespace, name_of(*args, **kwargs))
            self._inflight[key] = self._inflight.get(key, 0) + 1
            try:
                return await method(self, namespace, *args, **kwargs)
            finally:
                left = self._inflight[key] - 1
                if left:
                    self._inflight[key] = left
                else:
                    del self._inflight[key]

        return cast("_F", wrapper)

    return decorate


class _CoderStorage:
    """What both storages share: client resolution, events, list, watch, resync."""

    _RESOURCE: ClassVar[str]
    _KIND: ClassVar[str]
    _LIST_KIND: ClassVar[str]

    def __init__(
        self,
        provider: ClientProvider,
        *,
        watch_cache: bool = False,
        full_channel_behavior: FullChannelBehavior = FullChannelBehavior.TERMINATE_IF_FULL,
        queue_length: int = WATCH_QUEUE_LENGTH,
        cache_window: int = 1000,
        bookmark_interval: float = 60.0,
        log: EventLog | None = None,
    ) -> None:
        self._provider = provider
        self._cache: WatchCache[dict[str, Any]] | None = None
        self._broadcaster: Broadcaster[dict[str, Any]] | None = None
        self._log = log
        self._feed: LogFeed | None = None
        if log is not None or watch_cache:
            self._cache = WatchCache(
                API_VERSION,
                self._KIND,
                resource=self._RESOURCE,
                group=GROUP,
                window=cache_window,
                bookmark_interval=bookmark_interval,
            )
        if log is not None:
            # Every change goes through the shared log; the cache is fed only
            # from it (the follower, and catching up before answering), so its
            # resourceVersions are the log's: global across replicas.
            assert self._cache is not None
            self._feed = LogFeed(
                log,
                self._cache,
                is_closed=lambda: self._closed,
                on_ingest=self._ingested,
                on_reset=self._reloaded,
                coalesce=DEFAULT_COALESCE,
            )
        elif self._cache is not None:
            # Start numbering at the current time in microseconds: every
            # resourceVersion of a later process is higher than any of this
            # one, so a client resuming across a restart gets 410 and relists
            # instead of silently waiting for the counter to catch up.
            self._cache.reset(LogSnapshot(time.time_ns() // 1000, {}))
        else:
            self._broadcaster = Broadcaster(
                queue_length=queue_length, full_channel_behavior=full_channel_behavior
            )
        self._known: dict[_Key, _Known] = {}
        self._tombstones: dict[_Key, int] = {}
        # log mode: the log RV of the newest entry folded into _known/_tombstones per key
        self._log_rvs: dict[_Key, int] = {}
        self._inflight: dict[_Key, int] = {}
        self._primed: set[str] = set()
        self._seq = 0
        self._closed = False

    @property
    def watch_cache(self) -> WatchCache[dict[str, Any]] | None:
        """The watch cache, when the storage was built with ``watch_cache=True`` or a *log*."""
        return self._cache

    @property
    def log(self) -> EventLog | None:
        """The shared event log every change is recorded in (None without ``log=``)."""
        return self._log

    async def follow(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Feed the watch cache with the log's new entries until cancelled or closed.

        Only for a storage built with ``log=``: run it in a task group for the
        storage's lifetime, so changes recorded by other replicas reach this
        replica's watchers (one log read serves every local watcher) and
        update the last known state `resync` diffs against. Writes and reads
        on this replica catch up with the log by themselves, so
        read-your-writes holds without it. A 503 (the log's backend is
        unreachable, also at start-up) is retried with jittered backoff; a
        410 reloads the cache from the log's snapshot and ends open watches
        with 410, so their clients relist. `aclose` ends it.

        Raises:
            RuntimeError: The storage has no log.
        """
        if self._feed is None:
            raise RuntimeError(f"{type(self).__name__}.follow() needs a storage built with log=")
        await self._feed.follow(task_status=task_status)

    # --- helpers ---------------------------------------------------------------

    def _map(self, err: BaseException, name: str, resource: str | None = None) -> StatusError:
        return map_coder_error(err, resource or self._RESOURCE, name, group=GROUP)

    async def _call(self, name: str, call: Awaitable[_T], *, resource: str | None = None) -> _T:
        try:
            return await call
        except StatusError:
            raise
        except Exception as exc:
            raise self._map(exc, name, resource) from None

    async def _client(self, namespace: str) -> CoderClient:
        try:
            return await self._provider.client_for_namespace(namespace)
        except StatusError:
            raise
        except Exception as exc:
            raise internal_error(exc) from None

    @staticmethod
    def _require_namespace(namespace: str) -> None:
        if not namespace:
            raise bad_request("namespace is required")

    async def _namespaces(self, namespace: str) -> list[str]:
        """The namespaces a request for *namespace* ("" = all) covers."""
        if namespace:
            return [namespace]
        try:
            if isinstance(self._provider, NamespaceLister):
                return list(await self._provider.eligible_namespaces())
            if isinstance(self._provider, NamespaceResolver):
                return [await self._provider.default_namespace()]
        except StatusError:
            raise
        except Exception as exc:
            raise internal_error(exc) from None
        raise service_unavailable(
            "all-namespaces list requires a provider that implements namespace resolution"
        )

    # --- conversion hooks (per kind) ------------------------------------------

    async def _fetch_all(self, client: CoderClient) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _convert(self, namespace: str, coder_obj: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _version(coder_obj: Mapping[str, Any]) -> int:
        return parse_rfc3339_ns(str(coder_obj["updated_at"]))

    # --- events ----------------------------------------------------------------

    def _fingerprint(self, obj: dict[str, Any]) -> Any:
        fp = _without_files(obj)
        if self._cache is not None:
            meta = {k: v for k, v in fp["metadata"].items() if k != "resourceVersion"}
            fp = {**fp, "metadata": meta}
        return fp

    def _emit(self, type_: EventType, obj: dict[str, Any]) -> dict[str, Any]:
        """Without a log: send one event; never raises, never waits. Returns the stored object."""
        if self._cache is not None:
            try:
                event = self._cache.apply(type_, copy.deepcopy(_without_files(obj)))
            except Exception:
                logger.exception("coder: %s %s event not recorded", type_.value, self._RESOURCE)
                return obj
            stored = copy.deepcopy(event.object)
            if "files" in obj.get("spec", {}):
                stored["spec"]["files"] = copy.deepcopy(obj["spec"]["files"])
            return stored
        broadcaster = self._broadcaster
        assert broadcaster is not None
        try:
            sent = broadcaster.action_or_drop(type_, copy.deepcopy(obj))
        except Exception:
            logger.exception("coder: %s %s event not sent", type_.value, self._RESOURCE)
            return obj
        if not sent:
            reason = "the storage is shut down" if broadcaster.closed else "queue full"
            logger.warning("coder: %s %s event dropped: %s", type_.value, self._RESOURCE, reason)
        return obj

    def _publish_now(
        self,
        type_: EventType,
        namespace: str,
        obj: dict[str, Any],
        version: int,
        *,
        unless_seen: bool = False,
    ) -> dict[str, Any]:
        """Without a log: record *obj* as the last known state and emit it (see `_publish`)."""
        key = (namespace, _name_of(obj))
        self._seq += 1
        seq = self._seq
        known = self._known.get(key)
        if unless_seen and known is not None and known.fingerprint == self._fingerprint(obj):
            known.seq = seq
            return copy.deepcopy(known.object)
        if type_ is EventType.DELETED:
            previous = self._known.pop(key, None)
            self._tombstones[key] = seq
            if previous is not None and self._cache is not None:
                obj = previous.object
            return self._emit(type_, obj)
        self._tombstones.pop(key, None)
        stored = self._emit(type_, obj)
        kept = copy.deepcopy(_without_files(stored))  # never shared with the caller
        self._known[key] = _Known(self._fingerprint(obj), version, seq, kept)
        return stored

    async def _publish(
        self,
        type_: EventType,
        namespace: str,
        obj: dict[str, Any],
        version: int,
        *,
        base: int | None,
        unless_seen: bool = False,
    ) -> dict[str, Any]:
        """Record the result of this storage's own write; return what to answer.

        Every recorded state (the storage's own writes and states observed in
        Coder alike) gets the next sequence number; a listing that started
        before it cannot override it (see `_reconcile`). With *unless_seen*, a
        state already observed (e.g. through the workspace watch stream, which
        can be faster than the answer to the write itself) is not emitted a
        second time.

        With a log, the write is conditional on *base* (see `_base`): the log
        resourceVersion of the object when this write read it, None when the
        log did not have it. If another replica recorded a change of the
        object since, the write is refused and `_settle` decides what to
        answer, so a newer state is never overwritten by this one. If the log
        is unreachable the request still succeeds (see `_unrecorded`).
        """
        if self._feed is None:
            return self._publish_now(type_, namespace, obj, version, unless_seen=unless_seen)
        key = (namespace, _name_of(obj))
        known = self._known.get(key)
        if unless_seen and known is not None and known.fingerprint == self._fingerprint(obj):
            self._seq += 1
            known.seq = self._seq
            return _with_files_of(copy.deepcopy(known.object), obj)
        log_key = object_key(namespace, key[1])
        body = copy.deepcopy(_without_files(obj))
        if type_ is EventType.DELETED:
            if base is None:  # the log never had it: nothing to record
                return self._unrecorded(obj)
            last = known.object if known is not None else body
            write = Write(WriteOp.DELETE, log_key, last, base)
        elif base is None:
            write = Write(WriteOp.CREATE, log_key, body)
        else:
            write = Write(WriteOp.UPDATE, log_key, body, base)
        try:
            try:
                entry = await self._append(write)
            except PreconditionFailedError:
                return await self._settle(type_, namespace, obj, version)
            assert entry is not None  # conditional writes always record
            self._remember(key, entry, version)
            await self._feed.catch_up(
                entry.resource_version, patience=self._feed.cache.wait_timeout
            )
        except StatusError as exc:
            logger.warning(
                "coder: %s %s %s/%s happened in Coder but was not recorded (%s); the next "
                "resync records it",
                type_.value,
                self._RESOURCE,
                namespace,
                key[1],
                exc.status.message,
            )
            return self._unrecorded(obj)
        return _with_files_of(copy.deepcopy(entry.object), obj)

    def _base(self, namespace: str, name: str) -> int | None:
        """Log mode: the log RV of the object's last known state, None when not in the log.

        Taken by a write after catching up with the log and before changing
        Coder: the condition of the write's own entry (see `_publish`).
        """
        key = (namespace, name)
        return self._log_rvs.get(key) if key in self._known else None

    async def _settle(
        self, type_: EventType, namespace: str, obj: dict[str, Any], version: int
    ) -> dict[str, Any]:
        """Log mode: another replica recorded a change of the object while this one wrote it.

        If it recorded the very state this write produced (its poll saw the
        write first), that entry is the answer: nothing is recorded twice.
        Otherwise nobody can tell which of the two states is newer, so Coder
        is asked again (a get, recording what it finds with a conditional
        write); the answer is never older than the client's write. A deletion
        is recorded against the newer state (the object is gone in Coder).

        Raises:
            StatusError: 503 when the log is unreachable.
        """
        assert self._feed is not None
        await self._feed.catch_up_to_log()
        key = (namespace, _name_of(obj))
        known = self._known.get(key)
        if type_ is EventType.DELETED:
            if known is not None:
                await self._note(EventType.DELETED, namespace, known.object, known.version)
            return self._unrecorded(obj)
        if known is not None and known.fingerprint == self._fingerprint(obj):
            known.version = max(known.version, version)
            return _with_files_of(copy.deepcopy(known.object), obj)
        try:
            return await self.get(namespace, key[1])
        except StatusError as exc:
            if exc.status.code == 503:
                raise
            logger.warning("coder: re-reading %s %s: %s", self._RESOURCE, key[1], exc)
            return self._unrecorded(obj)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """Return the object (implemented per kind)."""
        raise NotImplementedError

    def _unrecorded(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Log mode: the answer for a write Coder applied but the log did not record (yet).

        The client's change happened, so the request succeeds (a 503 would
        invite a retry that fails with AlreadyExists or repeats a build).
        The state is not remembered, so the next `resync` records it, once;
        the answer carries this replica's current resourceVersion, which
        precedes that event: a watch from it sees the change when it is
        recorded. An update that sends this resourceVersion back before then
        gets 409 Conflict and re-reads.
        """
        assert self._cache is not None
        return copy.deepcopy(with_resource_version(obj, self._cache.resource_version))

    async def _append(self, write: Write) -> LogEntry | None:
        """Append to the log; a closed log is a 503 like an unreachable one."""
        assert self._log is not None
        try:
            return await self._log.append(write)
        except anyio.ClosedResourceError:
            raise service_unavailable(f"{self._RESOURCE} storage is shut down") from None

    async def _check_log(self) -> None:
        """Log mode: catch up with the log; 503 when it is unreachable.

        So a write is refused before Coder is touched: nothing is half-applied.
        """
        if self._feed is not None:
            await self._feed.catch_up_to_log()

    async def _epoch(self) -> int:
        """The sequence number before a read of Coder; with a log, after catching up with it.

        So in log mode, a state recorded after this point (by any replica) is
        known to be at least as new as what the read returns (see `_observe`).

        Raises:
            StatusError: log mode: 503 when the log is unreachable.
        """
        await self._check_log()
        return self._seq

    async def _note(
        self, type_: EventType, namespace: str, obj: dict[str, Any], version: int
    ) -> dict[str, Any] | None:
        """Record a state observed in Coder (a listing, a get, the stream); return it as stored.

        Without a log this is `_publish_now`. With a log the write is
        conditional on the last known state (``CREATE`` when unknown,
        ``UPDATE``/``DELETE`` with its resourceVersion), so replicas that
        observe the same change record it once, and a replica whose view is
        stale cannot revert a newer state another replica recorded: a refused
        write records nothing, catches up with the log and returns None (the
        next resync diffs again against the newer state).

        Raises:
            StatusError: 503 when the log is unreachable (nothing recorded).
        """
        if self._feed is None:
            return self._publish_now(type_, namespace, obj, version)
        key = (namespace, _name_of(obj))
        log_key = object_key(namespace, key[1])
        known = self._known.get(key)
        expected = self._log_rvs.get(key)
        if type_ is EventType.DELETED:
            if known is None or expected is None:
                return None
            write = Write(WriteOp.DELETE, log_key, known.object, expected)
        elif known is None or expected is None:
            write = Write(WriteOp.CREATE, log_key, copy.deepcopy(_without_files(obj)))
        else:
            write = Write(WriteOp.UPDATE, log_key, copy.deepcopy(_without_files(obj)), expected)
        try:
            entry = await self._append(write)
        except PreconditionFailedError:
            await self._feed.catch_up_to_log()
            return None
        if entry is None:  # pragma: no cover - conditional writes always record
            return None
        self._remember(key, entry, version)
        await self._feed.catch_up(entry.resource_version, patience=self._feed.cache.wait_timeout)
        return _with_files_of(copy.deepcopy(entry.object), obj)

    def _entry_key(self, entry: LogEntry) -> _Key:
        metadata = _sub(entry.object, "metadata")
        return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))

    def _fold(self, key: _Key, entry: LogEntry, version: int | None) -> None:
        """Log mode: make *entry* the last known state of *key*, with a fresh sequence number."""
        self._log_rvs[key] = entry.resource_version
        self._seq += 1
        if entry.type is EventType.DELETED:
            self._known.pop(key, None)
            self._tombstones[key] = self._seq
            return
        previous = self._known.get(key)
        if version is None:
            version = previous.version if previous is not None else 0
        # Entry objects are shared and read-only; _known never hands them out uncopied.
        self._known[key] = _Known(self._fingerprint(entry.object), version, self._seq, entry.object)
        self._tombstones.pop(key, None)

    def _remember(self, key: _Key, entry: LogEntry, version: int) -> None:
        """Log mode: fold this replica's own appended entry (Coder *version* known)."""
        folded = self._log_rvs.get(key, 0)
        if folded > entry.resource_version:
            return  # a newer state (another replica's) is already known
        if folded == entry.resource_version:  # the follower was faster
            known = self._known.get(key)
            if known is not None:
                known.version = max(known.version, version)
            return
        self._fold(key, entry, version)

    def _ingested(self, entries: Sequence[LogEntry]) -> None:
        """Log mode: entries reached the cache (any replica's): they are the last known state.

        So a listing that started before them cannot revert them (their
        sequence numbers are newer than its epoch; see `_reconcile`).
        """
        for entry in entries:
            key = self._entry_key(entry)
            if self._log_rvs.get(key, 0) < entry.resource_version:
                self._fold(key, entry, None)

    def _reloaded(self, snapshot: LogSnapshot) -> None:
        """Log mode: the cache was (re)loaded from the log's snapshot: so is the known state."""
        seen: set[_Key] = set()
        for obj in snapshot.objects.values():
            metadata = _sub(obj, "metadata")
            key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
            seen.add(key)
            rv = str(metadata.get("resourceVersion") or "0")
            entry = LogEntry(int(rv) if rv.isdigit() else 0, EventType.ADDED, "", obj)
            known = self._known.get(key)
            if known is not None and known.fingerprint == self._fingerprint(obj):
                self._log_rvs[key] = entry.resource_version
                continue
            self._fold(key, entry, None)
        for key in [k for k in self._known if k not in seen]:
            self._seq += 1
            del self._known[key]
            self._log_rvs.pop(key, None)
            self._tombstones[key] = self._seq

    async def _observe(
        self, namespace: str, obj: dict[str, Any], version: int, epoch: int | None = None
    ) -> dict[str, Any]:
        """Cache mode: fold a state read from Coder into the cache; return it with its RV.

        *epoch* (log mode): the sequence number before the read started; a
        state recorded after it (by this replica or another) is not
        overridden by this read, which may predate it: it is the answer.

        Raises:
            StatusError: log mode: 503 when the log is unreachable.
        """
        if self._cache is None:
            return obj
        key = (namespace, _name_of(obj))
        if self._feed is not None:
            await self._feed.catch_up_to_log()
        result: dict[str, Any] | None = None
        for _ in range(3):
            known = self._known.get(key)
            if known is not None and (
                known.fingerprint == self._fingerprint(obj)
                or version < known.version
                or (epoch is not None and self._feed is not None and known.seq > epoch)
            ):
                result = copy.deepcopy(known.object)
                break
            type_ = EventType.ADDED if known is None else EventType.MODIFIED
            result = await self._note(type_, namespace, obj, version)
            if result is not None:
                break
            # log mode: another replica recorded a change meanwhile; look again
        if result is None:
            known = self._known.get(key)
            if known is None:
                raise service_unavailable(
                    f"{self._RESOURCE} {go_quote(key[1])} keeps changing; try again"
                )
            result = copy.deepcopy(known.object)
        if "files" in obj.get("spec", {}):
            result["spec"]["files"] = copy.deepcopy(obj["spec"]["files"])
        return result

    async def _forget_if_gone(self, namespace: str, name: str, exc: StatusError) -> None:
        """Cache mode: a get that finds the object gone reports its deletion at once.

        So get, list and watch agree without waiting for the next poll. With
        a log, a failure to record it is logged (the next resync retries).
        """
        if self._cache is None or exc.status.code != 404:
            return
        key = (namespace, name)
        known = self._known.get(key)
        if known is None or key in self._inflight:
            return
        try:
            await self._note(EventType.DELETED, namespace, known.object, known.version)
        except StatusError as err:
            logger.warning("coder: deletion of %s %s not recorded: %s", self._RESOURCE, name, err)

    async def _reconcile(
        self, namespace: str, listed: Sequence[Mapping[str, Any]], epoch: int, *, baseline: bool
    ) -> None:
        """Diff a complete listing of *namespace* against the last known state.

        Raises:
            StatusError: log mode: 503 when the log is unreachable (what was
                not recorded is diffed again by the next resync).
        """
        silent = baseline and self._cache is None
        if self._feed is not None:
            # Entries recorded (by any replica) while the listing ran get
            # sequence numbers after the epoch: the listing cannot revert them.
            await self._feed.catch_up_to_log()
        seen: set[_Key] = set()
        for coder_obj in listed:
            try:
                obj = self._convert(namespace, coder_obj)
                version = self._version(coder_obj)
            except (KeyError, ValueError) as exc:
                logger.warning("coder: skipping malformed %s: %s", self._RESOURCE, exc)
                continue
            key = (namespace, _name_of(obj))
            seen.add(key)
            if key in self._inflight:
                continue  # being written through this server: its own event follows
            tombstone = self._tombstones.get(key)
            if tombstone is not None and tombstone > epoch:
                continue  # its deletion was recorded after the listing started
            known = self._known.get(key)
            if silent:
                self._known[key] = _Known(self._fingerprint(obj), version, 0, obj)
                continue
            if known is None:
                await self._note(EventType.ADDED, namespace, obj, version)
            elif known.seq > epoch or version < known.version:
                continue  # a newer state was recorded after the listing started, or stale
            elif known.fingerprint != self._fingerprint(obj):
                await self._note(EventType.MODIFIED, namespace, obj, version)
        for key in [k for k in self._known if k[0] == namespace and k not in seen]:
            known = self._known.get(key)
            if known is None or known.seq > epoch or key in self._inflight:
                continue
            if silent:
                del self._known[key]
            else:
                await self._note(EventType.DELETED, namespace, known.object, known.version)
        for key in [k for k in self._tombstones if k[0] == namespace]:
            tombstone = self._tombstones.get(key)
            if tombstone is not None and tombstone <= epoch:
                del self._tombstones[key]
                if key not in self._known:
                    self._log_rvs.pop(key, None)
        self._primed.add(namespace)

    async def resync(self, namespace: str = "") -> None:
        """List Coder and turn every difference from the last known state into an event.

        Objects being written through this storage, and objects whose state
        was recorded after the listing started (the storage's own writes,
        workspace stream updates, another listing's results, and with a log
        every replica's changes), are left alone: the listing may predate
        them. So the storage's own events are never repeated or undone, and a
        deleted object never comes back. The first listing of a namespace only
        records the state in broadcaster mode (a watch starts "now"), and
        fills the cache in cache mode.

        With a log, each difference is recorded with a conditional write on
        the last known state: when several replicas resync the same Coder, a
        change is recorded once, and a replica with a stale view records
        nothing (it catches up instead; its next resync diffs again).

        Raises:
            StatusError: the provider or Coder failed (503 when Coder is
                unreachable); with a log, 503 when the log is unreachable.
        """
        for ns in await self._namespaces(namespace):
            client = await self._client(ns)
            if self._feed is not None:
                await self._feed.ensure_loaded()  # the known state starts from the log's
            epoch = self._seq
            listed = await self._call("<list>", self._fetch_all(client))
            await self._reconcile(ns, listed, epoch, baseline=ns not in self._primed)

    # --- list and watch ------------------------------------------------------

    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        """List objects (all namespaces when *namespace* is empty).

        Without the watch cache: every object Coder shows, converted, in
        Coder's order (sorted by namespace and name across namespaces); options
        are ignored, as in the Go original. Unlike the original, the list has a
        resourceVersion (the current time in nanoseconds) so that clients'
        list-then-watch works; a watch from it starts "now".
        With the cache: a consistent read (Coder is listed first when
        ``resourceVersion`` is unset), then the cache answers, with selectors,
        pagination and a list resourceVersion to watch from.

        Raises:
            StatusError: provider errors, mapped Coder errors.
        """
        if self._cache is not None:
            namespaces = await self._namespaces(namespace)
            if options.resource_version == "" or any(n not in self._primed for n in namespaces):
                await self.resync(namespace)
            await self._catch_up_for(options.resource_version)
            return await self._cache.list(namespace, options)
        items: list[dict[str, Any]] = []
        namespaces = await self._namespaces(namespace)
        for ns in namespaces:
            client = await self._client(ns)
            listed = await self._call("<list>", self._fetch_all(client))
            for coder_obj in listed:
                try:
                    items.append(self._convert(ns, coder_obj))
                except (KeyError, ValueError) as exc:
                    logger.warning("coder: skipping malformed %s: %s", self._RESOURCE, exc)
        if len(namespaces) > 1:
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), _name_of(o)))
        # The Go original sends no list resourceVersion; then kubectl's
        # list-then-watch asks for a watch from "" which the apiserver defaults
        # to sendInitialEvents=true, which these rules reject. A watch here
        # starts "now" whatever the resourceVersion, so hand out the current
        # time: `kubectl get -w` works and nothing else changes.
        return ObjectList(cast("Any", items), resource_version=str(time.time_ns()))

    async def watch(self, namespace: str, options: ListOptions) -> Watch[dict[str, Any]]:
        """Watch objects (all namespaces when *namespace* is empty).

        Without the watch cache, the Go original's rules: ``sendInitialEvents=true``
        and any ``resourceVersionMatch`` are rejected (400 ``invalid watch
        options: ...``), any ``resourceVersion`` is accepted and the watch
        starts now. With the cache, resume from a resourceVersion, bookmarks
        and ``sendInitialEvents`` work as in `WatchCache`. Either way the field
        selector may only use ``metadata.name`` and ``metadata.namespace``,
        ``timeoutSeconds`` ends the watch, and a Coder outage does not.

        Raises:
            StatusError: 400 for rejected options; before the first use of the
                cache, the errors of the listing that fills it.
        """
        if self._closed:
            raise service_unavailable(f"{self._RESOURCE} storage is shut down")
        _check_watch_field_selector(options.field_selector)
        if self._cache is not None:
            validate_watch_options(options, WatchCapabilities(initial_events=True, resume=True))
            namespaces = await self._namespaces(namespace)
            if any(n not in self._primed for n in namespaces):
                await self.resync(namespace)
            elif options.resource_version == "":
                try:
                    await self.resync(namespace)
                except StatusError as exc:
                    logger.warning("coder: serving the watch from the cache: %s", exc)
            try:
                await self._catch_up_for(options.resource_version)
            except StatusError as exc:
                if exc.status.code != 503:
                    raise
                # the follower delivers the events once the log is reachable again
                logger.warning(
                    "coder: watch from resourceVersion %s: %s", options.resource_version, exc
                )
            return await self._cache.watch(namespace, options)
        validate_watch_options(options)
        filter_func = filter_for_list_options(namespace, options)
        assert self._broadcaster is not None
        watch: Watch[dict[str, Any]] = self._broadcaster.watch()
        if filter_func is not None:
            watch = filter_watch(watch, filter_func)
        seconds = options.timeout_seconds
        if seconds is not None and seconds > 0:
            watch = stop_aware_watch(watch, timeout=float(seconds))
        return watch

    async def _catch_up_for(self, resource_version: str) -> None:
        """Log mode: bring the cache to a requested resourceVersion it has not reached yet.

        E.g. a watch on this replica resuming from an RV another replica
        answered with: the cache serves it at once instead of waiting for
        the follower.
        """
        if self._feed is None or not resource_version.isdigit():
            return
        requested = int(resource_version)
        if requested > self._feed.cache.resource_version:
            await self._feed.catch_up(requested)

    async def aclose(self) -> None:
        """Shut the event source down; open watches end; `follow` returns. Idempotent.

        A *log* is not closed: whoever created it owns it (the Redis backend
        closes its logs when it exits).
        """
        if self._closed:
            return
        self._closed = True
        if self._feed is not None:
            self._feed.stop()
        if self._broadcaster is not None:
            self._broadcaster.shutdown()
        if self._cache is not None:
            self._cache.close()


_WATCH_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def _check_watch_field_selector(text: str) -> None:
    """The Go original's field selector check, with its message."""
    if not text:
        return
    try:
        selector = parse_field_selector(text)
    except SelectorError as exc:
        raise bad_request(f"invalid watch options: {exc.detail}") from None
    for requirement in selector.requirements:
        if requirement.field not in _WATCH_FIELDS:
            raise bad_request(
                f"invalid watch options: field selector {go_quote(requirement.field)} is not "
                "supported; supported fields: metadata.name, metadata.namespace"
            )


def _success() -> Status:
    return Status.success()


def _check_update_identity(
    desired_name: str, name: str, desired_namespace: str, namespace: str
) -> None:
    if desired_name and desired_name != name:
        raise bad_request(
            f"updated object metadata.name {go_quote(desired_name)} must match request name "
            f"{go_quote(name)}"
        )
    if desired_namespace and desired_namespace != namespace:
        raise bad_request(
            f"metadata.namespace {go_quote(desired_namespace)} does not match request namespace "
            f"{go_quote(namespace)}"
        )


def _check_create_identity(name: str, obj_namespace: str, namespace: str) -> None:
    if not name:
        raise bad_request("metadata.name must not be empty")
    if obj_namespace and obj_namespace != namespace:
        raise bad_request(
            f"metadata.namespace {go_quote(obj_namespace)} must match request namespace "
            f"{go_quote(namespace)}"
        )


def _with_name(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    """For create-on-update: *obj* with its name defaulted to *name* (or checked)."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    given = meta.get("name") or ""
    if given and given != name:
        raise bad_request(
            f"updated object metadata.name {go_quote(str(given))} must match request name "
            f"{go_quote(name)}"
        )
    meta["name"] = name
    out["metadata"] = meta
    return out


# --------------------------------------------------------------------------------
# Workspaces
# --------------------------------------------------------------------------------


def _apply_build(workspace: dict[str, Any], build: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(workspace)
    out["latest_build"] = dict(build)
    updated = build.get("updated_at")
    if updated and not str(updated).startswith("0001-01-01"):
        out["updated_at"] = updated
    return out


def _workspace_version(workspace: Mapping[str, Any]) -> int:
    version = parse_rfc3339_ns(str(workspace["updated_at"]))
    build_updated = _sub(workspace, "latest_build").get("updated_at")
    if build_updated:
        version = max(version, parse_rfc3339_ns(str(build_updated)))
    return version


@final
class WorkspaceStorage(_CoderStorage):
    """``coderworkspaces``: Coder workspaces as ``CoderWorkspace`` objects.

    * create: ``POST /users/{owner}/workspaces`` (then a ``stop`` build when
      ``spec.running`` is false; its failure is ignored) → ADDED;
    * update: only ``spec.running`` may change: a ``start``/``stop`` build →
      MODIFIED; an update that changes nothing answers the current object
      and emits nothing;
    * delete: a ``delete`` build → MODIFIED (Coder deletes asynchronously; the
      event carries the delete build as the latest build), answers
      ``Status Success``; the poller reports the DELETED once Coder is done.

    Args:
        provider: Resolves the Coder deployment of a namespace.
        watch_cache: Serve list and watch from a `WatchCache` (resume,
            bookmarks, ``sendInitialEvents``) instead of a plain broadcaster.
        full_channel_behavior: Broadcaster policy for slow watchers (default
            `TERMINATE_IF_FULL`: the slow watcher gets a 410 and relists; the
            Go original drops events instead, `DROP_IF_FULL`).
        queue_length: Events buffered per watcher.
        cache_window: Events the cache keeps for resume.
        bookmark_interval: Seconds between bookmarks on an idle cached watch.
        log: A shared [`EventLog`][k8swatch.EventLog] (implies the watch
            cache), e.g. ``RedisBackend.log_for("coderworkspaces",
            group="aggregation.coder.com")``, so that several replicas in
            front of one Coder serve one consistent API: every change is
            recorded in the log, which numbers it with a global
            resourceVersion, and the cache is fed from the log (run
            `follow` for the storage's lifetime). See the how-to "Run
            several replicas on Redis".
    """

    _RESOURCE: ClassVar[str] = CoderWorkspace.PLURAL
    _KIND: ClassVar[str] = CoderWorkspace.KIND
    _LIST_KIND: ClassVar[str] = CoderWorkspace.LIST_KIND

    async def _fetch_all(self, client: CoderClient) -> list[dict[str, Any]]:
        return await client.workspaces()

    def _convert(self, namespace: str, coder_obj: Mapping[str, Any]) -> dict[str, Any]:
        return CoderWorkspace.from_coder(namespace, coder_obj).to_dict()

    @staticmethod
    def _version(coder_obj: Mapping[str, Any]) -> int:
        return _workspace_version(coder_obj)

    def _parse(self, name: str) -> tuple[str, str, str]:
        try:
            return parse_workspace_name(name)
        except ValueError as exc:
            raise bad_request(f"invalid workspace name {go_quote(name)}: {exc}") from None

    async def _fetch(
        self, client: CoderClient, name: str, org: str, owner: str, ws: str
    ) -> dict[str, Any]:
        workspace = await self._call(name, client.workspace_by_owner_and_name(owner, ws))
        if workspace.get("organization_name") != org:
            raise not_found(self._RESOURCE, name, group=GROUP)
        return workspace

    async def _answer(
        self, namespace: str, workspace: Mapping[str, Any], epoch: int
    ) -> dict[str, Any]:
        return await self._observe(
            namespace, self._convert(namespace, workspace), _workspace_version(workspace), epoch
        )

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """``GET /users/{owner}/workspace/{name}``; another organization is NotFound.

        Raises:
            StatusError: 400 namespace missing or bad name; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, owner, ws = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            workspace = await self._fetch(client, name, org, owner, ws)
        except StatusError as exc:
            await self._forget_if_gone(namespace, name, exc)
            raise
        return await self._answer(namespace, workspace, epoch)

    @_write(_name_from_object)
    async def create(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the workspace (``spec.organization`` and ``spec.templateName`` required).

        Raises:
            StatusError: 400 for a bad object; 404 ``codertemplates ... not
                found`` for an unknown template; 409 AlreadyExists; mapped
                Coder errors.
        """
        self._require_namespace(namespace)
        desired = CoderWorkspace.from_dict(obj)
        _check_create_identity(desired.name, desired.namespace, namespace)
        name = desired.name
        org, owner, ws = self._parse(name)
        spec = desired.spec
        if spec.organization != org:
            raise bad_request(
                f"spec.organization {go_quote(spec.organization)} must match organization "
                f"{go_quote(org)} parsed from metadata.name"
            )
        if not spec.template_name:
            raise bad_request("spec.templateName must not be empty")
        client = await self._client(namespace)
        await self._check_log()  # with the log unreachable, 503 before touching Coder
        base = self._base(namespace, name)
        organization = await self._call(name, client.organization(org))
        template_name = build_template_name(org, spec.template_name)
        template = await self._call(
            template_name,
            client.template_by_name(str(organization["id"]), spec.template_name),
            resource=CoderTemplate.PLURAL,
        )
        version_id: str | None = None
        if spec.template_version_id:
            try:
                version_id = parse_uuid(spec.template_version_id)
            except ValueError as exc:
                raise bad_request(
                    "invalid workspace spec: invalid templateVersionID "
                    f"{go_quote(spec.template_version_id)}: {exc}"
                ) from None
            version = await self._call(name, client.template_version(version_id))
            if not version.get("template_id") or version.get("template_id") != template["id"]:
                raise bad_request(
                    f"spec.templateVersionID {go_quote(spec.template_version_id)} does not belong "
                    f"to template {go_quote(spec.template_name)}"
                )
        created = await self._call(
            name,
            client.create_user_workspace(
                owner,
                name=ws,
                template_id=None if version_id else str(template["id"]),
                template_version_id=version_id,
                ttl_ms=spec.ttl_millis,
                autostart_schedule=spec.autostart_schedule,
            ),
        )
        if not spec.running:
            try:
                build = await client.create_workspace_build(str(created["id"]), "stop")
            except Exception as exc:
                # The workspace exists; failing now would make a retry hit
                # AlreadyExists. The stop can be retried with an update.
                logger.info("coder: stop build after creating %s failed: %s", name, exc)
            else:
                created = _apply_build(created, build)
        result = self._convert(namespace, created)
        return await self._publish(
            EventType.ADDED, namespace, result, _workspace_version(created), base=base
        )

    async def update(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
    ) -> dict[str, Any]:
        """Start or stop the workspace (see `update_or_create`)."""
        return (
            await self.update_or_create(namespace, name, obj, force_allow_create=force_allow_create)
        )[0]

    @_write(_name_from_name)
    async def update_or_create(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Update; with *force_allow_create* (server-side apply), create a missing workspace.

        Only ``spec.running`` may change. Returns ``(object, created)``.

        Raises:
            StatusError: 400 for a changed immutable field, a missing
                resourceVersion or an identity mismatch; 409 Conflict for a
                stale resourceVersion or an active build; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, owner, ws = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            workspace = await self._call(name, client.workspace_by_owner_and_name(owner, ws))
        except StatusError as exc:
            if exc.status.code == 404 and force_allow_create:
                return await self.create(namespace, _with_name(obj, name)), True
            raise
        if workspace.get("organization_name") != org:
            raise not_found(self._RESOURCE, name, group=GROUP)
        current_dict = await self._answer(namespace, workspace, epoch)
        base = self._base(namespace, name)
        current = CoderWorkspace.from_dict(current_dict)
        desired = CoderWorkspace.from_dict(obj)
        _check_update_identity(desired.name, name, "", namespace)
        if desired.spec.organization and desired.spec.organization != org:
            raise bad_request(
                f"updated object spec.organization {go_quote(desired.spec.organization)} must "
                f"match organization {go_quote(org)} parsed from metadata.name"
            )
        _check_update_identity("", name, desired.namespace, namespace)
        if not desired.resource_version:
            raise bad_request("metadata.resourceVersion is required for update")
        if desired.resource_version != current.resource_version:
            raise conflict(
                self._RESOURCE,
                name,
                f"resource version mismatch: got {go_quote(desired.resource_version)}, current is "
                f"{go_quote(current.resource_version)}",
                group=GROUP,
            )
        want, have = desired.spec, current.spec
        if (
            want.organization != have.organization
            or want.template_name != have.template_name
            or (want.template_version_id and want.template_version_id != have.template_version_id)
            or (want.ttl_millis is not None and want.ttl_millis != have.ttl_millis)
            or (
                want.autostart_schedule is not None
                and want.autostart_schedule != have.autostart_schedule
            )
        ):
            raise bad_request(
                "workspace update only supports changing spec.running; other spec fields are "
                "immutable"
            )
        if want.running == have.running:
            return current_dict, False
        transition = "start" if want.running else "stop"
        build = await self._call(
            name, client.create_workspace_build(str(workspace["id"]), transition)
        )
        updated = _apply_build(workspace, build)
        result = self._convert(namespace, updated)
        stored = await self._publish(
            EventType.MODIFIED,
            namespace,
            result,
            _workspace_version(updated),
            base=base,
            unless_seen=True,
        )
        return stored, False

    @_write(_name_from_name)
    async def delete(self, namespace: str, name: str) -> Status:
        """Start a ``delete`` build; emit MODIFIED with it applied; answer Status Success.

        Raises:
            StatusError: 400 bad name; 404; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, owner, ws = self._parse(name)
        client = await self._client(namespace)
        await self._check_log()  # with the log unreachable, 503 before touching Coder
        base = self._base(namespace, name)
        workspace = await self._fetch(client, name, org, owner, ws)
        build = await self._call(
            name, client.create_workspace_build(str(workspace["id"]), "delete")
        )
        updated = _apply_build(workspace, build)
        result = self._convert(namespace, updated)
        await self._publish(
            EventType.MODIFIED,
            namespace,
            result,
            _workspace_version(updated),
            base=base,
            unless_seen=True,
        )
        return _success()

    async def observe(self, namespace: str, workspace: Mapping[str, Any]) -> None:
        """Fold one workspace read from Coder (e.g. from its watch stream) into the state.

        Emits MODIFIED (or ADDED) if it differs from the last known state and
        is not older than it; used by `CoderPoller`'s stream bridge.
        """
        try:
            obj = self._convert(namespace, workspace)
            version = _workspace_version(workspace)
        except (KeyError, ValueError) as exc:
            logger.warning("coder: skipping malformed workspace: %s", exc)
            return
        key = (namespace, _name_of(obj))
        if namespace not in self._primed or key in self._inflight:
            return
        known = self._known.get(key)
        if known is None:
            if self._tombstones.get(key) is None:
                await self._note(EventType.ADDED, namespace, obj, version)
            return
        if version < known.version or known.fingerprint == self._fingerprint(obj):
            return
        await self._note(EventType.MODIFIED, namespace, obj, version)

    def active_workspaces(self) -> list[tuple[str, str]]:
        """``(namespace, workspace id)`` of known workspaces whose latest build is in progress."""
        out: list[tuple[str, str]] = []
        for (namespace, _), known in self._known.items():
            status = known.object.get("status", {})
            if status.get("latestBuildStatus") in _ACTIVE_BUILD_STATUSES and status.get("id"):
                out.append((namespace, str(status["id"])))
        return out


_ACTIVE_BUILD_STATUSES = frozenset({"pending", "starting", "stopping", "deleting", "canceling"})


# --------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------

_DEFAULT_WAIT_TIMEOUT = 25 * 60.0
_DEFAULT_POLL_INTERVAL = 2.0
_DEFAULT_BACKOFF_AFTER = 2 * 60.0
_DEFAULT_MAX_POLL_INTERVAL = 10.0


@final
class TemplateStorage(_CoderStorage):
    """``codertemplates``: Coder templates as ``CoderTemplate`` objects.

    * get: the template plus ``spec.files`` read from its active version's
      source archive;
    * create: from ``spec.versionID``, or from ``spec.files`` (uploaded as a
      new version) → ADDED (no files);
    * update: display name, description and icon; ``spec.files`` uploads a
      new version, waits for its import and promotes it → MODIFIED (always,
      with files; in cache mode the cached event carries no files);
    * delete: ``DELETE /templates/{id}`` → DELETED with the template as it
      was.

    Args:
        provider: Resolves the Coder deployment of a namespace.
        watch_cache: See [`WorkspaceStorage`][k8swatch.coder.WorkspaceStorage].
        full_channel_behavior: See `WorkspaceStorage`.
        queue_length: See `WorkspaceStorage`.
        cache_window: See `WorkspaceStorage`.
        bookmark_interval: See `WorkspaceStorage`.
        build_wait_timeout: Seconds to wait for a new version's import
            (default 25 min); then 400 ``... did not succeed within ...``.
        build_poll_interval: First poll interval (default 2 s).
        build_backoff_after: Seconds after which the interval doubles (2 min).
        build_max_poll_interval: Interval cap (10 s).
        log: See `WorkspaceStorage`.
    """

    _RESOURCE: ClassVar[str] = CoderTemplate.PLURAL
    _KIND: ClassVar[str] = CoderTemplate.KIND
    _LIST_KIND: ClassVar[str] = CoderTemplate.LIST_KIND

    def __init__(
        self,
        provider: ClientProvider,
        *,
        watch_cache: bool = False,
        full_channel_behavior: FullChannelBehavior = FullChannelBehavior.TERMINATE_IF_FULL,
        queue_length: int = WATCH_QUEUE_LENGTH,
        cache_window: int = 1000,
        bookmark_interval: float = 60.0,
        build_wait_timeout: float = _DEFAULT_WAIT_TIMEOUT,
        build_poll_interval: float = _DEFAULT_POLL_INTERVAL,
        build_backoff_after: float = _DEFAULT_BACKOFF_AFTER,
        build_max_poll_interval: float = _DEFAULT_MAX_POLL_INTERVAL,
        log: EventLog | None = None,
    ) -> None:
        super().__init__(
            provider,
            watch_cache=watch_cache,
            full_channel_behavior=full_channel_behavior,
            queue_length=queue_length,
            cache_window=cache_window,
            bookmark_interval=bookmark_interval,
            log=log,
        )
        self._wait_timeout = build_wait_timeout
        self._poll_interval = build_poll_interval
        self._backoff_after = build_backoff_after
        self._max_poll_interval = build_max_poll_interval

    async def _fetch_all(self, client: CoderClient) -> list[dict[str, Any]]:
        return await client.templates()

    def _convert(self, namespace: str, coder_obj: Mapping[str, Any]) -> dict[str, Any]:
        return CoderTemplate.from_coder(namespace, coder_obj).to_dict()

    def _parse(self, name: str) -> tuple[str, str]:
        try:
            return parse_template_name(name)
        except ValueError as exc:
            raise bad_request(f"invalid template name {go_quote(name)}: {exc}") from None

    async def _fetch(
        self, client: CoderClient, name: str, org: str, tmpl: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        organization = await self._call(name, client.organization(org))
        template = await self._call(name, client.template_by_name(str(organization["id"]), tmpl))
        return organization, template

    async def _active_archive(self, client: CoderClient, template: Mapping[str, Any]) -> bytes:
        """The active version's source zip (any failure is a plain error → 500)."""
        try:
            version = await client.template_version(str(template["active_version_id"]))
            file_id = _sub(version, "job").get("file_id")
            if not file_id:
                raise ValueError(
                    f"template version {go_quote(str(version.get('id')))} has no source file"
                )
            return await client.download(str(file_id))
        except StatusError:
            raise
        except Exception as exc:
            raise internal_error(f"read template source: {exc}") from None

    async def _files(self, client: CoderClient, template: Mapping[str, Any]) -> dict[str, str]:
        data = await self._active_archive(client, template)
        try:
            return read_archive(data)
        except ValueError as exc:
            raise internal_error(f"read template source: {exc}") from None

    async def _full(
        self, client: CoderClient, namespace: str, template: Mapping[str, Any]
    ) -> dict[str, Any]:
        files = await self._files(client, template)
        obj = CoderTemplate.from_coder(namespace, template, files=files).to_dict()
        obj["spec"]["files"] = files  # present even when empty: GET always reads the source
        return obj

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The template with ``spec.files`` from its active version.

        Raises:
            StatusError: 400 bad name; 404; 500 when the source cannot be read.
        """
        self._require_namespace(namespace)
        org, tmpl = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            _, template = await self._fetch(client, name, org, tmpl)
        except StatusError as exc:
            await self._forget_if_gone(namespace, name, exc)
            raise
        full = await self._full(client, namespace, template)
        return await self._answer(namespace, full, template, epoch)

    async def _answer(
        self, namespace: str, full: dict[str, Any], template: Mapping[str, Any], epoch: int
    ) -> dict[str, Any]:
        if not full["spec"].get("files"):
            full["spec"].pop("files", None)
        return await self._observe(namespace, full, self._version(template), epoch)

    @staticmethod
    def _files_or_error(files: Mapping[str, str]) -> dict[str, str]:
        try:
            normalized = normalize_files(files)
            build_archive(normalized)
        except ValueError as exc:
            raise bad_request(f"invalid template spec.files: {exc}") from None
        return normalized

    @_write(_name_from_object)
    async def create(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the template from ``spec.files`` or ``spec.versionID``.

        Raises:
            StatusError: 400 for a bad object; 409 AlreadyExists; 404 for an
                unknown version; mapped Coder errors.
        """
        self._require_namespace(namespace)
        desired = CoderTemplate.from_dict(obj)
        _check_create_identity(desired.name, desired.namespace, namespace)
        name = desired.name
        org, tmpl = self._parse(name)
        spec = desired.spec
        if spec.organization != org:
            raise bad_request(
                f"spec.organization {go_quote(spec.organization)} must match organization "
                f"{go_quote(org)} parsed from metadata.name"
            )
        client = await self._client(namespace)
        await self._check_log()  # with the log unreachable, 503 before touching Coder
        base = self._base(namespace, name)
        organization = await self._call(name, client.organization(org))
        org_id = str(organization["id"])
        if spec.files is not None:
            archive = self._archive_or_error(spec.files)
            file_id = await self._call(name, client.upload(archive))
            version = await self._call(
                name, client.create_template_version(org_id, file_id=file_id)
            )
            version_id = str(version["id"])
        else:
            try:
                version_id = parse_uuid(spec.version_id)
            except ValueError as exc:
                raise bad_request(
                    f"parse template spec.versionID {go_quote(spec.version_id)}: {exc}"
                ) from None
        template = await self._call(
            name,
            client.create_template(
                org_id,
                name=tmpl,
                version_id=version_id,
                display_name=spec.display_name,
                description=spec.description,
                icon=spec.icon,
            ),
        )
        result = self._convert(namespace, template)
        return await self._publish(
            EventType.ADDED, namespace, result, self._version(template), base=base
        )

    def _archive_or_error(self, files: Mapping[str, str]) -> bytes:
        try:
            return build_archive(files)
        except ValueError as exc:
            raise bad_request(f"invalid template spec.files: {exc}") from None

    async def update(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
    ) -> dict[str, Any]:
        """Update the template (see `update_or_create`)."""
        return (
            await self.update_or_create(namespace, name, obj, force_allow_create=force_allow_create)
        )[0]

    @_write(_name_from_name)
    async def update_or_create(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Update; with *force_allow_create* (server-side apply), create a missing template.

        Returns ``(object, created)``. Always emits MODIFIED on success.

        Raises:
            StatusError: 400 for a read-only ``spec.versionID``, bad files, a
                failed or slow version import, a missing resourceVersion or an
                identity mismatch; 409 Conflict for a stale resourceVersion;
                504 Timeout when the request's deadline comes first; 500 when
                a promotion does not take effect; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, tmpl = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            _, template = await self._fetch(client, name, org, tmpl)
        except StatusError as exc:
            if exc.status.code == 404 and force_allow_create:
                return await self.create(namespace, _with_name(obj, name)), True
            raise
        full = await self._full(client, namespace, template)
        current_files: dict[str, str] = full["spec"]["files"]
        current_dict = await self._answer(namespace, full, template, epoch)
        base = self._base(namespace, name)
        current = CoderTemplate.from_dict(current_dict)
        desired = CoderTemplate.from_dict(obj)
        _check_update_identity(desired.name, name, desired.namespace, namespace)
        if not desired.resource_version:
            raise bad_request("metadata.resourceVersion is required for update")
        if desired.resource_version != current.resource_version:
            raise conflict(
                self._RESOURCE,
                name,
                f"resource version mismatch: got {go_quote(desired.resource_version)}, current is "
                f"{go_quote(current.resource_version)}",
                group=GROUP,
            )
        want, have = desired.spec, current.spec
        if want.organization != have.organization:
            raise bad_request(
                f"spec.organization {go_quote(want.organization)} must match existing organization "
                f"{go_quote(have.organization)}"
            )
        if want.version_id and want.version_id != have.version_id:
            raise bad_request(
                "spec.versionID is read-only; to change the active version, update spec.files "
                f"instead (current: {go_quote(have.version_id)}, "
                f"requested: {go_quote(want.version_id)})"
            )
        new_files = self._files_or_error(want.files) if want.files is not None else None
        template_id = str(template["id"])
        if (want.display_name, want.description, want.icon) != (
            have.display_name,
            have.description,
            have.icon,
        ):
            await self._call(
                name,
                client.update_template_meta(
                    template_id,
                    display_name=want.display_name,
                    description=want.description,
                    icon=want.icon,
                ),
            )
        if new_files is not None and new_files != current_files:
            await self._replace_source(client, name, org, template, new_files)
        template = await self._call(name, client.template(template_id))
        full = await self._full(client, namespace, template)
        if not full["spec"].get("files"):
            full["spec"].pop("files", None)
        stored = await self._publish(
            EventType.MODIFIED, namespace, full, self._version(template), base=base
        )
        return stored, False

    async def _replace_source(
        self,
        client: CoderClient,
        name: str,
        org: str,
        template: Mapping[str, Any],
        files: dict[str, str],
    ) -> None:
        template_id = str(template["id"])
        old = await self._active_archive(client, template)
        try:
            archive = merge_archive(files, old)
        except ValueError as exc:
            raise bad_request(f"invalid template spec.files: {exc}") from None
        file_id = await self._call(name, client.upload(archive))
        organization = await self._call(name, client.organization(org))
        version = await self._call(
            name,
            client.create_template_version(
                str(organization["id"]), file_id=file_id, template_id=template_id
            ),
        )
        version_id = str(version["id"])
        await self._wait_for_import(client, name, version_id)
        await self._call(name, client.update_active_template_version(template_id, version_id))
        after = await self._call(name, client.template(template_id))
        if after.get("active_version_id") != version_id:
            raise internal_error(
                "assertion failed: active version promotion did not take effect: expected "
                f"{go_quote(version_id)}, got {go_quote(str(after.get('active_version_id')))}"
            )

    async def _wait_for_import(self, client: CoderClient, name: str, version_id: str) -> None:
        """Poll the new version until its import job ends (Go's backoff schedule).

        The request's own deadline (the enclosing cancel scope's) is honoured:
        shortly before it, the wait gives up with 504 Timeout, so the client
        gets an answer instead of a dropped connection.
        """
        deadline = anyio.current_effective_deadline()
        last: list[str] = [""]
        if math.isinf(deadline):
            await self._poll_import(client, name, version_id, last)
            return
        margin = min(0.5, max(0.0, deadline - anyio.current_time()) * 0.2)
        with anyio.CancelScope(deadline=deadline - margin) as scope:
            await self._poll_import(client, name, version_id, last)
        if scope.cancelled_caught:
            raise timeout(
                f"waiting for template version {go_quote(version_id)} to build "
                f"(last status: {go_quote(last[0])}): request deadline exceeded"
            )

    async def _poll_import(
        self, client: CoderClient, name: str, version_id: str, last: list[str]
    ) -> None:
        start = anyio.current_time()
        interval = self._poll_interval
        while True:
            version = await self._call(name, client.template_version(version_id))
            job = _sub(version, "job")
            status = last[0] = str(job.get("status") or "")
            if status == "succeeded":
                return
            if status in ("failed", "canceled"):
                reason = str(job.get("error") or "template version build did not succeed")
                raise bad_request(
                    f"template version {go_quote(version_id)} build ended with status "
                    f"{go_quote(status)}: {reason}"
                )
            elapsed = anyio.current_time() - start
            if elapsed >= self._wait_timeout:
                raise bad_request(
                    f"template version {go_quote(version_id)} did not succeed within "
                    f"{format_go_duration(self._wait_timeout)} (last status: {go_quote(status)})"
                )
            if elapsed >= self._backoff_after:
                interval = min(interval * 2, self._max_poll_interval)
            await anyio.sleep(min(interval, self._wait_timeout - elapsed))

    @_write(_name_from_name)
    async def delete(self, namespace: str, name: str) -> Status:
        """``DELETE /templates/{id}``; emit DELETED with the template as fetched before.

        Raises:
            StatusError: 400 bad name or templates still used by workspaces;
                404; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, tmpl = self._parse(name)
        client = await self._client(namespace)
        await self._check_log()  # with the log unreachable, 503 before touching Coder
        base = self._base(namespace, name)
        _, template = await self._fetch(client, name, org, tmpl)
        await self._call(name, client.delete_template(str(template["id"])))
        result = self._convert(namespace, template)
        await self._publish(
            EventType.DELETED, namespace, result, self._version(template), base=base
        )
        return _success()
