"""``metadata.managedFields``: which manager owns which fields (sans-I/O).

kube-apiserver's field manager, for one resource: every write records, per
field manager, the fields it set.

- An **update** (create, PUT, merge or JSON patch) by manager *m*: the fields
  the write added or changed now belong to *m* (entry ``operation: Update``,
  one per manager and apiVersion) and to no one else; removed fields belong
  to no one. A write that changes nothing leaves the entries as they were.
  Managed fields sent with the object replace the stored ones when they
  decode (that is how a client resets them); otherwise the stored ones stay.
- An **apply** (server-side apply) by manager *m*: the applied configuration
  is merged into the live object; *m* (entry ``operation: Apply``) owns
  exactly the fields it applied; fields *m* applied last time and no manager
  owns now are removed. Changing a field another manager owns is a conflict
  (409, one cause per field), unless ``force`` moves the field to *m*.
  Applying the value a field already has shares it.

Fields no manager may own (``apiVersion``, ``kind``, ``metadata.name``,
``uid``, ``resourceVersion``...) are never recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias

import attrs
from typing_extensions import final

from k8swatch._status import Status, StatusCause, StatusDetails, StatusError

from ._fieldpath import (
    FieldSet,
    Path,
    decode_fields_v1,
    element_sort_key,
    encode_fields_v1,
    go_json,
    path_string,
)
from ._jsontypes import is_array, is_object
from ._structured import (
    MISSING,
    compare,
    ensure_named_fields_are_members,
    manager_schema,
    merge,
    remove_items,
    to_field_set,
)

__all__ = [
    "ANCIENT_CHANGES",
    "APPLY",
    "BEFORE_FIRST_APPLY",
    "FIELD_MANAGER_CONFLICT",
    "KUBECTL",
    "LAST_APPLIED",
    "MAX_UPDATE_MANAGERS",
    "UPDATE",
    "FieldManager",
    "ManagedEntry",
    "decode_managed_fields",
    "encode_managed_fields",
    "manager_from_user_agent",
    "now",
]

APPLY: Final = "Apply"
UPDATE: Final = "Update"
BEFORE_FIRST_APPLY: Final = "before-first-apply"
"""The manager that owns what an object held before its first apply, when it had no managers."""
ANCIENT_CHANGES: Final = "ancient-changes"
"""The manager the oldest updates are merged into past ``MAX_UPDATE_MANAGERS``."""
MAX_UPDATE_MANAGERS: Final = 10
"""At most this many ``Update`` entries are kept (kube-apiserver's cap)."""
FIELD_MANAGER_CONFLICT: Final = "FieldManagerConflict"
"""The ``reason`` of each cause of an apply conflict."""

# What no manager owns (kube-apiserver's stripMeta set; exact members only).
_STRIPPED: Final[FieldSet] = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        *(
            ("f:metadata", "f:" + name)
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    }
)

KUBECTL: Final = "kubectl"
"""The manager of ``kubectl apply --server-side``, which upgrades client-side apply."""
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
"""The annotation client-side ``kubectl apply`` keeps its configuration in."""
_ANNOTATIONS_LIMIT: Final = 256 * 1024  # kube-apiserver's total annotation size limit

Identity: TypeAlias = tuple[str, str, str, str]
"""(manager, operation, apiVersion for updates else "", subresource)."""


@final
@attrs.frozen
class ManagedEntry:
    """One ``managedFields`` entry: a manager, its operation and the fields it owns."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""
    encoded: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)
    """The ``fieldsV1`` these fields were decoded from (reused when they did not change)."""

    @property
    def identity(self) -> Identity:
        """What tells entries apart: appliers are one entry whatever the apiVersion."""
        version = self.api_version if self.operation != APPLY else ""
        return (self.manager, self.operation, version, self.subresource)


Managed: TypeAlias = dict[Identity, ManagedEntry]


def decode_managed_fields(value: object) -> Managed:
    """The entries of a ``metadata.managedFields`` list.

    Raises:
        ValueError: an entry that is not an object, has an unknown operation
            or ``fieldsType``, or fields that do not decode.
    """
    managed: Managed = {}
    if value is None:
        return managed
    if not is_array(value):
        raise ValueError("managedFields must be a list")
    for raw in value:
        if not is_object(raw):
            raise ValueError("a managedFields entry must be an object")
        item = raw
        operation = item.get("operation", "")
        if operation not in (APPLY, UPDATE):
            raise ValueError(f"unknown operation {operation!r}")
        fields_type = item.get("fieldsType", "FieldsV1")
        if fields_type != "FieldsV1":
            raise ValueError(f"unknown fieldsType {fields_type!r}")
        texts = [item.get(k, "") for k in ("manager", "apiVersion", "subresource")]
        stamp = item.get("time")
        if not all(isinstance(t, str) for t in texts) or not isinstance(stamp, (str, type(None))):
            raise ValueError("manager, apiVersion, subresource and time must be strings")
        encoded = item.get("fieldsV1", {})
        entry = ManagedEntry(
            manager=texts[0],
            operation=operation,
            api_version=texts[1],
            time=stamp,
            fields=decode_fields_v1(encoded),
            subresource=texts[2],
            encoded=encoded,
        )
        if entry.identity in managed:
            raise ValueError(f"duplicate managedFields entry for manager {entry.manager!r}")
        managed[entry.identity] = entry
    return managed


def _time_order(stamp: str | None) -> str:
    return stamp or ""


def encode_managed_fields(managed: Mapping[Identity, ManagedEntry]) -> list[dict[str, Any]]:
    """The ``metadata.managedFields`` list, in kube-apiserver's order and field order."""
    entries = sorted(
        managed.values(),
        key=lambda e: (e.operation, _time_order(e.time), e.manager, e.api_version, e.subresource),
    )
    out: list[dict[str, Any]] = []
    for entry in entries:
        item: dict[str, Any] = {
            "manager": entry.manager,
            "operation": entry.operation,
            "apiVersion": entry.api_version,
        }
        if entry.time is not None:
            item["time"] = entry.time
        item["fieldsType"] = "FieldsV1"
        item["fieldsV1"] = (
            entry.encoded if entry.encoded is not None else encode_fields_v1(entry.fields)
        )
        if entry.subresource:
            item["subresource"] = entry.subresource
        out.append(item)
    return out


def now() -> str:
    """The current UTC time as a Kubernetes timestamp (second precision)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def manager_from_user_agent(user_agent: str) -> str:
    """The manager kube-apiserver names a write after without ``fieldManager``.

    The ``User-Agent`` up to its first ``/`` (``kubectl/v1.31.0 (linux/amd64)``
    → ``kubectl``).
    """
    return user_agent.split("/", 1)[0]


def _without_managed(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    metadata = obj.get("metadata")
    if not is_object(metadata) or "managedFields" not in metadata:
        return dict(obj)
    meta = {k: v for k, v in metadata.items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def _with_managed(obj: dict[str, Any], managed: Managed) -> dict[str, Any]:
    metadata = obj.get("metadata")
    meta: dict[str, Any] = dict(metadata) if is_object(metadata) else {}
    meta.pop("managedFields", None)
    if managed:
        meta["managedFields"] = encode_managed_fields(managed)
    return {**obj, "metadata": meta}


def _stored_managed(obj: Mapping[str, Any] | None) -> Managed:
    if obj is None:
        return {}
    metadata = obj.get("metadata")
    if not is_object(metadata):
        return {}
    try:
        return decode_managed_fields(metadata.get("managedFields"))
    except ValueError:
        return {}


def _print_manager(entry: ManagedEntry) -> str:
    # kube-apiserver's printManager: the manager quoted, "using <apiVersion>" for updaters.
    text = _go_quote(entry.manager)
    if entry.subresource:
        text += f" with subresource {_go_quote(entry.subresource)}"
    if entry.operation == UPDATE:
        text += f" using {entry.api_version}"
    return text


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _path_order(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple(element_sort_key(element) for element in path)


def conflict_error(conflicts: Iterable[tuple[ManagedEntry, Path]]) -> StatusError:
    """409 Conflict for an apply that would change fields other managers own.

    One ``FieldManagerConflict`` cause per field; the message as kube-apiserver
    words it (``Apply failed with 1 conflict: conflict with "m" using v1:
    .spec.x``).
    """
    ordered = sorted(
        conflicts,
        key=lambda c: (c[0].manager, c[0].operation, c[0].api_version, _path_order(c[1])),
    )
    causes = tuple(
        StatusCause(
            reason=FIELD_MANAGER_CONFLICT,
            message=f"conflict with {_print_manager(entry)}",
            field=path_string(path),
        )
        for entry, path in ordered
    )
    if len(ordered) == 1:
        entry, path = ordered[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {_print_manager(entry)}: "
            f"{path_string(path)}"
        )
    else:
        lines: list[str] = []
        current: Identity | None = None
        for entry, path in ordered:
            if entry.identity != current:
                current = entry.identity
                lines.append(f"conflicts with {_print_manager(entry)}:")
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return StatusError(
        Status(code=409, reason="Conflict", message=message, details=StatusDetails(causes=causes))
    )


@final
@attrs.frozen
class FieldManager:
    """The field manager of one resource: ``managedFields`` for updates, and apply.

    Attributes:
        object_schema: The resource's full object schema (``metadata`` is
            always treated as ObjectMeta).
        api_version: The resource's ``apiVersion``, recorded in the entries.
        clock: The current time as a Kubernetes timestamp.
    """

    object_schema: Mapping[str, Any] | None
    api_version: str
    clock: Callable[[], str]
    _schema: Mapping[str, Any] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_schema", manager_schema(self.object_schema))

    def update(
        self,
        live: Mapping[str, Any] | None,
        new: Mapping[str, Any],
        manager: str,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        """*new* with ``managedFields`` for a write by *manager* from *live* (None: create)."""
        managed: Managed | None = None
        metadata = new.get("metadata")
        given = metadata.get("managedFields") if is_object(metadata) else None
        if given and not subresource:
            try:
                managed = decode_managed_fields(given)
            except ValueError:
                managed = None
        if managed is None:
            managed = _stored_managed(live)
        clean_new = _without_managed(new)
        changes = compare(_without_managed(live), clean_new, self._schema)
        changed = changes.added | changes.modified
        managed = _take(managed, changed | changes.removed, keep=None)
        own = changed - _STRIPPED
        if own:
            entry = ManagedEntry(manager, UPDATE, self.api_version, None, own, subresource)
            previous = managed.get(entry.identity)
            fields = own | previous.fields if previous is not None else own
            managed[entry.identity] = attrs.evolve(entry, fields=fields, time=self.clock())
        return _with_managed(clean_new, _cap_update_managers(managed))

    def apply(
        self,
        live: Mapping[str, Any] | None,
        config: Mapping[str, Any],
        manager: str,
        *,
        force: bool,
        subresource: str = "",
    ) -> dict[str, Any]:
        """The object after *manager* applies *config* to *live* (None: it does not exist).

        As kube-apiserver, for the manager ``kubectl`` (``kubectl apply
        --server-side``) of an object that client-side apply wrote: fields
        its ``last-applied-configuration`` annotation sets, to the values
        they still have, are taken over without a conflict, and the
        annotation follows what is applied.

        Raises:
            StatusError: 409 Conflict naming each field another manager owns
                and this apply would change (unless *force*).
            StructureError: *config* has an associative list item without its
                key fields, or twice.
        """
        allowed: FieldSet = frozenset()
        if manager == KUBECTL and live is not None and not force:
            allowed = self._owned_by_last_applied(live)
        result = self._apply(
            live, config, manager, force=force, allowed=allowed, subresource=subresource
        )
        if manager == KUBECTL:
            result = _sync_last_applied(result, config)
        return result

    def _apply(
        self,
        live: Mapping[str, Any] | None,
        config: Mapping[str, Any],
        manager: str,
        *,
        force: bool,
        allowed: FieldSet,
        subresource: str,
    ) -> dict[str, Any]:
        managed = _stored_managed(live)
        clean_live = _without_managed(live)
        if live is not None and not managed:
            before = compare({}, clean_live, self._schema)
            owned = (before.added | before.modified) - _STRIPPED
            if owned:
                entry = ManagedEntry(
                    BEFORE_FIRST_APPLY, UPDATE, self.api_version, self.clock(), owned
                )
                managed[entry.identity] = entry
        config_set = to_field_set(config, self._schema, strict=True) - _STRIPPED
        merged = merge(clean_live if live is not None else MISSING, dict(config), self._schema)
        if not is_object(merged):  # pragma: no cover - config is an object
            merged = dict(config)
        applier = ManagedEntry(manager, APPLY, self.api_version, None, config_set, subresource)
        last = managed.get(applier.identity)
        managed[applier.identity] = attrs.evolve(applier, time=last.time if last else None)
        owned_now: set[Path] = set()
        for entry in managed.values():
            owned_now |= entry.fields
        # ensure_named_fields_are_members is monotone: nothing is stale when
        # every field of the last apply is still owned.
        if last is not None and not last.fields <= owned_now:
            stale = ensure_named_fields_are_members(
                last.fields, self._schema
            ) - ensure_named_fields_are_members(owned_now, self._schema)
            if stale:
                merged = remove_items(merged, frozenset(stale), self._schema)
        changes = compare(clean_live, merged, self._schema)
        changed = changes.added | changes.modified
        conflicts = [
            (entry, path)
            for identity, entry in managed.items()
            if identity != applier.identity
            for path in entry.fields & changed
        ]
        blocking = [(entry, path) for entry, path in conflicts if path not in allowed]
        if blocking and not force:
            raise conflict_error(blocking)
        managed = _take(managed, changed | changes.removed, keep=applier.identity)
        mine = managed.get(applier.identity)
        if mine is not None and (mine.time is None or merged != clean_live):
            managed[applier.identity] = attrs.evolve(mine, time=self.clock())
        return _with_managed(merged, _cap_update_managers(managed))

    def _owned_by_last_applied(self, live: Mapping[str, Any]) -> FieldSet:
        # kube-apiserver's lastAppliedManager: what the last client-side apply
        # set and nobody changed since.
        text = _annotations(live).get(LAST_APPLIED)
        if not isinstance(text, str) or not text:
            return frozenset()
        try:
            last_applied: object = json.loads(text)
        except ValueError:
            return frozenset()
        if not is_object(last_applied):
            return frozenset()
        fields = to_field_set(last_applied, self._schema)
        changes = compare(last_applied, _without_managed(live), self._schema)
        return fields - changes.modified - changes.added - changes.removed


def _annotations(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    found = metadata.get("annotations") if is_object(metadata) else None
    return found if is_object(found) else {}


def _sync_last_applied(obj: dict[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """*obj* with its ``last-applied-configuration`` set to *config*, if it has one.

    kube-apiserver's lastAppliedUpdater: the annotation of a client-side
    apply keeps up with ``kubectl apply --server-side``, so that going back
    to client-side apply does not undo it. Dropped if the annotations would
    outgrow their 256 KiB limit.
    """
    annotations = _annotations(obj)
    if not annotations.get(LAST_APPLIED):
        return obj
    applied = dict(config)
    meta = applied.get("metadata")
    if is_object(meta):
        meta = dict(meta)
        config_annotations = meta.get("annotations")
        if is_object(config_annotations):
            rest = {k: v for k, v in config_annotations.items() if k != LAST_APPLIED}
            if rest:
                meta["annotations"] = rest
            else:
                del meta["annotations"]
        applied["metadata"] = meta
    updated = {**annotations, LAST_APPLIED: go_json(applied) + "\n"}
    if sum(len(k) + len(str(v)) for k, v in updated.items()) > _ANNOTATIONS_LIMIT:
        updated.pop(LAST_APPLIED)
    return {**obj, "metadata": {**obj["metadata"], "annotations": updated}}


def _cap_update_managers(managed: Managed) -> Managed:
    """*managed* with at most ``MAX_UPDATE_MANAGERS`` update entries.

    kube-apiserver's cap: past it, the oldest updates are merged, per
    apiVersion, into one ``ancient-changes`` entry (with the time of the
    newest update merged into it).
    """
    updaters = [entry for entry in managed.values() if entry.operation == UPDATE]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return managed
    updaters.sort(key=lambda e: (e.time or "", e.manager, e.api_version, e.subresource))
    out = dict(managed)
    count = len(updaters)
    # An existing bucket takes the oldest updates of its apiVersion.
    first_by_version = {
        e.api_version: e for e in updaters if e.manager == ANCIENT_CHANGES and not e.subresource
    }
    for entry in updaters:
        if count <= MAX_UPDATE_MANAGERS:
            break
        if entry.manager == ANCIENT_CHANGES and not entry.subresource:
            continue
        first = first_by_version.get(entry.api_version)
        if first is None:
            first_by_version[entry.api_version] = entry
            continue
        bucket = ManagedEntry(ANCIENT_CHANGES, UPDATE, entry.api_version, None, frozenset())
        if bucket.identity not in out:
            out.pop(first.identity, None)
            out[bucket.identity] = attrs.evolve(first, manager=ANCIENT_CHANGES, subresource="")
        merged = out[bucket.identity]
        out[bucket.identity] = attrs.evolve(
            merged, fields=merged.fields | entry.fields, time=entry.time, encoded=None
        )
        out.pop(entry.identity, None)
        count -= 1
    return out


def _take(managed: Managed, paths: FieldSet, *, keep: Identity | None) -> Managed:
    """*managed* with *paths* taken from every entry but *keep*; empty entries dropped."""
    out: Managed = {}
    for identity, entry in managed.items():
        fields = entry.fields if identity == keep else entry.fields - paths
        fields -= _STRIPPED
        if fields:
            if fields != entry.fields:
                entry = attrs.evolve(entry, fields=fields, encoded=None)
            out[identity] = entry
    return out
