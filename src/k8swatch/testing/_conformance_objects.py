"""Conformance cases on object lifecycle: finalizers, DeleteOptions preconditions, dry runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from k8swatch._events import Event, EventType
from k8swatch._finalizers import DeletePreconditions
from k8swatch._json import JSONObject, copy_json
from k8swatch._status import StatusError

from ._conformance_base import ConformanceBase, assert_status, metadata_of, only_with, rv_of

__all__ = ["ObjectConformance"]

FINALIZER = "conformance.k8swatch.dev/keep"
"""The finalizer the cases put on their objects."""


def _finalizers(obj: Mapping[str, Any]) -> list[str]:
    return list(metadata_of(obj).get("finalizers") or [])


def _without_server_fields(obj: Mapping[str, Any]) -> JSONObject:
    out = copy_json(dict(obj))
    metadata: dict[str, Any] = out.get("metadata") or {}
    for field in ("uid", "creationTimestamp", "resourceVersion", "deletionTimestamp"):
        metadata.pop(field, None)
    return out


class ObjectConformance(ConformanceBase, group=True):
    """Object lifecycle as kube-apiserver keeps it: finalizers, preconditions, dry runs.

    Three capabilities, each on by default; a storage that cannot keep
    finalizers, check preconditions or answer a dry run turns its off (the
    server then checks preconditions and answers dry runs itself, less
    exactly: see *Finalizers and graceful deletion* in the docs).

    Cases:

    * ``test_delete_with_finalizer_marks_the_object`` (``supports_finalizers``):
      deleting an object with finalizers sets ``deletionTimestamp`` and
      ``deletionGracePeriodSeconds`` (a ``MODIFIED``), and the object stays.
    * ``test_repeated_delete_changes_nothing`` (``supports_finalizers``): a
      second delete of a deleting object writes nothing.
    * ``test_no_new_finalizers_while_deleting`` (``supports_finalizers``): an
      update adding a finalizer to a deleting object is 422 Invalid.
    * ``test_removing_the_last_finalizer_deletes`` (``supports_finalizers``):
      the update that removes the last finalizer deletes the object: one
      ``DELETED``, no ``MODIFIED`` first.
    * ``test_update_keeps_the_deletion_timestamp`` (``supports_finalizers``):
      an update cannot take ``deletionTimestamp`` away.
    * ``test_delete_preconditions`` (``supports_delete_preconditions``):
      ``delete(..., preconditions=DeletePreconditions(...))`` with the wrong
      uid or resourceVersion is 409 Conflict and deletes nothing.
    * ``test_dry_run_stores_nothing`` (``supports_dry_run``): ``create``,
      ``update`` and ``delete`` with ``dry_run=True`` answer what the write
      would store (server-set uid, timestamps and resourceVersion aside),
      and no watcher sees anything.
    """

    supports_finalizers: ClassVar[bool] = True
    """``delete`` marks an object with finalizers, and the update removing the last
    one deletes it (kube-apiserver's graceful deletion)."""
    supports_delete_preconditions: ClassVar[bool] = True
    """``delete`` takes ``preconditions=``, a
    [`DeletePreconditions`][k8swatch.DeletePreconditions]."""
    supports_dry_run: ClassVar[bool] = True
    """``create``, ``update`` and ``delete`` take ``dry_run=True``."""

    def with_finalizers(self, obj: Mapping[str, Any], finalizers: Sequence[str]) -> JSONObject:
        """A copy of *obj* with ``metadata.finalizers`` set (override for other shapes)."""
        out = copy_json(dict(obj))
        metadata = out.setdefault("metadata", {})
        if finalizers:
            metadata["finalizers"] = list(finalizers)
        else:
            metadata.pop("finalizers", None)
        return out

    async def _create_kept(self, storage: Any, name: str) -> JSONObject:
        self._mine.add(name)
        obj = self.with_finalizers(
            self.new_object(self.object_name(name), self.namespace), [FINALIZER]
        )
        created: JSONObject = await storage.create(self.namespace, obj)
        return created

    async def _set_finalizers(
        self, storage: Any, obj: Mapping[str, Any], finalizers: Sequence[str]
    ) -> JSONObject:
        name = str(metadata_of(obj).get("name", ""))
        updated: JSONObject = await storage.update(
            self.namespace, name, self.with_finalizers(obj, finalizers)
        )
        return updated

    def _own(self, events: Sequence[Event[Any]]) -> list[tuple[str, str]]:
        return [
            (e.type.value, self._short(e.object))
            for e in events
            if e.type is not EventType.BOOKMARK and self._short(e.object) in self._mine
        ]

    @only_with("supports_finalizers")
    async def test_delete_with_finalizer_marks_the_object(self, storage: Any) -> None:
        """Deleting an object with finalizers marks it; it stays until they are gone."""
        created = await self._create_kept(storage, "kept")
        name = str(metadata_of(created)["name"])
        async with self._recorder(await self.live_watch(storage)) as rec:
            marked = await storage.delete(self.namespace, name)
            meta = metadata_of(marked)
            assert meta.get("deletionTimestamp"), f"no deletionTimestamp in {marked!r}"
            assert meta.get("deletionGracePeriodSeconds") == 0
            assert _finalizers(marked) == [FINALIZER]
            events = await rec.wait_for(lambda evs: bool(self._own(evs)), timeout=self.timeout)
            assert self._own(events) == [("MODIFIED", "kept")]
        stored = await storage.get(self.namespace, name)
        assert metadata_of(stored).get("deletionTimestamp") == meta["deletionTimestamp"]

    @only_with("supports_finalizers")
    async def test_repeated_delete_changes_nothing(self, storage: Any) -> None:
        """A second delete of a deleting object answers it and writes nothing."""
        created = await self._create_kept(storage, "kept")
        name = str(metadata_of(created)["name"])
        first = await storage.delete(self.namespace, name)
        second = await storage.delete(self.namespace, name)
        assert rv_of(second) == rv_of(first)
        assert metadata_of(second).get("deletionTimestamp") == metadata_of(first).get(
            "deletionTimestamp"
        )

    @only_with("supports_finalizers")
    async def test_no_new_finalizers_while_deleting(self, storage: Any) -> None:
        """An update adding a finalizer to a deleting object is 422 Invalid."""
        created = await self._create_kept(storage, "kept")
        marked = await storage.delete(self.namespace, str(metadata_of(created)["name"]))
        with pytest.raises(StatusError) as exc:
            await self._set_finalizers(
                storage, marked, [FINALIZER, "conformance.k8swatch.dev/late"]
            )
        assert_status(exc, 422, "Invalid")
        assert "no new finalizers can be added if the object is being deleted" in (
            exc.value.status.message
        )

    @only_with("supports_finalizers")
    async def test_removing_the_last_finalizer_deletes(self, storage: Any) -> None:
        """The update removing the last finalizer deletes: one DELETED, no MODIFIED first."""
        created = await self._create_kept(storage, "kept")
        name = str(metadata_of(created)["name"])
        marked = await storage.delete(self.namespace, name)
        async with self._recorder(await self.live_watch(storage)) as rec:
            await self._set_finalizers(storage, marked, [])
            await rec.wait_for(lambda evs: bool(self._own(evs)), timeout=self.timeout)
            events = await rec.settle()
            assert self._own(events) == [("DELETED", "kept")], rec.describe()
        with pytest.raises(StatusError) as exc:
            await storage.get(self.namespace, name)
        assert_status(exc, 404, "NotFound")

    @only_with("supports_finalizers")
    async def test_update_keeps_the_deletion_timestamp(self, storage: Any) -> None:
        """An update cannot take ``deletionTimestamp`` away from a deleting object."""
        created = await self._create_kept(storage, "kept")
        marked = await storage.delete(self.namespace, str(metadata_of(created)["name"]))
        stamp = metadata_of(marked)["deletionTimestamp"]
        changed = self.change_object(marked)
        changed["metadata"].pop("deletionTimestamp", None)
        updated = await storage.update(self.namespace, str(metadata_of(marked)["name"]), changed)
        assert metadata_of(updated).get("deletionTimestamp") == stamp

    @only_with("supports_delete_preconditions")
    async def test_delete_preconditions(self, storage: Any) -> None:
        """Preconditions that do not match are 409 Conflict and delete nothing."""
        created = await self.create(storage, "a")
        name = str(metadata_of(created)["name"])
        uid = str(metadata_of(created).get("uid", ""))
        for wrong in (
            DeletePreconditions(uid=uid + "-other"),
            DeletePreconditions(resource_version=str(int(rv_of(created)) + 1000)),
        ):
            with pytest.raises(StatusError) as exc:
                await storage.delete(self.namespace, name, preconditions=wrong)
            assert_status(exc, 409, "Conflict")
        assert rv_of(await storage.get(self.namespace, name)) == rv_of(created)
        right = DeletePreconditions(uid=uid, resource_version=rv_of(created))
        await storage.delete(self.namespace, name, preconditions=right)
        with pytest.raises(StatusError) as exc:
            await storage.get(self.namespace, name)
        assert_status(exc, 404, "NotFound")

    @only_with("supports_dry_run")
    async def test_dry_run_stores_nothing(self, storage: Any) -> None:
        """Dry-run writes answer what the write would store, and store nothing."""
        existing = await self.create(storage, "a")
        name = str(metadata_of(existing)["name"])
        async with self._recorder(await self.live_watch(storage)) as rec:
            self._mine.add("b")
            new = self.new_object(self.object_name("b"), self.namespace)
            dry_created = await storage.create(self.namespace, new, dry_run=True)
            changed = self.change_object(existing)
            dry_updated = await storage.update(self.namespace, name, changed, dry_run=True)
            dry_deleted = await storage.delete(self.namespace, name, dry_run=True)
            assert rv_of(await storage.get(self.namespace, name)) == rv_of(existing)
            with pytest.raises(StatusError) as exc:
                await storage.get(self.namespace, self.object_name("b"))
            assert_status(exc, 404, "NotFound")
            # The real writes store what the dry runs answered.
            created = await storage.create(self.namespace, new)
            updated = await storage.update(self.namespace, name, changed)
            events = await rec.wait_for(lambda evs: len(self._own(evs)) >= 2, timeout=self.timeout)
            assert self._own(events)[:2] == [("ADDED", "b"), ("MODIFIED", "a")]
        assert _without_server_fields(dry_created) == _without_server_fields(created)
        assert _without_server_fields(dry_updated) == _without_server_fields(updated)
        assert _without_server_fields(dry_deleted) == _without_server_fields(existing)
