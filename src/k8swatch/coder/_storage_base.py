"""`_CoderStorage`: what `WorkspaceStorage` and `TemplateStorage` share.

Verb by verb they do what the Go original (coder/coder-k8s) does
(``coder-adapters.md`` §2), with the same messages. Where their changes go
is the job of one event sink, chosen when the storage is built (``_sinks``):

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
  front of one Coder serve one API with global resourceVersions.

In every mode the storage remembers the last state it saw of every object (its
own writes included, in its `Ledger`); `resync` lists Coder and turns
differences into ADDED/MODIFIED/DELETED events, which is how `CoderPoller`
reports changes made outside this server without repeating the storage's own
events.
"""

from __future__ import annotations

import abc
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, cast

import anyio
import attrs
from anyio.abc import TaskStatus

from k8swatch._broadcaster import FullChannelBehavior
from k8swatch._cache import WatchCache
from k8swatch._eventlog import EventLog, LogSnapshot
from k8swatch._events import EventType
from k8swatch._fields import parse_field_selector
from k8swatch._finalizers import (
    DeletePreconditions,
    check_delete_preconditions,
    check_finalizers_update,
    deletes_on_update,
    keep_deletion_fields,
    plan_delete,
)
from k8swatch._go import go_quote
from k8swatch._json import copy_json
from k8swatch._options import ListOptions
from k8swatch._selectors import SelectorError
from k8swatch._status import (
    Status,
    StatusError,
    bad_request,
    conflict,
    internal_error,
    service_unavailable,
)
from k8swatch._storage import ObjectList
from k8swatch._warnings import add_warning
from k8swatch._watch import Watch
from k8swatch.coder._client import CoderClient, map_coder_error
from k8swatch.coder._convert import parse_rfc3339_ns
from k8swatch.coder._ledger import Ledger, name_of, sub
from k8swatch.coder._log_sink import LogSink
from k8swatch.coder._metadata import (
    KEPT_FIELDS,
    MemoryMetadataStore,
    MetadataRecord,
    MetadataStore,
    dress,
    finalizers_of,
    kept_metadata,
    validate_kept_metadata,
)
from k8swatch.coder._models import API_VERSION, GROUP
from k8swatch.coder._provider import ClientProvider, NamespaceLister, NamespaceResolver
from k8swatch.coder._sinks import BroadcastSink, CacheSink, EventSink

__all__ = [
    "WATCH_QUEUE_LENGTH",
    "DeleteTarget",
    "check_create_identity",
    "check_update_identity",
    "name_from_name",
    "name_from_object",
    "with_name",
    "writes",
]

logger = logging.getLogger("k8swatch.coder")

WATCH_QUEUE_LENGTH = 100
"""Per-watcher event buffer of the broadcaster, as in the Go original."""

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def name_from_object(obj: Any, *_: Any, **__: Any) -> str:
    """The name a create works on: its object's ``metadata.name``."""
    return str(sub(obj, "metadata").get("name") or "")


def name_from_name(name: str, *_: Any, **__: Any) -> str:
    """The name an update or delete works on: its *name* argument."""
    return name


def writes(name_of: Callable[..., str]) -> Callable[[_F], _F]:
    """Mark the object a mutation works on while it runs (see `Ledger.writing`)."""

    def decorate(method: _F) -> _F:
        @functools.wraps(method)
        async def wrapper(self: _CoderStorage, namespace: str, *args: Any, **kwargs: Any) -> Any:
            with self._ledger.writing((namespace, name_of(*args, **kwargs))):
                return await method(self, namespace, *args, **kwargs)

        return cast("_F", wrapper)

    return decorate


@attrs.frozen
class DeleteTarget:
    """An object a delete has read and checked, to be removed from Coder now.

    What `_CoderStorage._delete` hands the kind's own removal.
    """

    coder: dict[str, Any]
    """The object as Coder answered it."""
    obj: dict[str, Any]
    """Its Kubernetes form, with its stored metadata."""
    version: int
    """Its version: the later of Coder's and its metadata record's."""
    revision: int
    """Its metadata record's revision (0: there is none)."""
    kept: dict[str, Any]
    """The metadata kept for it in the metadata store (no finalizers: nothing holds it)."""
    base: int | None
    """`Ledger.base` of the object, taken before Coder was read (see `_begin_write`)."""


class _CoderStorage(abc.ABC):
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
        metadata_store: MetadataStore | None = None,
    ) -> None:
        self._provider = provider
        self._ledger = Ledger()
        self._meta: MetadataStore = (
            metadata_store if metadata_store is not None else MemoryMetadataStore()
        )
        self._sink = self._make_sink(
            watch_cache=watch_cache,
            full_channel_behavior=full_channel_behavior,
            queue_length=queue_length,
            cache_window=cache_window,
            bookmark_interval=bookmark_interval,
            log=log,
        )

    def _make_sink(
        self,
        *,
        watch_cache: bool,
        full_channel_behavior: FullChannelBehavior,
        queue_length: int,
        cache_window: int,
        bookmark_interval: float,
        log: EventLog | None,
    ) -> EventSink:
        """The event sink of the mode the constructor's arguments choose (once)."""
        if log is None and not watch_cache:
            return BroadcastSink(
                self,
                self._ledger,
                self._RESOURCE,
                queue_length=queue_length,
                full_channel_behavior=full_channel_behavior,
            )
        cache: WatchCache[dict[str, Any]] = WatchCache(
            API_VERSION,
            self._KIND,
            resource=self._RESOURCE,
            group=GROUP,
            window=cache_window,
            bookmark_interval=bookmark_interval,
        )
        if log is not None:
            return LogSink(self, self._ledger, self._RESOURCE, cache, log)
        # Start numbering at the current time in microseconds: every
        # resourceVersion of a later process is higher than any of this
        # one, so a client resuming across a restart gets 410 and relists
        # instead of silently waiting for the counter to catch up.
        cache.reset(LogSnapshot(time.time_ns() // 1000, {}))
        return CacheSink(self, self._ledger, self._RESOURCE, cache)

    @property
    def watch_cache(self) -> WatchCache[dict[str, Any]] | None:
        """The watch cache, when the storage was built with ``watch_cache=True`` or a *log*."""
        return self._sink.cache

    @property
    def log(self) -> EventLog | None:
        """The shared event log every change is recorded in (None without ``log=``)."""
        return self._sink.log

    @property
    def metadata_store(self) -> MetadataStore:
        """Where the labels, annotations, finalizers etc. of the objects are kept."""
        return self._meta

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
        await self._sink.follow(task_status=task_status)

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

    async def _list_coder(self, namespace: str) -> list[dict[str, Any]]:
        """Every object Coder shows in *namespace* ("" = all), converted, in Coder's order.

        Sorted by namespace and name across namespaces; malformed objects
        are skipped (and logged).
        """
        items: list[dict[str, Any]] = []
        namespaces = await self._namespaces(namespace)
        for ns in namespaces:
            client = await self._client(ns)
            listed = await self._call("<list>", self._fetch_all(client))
            items.extend(obj for obj, _ in await self._dress_all(ns, listed))
        if len(namespaces) > 1:
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), name_of(o)))
        return items

    def _check_resource_version(self, name: str, desired: str, current: str) -> None:
        """An update's resourceVersion: 400 when missing, 409 Conflict when stale."""
        if not desired:
            raise bad_request("metadata.resourceVersion is required for update")
        if desired != current:
            raise conflict(
                self._RESOURCE,
                name,
                f"resource version mismatch: got {go_quote(desired)}, current is "
                f"{go_quote(current)}",
                group=GROUP,
            )

    # --- Kubernetes metadata (kept in the metadata store) ----------------------

    async def _records(self, ids: Collection[str]) -> dict[str, MetadataRecord]:
        """The stored metadata of the Coder objects *ids*.

        Raises:
            StatusError: 503 when the store is unreachable; 500 for a failure of
                the store's own.
        """
        if not ids:
            return {}
        try:
            return await self._meta.read(ids)
        except StatusError:
            raise
        except Exception as exc:
            raise internal_error(exc, context="reading Kubernetes metadata") from None

    async def _dress_all(
        self, namespace: str, listed: Sequence[Mapping[str, Any]]
    ) -> list[tuple[dict[str, Any], int]]:
        """Convert a listing and add the stored metadata: ``(object, version)`` each.

        Malformed objects are skipped (and logged). An object's version is
        the later of Coder's and its metadata record's revision.
        """
        converted: list[tuple[dict[str, Any], int]] = []
        for coder_obj in listed:
            try:
                converted.append((self._convert(namespace, coder_obj), self._version(coder_obj)))
            except (KeyError, ValueError) as exc:
                logger.warning("coder: skipping malformed %s: %s", self._RESOURCE, exc)
        records = await self._records([_uid(obj) for obj, _ in converted if _uid(obj)])
        out: list[tuple[dict[str, Any], int]] = []
        for obj, version in converted:
            record = records.get(_uid(obj))
            if record is not None:
                dress(obj, record[1].get("metadata") or {}, record[0])
                version = max(version, record[0])
            out.append((obj, version))
        return out

    async def _dress_one(
        self, namespace: str, coder_obj: Mapping[str, Any], obj: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], int, int]:
        """One object from Coder with its stored metadata: ``(object, version, revision)``.

        *obj* is its conversion when the caller has one (e.g. with
        ``spec.files``). *revision* is the record's (0: there is none), the
        value a metadata write is conditional on.
        """
        if obj is None:
            obj = self._convert(namespace, coder_obj)
        version = self._version(coder_obj)
        uid = _uid(obj)
        record = (await self._records([uid])).get(uid) if uid else None
        if record is None:
            return obj, version, 0
        dress(obj, record[1].get("metadata") or {}, record[0])
        return obj, max(version, record[0]), record[0]

    def _wanted_metadata(
        self, name: str, obj: Mapping[str, Any], current: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The metadata an update of *current* to *obj* keeps, checked as the apiserver does.

        The client's labels, annotations, finalizers, ownerReferences and
        managedFields; the server's deletionTimestamp and grace period stay
        as they are. Once the object is being deleted, no finalizer may be
        added.

        Raises:
            StatusError: 422 Invalid naming the offending field.
        """
        validate_kept_metadata(self._KIND, GROUP, name, sub(obj, "metadata"))
        new = keep_deletion_fields(current, obj)
        check_finalizers_update(current, new, kind=self._KIND, group=GROUP)
        want = kept_metadata(sub(new, "metadata"))
        _warn_unqualified(finalizers_of(want), finalizers_of(sub(current, "metadata")))
        return want

    def _check_preconditions(
        self, obj: Mapping[str, Any], preconditions: DeletePreconditions | None
    ) -> None:
        """A delete's ``DeleteOptions.preconditions`` against the object: 409 on mismatch."""
        check_delete_preconditions(obj, preconditions, kind=self._KIND, group=GROUP)

    def _created_metadata(self, name: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The metadata a create keeps (the client's; no deletion yet), checked (422)."""
        given = sub(obj, "metadata")
        validate_kept_metadata(self._KIND, GROUP, name, given)
        kept = {k: v for k, v in kept_metadata(given).items() if k in KEPT_FIELDS}
        _warn_unqualified(finalizers_of(kept), [])
        return kept

    async def _store_metadata(
        self,
        namespace: str,
        name: str,
        uid: str,
        kept: Mapping[str, Any],
        *,
        expected: int,
        after: int,
    ) -> int:
        """Store *kept* as the metadata of *uid* if its record is still at *expected*.

        Returns the new revision: later than *after* (the object's version
        now) and than the current time, so the object's resourceVersion
        moves forward. Empty metadata removes the record.

        Raises:
            StatusError: 409 Conflict when the metadata changed meanwhile;
                503 when the store is unreachable.
        """
        revision = max(time.time_ns(), after + 1)
        body: dict[str, Any] | None = (
            {
                "resource": self._RESOURCE,
                "namespace": namespace,
                "name": name,
                "metadata": copy_json(dict(kept)),
            }
            if kept
            else None
        )
        try:
            written = await self._meta.write(uid, body, revision, expected=expected)
        except StatusError:
            raise
        except Exception as exc:
            raise internal_error(exc, context="storing Kubernetes metadata") from None
        if not written:
            raise conflict(
                self._RESOURCE,
                name,
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
                group=GROUP,
            )
        return revision if body is not None else 0

    @staticmethod
    def _releases_deletion(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
        """Whether an update from metadata *have* to *want* removes the last finalizer
        of an object being deleted: then the deletion held back starts.

        (An object being deleted in Coder keeps its ``deletionTimestamp`` and
        has no finalizers left; updating it starts nothing.)
        """
        return bool(finalizers_of(have)) and deletes_on_update(
            {"metadata": have}, {"metadata": want}
        )

    def _check_status(self, name: str, obj: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        """Warn when an update changes ``status``: it is read from Coder, never written.

        A warning, not a 422: kube-apiserver ignores ``status`` in writes to a
        resource whose status is not the client's (the status subresource),
        and a ``PUT`` of an object read a moment ago may carry a status
        Coder has moved on from (e.g. ``lastUsedAt``) under the same
        resourceVersion when there is no watch cache.
        """
        if "status" in obj and obj["status"] != current.get("status"):
            add_warning(
                f"status: {self._KIND} {go_quote(name)}: the status is read from Coder; "
                "the change was not kept"
            )

    async def _hold_deletion(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        version: int,
        revision: int,
        base: int | None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """A delete of an object with finalizers: mark it as being deleted; answer it.

        The first delete sets ``deletionTimestamp`` (now, whole seconds) and
        ``deletionGracePeriodSeconds`` 0 and emits MODIFIED; a repeated
        delete answers the object unchanged. Coder is not touched until an
        update removes the last finalizer.

        Raises:
            StatusError: 409 Conflict when the metadata changed meanwhile;
                503 when the store is unreachable.
        """
        plan = plan_delete(obj, now=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if dry_run:
            return obj if plan.object is None else plan.object
        if plan.object is None or not plan.changed:
            return await self._sink.observe(namespace, obj, version, self._ledger.seq)
        marked = kept_metadata(sub(plan.object, "metadata"))
        new_revision = await self._store_metadata(
            namespace, name, _uid(obj), marked, expected=revision, after=version
        )
        dress(obj, marked, new_revision)
        return await self._sink.publish(
            EventType.MODIFIED, namespace, obj, max(version, new_revision), base=base
        )

    async def _forget_metadata(self, uids: Collection[str]) -> None:
        """Remove the metadata of objects that are gone from Coder (failures are logged)."""
        if not uids:
            return
        try:
            await self._meta.remove(uids)
        except Exception as exc:
            logger.warning("coder: metadata of deleted %s not removed: %s", self._RESOURCE, exc)

    async def _sweep(
        self, namespace: str, listed: Sequence[Mapping[str, Any]], started: int
    ) -> None:
        """Remove the metadata of *namespace*'s objects a complete listing no longer shows.

        Only records written before the listing began (wall time *started*)
        are candidates, so an object created meanwhile keeps its metadata.
        Failures are logged: the next listing sweeps again.
        """
        present = {str(o.get("id") or "") for o in listed}
        try:
            records = await self._meta.read_all()
        except Exception as exc:
            logger.warning("coder: metadata of %s not swept: %s", self._RESOURCE, exc)
            return
        stale = [
            uid
            for uid, (revision, body) in records.items()
            if body.get("resource") == self._RESOURCE
            and body.get("namespace") == namespace
            and uid not in present
            and revision < started
        ]
        await self._forget_metadata(stale)

    # --- per kind ----------------------------------------------------------------

    @abc.abstractmethod
    async def _fetch_all(self, client: CoderClient) -> list[dict[str, Any]]:
        """Every object of this kind Coder shows, as Coder's JSON."""

    @abc.abstractmethod
    def _convert(self, namespace: str, coder_obj: Mapping[str, Any]) -> dict[str, Any]:
        """The Kubernetes object for one of Coder's."""

    @staticmethod
    def _version(coder_obj: Mapping[str, Any]) -> int:
        return parse_rfc3339_ns(str(coder_obj["updated_at"]))

    @abc.abstractmethod
    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """Return the object (implemented per kind)."""

    @abc.abstractmethod
    async def update_or_create(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Update; with *force_allow_create*, create a missing object (implemented per kind)."""

    async def update(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Update the object (see `update_or_create`).

        With *dry_run*, every check of the write is made (Coder is read) and
        the answer is the object the write would store, but nothing changes
        in Coder or in the metadata store; its resourceVersion is the
        current one.
        """
        return (
            await self.update_or_create(
                namespace, name, obj, force_allow_create=force_allow_create, dry_run=dry_run
            )
        )[0]

    async def _delete(
        self,
        namespace: str,
        name: str,
        *,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        remove: Callable[[DeleteTarget], Awaitable[None]],
        preconditions: DeletePreconditions | None,
        dry_run: bool,
    ) -> Status | dict[str, Any]:
        """The delete both kinds share, around the kind's own *fetch* and *remove*.

        Reads the object from Coder (*fetch*, once), adds its stored metadata
        and checks the *preconditions* against it, with the resourceVersion
        `get` would answer (the watch cache's in cache and log modes). An
        object with finalizers is only marked as being deleted
        (`_hold_deletion`); a *dry_run* answers Status Success here; otherwise
        *remove* takes the object out of Coder and records the change, and the
        answer is Status Success.

        Raises:
            StatusError: 404; 409 Conflict when the preconditions do not hold
                or the metadata changed meanwhile; mapped Coder errors; those
                of *fetch* and *remove*.
        """
        base = await self._begin_write(namespace, name)
        epoch = self._ledger.seq
        coder_obj = await fetch()
        obj, version, revision = await self._dress_one(namespace, coder_obj)
        if preconditions:
            # what get would answer for this read, without reading Coder again
            answer = await self._sink.observe(namespace, obj, version, epoch)
            self._check_preconditions(answer, preconditions)
        kept = kept_metadata(obj["metadata"])
        if finalizers_of(kept):
            return await self._hold_deletion(
                namespace, name, obj, version, revision, base, dry_run=dry_run
            )
        if dry_run:
            return Status.success()
        await remove(DeleteTarget(coder_obj, obj, version, revision, kept, base))
        return Status.success()

    # --- the known state -----------------------------------------------------------

    async def _begin_write(self, namespace: str, name: str) -> int | None:
        """Before a create or delete changes Coder: catch up and take the write's base.

        With the shared state unreachable this is a 503 before Coder is
        touched: nothing is half-applied. The base is `Ledger.base`.
        """
        await self._sink.catch_up()
        return self._ledger.base((namespace, name))

    async def _epoch(self) -> int:
        """The sequence number before a read of Coder, after catching up.

        So a state recorded after this point (by any replica) is known to be
        at least as new as what the read returns (see `EventSink.observe`).

        Raises:
            StatusError: 503 when the shared state is unreachable.
        """
        await self._sink.catch_up()
        return self._ledger.seq

    async def _forget_if_gone(self, namespace: str, name: str, exc: StatusError) -> None:
        """A get that finds the object gone (404) tells the sink (`EventSink.gone`)."""
        if exc.status.code == 404:
            await self._sink.gone(namespace, name)

    async def _reconcile(
        self,
        namespace: str,
        listed: Sequence[Mapping[str, Any]],
        epoch: int,
        *,
        baseline: bool,
        started: int = 0,
    ) -> None:
        """Diff a complete listing of *namespace* against the last known state.

        The first listing of a namespace (*baseline*) is the sink's to adopt
        (`EventSink.adopt`); what it does not adopt is diffed. Then the
        metadata of objects the listing (begun at wall time *started*) no
        longer shows is removed (`_sweep`; not without *started*).

        Raises:
            StatusError: 503 when the shared state is unreachable (what was
                not recorded is diffed again by the next resync).
        """
        ledger, sink = self._ledger, self._sink
        # States recorded (by any replica) while the listing ran get sequence
        # numbers after the epoch: the listing cannot revert them.
        await sink.catch_up()
        seen: set[tuple[str, str]] = set()
        for obj, version in await self._dress_all(namespace, listed):
            key = (namespace, name_of(obj))
            seen.add(key)
            if key in ledger.inflight:
                continue  # being written through this server: its own event follows
            tombstone = ledger.tombstones.get(key)
            if tombstone is not None and tombstone > epoch:
                continue  # its deletion was recorded after the listing started
            if baseline and sink.adopt(key, obj, version):
                continue
            known = ledger.known.get(key)
            if known is None:
                await sink.note(EventType.ADDED, namespace, obj, version)
            elif known.seq > epoch or version < known.version:
                continue  # a newer state was recorded after the listing started, or stale
            elif known.fingerprint != sink.fingerprint(obj):
                await sink.note(EventType.MODIFIED, namespace, obj, version)
        for key in [k for k in ledger.known if k[0] == namespace and k not in seen]:
            known = ledger.known.get(key)
            if known is None or known.seq > epoch or key in ledger.inflight:
                continue
            if not (baseline and sink.adopt(key, None, known.version)):
                await sink.note(EventType.DELETED, namespace, known.object, known.version)
        ledger.expire_tombstones(namespace, epoch)
        ledger.primed.add(namespace)
        if started:
            await self._sweep(namespace, listed, started)

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
            await self._sink.load()  # the known state starts from the shared one
            epoch = self._ledger.seq
            started = time.time_ns()
            listed = await self._call("<list>", self._fetch_all(client))
            await self._reconcile(
                ns, listed, epoch, baseline=ns not in self._ledger.primed, started=started
            )

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
        return await self._sink.list(namespace, options)

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
        if self._sink.closed:
            raise service_unavailable(f"{self._RESOURCE} storage is shut down")
        _check_watch_field_selector(options.field_selector)
        return await self._sink.watch(namespace, options)

    async def aclose(self) -> None:
        """Shut the event source down; open watches end; `follow` returns. Idempotent.

        A *log* is not closed: whoever created it owns it (the Redis backend
        closes its logs when it exits).
        """
        self._sink.close()


_WATCH_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def _warn_unqualified(finalizers: Sequence[str], before: Sequence[str]) -> None:
    """The apiserver's warning for each added finalizer name without a domain."""
    for finalizer in finalizers:
        if "/" not in finalizer and finalizer not in before:
            add_warning(
                f"metadata.finalizers: {go_quote(finalizer)}: prefer a domain-qualified "
                "finalizer name to avoid accidental conflicts with other finalizer writers"
            )


def _uid(obj: Mapping[str, Any]) -> str:
    """``metadata.uid`` of a converted object: the Coder id its metadata is kept under."""
    return str(sub(obj, "metadata").get("uid") or "")


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


def check_update_identity(
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


def check_create_identity(name: str, obj_namespace: str, namespace: str) -> None:
    if not name:
        raise bad_request("metadata.name must not be empty")
    if obj_namespace and obj_namespace != namespace:
        raise bad_request(
            f"metadata.namespace {go_quote(obj_namespace)} must match request namespace "
            f"{go_quote(namespace)}"
        )


def with_name(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
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
