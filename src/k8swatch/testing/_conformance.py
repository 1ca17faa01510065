"""A pytest conformance suite: does a storage's watch behave like kube-apiserver's?

Subclass [`WatchConformance`][k8swatch.testing.WatchConformance] in a test
module, implement ``make_storage()``, declare what the storage supports, and
pytest collects every case as a test of your class, on asyncio and trio.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ClassVar, cast

import anyio
import pytest

from k8swatch._events import Event, EventType
from k8swatch._json import JSONObject
from k8swatch._options import ListOptions, default_list_options, validate_list_options
from k8swatch._status import StatusError
from k8swatch._watch import Watch

from ._recorder import EventRecorder

__all__ = ["WatchConformance"]


INITIAL_EVENTS_END = "k8s.io/initial-events-end"

# Which generated cases need which capability, and which cases check the
# documented rejection when the capability is missing.
_NEEDS: dict[str, tuple[str, ...]] = {
    "supports_resume": (
        "test_watch_from_list_rv_sees_writes_made_before_the_watch",
        "test_resume_from_older_rv_replays_exactly",
        "test_too_old_rv_gives_one_410_expired_then_ends",
        "test_resource_versions_increase",
        "test_explicit_resume_with_send_initial_events_false",
    ),
    "supports_initial_events": (
        "test_send_initial_events_sends_state_then_end_bookmark",
        "test_default_watch_sends_current_state",
        "test_initial_events_end_bookmark_needs_allow_watch_bookmarks",
    ),
    "supports_bookmarks": ("test_bookmarks_when_allowed",),
    "supports_labels": (
        "test_label_selector_filters_and_transitions",
        "test_label_selector_on_initial_events",
    ),
    "namespaced": ("test_namespace_scoping",),
}
_REJECTS: dict[str, tuple[str, ...]] = {
    "supports_initial_events": ("test_send_initial_events_is_rejected",),
    "supports_resume": ("test_resource_version_match_is_rejected",),
}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("name", ""))


def _rv(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("resourceVersion", ""))


def _assert_status(exc: pytest.ExceptionInfo[StatusError], code: int, reason: str) -> None:
    status = exc.value.status
    assert (status.code, status.reason) == (code, reason), (
        f"expected {code} {reason}, got {status.code} {status.reason}: {status.message}"
    )


class WatchConformance:
    """Base class of the watch conformance suite; subclass it in a test module.

    Every ``test_*`` method is a behaviour kube-apiserver guarantees to watch
    clients (see *Watch semantics* in the docs): event order, resume without
    gap or duplicate, 410 Expired, selector transitions, namespace scoping,
    bookmarks, ``sendInitialEvents``, ``timeoutSeconds``, ``stop()``, and the
    409/404 errors of writes and reads. Each case runs on asyncio and trio.

    Implement [`make_storage`][k8swatch.testing.WatchConformance.make_storage]
    and, when your objects are not plain Kubernetes-shaped dicts,
    [`new_object`][k8swatch.testing.WatchConformance.new_object] and
    [`change_object`][k8swatch.testing.WatchConformance.change_object].

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
    graceful_delete: ClassVar[bool] = False
    """``delete`` first reports the object as ``MODIFIED`` (marked for deletion, as
    with a finalizer) and the ``DELETED`` follows once the storage is done; the
    suite awaits [`finish_deletion`][k8swatch.testing.WatchConformance.finish_deletion]
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for capability, names in _NEEDS.items():
            cls._generate(names, present=bool(getattr(cls, capability)))
        for capability, names in _REJECTS.items():
            cls._generate(names, present=not getattr(cls, capability))

    @classmethod
    def _generate(cls, names: tuple[str, ...], *, present: bool) -> None:
        """Add (from this base class) or remove the cases *names* on a subclass."""
        for name in names:
            if not present:
                setattr(cls, name, None)
            elif getattr(cls, name, None) is None:
                setattr(cls, name, WatchConformance.__dict__[name])

    # -- hooks ---------------------------------------------------------------------

    def make_storage(self) -> Any:
        """Return a fresh, empty storage for one case (may be ``async def``).

        The result (awaited first when it is awaitable) is the storage, or an
        async context manager yielding it. An async context manager (a
        storage that supports ``async with`` is one) is entered and exited
        around the case; anything else has its ``aclose()`` awaited after it. Build it with
        [`history_window`][k8swatch.testing.WatchConformance.history_window]
        and [`bookmark_interval`][k8swatch.testing.WatchConformance.bookmark_interval].
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
        changed = copy.deepcopy(dict(obj))
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

        Override with [`short_name`][k8swatch.testing.WatchConformance.short_name]
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
        ns = str(_metadata(obj).get("namespace", self.namespace))
        changed = self.change_object(obj, labels=labels)
        return await storage.update(ns, _name(obj), changed)  # type: ignore[no-any-return]

    async def delete(self, storage: Any, obj: Mapping[str, Any]) -> Any:
        """Delete *obj*; return what the storage answers (the last state, or a Status)."""
        ns = str(_metadata(obj).get("namespace", self.namespace))
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

    # -- cases: events -----------------------------------------------------------------

    async def test_create_update_delete_events_in_order(self, storage: Any) -> None:
        """Create, update, delete give ADDED, MODIFIED, DELETED with the right objects."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            created = await self.create(storage, "a")
            updated = await self.update(storage, created)
            deleted = await self.delete(storage, updated)
            assert await self._wait_changes(rec, 3) == [
                ("ADDED", "a"),
                ("MODIFIED", "a"),
                ("DELETED", "a"),
            ]
            events = self._own_events(rec.events)
            assert events[1].object.get("spec") == updated.get("spec")
            if not self.graceful_delete:  # else the last state is the marked one
                assert events[2].object.get("spec") == updated.get("spec")
            last = cast("JSONObject", deleted) if isinstance(deleted, dict) else {"kind": "Status"}
            if last.get("kind") != "Status" and not self.graceful_delete:
                # delete answers the last state (or a Status, as some resources do)
                assert last.get("spec") == updated.get("spec")
            assert _rv(events[0].object) == _rv(created)
            assert _rv(events[1].object) == _rv(updated)
            await rec.settle()
            assert len(self._changes(rec.events)) == 3, rec.describe()

    async def test_watch_from_list_rv_sees_exactly_later_writes(self, storage: Any) -> None:
        """Watching from a list's resourceVersion delivers every later write once."""
        await self.create(storage, "before")
        async with self._recorder(await self.live_watch(storage)) as rec:
            for i in range(5):
                await self.create(storage, f"x{i}")
            changes = await self._wait_changes(rec, 5)
            await rec.settle()
            assert self._changes(rec.events) == changes == [(("ADDED", f"x{i}")) for i in range(5)]

    async def test_watch_from_list_rv_sees_writes_made_before_the_watch(self, storage: Any) -> None:
        """A write between the list and the watch is delivered (no gap), once (no dup)."""
        await self.create(storage, "old")
        rv = await self.list_rv(storage)
        await self.create(storage, "gap")
        async with self._recorder(await self.watch(storage, resource_version=rv)) as rec:
            await self.create(storage, "live")
            assert await self._wait_changes(rec, 2) == [("ADDED", "gap"), ("ADDED", "live")]
            await rec.settle()
            assert len(self._changes(rec.events)) == 2, rec.describe()

    async def test_resume_from_older_rv_replays_exactly(self, storage: Any) -> None:
        """Resuming from the RV of any past event replays exactly the events after it."""
        async with self._recorder(await self.live_watch(storage)) as first:
            obj = await self.create(storage, "r")
            for _ in range(3):
                obj = await self.update(storage, obj)
            await self.create(storage, "s")
            await self.delete(storage, obj)
            await self._wait_changes(first, 6)
        original = self._own_events(first.events)
        for k in (0, 2, 4):
            rv = _rv(original[k].object)
            async with self._recorder(await self.watch(storage, resource_version=rv)) as rec:
                expected = [
                    (e.type.value, self._short(e.object), _rv(e.object)) for e in original[k + 1 :]
                ]
                await self._wait_changes(rec, len(expected))
                await rec.settle()
                got = [
                    (e.type.value, self._short(e.object), _rv(e.object))
                    for e in self._own_events(rec.events)
                ]
                assert got == expected

    async def test_explicit_resume_with_send_initial_events_false(self, storage: Any) -> None:
        """``sendInitialEvents=false`` + ``NotOlderThan`` + RV resumes like a plain RV."""
        await self.create(storage, "old")
        rv = await self.list_rv(storage)
        await self.create(storage, "a")
        watch = await self.watch(
            storage,
            resource_version=rv,
            send_initial_events=False,
            resource_version_match="NotOlderThan",
        )
        async with self._recorder(watch) as rec:
            assert await self._wait_changes(rec, 1) == [("ADDED", "a")]

    async def test_too_old_rv_gives_one_410_expired_then_ends(self, storage: Any) -> None:
        """An RV older than the history window: one ERROR 410 Expired, then the watch ends."""
        first = await self.create(storage, "old")
        obj = first
        for _ in range(self.history_window * 2 + 5):
            obj = await self.update(storage, obj)
        try:
            watch = await self.watch(storage, resource_version=_rv(first))
        except StatusError as exc:  # pragma: no cover - reported as a failure below
            pytest.fail(f"a too-old RV must be an ERROR event in the stream, not {exc!r}")
        async with self._recorder(watch) as rec:
            events = await rec.wait_ended(timeout=self.timeout)
        assert [e.type for e in events] == [EventType.ERROR], rec.describe()
        status = events[0].object
        assert status.get("kind") == "Status"
        assert (status.get("code"), status.get("reason")) == (410, "Expired"), status
        assert str(status.get("message", "")).startswith("too old resource version:"), status

    async def test_resource_versions_increase(self, storage: Any) -> None:
        """Live events carry strictly increasing integer resourceVersions."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            obj = await self.create(storage, "a")
            await self.create(storage, "b")
            obj = await self.update(storage, obj)
            await self.delete(storage, obj)
            await self._wait_changes(rec, 4)
        rvs = [int(rv) for rv in rec.resource_versions()]
        assert rvs == sorted(rvs), rvs
        assert len(set(rvs)) == len(rvs), rvs

    # -- cases: selectors and namespaces ------------------------------------------------

    async def test_label_selector_filters_and_transitions(self, storage: Any) -> None:
        """Label selectors filter, and objects moving in/out become ADDED/DELETED (§5.6)."""
        async with self._recorder(await self.live_watch(storage, label_selector="app=web")) as rec:
            a = await self.create(storage, "a", labels={"app": "web"})
            b = await self.create(storage, "b", labels={"app": "db"})
            b = await self.update(storage, b)  # still not matching: nothing
            b = await self.update(storage, b, labels={"app": "web"})  # starts matching
            a = await self.update(storage, a)  # still matching
            a = await self.update(storage, a, labels={"app": "db"})  # stops matching
            a = await self.update(storage, a)  # still not matching: nothing
            await self.delete(storage, b)  # deleted while matching
            await self.delete(storage, a)  # deleted while not matching: nothing
            await self.create(storage, "c", labels={"app": "web"})
            assert await self._wait_changes(rec, 6) == [
                ("ADDED", "a"),
                ("ADDED", "b"),
                ("MODIFIED", "a"),
                ("DELETED", "a"),
                ("DELETED", "b"),
                ("ADDED", "c"),
            ]
            await rec.settle()
            changes = self._own_events(rec.events)
            assert len(changes) == 6, rec.describe()
            # The DELETED of an object that stopped matching carries its old labels.
            assert _metadata(changes[3].object).get("labels") == {"app": "web"}

    async def test_label_selector_on_initial_events(self, storage: Any) -> None:
        """Initial events are filtered by the label selector too."""
        if not self.supports_initial_events:
            rv = await self.list_rv(storage)
            watch = await self.watch(storage, resource_version=rv, label_selector="app=web")
            async with self._recorder(watch) as rec:
                await self.create(storage, "a", labels={"app": "web"})
                await self.create(storage, "b", labels={"app": "db"})
                await self.create(storage, "c", labels={"app": "web"})
                assert await self._wait_changes(rec, 2) == [("ADDED", "a"), ("ADDED", "c")]
            return
        await self.create(storage, "a", labels={"app": "web"})
        await self.create(storage, "b", labels={"app": "db"})
        async with self._recorder(await self.watch(storage, label_selector="app=web")) as rec:
            assert await self._wait_changes(rec, 1) == [("ADDED", "a")]
            await self.create(storage, "c", labels={"app": "web"})
            assert await self._wait_changes(rec, 2) == [("ADDED", "a"), ("ADDED", "c")]

    async def test_field_selector_metadata_name(self, storage: Any) -> None:
        """``fieldSelector=metadata.name=x`` delivers only x's events."""
        watch = await self.live_watch(
            storage, field_selector=f"metadata.name={self.object_name('b')}"
        )
        async with self._recorder(watch) as rec:
            await self.create(storage, "a")
            b = await self.create(storage, "b")
            await self.create(storage, "c")
            await self.delete(storage, b)
            assert await self._wait_changes(rec, 2) == [("ADDED", "b"), ("DELETED", "b")]
            await rec.settle()
            assert len(self._changes(rec.events)) == 2, rec.describe()

    async def test_bad_label_selector_is_rejected(self, storage: Any) -> None:
        """A label selector that does not parse is a 400 BadRequest before the watch."""
        rv = await self.list_rv(storage)
        with pytest.raises(StatusError) as exc:
            await self.watch(storage, resource_version=rv, label_selector="a in (")
        _assert_status(exc, 400, "BadRequest")

    async def test_unsupported_field_is_rejected(self, storage: Any) -> None:
        """A field selector on an unsupported field is a 400 BadRequest."""
        rv = await self.list_rv(storage)
        with pytest.raises(StatusError) as exc:
            await self.watch(storage, resource_version=rv, field_selector="spec.nope=1")
        _assert_status(exc, 400, "BadRequest")

    async def test_namespace_scoping(self, storage: Any) -> None:
        """A namespace watch sees only its namespace; ``""`` sees every namespace."""
        ns, other = self.namespace, self.other_namespace
        scoped = self._recorder(await self.live_watch(storage, ns))
        everywhere = self._recorder(await self.live_watch(storage, ""))
        async with scoped, everywhere:
            await self.create(storage, "a", ns)
            await self.create(storage, "b", other)
            await self.create(storage, "c", ns)
            assert await self._wait_changes(everywhere, 3) == [
                ("ADDED", "a"),
                ("ADDED", "b"),
                ("ADDED", "c"),
            ]
            assert await self._wait_changes(scoped, 2) == [("ADDED", "a"), ("ADDED", "c")]
            await scoped.settle()
            assert len(self._changes(scoped.events)) == 2, scoped.describe()
            namespaces = {_metadata(e.object).get("namespace") for e in everywhere.events}
            assert namespaces == {ns, other}

    # -- cases: bookmarks and initial events --------------------------------------------

    async def test_bookmarks_when_allowed(self, storage: Any) -> None:
        """An idle watch with ``allowWatchBookmarks`` gets a bookmark with a resumable RV."""
        await self.create(storage, "a")
        watch = await self.live_watch(storage, allow_watch_bookmarks=True)
        async with self._recorder(watch) as rec:
            bookmark = await rec.wait_for_type(EventType.BOOKMARK, timeout=self.timeout)
        obj = bookmark.object
        assert set(obj) >= {"apiVersion", "kind", "metadata"}, obj
        assert _rv(obj), obj
        assert "spec" not in obj, obj
        if self.supports_resume:
            await self.create(storage, "b")
            async with self._recorder(await self.watch(storage, resource_version=_rv(obj))) as rec2:
                assert await self._wait_changes(rec2, 1) == [("ADDED", "b")]
                await rec2.settle()
                assert len(self._changes(rec2.events)) == 1, rec2.describe()

    async def test_no_bookmarks_unless_allowed(self, storage: Any) -> None:
        """Without ``allowWatchBookmarks`` no BOOKMARK is ever sent."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            await self.create(storage, "a")
            await self._wait_changes(rec, 1)
            await anyio.sleep(self.bookmark_interval * 4)
            await self.create(storage, "b")
            await self._wait_changes(rec, 2)
            assert rec.of_type(EventType.BOOKMARK) == [], rec.describe()

    async def test_send_initial_events_sends_state_then_end_bookmark(self, storage: Any) -> None:
        """``sendInitialEvents=true``: ADDED per object, the end bookmark, then live events."""
        for name in ("a", "b", "c"):
            await self.create(storage, name)
        watch = await self.watch(
            storage,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        )
        async with self._recorder(watch) as rec:
            events = await rec.wait_for(
                lambda evs: any(
                    _metadata(e.object).get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
                    for e in evs
                ),
                timeout=self.timeout,
            )
            end = next(
                i
                for i, e in enumerate(events)
                if _metadata(e.object).get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
            )
            assert all(e.type is EventType.ADDED for e in events[:end]), rec.describe()
            initial = self._own_events(events[:end])
            assert sorted((e.type.value, self._short(e.object)) for e in initial) == [
                ("ADDED", "a"),
                ("ADDED", "b"),
                ("ADDED", "c"),
            ]
            assert events[end].type is EventType.BOOKMARK
            marker_rv = int(_rv(events[end].object))
            assert marker_rv >= max(int(_rv(e.object)) for e in initial)
            await self.create(storage, "d")
            await rec.wait_for(
                lambda evs: ("ADDED", "d") in self._changes(list(evs)), timeout=self.timeout
            )
            assert self._changes(rec.events[end + 1 :]) == [("ADDED", "d")]
            ends = [
                e
                for e in rec.events
                if _metadata(e.object).get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
            ]
            assert len(ends) == 1

    async def test_initial_events_end_bookmark_needs_allow_watch_bookmarks(
        self, storage: Any
    ) -> None:
        """Without ``allowWatchBookmarks`` the initial state comes without an end bookmark."""
        await self.create(storage, "a")
        watch = await self.watch(
            storage, send_initial_events=True, resource_version_match="NotOlderThan"
        )
        async with self._recorder(watch) as rec:
            await self._wait_changes(rec, 1)
            await self.create(storage, "b")
            assert await self._wait_changes(rec, 2) == [("ADDED", "a"), ("ADDED", "b")]
            assert rec.of_type(EventType.BOOKMARK) == [], rec.describe()

    async def test_default_watch_sends_current_state(self, storage: Any) -> None:
        """A bare ``watch=true`` is defaulted to a watch-list: current state first."""
        await self.create(storage, "a")
        await self.create(storage, "b")
        async with self._recorder(await self.watch(storage)) as rec:
            assert sorted(await self._wait_changes(rec, 2)) == [("ADDED", "a"), ("ADDED", "b")]
            await self.create(storage, "c")
            assert (await self._wait_changes(rec, 3))[2] == ("ADDED", "c")

    async def test_send_initial_events_is_rejected(self, storage: Any) -> None:
        """Without initial events support, ``sendInitialEvents=true`` is a 400 BadRequest."""
        with pytest.raises(StatusError) as exc:
            await self.watch(
                storage, send_initial_events=True, resource_version_match="NotOlderThan"
            )
        _assert_status(exc, 400, "BadRequest")
        with pytest.raises(StatusError) as exc:
            await self.watch(storage)  # defaulted to sendInitialEvents=true
        _assert_status(exc, 400, "BadRequest")

    async def test_resource_version_match_is_rejected(self, storage: Any) -> None:
        """Without resume support, ``sendInitialEvents=false`` + ``NotOlderThan`` is a 400."""
        rv = await self.list_rv(storage)
        with pytest.raises(StatusError) as exc:
            await self.watch(
                storage,
                resource_version=rv,
                send_initial_events=False,
                resource_version_match="NotOlderThan",
            )
        _assert_status(exc, 400, "BadRequest")

    # -- cases: lifetime -------------------------------------------------------------

    async def test_timeout_seconds_ends_cleanly(self, storage: Any) -> None:
        """``timeoutSeconds`` ends the watch without an ERROR event."""
        async with self._recorder(await self.live_watch(storage, timeout_seconds=1)) as rec:
            await self.create(storage, "a")
            events = await rec.wait_ended(timeout=self.timeout)
        assert [e for e in events if e.type is EventType.ERROR] == [], rec.describe()
        assert ("ADDED", "a") in self._changes(events)

    async def test_stop_is_idempotent_and_ends_iteration(self, storage: Any) -> None:
        """``stop()`` twice is fine, iteration ends, and writes afterwards still work."""
        watch = await self.live_watch(storage)
        async with self._recorder(watch) as rec:
            await self.create(storage, "a")
            await self._wait_changes(rec, 1)
            watch.stop()
            watch.stop()
            assert watch.stopped
            await rec.wait_ended(timeout=self.timeout)
        with anyio.fail_after(self.timeout):
            async for _event in watch:
                pytest.fail("a stopped watch delivered an event")  # pragma: no cover
        await self.create(storage, "b")
        watch.stop()

    async def test_stop_from_another_task_wakes_the_reader(self, storage: Any) -> None:
        """``stop()`` from another task ends a reader blocked waiting for events."""
        watch = await self.live_watch(storage)
        async with self._recorder(watch) as rec:
            await rec.settle()
            watch.stop()
            await rec.wait_ended(timeout=self.timeout)

    async def test_aclose_ends_open_watches(self, storage: Any) -> None:
        """``aclose()`` ends every open watch and is idempotent (server shutdown)."""
        async with self._recorder(await self.live_watch(storage)) as rec:
            await self.create(storage, "a")
            await self._wait_changes(rec, 1)
            with anyio.fail_after(self.timeout):
                await storage.aclose()
            await rec.wait_ended(timeout=self.timeout)
            with anyio.fail_after(self.timeout):
                await storage.aclose()

    async def test_concurrent_writers_lose_no_events(self, storage: Any) -> None:
        """Events of writers in several tasks all arrive, each once."""
        writers, per_writer = 4, 10
        async with self._recorder(await self.live_watch(storage)) as rec:

            async def write(w: int) -> None:
                for i in range(per_writer):
                    await self.create(storage, f"w{w}-{i}")

            async with anyio.create_task_group() as tg:
                for w in range(writers):
                    tg.start_soon(write, w)
            changes = await self._wait_changes(rec, writers * per_writer)
            await rec.settle()
            assert len(self._changes(rec.events)) == writers * per_writer
        expected = {("ADDED", f"w{w}-{i}") for w in range(writers) for i in range(per_writer)}
        assert set(changes) == expected
        for w in range(writers):  # each writer's own order is kept
            mine = [n for _, n in changes if n.startswith(f"w{w}-")]
            assert mine == [f"w{w}-{i}" for i in range(per_writer)]

    # -- cases: errors of reads and writes ----------------------------------------------

    async def test_update_with_stale_resource_version_conflicts(self, storage: Any) -> None:
        """An update carrying an outdated resourceVersion is a 409 Conflict."""
        created = await self.create(storage, "a")
        await self.update(storage, created)
        with pytest.raises(StatusError) as exc:
            await self.update(storage, created)
        _assert_status(exc, 409, "Conflict")

    async def test_create_duplicate_already_exists(self, storage: Any) -> None:
        """Creating an existing name is a 409 AlreadyExists."""
        await self.create(storage, "a")
        with pytest.raises(StatusError) as exc:
            await self.create(storage, "a")
        _assert_status(exc, 409, "AlreadyExists")

    async def test_get_missing_not_found(self, storage: Any) -> None:
        """Getting a missing object is a 404 NotFound."""
        with pytest.raises(StatusError) as exc:
            await storage.get(self.namespace, self.object_name("missing"))
        _assert_status(exc, 404, "NotFound")

    async def test_delete_missing_not_found(self, storage: Any) -> None:
        """Deleting a missing object is a 404 NotFound."""
        with pytest.raises(StatusError) as exc:
            await storage.delete(self.namespace, self.object_name("missing"))
        _assert_status(exc, 404, "NotFound")

    async def test_get_and_list_agree_with_writes(self, storage: Any) -> None:
        """``get`` returns the latest state and ``list`` every live object."""
        a = await self.create(storage, "a")
        a = await self.update(storage, a)
        b = await self.create(storage, "b")
        await self.delete(storage, b)
        got = await storage.get(self.namespace, self.object_name("a"))
        assert _rv(got) == _rv(a)
        assert got.get("spec") == a.get("spec")
        listed = await storage.list(self.namespace, self._options())
        assert [self._short(item) for item in listed.items if self._short(item) in self._mine] == [
            "a"
        ]
