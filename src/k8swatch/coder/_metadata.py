"""Kubernetes metadata of Coder objects: what Coder has no place for, kept beside it.

Coder stores nothing Kubernetes-only, so a Coder storage keeps the labels,
annotations, finalizers, ownerReferences and managedFields clients write (and
the ``deletionTimestamp`` a delete of an object with finalizers sets) in a
`MetadataStore`, keyed by the Coder object's id (its ``metadata.uid``).

A record is ``(revision, body)``: *revision* is an integer the storage picks
(the time of the write in nanoseconds, above the object's resourceVersion) and
a write is conditional on the revision read, so two writers never lose each
other's change; *body* is a JSON object ``{"resource", "namespace", "name", "metadata"}``
(the resource, e.g. ``coderworkspaces``, so storages may share one store).

`MemoryMetadataStore` keeps the records in this process (the default);
``k8swatch.redis.RedisMetadataStore`` keeps them in Redis, shared by every
replica and surviving restarts.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Protocol, cast, runtime_checkable

from typing_extensions import final

from k8swatch._json import copy_json
from k8swatch._labels import label_key_errors, label_value_errors
from k8swatch._status import StatusCause, invalid

__all__ = [
    "KEPT_FIELDS",
    "SERVER_FIELDS",
    "MemoryMetadataStore",
    "MetadataRecord",
    "MetadataStore",
    "dress",
    "finalizers_of",
    "kept_metadata",
    "validate_kept_metadata",
]

MetadataRecord = tuple[int, dict[str, Any]]
"""``(revision, body)`` of one stored record."""

KEPT_FIELDS: tuple[str, ...] = (
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "managedFields",
)
"""The ``metadata`` fields a client writes that the store keeps for it."""

SERVER_FIELDS: tuple[str, ...] = ("deletionTimestamp", "deletionGracePeriodSeconds")
"""The ``metadata`` fields the store keeps that only the server sets (graceful deletion)."""

_ANNOTATIONS_MAX_BYTES = 256 * 1024


@runtime_checkable
class MetadataStore(Protocol):
    """Where a Coder storage keeps the Kubernetes metadata of Coder objects.

    Keys are Coder object ids. Implementations: `MemoryMetadataStore` (this
    process) and ``k8swatch.redis.RedisMetadataStore`` (shared by replicas).
    Every method raises a `StatusError` (503 when the store is unreachable).
    """

    async def read(self, keys: Collection[str]) -> dict[str, MetadataRecord]:
        """The records of those *keys* that have one."""
        ...

    async def read_all(self) -> dict[str, MetadataRecord]:
        """Every record (used to find records of objects Coder no longer has)."""
        ...

    async def write(
        self, key: str, body: dict[str, Any] | None, revision: int, *, expected: int
    ) -> bool:
        """Store *body* at *revision* (None: remove the record) if the record is at *expected*.

        *expected* is the revision read before (0: there was no record).
        Returns False, changing nothing, when the record is elsewhere now.
        """
        ...

    async def remove(self, keys: Collection[str]) -> None:
        """Remove the records of *keys* unconditionally (the objects are gone)."""
        ...


@final
class MemoryMetadataStore:
    """A `MetadataStore` in this process's memory: the default of the Coder storages.

    Records are lost when the process stops; use
    ``k8swatch.redis.RedisMetadataStore`` to keep them across restarts and
    share them between replicas.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[int, str]] = {}

    def __len__(self) -> int:
        """The number of records held."""
        return len(self._records)

    async def read(self, keys: Collection[str]) -> dict[str, MetadataRecord]:
        """The records of those *keys* that have one (copies)."""
        out: dict[str, MetadataRecord] = {}
        for key in keys:
            found = self._records.get(key)
            if found is not None:
                out[key] = (found[0], json.loads(found[1]))
        return out

    async def read_all(self) -> dict[str, MetadataRecord]:
        """Every record (copies)."""
        return await self.read(list(self._records))

    async def write(
        self, key: str, body: dict[str, Any] | None, revision: int, *, expected: int
    ) -> bool:
        """Store or remove the record if it is at *expected* (0: absent)."""
        found = self._records.get(key)
        if (found[0] if found is not None else 0) != expected:
            return False
        if body is None:
            self._records.pop(key, None)
        else:
            self._records[key] = (revision, json.dumps(body, separators=(",", ":")))
        return True

    async def remove(self, keys: Collection[str]) -> None:
        """Remove the records of *keys*."""
        for key in keys:
            self._records.pop(key, None)


def _as_list(value: Any) -> list[Any] | None:
    """*value* when it is a JSON array, else None."""
    if isinstance(value, list):
        items: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
        return items
    return None


def _as_map(value: Any) -> Mapping[str, Any] | None:
    """*value* when it is a JSON object, else None."""
    if isinstance(value, Mapping):
        return cast("Mapping[str, Any]", value)
    return None


def kept_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of *metadata* the store keeps, non-empty ones only, copied."""
    out: dict[str, Any] = {}
    for field in (*KEPT_FIELDS, *SERVER_FIELDS):
        value = metadata.get(field)
        if value not in (None, {}, []):
            out[field] = copy_json(value)
    return out


def dress(obj: dict[str, Any], kept: Mapping[str, Any], revision: int) -> dict[str, Any]:
    """*obj* (converted from Coder, changed in place) with the stored *kept* metadata.

    Its resourceVersion becomes the later of Coder's and the record's
    *revision*, so a metadata-only write gives the object a new one.
    """
    metadata: dict[str, Any] = obj["metadata"]
    for field in (*KEPT_FIELDS, *SERVER_FIELDS):
        metadata.pop(field, None)
        if field in kept:
            metadata[field] = copy_json(kept[field])
    rv = str(metadata.get("resourceVersion") or "")
    if revision and (not rv.isdigit() or revision > int(rv)):
        metadata["resourceVersion"] = str(revision)
    return obj


def validate_kept_metadata(kind: str, group: str, name: str, metadata: Mapping[str, Any]) -> None:
    """The apiserver's ObjectMeta checks on the kept fields of a write: 422 Invalid.

    Labels must be valid label keys and values, annotation keys qualified
    names (all annotations at most 256 KiB), finalizers qualified names,
    ownerReferences name their ``apiVersion``, ``kind``, ``name`` and ``uid``.
    """
    causes: list[StatusCause] = []

    def bad(field: str, value: Any, message: str) -> None:
        shown = json.dumps(value)
        causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {shown}: {message}", field))

    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is None:
            continue
        entries = _as_map(value)
        if entries is None:
            bad(f"metadata.{field}", value, "must be an object of strings")
            continue
        size = 0
        for key, text in entries.items():
            for problem in label_key_errors(key):
                bad(f"metadata.{field}", key, problem)
            if not isinstance(text, str):
                bad(f"metadata.{field}[{key}]", text, "must be a string")
                continue
            size += len(key.encode()) + len(text.encode())
            if field == "labels":
                for problem in label_value_errors(text):
                    bad("metadata.labels", text, problem)
        if field == "annotations" and size > _ANNOTATIONS_MAX_BYTES:
            causes.append(
                StatusCause(
                    "FieldValueTooLong",
                    f"Too long: must have at most {_ANNOTATIONS_MAX_BYTES} bytes",
                    "metadata.annotations",
                )
            )
    finalizers = metadata.get("finalizers")
    if finalizers is not None:
        items = _as_list(finalizers)
        if items is None:
            bad("metadata.finalizers", finalizers, "must be a list of strings")
        for i, item in enumerate(items or ()):
            problems = label_key_errors(item) if isinstance(item, str) else ["must be a string"]
            for problem in problems:
                bad(f"metadata.finalizers[{i}]", item, problem)
    refs = metadata.get("ownerReferences")
    if refs is not None:
        items = _as_list(refs)
        if items is None:
            bad("metadata.ownerReferences", refs, "must be a list of objects")
        for i, ref in enumerate(items or ()):
            ref_map = _as_map(ref) or {}
            for key in ("apiVersion", "kind", "name", "uid"):
                if not ref_map.get(key) or not isinstance(ref_map.get(key), str):
                    causes.append(
                        StatusCause(
                            "FieldValueRequired",
                            "Required value",
                            f"metadata.ownerReferences[{i}].{key}",
                        )
                    )
    managed = metadata.get("managedFields")
    if managed is not None and _as_list(managed) is None:
        bad("metadata.managedFields", managed, "must be a list of objects")
    if causes:
        raise invalid(kind, name, causes, group=group)


def finalizers_of(metadata: Mapping[str, Any]) -> list[str]:
    """``metadata.finalizers`` as a list of strings."""
    return [str(f) for f in _as_list(metadata.get("finalizers")) or ()]
