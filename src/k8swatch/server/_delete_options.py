"""``DeleteOptions``: read from a DELETE's body, or from its query when the body is empty.

kube-apiserver decodes the body as ``DeleteOptions`` when there is one (kubectl
sends ``{"kind": "DeleteOptions", "propagationPolicy": "Background", ...}``)
and reads the query parameters otherwise; preconditions exist only in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import attrs

from k8swatch._finalizers import DeletePreconditions, check_delete_options
from k8swatch._status import bad_request

from ._decode import decode_json
from ._http import Request, check_dry_run, parse_bool
from ._types import as_object

__all__ = ["DeleteRequest", "parse_delete_options"]


@attrs.frozen
class DeleteRequest:
    """What a DELETE asks for, validated.

    Attributes:
        preconditions: ``preconditions.uid`` / ``preconditions.resourceVersion``.
        propagation_policy: ``Foreground``, ``Background``, ``Orphan`` or None.
        dry_run: ``dryRun: ["All"]``.
    """

    preconditions: DeletePreconditions = attrs.field(factory=DeletePreconditions)
    propagation_policy: str | None = None
    dry_run: bool = False


def _string(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"DeleteOptions.{key} must be a string")
    return value


def _from_body(body: bytes) -> DeleteRequest:
    found = as_object(decode_json(body, "the request body is not valid JSON"))
    if found is None:
        raise bad_request("the request body must be a DeleteOptions object")
    kind = found.get("kind")
    if kind not in (None, "", "DeleteOptions"):
        raise bad_request(f"the body of a DELETE must be a DeleteOptions, not a {kind}")
    preconditions = found.get("preconditions")
    if preconditions is not None and not isinstance(preconditions, dict):
        raise bad_request("DeleteOptions.preconditions must be an object")
    conditions = cast("dict[str, Any]", preconditions or {})
    for key in ("uid", "resourceVersion"):
        if conditions.get(key) is not None and not isinstance(conditions[key], str):
            raise bad_request(f"DeleteOptions.preconditions.{key} must be a string")
    orphan = found.get("orphanDependents")
    if orphan is not None and not isinstance(orphan, bool):
        raise bad_request("DeleteOptions.orphanDependents must be a boolean")
    grace = found.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise bad_request("DeleteOptions.gracePeriodSeconds must be an integer")
    dry_run = found.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, list):
        raise bad_request("DeleteOptions.dryRun must be a list of strings")
    policy = _string(found, "propagationPolicy")
    check_delete_options(policy, orphan)
    return DeleteRequest(
        preconditions=DeletePreconditions.from_dict(conditions),
        propagation_policy=policy,
        dry_run=check_dry_run(cast("list[object]", dry_run or []), "DeleteOptions"),
    )


def _from_query(request: Request) -> DeleteRequest:
    policy = request.first("propagationPolicy")
    orphan_text = request.first("orphanDependents")
    orphan = None if orphan_text is None else parse_bool(orphan_text)
    grace = request.first("gracePeriodSeconds")
    if grace is not None and not grace.lstrip("-").isdigit():
        raise bad_request(f"invalid gracePeriodSeconds: {grace!r}")
    check_delete_options(policy, orphan)
    return DeleteRequest(propagation_policy=policy, dry_run=request.dry_run("DeleteOptions"))


def parse_delete_options(request: Request, body: bytes) -> DeleteRequest:
    """The DELETE's options: from *body* when it is not empty, else from the query.

    ``gracePeriodSeconds`` is accepted and has no effect: custom resources are
    never deleted gracefully by time, only through finalizers.

    Raises:
        StatusError: 400 for a body that is not a DeleteOptions; 422 for an
            unknown ``propagationPolicy`` or ``dryRun`` value.
    """
    if body.strip():
        return _from_body(body)
    return _from_query(request)
