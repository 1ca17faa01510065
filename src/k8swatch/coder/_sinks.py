"""Event sinks: where a Coder storage's changes go, and what serves its list and watch.

A Coder storage records every change it makes or observes in its `Ledger`
and hands it to one sink, chosen once when the storage is built:

* `BroadcastSink` (the default): the Go original's `Broadcaster`;
* `CacheSink` (``watch_cache=True``): a `WatchCache` fed by this server;
* `LogSink` (``log=``, in ``_log_sink``): the cache, fed from a shared
  `EventLog` every replica records its changes in.

The storage talks to its sink through `EventSink` only and never asks which
one it has; the sink reads Coder back through `SinkOwner` (its storage).
"""

from __future__ import annotations

import abc
import logging
import time
from typing import Any, Protocol, cast

import anyio
from anyio.abc import TaskStatus

from k8swatch._broadcaster import Broadcaster, FullChannelBehavior
from k8swatch._cache import WatchCache
from k8swatch._eventlog import EventLog
from k8swatch._events import Event, EventType
from k8swatch._filters import filter_for_list_options
from k8swatch._go import go_quote
from k8swatch._json import copy_json
from k8swatch._options import ListOptions, WatchCapabilities, validate_watch_options
from k8swatch._status import StatusError, service_unavailable
from k8swatch._storage import ObjectList
from k8swatch._watch import Watch, filter_watch, stop_aware_watch
from k8swatch.coder._ledger import Key, Known, Ledger, name_of, with_files_of, without_files

__all__ = ["BroadcastSink", "CacheSink", "EventSink", "SinkOwner"]

logger = logging.getLogger("k8swatch.coder")


def _added(obj: dict[str, Any]) -> Event[dict[str, Any]]:
    return Event(EventType.ADDED, obj)


class SinkOwner(Protocol):
    """What a sink asks of its storage: Coder, read through the storage's conversions."""

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The object as Coder has it now (recorded like any other observed state)."""
        ...

    async def resync(self, namespace: str = "") -> None:
        """List Coder and record every difference from the last known state."""
        ...

    async def _namespaces(self, namespace: str) -> list[str]:
        """The namespaces a request for *namespace* ("" = all) covers."""
        ...

    async def _list_coder(self, namespace: str) -> list[dict[str, Any]]:
        """Every object Coder shows in *namespace* ("" = all), converted."""
        ...


class EventSink(Protocol):
    """What a Coder storage does with the changes it records, whatever its mode."""

    @property
    def cache(self) -> WatchCache[dict[str, Any]] | None:
        """The watch cache list and watch are served from (None: there is none)."""
        ...

    @property
    def log(self) -> EventLog | None:
        """The shared log every change is recorded in (None: there is none)."""
        ...

    @property
    def closed(self) -> bool:
        """True after `close`."""
        ...

    def fingerprint(self, obj: dict[str, Any]) -> Any:
        """What of *obj* tells two states apart: equal fingerprints need no event."""
        ...

    async def follow(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bring changes recorded by other replicas to this one until closed.

        Raises:
            RuntimeError: Nothing is recorded elsewhere (no log).
        """
        ...

    async def load(self) -> None:
        """Before a listing: make the known state start from the shared one, once.

        Raises:
            StatusError: 503 when the shared state is unreachable.
        """
        ...

    async def catch_up(self) -> None:
        """Fold in every change recorded elsewhere, before Coder is read or written.

        Raises:
            StatusError: 503 when the shared state is unreachable.
        """
        ...

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
        """Record the result of the storage's own write; return what to answer.

        *base* is `Ledger.base` of the object, taken before Coder was
        changed. With *unless_seen*, a state already recorded (e.g. through
        the workspace watch stream, which can be faster than the answer to
        the write itself) is not recorded a second time.
        """
        ...

    async def note(
        self, type_: EventType, namespace: str, obj: dict[str, Any], version: int
    ) -> dict[str, Any] | None:
        """Record a state observed in Coder; return it as stored (None: not recorded).

        Raises:
            StatusError: 503 when the shared state is unreachable.
        """
        ...

    async def observe(
        self, namespace: str, obj: dict[str, Any], version: int, epoch: int
    ) -> dict[str, Any]:
        """Fold a state a get read from Coder (the read began at *epoch*); return the answer.

        Raises:
            StatusError: 503 when the shared state is unreachable.
        """
        ...

    async def gone(self, namespace: str, name: str) -> None:
        """A get found the object gone from Coder."""
        ...

    def adopt(self, key: Key, obj: dict[str, Any] | None, version: int) -> bool:
        """Take what the first listing of a namespace found (None: *key* is gone) as known.

        Returns True when done without an event; False when the sink needs
        the events of that listing (the storage then records them).
        """
        ...

    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        """Answer a list request (the storage's `list`)."""
        ...

    async def watch(self, namespace: str, options: ListOptions) -> Watch[dict[str, Any]]:
        """Answer a watch request whose field selector the storage checked."""
        ...

    def close(self) -> None:
        """End open watches and `follow`; idempotent."""
        ...


class _SinkBase(abc.ABC):
    """What every sink shares; recording happens here only, without a log.

    A state is recorded in the ledger with the next sequence number and
    emitted as an event right away (`_record`); the answer to a write is the
    object as emitted.
    """

    def __init__(self, owner: SinkOwner, ledger: Ledger, resource: str) -> None:
        self._owner = owner
        self._ledger = ledger
        self._resource = resource
        self._closed = False

    @property
    def log(self) -> EventLog | None:
        """None: without a log, this replica is the only one recording changes."""
        return None

    @property
    def closed(self) -> bool:
        """True after `close`."""
        return self._closed

    async def follow(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Raises RuntimeError: only a storage with a log has changes recorded elsewhere."""
        raise RuntimeError(f"{type(self._owner).__name__}.follow() needs a storage built with log=")

    async def load(self) -> None:  # noqa: B027 - a no-op by design
        """Nothing to load: the known state is this replica's own."""

    async def catch_up(self) -> None:  # noqa: B027 - a no-op by design
        """Nothing to catch up with: nobody else records changes."""

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
        """Record and emit the write's result (*base* plays no part without a log)."""
        return self._record(type_, namespace, obj, version, unless_seen=unless_seen)

    async def note(
        self, type_: EventType, namespace: str, obj: dict[str, Any], version: int
    ) -> dict[str, Any] | None:
        """Record and emit an observed state; never refused."""
        return self._record(type_, namespace, obj, version)

    def close(self) -> None:
        """End open watches; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._shut_down()

    @abc.abstractmethod
    def fingerprint(self, obj: dict[str, Any]) -> Any:
        """See `EventSink.fingerprint`."""

    @abc.abstractmethod
    def _emit(self, type_: EventType, obj: dict[str, Any]) -> dict[str, Any]:
        """Send one event; never raises, never waits. Returns the stored object."""

    @abc.abstractmethod
    def _deletion_of(self, obj: dict[str, Any], previous: Known | None) -> dict[str, Any]:
        """The object the DELETED event of *obj* carries (*previous*: its last known state)."""

    @abc.abstractmethod
    def _shut_down(self) -> None:
        """Close the event source (once)."""

    def _record(
        self,
        type_: EventType,
        namespace: str,
        obj: dict[str, Any],
        version: int,
        *,
        unless_seen: bool = False,
    ) -> dict[str, Any]:
        """Record *obj* as the last known state and emit it; return it as stored."""
        ledger = self._ledger
        key = (namespace, name_of(obj))
        seq = ledger.next_seq()
        known = ledger.known.get(key)
        if unless_seen and known is not None and known.fingerprint == self.fingerprint(obj):
            known.seq = seq
            return copy_json(known.object)
        if type_ is EventType.DELETED:
            previous = ledger.known.pop(key, None)
            ledger.tombstones[key] = seq
            return self._emit(type_, self._deletion_of(obj, previous))
        ledger.tombstones.pop(key, None)
        stored = self._emit(type_, obj)
        kept = copy_json(without_files(stored))  # never shared with the caller
        ledger.known[key] = Known(self.fingerprint(obj), version, seq, kept)
        return stored


class BroadcastSink(_SinkBase):
    """The Go original's event source: a `Broadcaster` fed in mutation order.

    Its watch option rules are the original's: no resume, no initial events,
    no bookmarks; a watch starts "now". List reads Coder every time.
    """

    def __init__(
        self,
        owner: SinkOwner,
        ledger: Ledger,
        resource: str,
        *,
        queue_length: int,
        full_channel_behavior: FullChannelBehavior,
    ) -> None:
        super().__init__(owner, ledger, resource)
        self._broadcaster: Broadcaster[dict[str, Any]] = Broadcaster(
            queue_length=queue_length, full_channel_behavior=full_channel_behavior
        )

    @property
    def cache(self) -> WatchCache[dict[str, Any]] | None:
        """None: events go straight to the watchers."""
        return None

    def fingerprint(self, obj: dict[str, Any]) -> Any:
        """The object without ``spec.files`` (its resourceVersion is Coder's)."""
        return without_files(obj)

    def _emit(self, type_: EventType, obj: dict[str, Any]) -> dict[str, Any]:
        """Send one event to every watcher; a full or closed broadcaster drops it (logged)."""
        broadcaster = self._broadcaster
        try:
            sent = broadcaster.action_or_drop(type_, copy_json(obj))
        except Exception:
            logger.exception("coder: %s %s event not sent", type_.value, self._resource)
            return obj
        if not sent:
            reason = "the storage is shut down" if broadcaster.closed else "queue full"
            logger.warning("coder: %s %s event dropped: %s", type_.value, self._resource, reason)
        return obj

    def _deletion_of(self, obj: dict[str, Any], previous: Known | None) -> dict[str, Any]:
        """The object as the deletion saw it, as in the Go original."""
        return obj

    def _shut_down(self) -> None:
        self._broadcaster.shutdown()

    async def observe(
        self, namespace: str, obj: dict[str, Any], version: int, epoch: int
    ) -> dict[str, Any]:
        """Nothing to fold in: a get answers what Coder has."""
        return obj

    async def gone(self, namespace: str, name: str) -> None:
        """Nothing to do: the poller reports the deletion."""

    def adopt(self, key: Key, obj: dict[str, Any] | None, version: int) -> bool:
        """A watch starts "now": the first listing is where it starts, not news."""
        if obj is None:
            del self._ledger.known[key]
        else:
            self._ledger.known[key] = Known(self.fingerprint(obj), version, 0, obj)
        return True

    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        """What Coder lists, filtered by the selectors, at the current time.

        The Go original ignores every option; the selectors are applied here
        because the objects carry labels (kept in the metadata store).
        Pagination options are still ignored: the list is complete.

        Raises:
            StatusError: 400 for a bad selector; the errors of the listing.
        """
        filter_func = filter_for_list_options(namespace, options)
        items = await self._owner._list_coder(namespace)
        if filter_func is not None:
            items = [e.object for e in map(_added, items) if filter_func(e) is not None]
        # The Go original sends no list resourceVersion; then kubectl's
        # list-then-watch asks for a watch from "" which the apiserver defaults
        # to sendInitialEvents=true, which these rules reject. A watch here
        # starts "now" whatever the resourceVersion, so hand out the current
        # time: `kubectl get -w` works and nothing else changes.
        return ObjectList(cast("Any", items), resource_version=str(time.time_ns()))

    async def watch(self, namespace: str, options: ListOptions) -> Watch[dict[str, Any]]:
        """A watch of the broadcaster from now on, filtered, ending after ``timeoutSeconds``.

        Raises:
            StatusError: 400 for ``sendInitialEvents`` or ``resourceVersionMatch``.
        """
        validate_watch_options(options)
        filter_func = filter_for_list_options(namespace, options)
        watch: Watch[dict[str, Any]] = self._broadcaster.watch()
        if filter_func is not None:
            watch = filter_watch(watch, filter_func)
        seconds = options.timeout_seconds
        if seconds is not None and seconds > 0:
            watch = stop_aware_watch(watch, timeout=float(seconds))
        return watch


class CacheSink(_SinkBase):
    """A `WatchCache` fed by this server's writes and by the poller.

    The cache is the source of truth for list and watch: resume, bookmarks
    and ``sendInitialEvents`` work. Its resourceVersions are its own counter
    (started at the current time in microseconds), not Coder's
    ``updated_at``; get, create and update answer with the cache's
    resourceVersion of the state they return, so get, list and watch agree.
    """

    def __init__(
        self, owner: SinkOwner, ledger: Ledger, resource: str, cache: WatchCache[dict[str, Any]]
    ) -> None:
        super().__init__(owner, ledger, resource)
        self._cache = cache

    @property
    def cache(self) -> WatchCache[dict[str, Any]] | None:
        """The cache list and watch are served from."""
        return self._cache

    def fingerprint(self, obj: dict[str, Any]) -> Any:
        """The object without ``spec.files`` and without its (the cache's) resourceVersion."""
        fp = without_files(obj)
        meta = {k: v for k, v in fp["metadata"].items() if k != "resourceVersion"}
        return {**fp, "metadata": meta}

    def _emit(self, type_: EventType, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply one event to the cache; return *obj* with the cache's resourceVersion."""
        try:
            event = self._cache.apply(type_, copy_json(without_files(obj)))
        except Exception:
            logger.exception("coder: %s %s event not recorded", type_.value, self._resource)
            return obj
        return with_files_of(copy_json(event.object), obj)

    def _deletion_of(self, obj: dict[str, Any], previous: Known | None) -> dict[str, Any]:
        """The last known state (it carries the cache's resourceVersion)."""
        return obj if previous is None else previous.object

    def _shut_down(self) -> None:
        self._cache.close()

    def _read_predates(self, known: Known, epoch: int) -> bool:
        """Whether a read of Coder that began at *epoch* may predate *known*.

        Then *known* is the answer, not the read. With one replica writing,
        Coder's versions order the states: never.
        """
        return False

    async def observe(
        self, namespace: str, obj: dict[str, Any], version: int, epoch: int
    ) -> dict[str, Any]:
        """Fold the state into the cache unless a newer one is known; return it with its RV.

        Raises:
            StatusError: 503 when the shared state is unreachable, or when
                the object keeps changing while it is recorded.
        """
        ledger = self._ledger
        key = (namespace, name_of(obj))
        await self.catch_up()
        result: dict[str, Any] | None = None
        for _ in range(3):
            known = ledger.known.get(key)
            if known is not None and (
                known.fingerprint == self.fingerprint(obj)
                or version < known.version
                or self._read_predates(known, epoch)
            ):
                result = copy_json(known.object)
                break
            type_ = EventType.ADDED if known is None else EventType.MODIFIED
            result = await self.note(type_, namespace, obj, version)
            if result is not None:
                break
            # refused: another replica recorded a change meanwhile; look again
        if result is None:
            known = ledger.known.get(key)
            if known is None:
                raise service_unavailable(
                    f"{self._resource} {go_quote(key[1])} keeps changing; try again"
                )
            result = copy_json(known.object)
        return with_files_of(result, obj)

    async def gone(self, namespace: str, name: str) -> None:
        """Record the deletion at once, so get, list and watch agree without waiting for a poll.

        A failure to record it is logged (the next resync retries).
        """
        key = (namespace, name)
        known = self._ledger.known.get(key)
        if known is None or key in self._ledger.inflight:
            return
        try:
            await self.note(EventType.DELETED, namespace, known.object, known.version)
        except StatusError as err:
            logger.warning("coder: deletion of %s %s not recorded: %s", self._resource, name, err)

    def adopt(self, key: Key, obj: dict[str, Any] | None, version: int) -> bool:
        """The cache fills from the events of the first listing: not adopted."""
        return False

    async def _catch_up_for(self, resource_version: str) -> None:
        """Bring the cache to a requested resourceVersion: it has every one it handed out."""

    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        """A consistent read: Coder is listed first when ``resourceVersion`` is unset.

        Then the cache answers, with selectors, pagination and a list
        resourceVersion to watch from.
        """
        owner = self._owner
        namespaces = await owner._namespaces(namespace)
        if options.resource_version == "" or any(n not in self._ledger.primed for n in namespaces):
            await owner.resync(namespace)
        await self._catch_up_for(options.resource_version)
        return await self._cache.list(namespace, options)

    async def watch(self, namespace: str, options: ListOptions) -> Watch[dict[str, Any]]:
        """A watch of the cache: resume, bookmarks and ``sendInitialEvents`` as in `WatchCache`.

        A watch from "now" lists Coder first (a failure is logged: the cache
        serves the watch); before the first use of a namespace, the listing's
        errors are raised.

        Raises:
            StatusError: 400 for rejected options; the errors of the first
                listing of a namespace.
        """
        validate_watch_options(options, WatchCapabilities(initial_events=True, resume=True))
        owner = self._owner
        namespaces = await owner._namespaces(namespace)
        if any(n not in self._ledger.primed for n in namespaces):
            await owner.resync(namespace)
        elif options.resource_version == "":
            try:
                await owner.resync(namespace)
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
