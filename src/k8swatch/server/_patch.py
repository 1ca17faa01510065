"""PATCH support: a content type → patch function registry, with JSON merge patch.

Server-side apply (``application/apply-patch+yaml``) is no patch function: the
app handles it before this registry (``_apply``), whatever ``patch_types`` say.

A patch function takes the current object and the raw request body and returns
the patched object; it raises [`StatusError`][k8swatch.StatusError] (400
BadRequest) for a body it cannot apply. Add more patch types by passing
``patch_types`` to [`create_app`][k8swatch.server.create_app].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from k8swatch._json import copy_json
from k8swatch._status import StatusError, bad_request, unsupported_media_type

from ._decode import decode_json
from ._jsonpatch import json_patch
from ._types import as_object

__all__ = [
    "DEFAULT_PATCH_TYPES",
    "MERGE_PATCH",
    "PatchFunction",
    "apply_merge_patch",
    "check_patch_type",
    "merge_patch",
    "patch_object",
    "unsupported_patch_type",
]

PatchFunction = Callable[[dict[str, Any], bytes], dict[str, Any]]
"""``(current object, request body) -> patched object``."""

MERGE_PATCH = "application/merge-patch+json"


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch to *target* and return the result.

    *target* is not modified. A ``null`` in the patch removes the key; a
    non-object patch replaces the target entirely.
    """
    patch_object = as_object(patch)
    if patch_object is None:
        return copy_json(patch)
    result: dict[str, Any] = dict(as_object(target) or {})
    for key, value in patch_object.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def merge_patch(current: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The ``application/merge-patch+json`` [`PatchFunction`][k8swatch.server.PatchFunction]."""
    patch = decode_json(body, "error decoding patch")
    if not isinstance(patch, dict):
        raise bad_request("error decoding patch: a merge patch must be a JSON object")
    result: dict[str, Any] = apply_merge_patch(current, cast("dict[str, Any]", patch))
    return result


JSON_PATCH = "application/json-patch+json"
APPLY_PATCH_TYPES = ("application/apply-patch+yaml", "application/apply-patch+cbor")

DEFAULT_PATCH_TYPES: Mapping[str, PatchFunction] = {
    JSON_PATCH: json_patch,
    MERGE_PATCH: merge_patch,
}
"""The patch types every app understands: RFC 6902 JSON Patch and RFC 7386 merge patch."""


def unsupported_patch_type(content_type: str, accepted: Mapping[str, object]) -> StatusError:
    """415 UnsupportedMediaType naming *content_type* and the accepted types."""
    listed = ", ".join([*(t for t in accepted if t != APPLY_PATCH_TYPES[0]), APPLY_PATCH_TYPES[0]])
    shown = content_type or "(none)"
    message = (
        f"the body of the request was in an unknown format ({shown}) - "
        f"accepted media types include: {listed}"
    )
    if content_type in APPLY_PATCH_TYPES:
        message += f"; server-side apply reads {APPLY_PATCH_TYPES[0]} (JSON or YAML), not CBOR"
    return unsupported_media_type(message)


def patch_object(
    patch_types: Mapping[str, PatchFunction],
    content_type: str,
    current: dict[str, Any],
    body: bytes,
) -> dict[str, Any]:
    """Dispatch on *content_type* (parameters ignored) and apply the patch."""
    return patch_types[check_patch_type(patch_types, content_type)](current, body)


def check_patch_type(patch_types: Mapping[str, PatchFunction], content_type: str) -> str:
    """Return the media type of *content_type* (parameters dropped).

    Raises:
        StatusError: 415 UnsupportedMediaType when no patch function handles it
            (checked before anything else, as kube-apiserver does).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in patch_types:
        raise unsupported_patch_type(media_type, patch_types)
    return media_type
