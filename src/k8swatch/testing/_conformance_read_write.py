"""Conformance cases on reads and writes: 409/404 errors, ``get`` and ``list``."""

from __future__ import annotations

from typing import Any

import pytest

from k8swatch._json import JSONObject
from k8swatch._status import StatusError

from ._conformance_base import ConformanceBase, assert_status, only_with, rv_of

__all__ = ["ReadWriteConformance"]


class ReadWriteConformance(ConformanceBase, group=True):
    """Reads and writes: their 409/404 errors, and ``get``/``list`` agreeing with writes.

    An update with a stale resourceVersion is 409 Conflict, a duplicate create
    409 AlreadyExists, a get or delete of a missing object 404 NotFound; ``get``
    returns the latest state and ``list`` every live object. No capability needed.

    Cases:

    * ``test_update_with_stale_resource_version_conflicts``: An update carrying an outdated
      resourceVersion is a 409 Conflict.
    * ``test_create_duplicate_already_exists``: Creating an existing name is a 409
      AlreadyExists.
    * ``test_get_missing_not_found``: Getting a missing object is a 404 NotFound.
    * ``test_delete_missing_not_found``: Deleting a missing object is a 404 NotFound.
    * ``test_get_and_list_agree_with_writes``: ``get`` returns the latest state and ``list``
      every live object.
    * ``test_managed_fields_are_kept``: ``metadata.managedFields`` written with an object
      come back as written from ``create``, ``update`` and ``get`` (needs
      ``keeps_managed_fields``).
    """

    async def test_update_with_stale_resource_version_conflicts(self, storage: Any) -> None:
        """An update carrying an outdated resourceVersion is a 409 Conflict."""
        created = await self.create(storage, "a")
        await self.update(storage, created)
        with pytest.raises(StatusError) as exc:
            await self.update(storage, created)
        assert_status(exc, 409, "Conflict")

    async def test_create_duplicate_already_exists(self, storage: Any) -> None:
        """Creating an existing name is a 409 AlreadyExists."""
        await self.create(storage, "a")
        with pytest.raises(StatusError) as exc:
            await self.create(storage, "a")
        assert_status(exc, 409, "AlreadyExists")

    async def test_get_missing_not_found(self, storage: Any) -> None:
        """Getting a missing object is a 404 NotFound."""
        with pytest.raises(StatusError) as exc:
            await storage.get(self.namespace, self.object_name("missing"))
        assert_status(exc, 404, "NotFound")

    async def test_delete_missing_not_found(self, storage: Any) -> None:
        """Deleting a missing object is a 404 NotFound."""
        with pytest.raises(StatusError) as exc:
            await storage.delete(self.namespace, self.object_name("missing"))
        assert_status(exc, 404, "NotFound")

    async def test_get_and_list_agree_with_writes(self, storage: Any) -> None:
        """``get`` returns the latest state and ``list`` every live object."""
        a = await self.create(storage, "a")
        a = await self.update(storage, a)
        b = await self.create(storage, "b")
        await self.delete(storage, b)
        got = await storage.get(self.namespace, self.object_name("a"))
        assert rv_of(got) == rv_of(a)
        assert got.get("spec") == a.get("spec")
        listed = await storage.list(self.namespace, self._options())
        assert [self._short(item) for item in listed.items if self._short(item) in self._mine] == [
            "a"
        ]

    @only_with("keeps_managed_fields")
    async def test_managed_fields_are_kept(self, storage: Any) -> None:
        """``metadata.managedFields`` come back as written from create, update and get."""

        def entry(manager: str) -> JSONObject:
            return {
                "manager": manager,
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {".": {}, "f:value": {}}},
            }

        self._mine.add("a")
        obj = self.new_object(self.object_name("a"), self.namespace)
        obj["metadata"]["managedFields"] = [entry("creator")]
        created = await storage.create(self.namespace, obj)
        assert created["metadata"].get("managedFields") == [entry("creator")]
        changed = self.change_object(created)
        changed["metadata"] = {**changed["metadata"], "managedFields": [entry("updater")]}
        updated = await storage.update(self.namespace, self.object_name("a"), changed)
        assert updated["metadata"].get("managedFields") == [entry("updater")]
        got = await storage.get(self.namespace, self.object_name("a"))
        assert got["metadata"].get("managedFields") == [entry("updater")]
