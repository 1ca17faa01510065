"""MemoryStorage: a complete generic REST storage on a WatchCache and an event log.

The reference implementation of the storage protocol (`architecture.md`):
``get``, ``list``, ``create``, ``update``, ``delete``, ``watch``, ``aclose``,
with Kubernetes' errors and resourceVersion rules. Writes go through an
[`EventLog`][k8swatch.EventLog] (default:
[`MemoryEventLog`][k8swatch.MemoryEventLog]); reads are served by the
storage's [`WatchCache`][k8swatch.WatchCache], which follows the log.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import TaskStatus
from typing_extensions import Self, final

from ._cache import WatchCache
from ._eventlog import (
    EventLog,
    LogEntry,
    MemoryEventLog,
    PreconditionFailedError,
    Write,
    WriteOp,
    object_key,
)
from ._filters import DEFAULT_SUPPORTED_FIELDS, GetAttrsFunc, default_get_attrs
from ._finalizers import (
    DeletePreconditions,
    check_delete_preconditions,
    check_finalizers_update,
    deletes_on_update,
    keep_deletion_fields,
    plan_delete,
    strip_deletion_fields,
)
from ._follower import DEFAULT_COALESCE, LogFeed
from ._json import JSONObject, copy_json
from ._options import ListOptions, WatchCapabilities, validate_watch_options
from ._status import (
    StatusCause,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    internal_error,
    invalid,
    not_found,
    service_unavailable,
)
from ._storage import ObjectList
from ._watch import Watch

__all__ = ["MemoryStorage"]

_CAPABILITIES = WatchCapabilities(initial_events=True, resume=True)
_CONFLICT_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
# A DELETE re-reads and retries when another write lands between its read and its
# conditional write; each retry means some other write made progress.
_DELETE_ATTEMPTS = 16
# apiserver's names.SimpleNameGenerator alphabet: no vowels, no confusable characters.
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _new_uid() -> str:
    """A random (version 4) UUID as text: what ``str(uuid.uuid4())`` gives, 3x cheaper."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _now() -> str:
    """The current UTC time as a Kubernetes timestamp (second precision)."""
    return _format_second(int(time.time()))


@functools.lru_cache(maxsize=1)
def _format_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def _body(obj: Mapping[str, Any], kind: str) -> JSONObject:
    if not isinstance(obj, Mapping):
        raise bad_request(f"the body of the request must be a {kind} object")
    copied = copy_json(dict(obj))
    metadata = copied.get("metadata")
    if metadata is None:
        copied["metadata"] = metadata = {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    return copied


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything that bumps ``metadata.generation`` (all but metadata and status)."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@final
class MemoryStorage:
    """A generic in-memory REST storage for any resource kind, with full watch semantics.

    Objects are Kubernetes-shaped dicts. ``create`` sets ``uid``,
    ``creationTimestamp``, ``generation``, ``namespace`` (namespaced
    resources) and ``resourceVersion``; ``update`` checks
    ``metadata.resourceVersion`` when given (optimistic concurrency, 409
    Conflict) and bumps ``generation`` when anything outside ``metadata``
    and ``status`` changed; ``delete`` returns the last state. Every object
    going in or out is a copy: the caller's dicts are never stored or shared.

    **Finalizers and graceful deletion**, as kube-apiserver applies them to
    custom resources: ``delete`` of an object with ``metadata.finalizers``
    only sets ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` (a
    ``MODIFIED`` event); the update that removes its last finalizer deletes
    it (one ``DELETED`` event); no finalizer can be added once it is
    deleting. ``delete`` checks ``DeleteOptions`` preconditions atomically,
    and every write takes ``dry_run=True`` to return what it would store
    without storing it.

    ``list`` and ``watch`` are served by a [`WatchCache`][k8swatch.WatchCache]:
    resume from a resourceVersion, 410 Expired, bookmarks,
    ``sendInitialEvents``, ``limit``/``continue``, selectors. Watch events are
    shared between watchers: treat them as read-only.

    **Event log.** By default the storage keeps its own
    [`MemoryEventLog`][k8swatch.MemoryEventLog]. Pass *log* to use
    another one, for example a Redis Streams log shared by several server
    replicas; then run the storage as ``async with storage:`` (or
    [`follow`][k8swatch.MemoryStorage.follow] in a task group) so writes made
    by other replicas reach this replica's watchers. The storage owns the log:
    `aclose` closes it.

    Args:
        api_version: The resource's ``apiVersion`` (``example.com/v1``, or ``v1``).
        kind: The resource's ``kind`` (``Widget``).
        window: How many recent events the watch cache keeps for resuming.
        resource: Plural resource name for messages (default: lowercase kind + ``s``).
        namespaced: Whether objects live in namespaces (else cluster-scoped).
        log: The event log to write to (default: a new ``MemoryEventLog(window)``).
        start_resource_version: Where the default log's RVs start; pass
            ``time.time_ns() // 1000`` for a server that may restart, so that
            clients resuming with an RV of the previous process get 410 and
            relist (see `MemoryEventLog`).
        bookmark_interval: Seconds between bookmarks on an idle watch.
        wait_timeout: Seconds to wait for a too-new resourceVersion (then 504).
        coalesce: How long wake-ups of the storage's watchers are
            coalesced, in seconds: a change arriving while the watchers are
            still busy with the previous one, or less than this after it
            (or as long as that one took, at most five times this), is held
            and delivered together with what came meanwhile. Under load,
            watchers then get fewer, bigger batches, which costs much less
            CPU per event, and writers get their turn between two rounds of
            watchers; an isolated change is still delivered at once, and
            writes are never held. 0 wakes the watchers for every change.
        get_attrs: ``(labels, fields)`` of an object for selectors.
        supported_fields: Fields allowed in field selectors.
    """

    def __init__(
        self,
        api_version: str,
        kind: str,
        *,
        window: int = 1000,
        resource: str = "",
        namespaced: bool = True,
        log: EventLog | None = None,
        start_resource_version: int = 0,
        bookmark_interval: float = 60.0,
        wait_timeout: float = 3.0,
        coalesce: float = DEFAULT_COALESCE,
        get_attrs: GetAttrsFunc = default_get_attrs,
        supported_fields: Iterable[str] = DEFAULT_SUPPORTED_FIELDS,
        uid_factory: Callable[[], str] = _new_uid,
        clock: Callable[[], str] = _now,
    ) -> None:
        self.api_version = api_version
        self.kind = kind
        self.group: str = api_version.rpartition("/")[0]
        self.resource: str = resource or kind.lower() + "s"
        self.namespaced = namespaced
        self._log: EventLog = (
            log if log is not None else MemoryEventLog(window, start=start_resource_version)
        )
        self._cache: WatchCache[JSONObject] = WatchCache(
            api_version,
            kind,
            resource=self.resource,
            group=self.group,
            window=window,
            bookmark_interval=bookmark_interval,
            wait_timeout=wait_timeout,
            get_attrs=get_attrs,
            supported_fields=supported_fields,
        )
        self._uid_factory = uid_factory
        self._clock = clock
        self._closed = False
        self._feed = LogFeed(
            self._log, self._cache, is_closed=lambda: self._closed, coalesce=coalesce
        )
        self._follower: anyio.CancelScope | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- plumbing -------------------------------------------------------------------

    @property
    def cache(self) -> WatchCache[JSONObject]:
        """The watch cache serving ``list`` and ``watch`` (read-only use)."""
        return self._cache

    @property
    def log(self) -> EventLog:
        """The event log the storage writes to."""
        return self._log

    @property
    def closed(self) -> bool:
        """True after `aclose`."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise service_unavailable(f"the {self.resource} storage is closed")

    def _namespace(self, namespace: str) -> str:
        return namespace if self.namespaced else ""

    async def _ensure_loaded(self) -> None:
        self._check_open()
        await self._feed.ensure_loaded()

    async def _catch_up(self, target: int) -> None:
        """Feed the cache from the log until it holds *target* (or the log has no more)."""
        await self._feed.catch_up(target)

    async def follow(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Feed the cache with the log's new entries until cancelled or closed.

        Needed only when others write to the same log (several replicas);
        ``async with storage:`` runs it for you. One read per batch serves
        every local watcher. A 410 (the log's retention passed this replica
        by) reloads the cache from the log's snapshot and ends open watches
        with 410; other errors (a 503 while the log's backend is unreachable,
        also at start-up) are retried with jittered exponential backoff, and
        open watches stay open meanwhile.
        """
        await self._feed.follow(task_status=task_status)

    async def __aenter__(self) -> Self:
        """Start [`follow`][k8swatch.MemoryStorage.follow] in the background."""
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await task_group.start(self.follow)
        except BaseException:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
            raise
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the storage (see `aclose`) and wait for the follower to stop."""
        task_group, self._task_group = self._task_group, None
        try:
            await self.aclose()
        finally:
            if task_group is not None:
                task_group.cancel_scope.cancel()
                # The body's exception propagates by itself; do not wrap it in a group.
                await task_group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Close the storage and its log; open watches end. Idempotent."""
        if self._closed:
            await anyio.lowlevel.checkpoint()
            return
        self._closed = True
        self._cache.close()
        await self._log.aclose()  # ends follow(); __aexit__ cancels its task group

    def _refused(self, exc: PreconditionFailedError, name: str) -> StatusError:
        if exc.reason == "AlreadyExists":
            return already_exists(self.resource, name, group=self.group)
        if exc.reason == "NotFound":
            return not_found(self.resource, name, group=self.group)
        return conflict(self.resource, name, _CONFLICT_MESSAGE, group=self.group)

    async def _write(self, write: Write, name: str) -> LogEntry:
        await self._ensure_loaded()
        try:
            entry = await self._log.append(write)
        except PreconditionFailedError as exc:
            raise self._refused(exc, name) from None
        if entry is None:  # only PUT/REMOVE, which this storage does not use
            raise internal_error(f"the event log recorded nothing for {write.op.value}")
        await self._catch_up(entry.resource_version)
        return entry

    # -- the storage protocol ---------------------------------------------------------

    async def get(self, namespace: str, name: str) -> JSONObject:
        """Return a copy of the object.

        Raises:
            StatusError: 404 NotFound.
        """
        await self._ensure_loaded()
        await self._consistent()
        obj = self._cache.get(self._namespace(namespace), name)
        if obj is None:
            raise not_found(self.resource, name, group=self.group)
        return copy_json(obj)

    async def list(self, namespace: str, options: ListOptions | None = None) -> ObjectList:
        """List objects (``""``: every namespace), as [`WatchCache.list`][k8swatch.WatchCache.list].

        A list without resourceVersion is a consistent read: it reflects
        every write the log holds. The items are copies.

        Raises:
            StatusError: 400 (bad selector, token or resourceVersion), 410
                (expired continue token or resourceVersion), 504 (too large
                resourceVersion).
        """
        await self._ensure_loaded()
        options = options or ListOptions()
        minimum = await self._freshness(options.resource_version, options.continue_token)
        result = await self._cache.list(
            self._namespace(namespace), options, min_resource_version=minimum
        )
        return ObjectList(
            (copy_json(item) for item in result.items),
            result.resource_version,
            result.continue_token,
            result.remaining_item_count,
        )

    async def _freshness(self, resource_version: str, continue_token: str = "") -> int:
        """Catch the cache up as far as a request needs; return the RV it must reach."""
        if continue_token or resource_version == "0":
            return 0
        if resource_version == "":
            target = await self._log.current_resource_version()
            await self._catch_up(target)
            return target
        if resource_version.isdigit():
            requested = int(resource_version)
            if requested > self._cache.resource_version:
                await self._catch_up(requested)
        return 0

    async def _consistent(self) -> None:
        """Make the cache reflect every write the log holds (a consistent read)."""
        await self._catch_up(await self._log.current_resource_version())

    async def create(
        self, namespace: str, obj: Mapping[str, Any], *, dry_run: bool = False
    ) -> JSONObject:
        """Create the object; return a copy of what was stored.

        ``metadata.generateName`` is honoured when ``metadata.name`` is empty;
        ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` are dropped
        (a create never starts a deletion). With *dry_run*, nothing is
        stored: the answer is the object as it would be stored, without a
        ``resourceVersion`` (as kube-apiserver answers ``dryRun=All``).

        Raises:
            StatusError: 409 AlreadyExists; 422 Invalid without a name; 400
                when the object's namespace differs from *namespace* or
                ``metadata.resourceVersion`` is set (kube-apiserver answers
                500 there; it is the caller's mistake).
        """
        self._check_open()
        body = _body(obj, self.kind)
        metadata: JSONObject = body["metadata"]
        name = metadata.get("name") or ""
        if not name:
            prefix = metadata.get("generateName") or ""
            if not prefix:
                raise invalid(
                    self.kind,
                    "",
                    [
                        StatusCause(
                            reason="FieldValueRequired",
                            message="Required value: name or generateName is required",
                            field="metadata.name",
                        )
                    ],
                    group=self.group,
                )
            name = prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            metadata["name"] = name
        if not isinstance(name, str):
            raise bad_request("metadata.name must be a string")
        namespace = self._namespaced_target(namespace, metadata)
        if metadata.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        body = self._typed(strip_deletion_fields(body))
        metadata = body["metadata"]
        metadata["uid"] = self._uid_factory()
        metadata["creationTimestamp"] = self._clock()
        metadata["generation"] = 1
        if dry_run:
            await self._ensure_loaded()
            await self._consistent()
            if self._cache.get(namespace, name) is not None:
                raise already_exists(self.resource, name, group=self.group)
            return copy_json(body)
        entry = await self._write(Write(WriteOp.CREATE, object_key(namespace, name), body), name)
        return copy_json(entry.object)

    def _typed(self, body: JSONObject) -> JSONObject:
        """*body* with this storage's apiVersion and kind, first (as Kubernetes orders them)."""
        body.pop("apiVersion", None)
        body.pop("kind", None)
        return {"apiVersion": self.api_version, "kind": self.kind, **body}

    def _namespaced_target(self, namespace: str, metadata: JSONObject) -> str:
        if not self.namespaced:
            metadata.pop("namespace", None)
            return ""
        given = metadata.get("namespace") or ""
        if namespace and given and given != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        namespace = namespace or given
        if not namespace:
            raise bad_request("a namespace is required for a namespaced object")
        metadata["namespace"] = namespace
        return str(namespace)

    async def update(
        self, namespace: str, name: str, obj: Mapping[str, Any], *, dry_run: bool = False
    ) -> JSONObject:
        """Replace the object; return a copy of what was stored.

        When ``metadata.resourceVersion`` is set it must be the stored one
        (optimistic concurrency); empty means "whatever is stored".
        ``uid``, ``creationTimestamp`` and ``generation`` are kept from the
        stored object; ``generation`` is bumped when anything outside
        ``metadata`` and ``status`` changed. ``deletionTimestamp`` and
        ``deletionGracePeriodSeconds`` are kept from the stored object too.

        When the stored object is being deleted (``deletionTimestamp``) and
        *obj* has no finalizers left, the object is deleted instead (one
        ``DELETED`` event, carrying the last stored state) and the answer is
        the updated object with the deletion's resourceVersion.
        With *dry_run*, nothing is stored or deleted.

        Raises:
            StatusError: 404 NotFound; 409 Conflict (resourceVersion
                mismatch); 422 Invalid when a finalizer is added to an object
                being deleted, or the update sets ``deletionTimestamp``; 400
                when the body's name or namespace differs from the request's,
                or its resourceVersion is not a number.
        """
        await self._ensure_loaded()
        body = _body(obj, self.kind)
        metadata: JSONObject = body["metadata"]
        given = metadata.get("name") or ""
        if given and given != name:
            raise bad_request(
                f"the name of the object ({given}) does not match the name on the URL ({name})"
            )
        metadata["name"] = name
        namespace = self._namespaced_target(namespace, metadata)
        rv_text = metadata.pop("resourceVersion", "") or ""
        expected: int | None = None
        if rv_text:
            if not isinstance(rv_text, str) or not rv_text.isdigit():
                raise bad_request(f"invalid resourceVersion: {rv_text!r}")
            expected = int(rv_text)
        key = object_key(namespace, name)
        await self._consistent()
        current = self._cache.get(namespace, name)
        if current is None:
            raise not_found(self.resource, name, group=self.group)
        old_meta: Mapping[str, Any] = current.get("metadata") or {}
        if expected is not None and str(expected) != old_meta.get("resourceVersion"):
            raise conflict(self.resource, name, _CONFLICT_MESSAGE, group=self.group)
        body = keep_deletion_fields(current, self._typed(body))
        metadata = body["metadata"]
        for field in ("uid", "creationTimestamp"):
            if field in old_meta:
                metadata[field] = old_meta[field]
        check_finalizers_update(current, body, kind=self.kind, group=self.group)
        generation = old_meta.get("generation")
        if isinstance(generation, int):
            changed = _spec_of(body) != _spec_of(current)
            metadata["generation"] = generation + 1 if changed else generation
        if deletes_on_update(current, body):
            # The last finalizer is gone: the object goes (kube-apiserver's
            # store deletes instead of updating, conditionally on the RV read).
            stored_rv = int(old_meta.get("resourceVersion") or 0)
            if not dry_run:
                entry = await self._write(Write(WriteOp.DELETE, key, None, stored_rv), name)
                stored_rv = entry.resource_version
            metadata["resourceVersion"] = str(stored_rv)
            return copy_json(body)
        if dry_run:
            metadata["resourceVersion"] = old_meta.get("resourceVersion", "")
            return copy_json(body)
        entry = await self._write(Write(WriteOp.UPDATE, key, body, expected), name)
        return copy_json(entry.object)

    async def delete(
        self,
        namespace: str,
        name: str,
        *,
        preconditions: DeletePreconditions | None = None,
        dry_run: bool = False,
    ) -> JSONObject:
        """Delete the object, or start its graceful deletion when it has finalizers.

        Without finalizers the object is deleted; the answer is its last
        state with the deletion's RV. With finalizers it is marked instead
        (``deletionTimestamp`` now, ``deletionGracePeriodSeconds`` 0,
        ``generation`` bumped; one ``MODIFIED`` event) and the answer is the
        marked object; a repeated delete changes nothing. The decision and
        the write are atomic: a write landing in between makes it re-read.

        Args:
            namespace: The object's namespace ("" when cluster-scoped).
            name: The object's name.
            preconditions: ``DeleteOptions.preconditions`` the stored object
                must meet (``uid``, ``resourceVersion``).
            dry_run: Decide and answer, but store nothing.

        Raises:
            StatusError: 404 NotFound; 409 Conflict when *preconditions* do
                not match.
        """
        namespace = self._namespace(namespace)
        key = object_key(namespace, name)
        for _ in range(_DELETE_ATTEMPTS):
            await self._ensure_loaded()
            await self._consistent()
            current = self._cache.get(namespace, name)
            if current is None:
                raise not_found(self.resource, name, group=self.group)
            check_delete_preconditions(current, preconditions, kind=self.kind, group=self.group)
            plan = plan_delete(current, now=self._clock())
            current_meta: Mapping[str, Any] = current.get("metadata") or {}
            stored_rv = int(current_meta.get("resourceVersion") or 0)
            if plan.delete_now:
                if dry_run:
                    return copy_json(current)
                write = Write(WriteOp.DELETE, key, None, stored_rv)
            else:
                assert plan.object is not None
                if dry_run or not plan.changed:
                    return copy_json(plan.object)
                write = Write(WriteOp.UPDATE, key, plan.object, stored_rv)
            try:
                entry = await self._log.append(write)
            except PreconditionFailedError as exc:
                if exc.reason == "Conflict":
                    continue  # changed since we read it: decide again
                raise self._refused(exc, name) from None
            if entry is None:
                raise internal_error(f"the event log recorded nothing for {write.op.value}")
            await self._catch_up(entry.resource_version)
            return copy_json(entry.object)
        raise conflict(self.resource, name, _CONFLICT_MESSAGE, group=self.group)

    async def watch(self, namespace: str, options: ListOptions | None = None) -> Watch[JSONObject]:
        """Watch objects (``""``: all), like [`WatchCache.watch`][k8swatch.WatchCache.watch].

        Served by the storage's watch cache.

        Run ``default_list_options`` and ``validate_list_options`` first (the
        server does); this checks what the storage supports (everything:
        initial events and resume).

        Raises:
            StatusError: 400 (selector, unsupported option), 422 (resourceVersion
                not a number). Later problems (410, 504) arrive as one
                ``ERROR`` event in the stream.
        """
        await self._ensure_loaded()
        options = options or ListOptions(watch=True)
        validate_watch_options(options, _CAPABILITIES)
        minimum = await self._freshness(options.resource_version)
        return await self._cache.watch(
            self._namespace(namespace), options, min_resource_version=minimum
        )
