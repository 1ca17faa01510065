"""Graceful deletion and finalizers: the apiserver's rules as pure functions.

No I/O here: a storage (or the serving layer) reads the stored object, asks
these functions what the write must be, and performs it atomically with its
own backend. The rules are those kube-apiserver applies to custom resources
(which have no graceful-deletion strategy of their own):

* ``DELETE`` of an object **without finalizers** deletes it at once.
* ``DELETE`` of an object **with finalizers** does not delete it: it sets
  ``metadata.deletionTimestamp`` (now), ``metadata.deletionGracePeriodSeconds``
  (0) and bumps ``metadata.generation``, and answers with the object. A second
  ``DELETE`` while it is pending changes nothing and answers with the object.
* An **update** (PUT or PATCH) never changes ``deletionTimestamp`` or
  ``deletionGracePeriodSeconds``; once ``deletionTimestamp`` is set it may
  remove finalizers but not add any (422). The update that leaves a deleting
  object **without finalizers deletes it** instead of storing it.
* ``DeleteOptions.preconditions`` (``uid``, ``resourceVersion``) must match
  the stored object, else 409 Conflict; ``propagationPolicy`` must be
  ``Foreground``, ``Background`` or ``Orphan`` (422 otherwise, and with
  ``orphanDependents``).

Every function takes and returns Kubernetes-shaped JSON dicts; none mutates
its arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs
from typing_extensions import final

from ._json import JSONObject, copy_json
from ._status import StatusCause, conflict, invalid

__all__ = [
    "PROPAGATION_POLICIES",
    "DeletePlan",
    "DeletePreconditions",
    "check_delete_options",
    "check_delete_preconditions",
    "check_finalizers_update",
    "deletes_on_update",
    "finalizers_of",
    "is_deleting",
    "keep_deletion_fields",
    "plan_delete",
    "strip_deletion_fields",
]

PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
"""The values ``DeleteOptions.propagationPolicy`` accepts, in the apiserver's order."""


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return cast("Mapping[str, Any]", metadata) if isinstance(metadata, Mapping) else {}


def finalizers_of(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The object's ``metadata.finalizers`` (empty when absent or not a list)."""
    finalizers = _metadata(obj).get("finalizers")
    if not isinstance(finalizers, list):
        return ()
    return tuple(str(item) for item in cast("list[Any]", finalizers))  # type: ignore[redundant-cast]


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """Whether the object has a ``metadata.deletionTimestamp`` (a deletion is pending)."""
    return bool(_metadata(obj).get("deletionTimestamp"))


@final
@attrs.frozen
class DeletePreconditions:
    """``DeleteOptions.preconditions``: what the stored object must be for a delete to proceed.

    Attributes:
        uid: The ``metadata.uid`` the object must have (None: any).
        resource_version: The ``metadata.resourceVersion`` it must have (None: any).
    """

    uid: str | None = None
    resource_version: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DeletePreconditions:
        """Read ``DeleteOptions.preconditions`` JSON (``{"uid": ..., "resourceVersion": ...}``)."""
        if not data:
            return cls()
        uid = data.get("uid")
        resource_version = data.get("resourceVersion")
        return cls(
            uid=None if uid is None else str(uid),
            resource_version=None if resource_version is None else str(resource_version),
        )

    def __bool__(self) -> bool:
        """True when at least one precondition is set."""
        return self.uid is not None or self.resource_version is not None


def check_delete_preconditions(
    obj: Mapping[str, Any],
    preconditions: DeletePreconditions | None,
    *,
    kind: str,
    group: str = "",
) -> None:
    """Refuse a delete whose *preconditions* the stored *obj* does not meet.

    Raises:
        StatusError: 409 Conflict, worded as kube-apiserver words it
            (``Operation cannot be fulfilled on <Kind>.<group> "<name>": the
            UID in the precondition (a) does not match the UID in record (b).
            The object might have been deleted and then recreated``; the
            resourceVersion variant ends ``The object might have been
            modified``). The apiserver names the kind there, not the resource.
    """
    if not preconditions:
        return
    metadata = _metadata(obj)
    name = str(metadata.get("name") or "")
    uid = str(metadata.get("uid") or "")
    if preconditions.uid is not None and preconditions.uid != uid:
        raise conflict(
            kind,
            name,
            f"the UID in the precondition ({preconditions.uid}) does not match the UID in "
            f"record ({uid}). The object might have been deleted and then recreated",
            group=group,
        )
    resource_version = str(metadata.get("resourceVersion") or "")
    if (
        preconditions.resource_version is not None
        and preconditions.resource_version != resource_version
    ):
        raise conflict(
            kind,
            name,
            f"the ResourceVersion in the precondition ({preconditions.resource_version}) does "
            f"not match the ResourceVersion in record ({resource_version}). The object might "
            "have been modified",
            group=group,
        )


def check_delete_options(
    propagation_policy: str | None, orphan_dependents: bool | None = None
) -> None:
    """Validate ``DeleteOptions.propagationPolicy`` (and the legacy ``orphanDependents``).

    k8swatch has no garbage collector and no owner references to follow, so
    every valid policy deletes the object itself alone; the value is checked
    as the apiserver checks it and then has nothing further to do.

    Raises:
        StatusError: 422 Invalid (``DeleteOptions.meta.k8s.io "" is invalid:
            propagationPolicy: ...``) for an unknown policy, or for a policy
            given together with ``orphanDependents``.
    """
    causes: list[StatusCause] = []
    if propagation_policy is not None and orphan_dependents is not None:
        causes.append(
            StatusCause(
                reason="FieldValueInvalid",
                message=(
                    f'Invalid value: "{propagation_policy}": orphanDependents and '
                    "deletionPropagation cannot be both set"
                ),
                field="propagationPolicy",
            )
        )
    if propagation_policy is not None and propagation_policy not in PROPAGATION_POLICIES:
        supported = ", ".join(f'"{value}"' for value in (*PROPAGATION_POLICIES, "nil"))
        causes.append(
            StatusCause(
                reason="FieldValueNotSupported",
                message=f'Unsupported value: "{propagation_policy}": supported values: {supported}',
                field="propagationPolicy",
            )
        )
    if causes:
        raise invalid("DeleteOptions", "", causes, group="meta.k8s.io")


@final
@attrs.frozen
class DeletePlan:
    """What a ``DELETE`` must do to the stored object (see `plan_delete`).

    Attributes:
        delete_now: Remove the object now (it has no finalizers).
        object: When not deleting now: the object as it must be stored (with
            ``deletionTimestamp`` and ``deletionGracePeriodSeconds``), which
            is also the answer to the request; None when deleting now.
        changed: When not deleting now: whether *object* differs from the
            stored one (False for a repeated DELETE of a deleting object:
            nothing to write, answer with the stored object).
    """

    delete_now: bool
    object: JSONObject | None = None
    changed: bool = False


def plan_delete(obj: Mapping[str, Any], *, now: str) -> DeletePlan:
    """Decide what a ``DELETE`` of the stored *obj* does, at time *now*.

    An object without finalizers is deleted now. One with finalizers is
    marked: ``deletionTimestamp`` set to *now* unless already set,
    ``deletionGracePeriodSeconds`` 0, and ``generation`` bumped the first
    time (as kube-apiserver marks a custom resource). Check the preconditions
    (`check_delete_preconditions`) first.

    Args:
        obj: The stored object.
        now: The current time as a Kubernetes timestamp (``2024-01-02T03:04:05Z``).
    """
    if not finalizers_of(obj):
        return DeletePlan(delete_now=True)
    marked = copy_json(dict(obj))
    metadata: dict[str, Any] = copy_json(dict(_metadata(obj)))
    marked["metadata"] = metadata
    if not metadata.get("deletionTimestamp"):
        generation = metadata.get("generation")
        if isinstance(generation, int) and not isinstance(generation, bool) and generation > 0:
            metadata["generation"] = generation + 1
        metadata["deletionTimestamp"] = now
    metadata["deletionGracePeriodSeconds"] = 0
    return DeletePlan(delete_now=False, object=marked, changed=marked != obj)


def _go_string_slice(values: Sequence[str]) -> str:
    # Go's %#v of a []string, as the apiserver prints the new finalizers.
    inner = ", ".join(json.dumps(value, ensure_ascii=False) for value in values)
    return "[]string{" + inner + "}"


def check_finalizers_update(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    kind: str,
    group: str = "",
) -> None:
    """Refuse an update that adds finalizers to a deleting object, or starts a deletion.

    Call it with the stored object *old* and the object the update would
    store *new* (after `keep_deletion_fields`).

    Raises:
        StatusError: 422 Invalid: ``metadata.finalizers: Forbidden: no new
            finalizers can be added if the object is being deleted, found new
            finalizers []string{"x"}``; or ``metadata.deletionTimestamp:
            Invalid value: ...: field is immutable`` when the update sets a
            deletionTimestamp the stored object does not have (only DELETE
            starts a deletion).
    """
    name = str(_metadata(new).get("name") or _metadata(old).get("name") or "")
    causes: list[StatusCause] = []
    if is_deleting(old):
        added = sorted(set(finalizers_of(new)) - set(finalizers_of(old)))
        if added:
            causes.append(
                StatusCause(
                    reason="FieldValueForbidden",
                    message=(
                        "Forbidden: no new finalizers can be added if the object is being "
                        f"deleted, found new finalizers {_go_string_slice(added)}"
                    ),
                    field="metadata.finalizers",
                )
            )
    else:
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            value = _metadata(new).get(field)
            if value is not None:
                shown = f'"{value}"' if isinstance(value, str) else str(value)
                causes.append(
                    StatusCause(
                        reason="FieldValueInvalid",
                        message=f"Invalid value: {shown}: field is immutable",
                        field=f"metadata.{field}",
                    )
                )
    if causes:
        raise invalid(kind, name, causes, group=group)


def keep_deletion_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> JSONObject:
    """*new* with the stored deletion fields of *old*: an update never changes them.

    When *old* is deleting, ``deletionTimestamp`` and
    ``deletionGracePeriodSeconds`` are copied from it (an update that drops or
    changes them keeps the stored ones, as kube-apiserver does). When it is
    not, *new* is returned as given for `check_finalizers_update` to judge.
    Returns a shallow copy (top level and ``metadata``).
    """
    out = dict(new)
    metadata = dict(_metadata(new))
    old_meta = _metadata(old)
    if is_deleting(old):
        metadata["deletionTimestamp"] = old_meta["deletionTimestamp"]
        grace = old_meta.get("deletionGracePeriodSeconds")
        if grace is not None:
            metadata["deletionGracePeriodSeconds"] = grace
    out["metadata"] = metadata
    return out


def deletes_on_update(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether storing *new* over the stored *old* must delete the object instead.

    True when *old* is deleting with no grace period left (always, for
    custom resources) and *new* has no finalizers: the last finalizer was
    removed, so the object goes (one ``DELETED`` event, no ``MODIFIED``).
    """
    if finalizers_of(new) or not is_deleting(old):
        return False
    grace = _metadata(old).get("deletionGracePeriodSeconds")
    return grace is None or grace == 0


def strip_deletion_fields(obj: Mapping[str, Any]) -> JSONObject:
    """*obj* without ``deletionTimestamp`` and ``deletionGracePeriodSeconds``.

    A create never starts deleting (kube-apiserver clears both). Returns a
    shallow copy (top level and ``metadata``).
    """
    out = dict(obj)
    metadata = dict(_metadata(obj))
    metadata.pop("deletionTimestamp", None)
    metadata.pop("deletionGracePeriodSeconds", None)
    out["metadata"] = metadata
    return out
