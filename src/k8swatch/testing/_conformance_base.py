"""What the conformance groups share: capabilities, hooks, fixtures and helpers.

[`ConformanceBase`][k8swatch.testing.ConformanceBase] holds everything a
case needs but no case: the groups (one module each) add the cases of one
topic, and [`WatchConformance`][k8swatch.testing.WatchConformance] combines
them all.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ClassVar, TypeVar

import anyio
import pytest

from k8swatch._events import Event, EventType
from k8swatch._json import JSONObject, copy_json
from k8swatch._options import ListOptions, default_list_options, validate_list_options
from k8swatch._status import StatusError
from k8swatch._watch import Watch

from ._recorder import EventRecorder

__all__ = [
    "INITIAL_EVENTS_END",
    "ConformanceBase",
    "assert_status",
    "metadata_of",
    "only_with",
    "only_without",
    "rv_of",
]


INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_Case = TypeVar("_Case", bound=Callable[..., Any])

# The attribute on a case function saying which capability decides whether the
# case exists: (capability, whether the case exists when the capability is on).
_CONDITION = "_conformance_condition"


def only_with(capability: str) -> Callable[[_Case], _Case]:
    """Mark a case that exists only when the class sets *capability* to True."""

    def mark(case: _Case) -> _Case:
        setattr(case, _CONDITION, (capability, True))
        return case

    return mark


def only_without(capability: str) -> Callable[[_Case], _Case]:
    """Mark a case that exists only when *capability* is False (it checks the rejection)."""

    def mark(case: _Case) -> _Case:
        setattr(case, _CONDITION, (capability, False))
        return case

    return mark


def metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(metadata_of(obj).get("name", ""))


def rv_of(obj: Mapping[str, Any]) -> str:
    return str(metadata_of(obj).get("resourceVersion", ""))


def assert_status(exc: pytest.ExceptionInfo[StatusError], code: int, reason: str) -> None:
    status = exc.value.status
    assert (status.code, status.reason) == (code, reason), (
        f"expected {code} {reason}, got {status.code} {status.reason}: {status.message}"
    )


class ConformanceBase:
    """What every conformance group shares: capabilities, hooks, fixtures, helpers.

    It holds no case itself. Subclass
    [`WatchConformance`][k8swatch.testing.WatchConformance] for the whole
    suite, or subclass some of the groups (they all derive from this class)
    for part of it; a new group of your own can derive from it too and use
    its helpers (``create``, ``update``, ``delete``, ``live_watch``, ...).

    Implement [`make_storage`][k8swatch.testing.ConformanceBase.make_storage]
    and, when your objects are not plain Kubernetes-shaped dicts,
    [`new_object`][k8swatch.testing.ConformanceBase.new_object] and
    [`change_object`][k8swatch.testing.ConformanceBase.change_object].

    Capabilities are class attributes. A capability set to False removes the
    cases that need it from the class (they are not generated, so there is
    nothing to skip) and, for ``supports_resume`` and
    ``supports_initial_events``, adds a case checking the documented 400
    BadRequest rejection of the option instead.

    The storage gets its options exactly as the HTTP server passes them:
    ``default_list_options`` and ``validate_list_options`` are applied first.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]
    """Every case runs under anyio's pytest plugin (no ``anyio_mode`` setting needed)."""

    supports_resume: ClassVar[bool] = True
    """Watches resume from a resourceVersion (replay, 410 Expired when too old)."""
    supports_initial_events: ClassVar[bool] = True
    """``sendInitialEvents=true`` sends the current state, then the end bookmark."""
    supports_bookmarks: ClassVar[bool] = True
    """Idle watches with ``allowWatchBookmarks`` get periodic bookmarks."""
    supports_labels: ClassVar[bool] = True
    """``change_object(obj, labels=...)`` can change an object's labels."""
    keeps_managed_fields: ClassVar[bool] = True
    """Objects keep ``metadata.managedFields`` as written (server-side apply records
    who owns which field there; without it every apply starts over)."""
    graceful_delete: ClassVar[bool] = False
    """``delete`` first reports the object as ``MODIFIED`` (marked for deletion, as
    with a finalizer) and the ``DELETED`` follows once the storage is done; the
    suite awaits [`finish_deletion`][k8swatch.testing.ConformanceBase.finish_deletion]
    after each delete and reads a ``MODIFIED`` directly followed by the object's
    ``DELETED`` as one deletion."""
    namespaced: ClassVar[bool] = True
    """Objects live in namespaces (enables the namespace scoping case)."""
    namespace: ClassVar[str] = "default"
    """The namespace most cases use."""
    other_namespace: ClassVar[str] = "other"
    """A second namespace for the scoping case."""
    history_window: ClassVar[int] = 10
    """At most how many events the storage keeps for resuming; build the
    storage with this window. The 410 case writes well past it."""
    bookmark_interval: ClassVar[float] = 0.2
    """Seconds between bookmarks; build the storage with this interval."""
    timeout: ClassVar[float] = 20.0
    """Seconds any single wait may take before a case fails."""

    def __init_subclass__(cls, *, group: bool = False, **kwargs: Any) -> None:
        """Generate the cases the subclass's capabilities call for.

        The suite's own groups are declared with ``group=True`` and keep every
        case; in any other subclass, a case marked ``only_with`` or
        ``only_without`` a capability is removed (set to None) or brought back.
        """
        super().__init_subclass__(**kwargs)
        if group:
            return
        cases: dict[str, tuple[Callable[..., Any], str, bool]] = {}
        for klass in cls.__mro__:
            for name, case in vars(klass).items():
                condition = getattr(case, _CONDITION, None) if name.startswith("test_") else None
                if condition is not None:
                    cases.setdefault(name, (case, *condition))
        for name, (case, capability, wanted) in cases.items():
            if bool(getattr(cls, capability)) is not wanted:
                setattr(cls, name, None)
            elif getattr(cls, name, None) is None:
                setattr(cls, name, case)

    # -- hooks ---------------------------------------------------------------------

    def make_storage(self) -> Any:
        """Return a fresh, empty storage for one case (may be ``async def``).

        The result (awaited first when it is awaitable) is the storage, or an
        async context manager yielding it. An async context manager (a
        storage that supports ``async with`` is one) is entered and exited
        around the case; anything else has its ``aclose()`` awaited after it. Build it with
        [`history_window`][k8swatch.testing.ConformanceBase.history_window]
        and [`bookmark_interval`][k8swatch.testing.ConformanceBase.bookmark_interval].
        Values from your own fixtures can be stored on ``self`` by an
        ``autouse`` fixture of the subclass, which runs before this.
        """
        raise NotImplementedError("subclasses of WatchConformance implement make_storage()")

    def new_object(
        self, name: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> JSONObject:
        """A new object to create: by default ``{"metadata": ..., "spec": {"value": 0}}``."""
        metadata: JSONObject = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        return {"metadata": metadata, "spec": {"value": 0}}

    def change_object(
        self, obj: Mapping[str, Any], *, labels: Mapping[str, str] | None = None
    ) -> JSONObject:
        """A changed copy of *obj* for ``update`` (keeps its resourceVersion).

        By default increments ``spec.value``; with *labels*, replaces the labels.
        """
        changed = copy_json(dict(obj))
        spec = changed.setdefault("spec", {})
        spec["value"] = int(spec.get("value", 0)) + 1
        if labels is not None:
            changed["metadata"]["labels"] = dict(labels)
        return changed

    async def finish_deletion(self, storage: Any) -> None:
        """Complete deletions in progress (``graceful_delete``); by default nothing.

        Called after every delete the suite makes; for example, run one
        out-of-band resync so that the storage notices the object is gone.
        """

    def object_name(self, name: str) -> str:
        """The stored ``metadata.name`` for a case's short *name* (default: the same).

        Override with [`short_name`][k8swatch.testing.ConformanceBase.short_name]
        when your storage's names have a required shape (``org.name``).
        """
        return name

    def short_name(self, stored: str) -> str:
        """The case's short name for a stored ``metadata.name`` (inverse of `object_name`)."""
        return stored

    # -- plumbing ------------------------------------------------------------------

    @property
    def _mine(self) -> set[str]:
        """Short names of the objects this case created (seed data is ignored)."""
        mine: set[str] | None = self.__dict__.get("_created_names")
        if mine is None:
            mine = set[str]()
            self.__dict__["_created_names"] = mine
        return mine

    @property
    def _deleted(self) -> set[str]:
        """Short names of the objects this case deleted."""
        deleted: set[str] | None = self.__dict__.get("_deleted_names")
        if deleted is None:
            deleted = set[str]()
            self.__dict__["_deleted_names"] = deleted
        return deleted

    def _deletions_pending(self, events: list[Event[Any]]) -> bool:
        """Graceful deletion: a deleted object's last event is still the MODIFIED mark."""
        if not self.graceful_delete:
            return False
        last: dict[str, EventType] = {}
        for e in events:
            if e.type is not EventType.BOOKMARK:
                last[self._short(e.object)] = e.type
        return any(last.get(name) is EventType.MODIFIED for name in self._deleted)

    def _short(self, obj: Mapping[str, Any]) -> str:
        return self.short_name(_name(obj))

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        """Run every case on asyncio and on trio."""
        return request.param

    @pytest.fixture
    async def storage(self, anyio_backend: Any) -> AsyncIterator[Any]:
        """The storage under test (from ``make_storage()``)."""
        async with self._open_storage() as storage:
            yield storage

    @asynccontextmanager
    async def _open_storage(self) -> AsyncGenerator[Any, None]:
        made: Any = self.make_storage()
        if inspect.isawaitable(made):
            made = await made
        if isinstance(made, AbstractAsyncContextManager):
            async with made as storage:  # pyright: ignore[reportUnknownVariableType]
                yield storage
            return
        try:
            yield made
        finally:
            with anyio.CancelScope(shield=True):
                await made.aclose()

    def _options(self, **fields: Any) -> ListOptions:
        options = default_list_options(ListOptions(**fields))
        validate_list_options(options)
        return options

    async def watch(self, storage: Any, namespace: str | None = None, **fields: Any) -> Watch[Any]:
        """Open a watch the way the server does (defaulting and validation first)."""
        ns = self.namespace if namespace is None else namespace
        return await storage.watch(ns, self._options(watch=True, **fields))  # type: ignore[no-any-return]

    async def list_rv(self, storage: Any, namespace: str | None = None) -> str:
        """The resourceVersion of a fresh list (where a client starts watching)."""
        ns = self.namespace if namespace is None else namespace
        result = await storage.list(ns, self._options())
        return str(result.resource_version)

    async def create(
        self,
        storage: Any,
        name: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> JSONObject:
        """Create ``new_object(name, namespace, labels)`` and return the stored object."""
        ns = self.namespace if namespace is None else namespace
        self._mine.add(name)
        return await storage.create(ns, self.new_object(self.object_name(name), ns, labels))  # type: ignore[no-any-return]

    async def update(
        self, storage: Any, obj: Mapping[str, Any], *, labels: Mapping[str, str] | None = None
    ) -> JSONObject:
        """Update *obj* with ``change_object(obj, labels=...)``."""
        ns = str(metadata_of(obj).get("namespace", self.namespace))
        changed = self.change_object(obj, labels=labels)
        return await storage.update(ns, _name(obj), changed)  # type: ignore[no-any-return]

    async def delete(self, storage: Any, obj: Mapping[str, Any]) -> Any:
        """Delete *obj*; return what the storage answers (the last state, or a Status)."""
        ns = str(metadata_of(obj).get("namespace", self.namespace))
        result = await storage.delete(ns, _name(obj))
        self._deleted.add(self._short(obj))
        await self.finish_deletion(storage)
        return result

    async def live_watch(
        self, storage: Any, namespace: str | None = None, **fields: Any
    ) -> Watch[Any]:
        """A watch that starts now: list, then watch from the list's resourceVersion."""
        rv = await self.list_rv(storage, namespace)
        return await self.watch(storage, namespace, resource_version=rv, **fields)

    def _recorder(self, watch: Watch[Any]) -> EventRecorder[Any]:
        return EventRecorder(watch)

    def _changes(self, events: list[Event[Any]]) -> list[tuple[str, str]]:
        return [(e.type.value, self._short(e.object)) for e in self._own_events(events)]

    def _own_events(self, events: list[Event[Any]]) -> list[Event[Any]]:
        own = [
            e
            for e in events
            if e.type is not EventType.BOOKMARK and self._short(e.object) in self._mine
        ]
        if not self.graceful_delete:
            return own
        # A MODIFIED whose next event for the same object is its DELETED marks
        # the start of a graceful deletion: together they are one deletion.
        kept: list[Event[Any]] = []
        for i, event in enumerate(own):
            if event.type is EventType.MODIFIED:
                name = self._short(event.object)
                following = next((e for e in own[i + 1 :] if self._short(e.object) == name), None)
                if following is not None and following.type is EventType.DELETED:
                    continue
            kept.append(event)
        return kept

    async def _wait_changes(self, rec: EventRecorder[Any], n: int) -> list[tuple[str, str]]:
        events = await rec.wait_for(
            lambda evs: (
                len(self._changes(list(evs))) >= n and not self._deletions_pending(list(evs))
            ),
            timeout=self.timeout,
        )
        return self._changes(events)
