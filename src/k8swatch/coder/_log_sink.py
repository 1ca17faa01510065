"""`LogSink`: a Coder storage's changes recorded in a shared `EventLog`.

Several replicas in front of one Coder serve one API with global
resourceVersions: every change is recorded in the log (e.g. Redis Streams),
and each replica's watch cache is fed only from it (the follower, and
catching up before answering). Every entry is a write conditional on the
object's last known state (``CREATE``, or ``UPDATE``/``DELETE`` with its
resourceVersion), so a change seen by several replicas is recorded once and
a replica with a stale view never reverts a newer state; entries of every
replica update the last known state as the follower reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus

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
from k8swatch._follower import DEFAULT_COALESCE, LogFeed
from k8swatch._json import copy_json
from k8swatch._status import StatusError, service_unavailable
from k8swatch.coder._ledger import (
    Key,
    Known,
    Ledger,
    name_of,
    sub,
    with_files_of,
    without_files,
)
from k8swatch.coder._sinks import CacheSink, SinkOwner

__all__ = ["LogSink"]

logger = logging.getLogger("k8swatch.coder")


class LogSink(CacheSink):
    """The watch cache, fed only from a shared log every replica records its changes in.

    The cache's resourceVersions are the log's: global across replicas.
    Writes are conditional: a refused one records nothing and catches up
    with the log instead.
    """

    def __init__(
        self,
        owner: SinkOwner,
        ledger: Ledger,
        resource: str,
        cache: WatchCache[dict[str, Any]],
        log: EventLog,
    ) -> None:
        super().__init__(owner, ledger, resource, cache)
        self._log = log
        self._feed = LogFeed(
            log,
            cache,
            is_closed=lambda: self._closed,
            on_ingest=self._ingested,
            on_reset=self._reloaded,
            coalesce=DEFAULT_COALESCE,
        )

    @property
    def log(self) -> EventLog | None:
        """The shared log every change is recorded in."""
        return self._log

    async def follow(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Feed the cache with the log's new entries until cancelled or closed (`LogFeed`)."""
        await self._feed.follow(task_status=task_status)

    async def load(self) -> None:
        """Fill the cache, and so the known state, from the log's snapshot, once."""
        await self._feed.ensure_loaded()

    async def catch_up(self) -> None:
        """Fold in every entry the log holds now; 503 when it is unreachable.

        So a write is refused before Coder is touched (nothing is
        half-applied), and a state any replica recorded after this point is
        known to be at least as new as what a read of Coder returns.
        """
        await self._feed.catch_up_to_log()

    def _shut_down(self) -> None:
        self._feed.stop()
        super()._shut_down()

    def _read_predates(self, known: Known, epoch: int) -> bool:
        """Any replica may have recorded *known* while the read ran: it wins if it is newer."""
        return known.seq > epoch

    async def _catch_up_for(self, resource_version: str) -> None:
        """Bring the cache to a requested resourceVersion it has not reached yet.

        E.g. a watch on this replica resuming from an RV another replica
        answered with: the cache serves it at once instead of waiting for
        the follower.
        """
        if not resource_version.isdigit():
            return
        requested = int(resource_version)
        if requested > self._cache.resource_version:
            await self._feed.catch_up(requested)

    # --- writes ----------------------------------------------------------------

    async def publish(
        self,
        type_: EventType,
        namespace: str,
        obj: dict[str, Any],
        version: int,
        *,
        base: int | None,
        unless_seen: bool = False,
    ) -> dict[str, Any]:
        """Record the write's result with a write conditional on *base*.

        *base* is the log resourceVersion of the object when the write read
        it, None when the log did not have it. If another replica recorded
        a change of the object since, the write is refused and `_settle`
        decides what to answer, so a newer state is never overwritten by
        this one. If the log is unreachable the request still succeeds (see
        `_unrecorded`).
        """
        ledger = self._ledger
        key = (namespace, name_of(obj))
        known = ledger.known.get(key)
        if unless_seen and known is not None and known.fingerprint == self.fingerprint(obj):
            known.seq = ledger.next_seq()
            return with_files_of(copy_json(known.object), obj)
        log_key = object_key(namespace, key[1])
        body = copy_json(without_files(obj))
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
            await self._feed.catch_up(entry.resource_version, patience=self._cache.wait_timeout)
        except StatusError as exc:
            logger.warning(
                "coder: %s %s %s/%s happened in Coder but was not recorded (%s); the next "
                "resync records it",
                type_.value,
                self._resource,
                namespace,
                key[1],
                exc.status.message,
            )
            return self._unrecorded(obj)
        return with_files_of(copy_json(entry.object), obj)

    async def _settle(
        self, type_: EventType, namespace: str, obj: dict[str, Any], version: int
    ) -> dict[str, Any]:
        """Another replica recorded a change of the object while this one wrote it.

        If it recorded the very state this write produced (its poll saw the
        write first), that entry is the answer: nothing is recorded twice.
        Otherwise nobody can tell which of the two states is newer, so Coder
        is asked again (a get, recording what it finds with a conditional
        write); the answer is never older than the client's write. A deletion
        is recorded against the newer state (the object is gone in Coder).

        Raises:
            StatusError: 503 when the log is unreachable.
        """
        await self._feed.catch_up_to_log()
        key = (namespace, name_of(obj))
        known = self._ledger.known.get(key)
        if type_ is EventType.DELETED:
            if known is not None:
                await self.note(EventType.DELETED, namespace, known.object, known.version)
            return self._unrecorded(obj)
        if known is not None and known.fingerprint == self.fingerprint(obj):
            known.version = max(known.version, version)
            return with_files_of(copy_json(known.object), obj)
        try:
            return await self._owner.get(namespace, key[1])
        except StatusError as exc:
            if exc.status.code == 503:
                raise
            logger.warning("coder: re-reading %s %s: %s", self._resource, key[1], exc)
            return self._unrecorded(obj)

    def _unrecorded(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The answer for a write Coder applied but the log did not record (yet).

        The client's change happened, so the request succeeds (a 503 would
        invite a retry that fails with AlreadyExists or repeats a build).
        The state is not remembered, so the next `resync` records it, once;
        the answer carries this replica's current resourceVersion, which
        precedes that event: a watch from it sees the change when it is
        recorded. An update that sends this resourceVersion back before then
        gets 409 Conflict and re-reads.
        """
        return copy_json(with_resource_version(obj, self._cache.resource_version))

    async def _append(self, write: Write) -> LogEntry | None:
        """Append to the log; a closed log is a 503 like an unreachable one."""
        try:
            return await self._log.append(write)
        except anyio.ClosedResourceError:
            raise service_unavailable(f"{self._resource} storage is shut down") from None

    async def note(
        self, type_: EventType, namespace: str, obj: dict[str, Any], version: int
    ) -> dict[str, Any] | None:
        """Record an observed state with a write conditional on the last known state.

        ``CREATE`` when unknown, ``UPDATE``/``DELETE`` with its
        resourceVersion: replicas that observe the same change record it
        once, and a replica whose view is stale cannot revert a newer state
        another replica recorded. A refused write records nothing, catches
        up with the log and returns None (the next resync diffs again
        against the newer state).

        Raises:
            StatusError: 503 when the log is unreachable (nothing recorded).
        """
        ledger = self._ledger
        key = (namespace, name_of(obj))
        log_key = object_key(namespace, key[1])
        known = ledger.known.get(key)
        expected = ledger.log_rvs.get(key)
        if type_ is EventType.DELETED:
            if known is None or expected is None:
                return None
            write = Write(WriteOp.DELETE, log_key, known.object, expected)
        elif known is None or expected is None:
            write = Write(WriteOp.CREATE, log_key, copy_json(without_files(obj)))
        else:
            write = Write(WriteOp.UPDATE, log_key, copy_json(without_files(obj)), expected)
        try:
            entry = await self._append(write)
        except PreconditionFailedError:
            await self._feed.catch_up_to_log()
            return None
        if entry is None:  # pragma: no cover - conditional writes always record
            return None
        self._remember(key, entry, version)
        await self._feed.catch_up(entry.resource_version, patience=self._cache.wait_timeout)
        return with_files_of(copy_json(entry.object), obj)

    # --- the log's entries into the known state --------------------------------

    def _fold(self, key: Key, entry: LogEntry, version: int | None) -> None:
        """Make *entry* the last known state of *key*, with a fresh sequence number."""
        ledger = self._ledger
        ledger.log_rvs[key] = entry.resource_version
        seq = ledger.next_seq()
        if entry.type is EventType.DELETED:
            ledger.known.pop(key, None)
            ledger.tombstones[key] = seq
            return
        previous = ledger.known.get(key)
        if version is None:
            version = previous.version if previous is not None else 0
        # Entry objects are shared and read-only; the ledger never hands them out uncopied.
        ledger.known[key] = Known(self.fingerprint(entry.object), version, seq, entry.object)
        ledger.tombstones.pop(key, None)

    def _remember(self, key: Key, entry: LogEntry, version: int) -> None:
        """Fold this replica's own appended entry (Coder *version* known)."""
        folded = self._ledger.log_rvs.get(key, 0)
        if folded > entry.resource_version:
            return  # a newer state (another replica's) is already known
        if folded == entry.resource_version:  # the follower was faster
            known = self._ledger.known.get(key)
            if known is not None:
                known.version = max(known.version, version)
            return
        self._fold(key, entry, version)

    def _ingested(self, entries: Sequence[LogEntry]) -> None:
        """Entries reached the cache (any replica's): they are the last known state.

        So a listing that started before them cannot revert them (their
        sequence numbers are newer than its epoch; see `_reconcile`).
        """
        for entry in entries:
            metadata = sub(entry.object, "metadata")
            key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
            if self._ledger.log_rvs.get(key, 0) < entry.resource_version:
                self._fold(key, entry, None)

    def _reloaded(self, snapshot: LogSnapshot) -> None:
        """The cache was (re)loaded from the log's snapshot: so is the known state."""
        ledger = self._ledger
        seen: set[Key] = set()
        for obj in snapshot.objects.values():
            metadata = sub(obj, "metadata")
            key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
            seen.add(key)
            rv = str(metadata.get("resourceVersion") or "0")
            entry = LogEntry(int(rv) if rv.isdigit() else 0, EventType.ADDED, "", obj)
            known = ledger.known.get(key)
            if known is not None and known.fingerprint == self.fingerprint(obj):
                ledger.log_rvs[key] = entry.resource_version
                continue
            self._fold(key, entry, None)
        for key in [k for k in ledger.known if k not in seen]:
            seq = ledger.next_seq()
            del ledger.known[key]
            ledger.log_rvs.pop(key, None)
            ledger.tombstones[key] = seq
