"""RFC 6902 JSON Patch (``application/json-patch+json``).

Errors are reported the way kube-apiserver reports them: a body that is not a
list of operations is a 400 BadRequest; an operation that does not apply (a
missing path, a failed ``test``, an unknown ``op``) is a 422 Invalid whose
message is apimachinery's "the server rejected our request due to an error in
our request" — with, in addition, one cause carrying the specific reason (the
wording of the Go json-patch library kube-apiserver uses), so users see what
went wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from k8swatch._json import copy_json
from k8swatch._status import (
    StatusCause,
    StatusError,
    bad_request,
    request_entity_too_large,
    unprocessable_entity,
)
from k8swatch._wire import encode_json
from k8swatch.server._decode import decode_json
from k8swatch.server._jsontypes import is_array, is_object

__all__ = [
    "MAX_JSON_PATCH_COPY_BYTES",
    "MAX_JSON_PATCH_OPERATIONS",
    "apply_json_patch",
    "decode_json_patch",
    "escape_json_pointer",
    "json_patch",
    "parse_json_pointer",
]

MAX_JSON_PATCH_OPERATIONS = 10000
"""kube-apiserver's limit on the number of operations in one JSON patch (413 beyond)."""

MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024
"""Most bytes (as encoded JSON) the ``copy`` operations of one patch may add together.

kube-apiserver bounds them by its request size limit, 3 MiB by default, as
here: without a bound, each ``copy`` of a parent into its child doubles the
object, and 18 operations in under 1 KB build 56 MB. Past it the patch is a 422.
"""


class _PatchFailed(Exception):
    """An operation that does not apply (turned into a 422 at the boundary)."""


def _unprocessable(reason: str) -> StatusError:
    return unprocessable_entity(
        [StatusCause(reason="FieldValueInvalid", message=reason, field="patch")]
    )


def escape_json_pointer(token: str) -> str:
    """Escape one reference token for a JSON Pointer (``~`` → ``~0``, ``/`` → ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def parse_json_pointer(pointer: str) -> list[str]:
    """Split an RFC 6901 JSON Pointer into unescaped reference tokens.

    ``""`` is the whole document (no tokens); every other pointer starts with
    ``/``. ``~1`` decodes to ``/`` and ``~0`` to ``~`` (in that order).

    Raises:
        ValueError: if *pointer* is not empty and does not start with ``/``,
            or holds a ``~`` not followed by ``0`` or ``1``.
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must be empty or start with '/': {pointer!r}")
    tokens = pointer[1:].split("/")
    out: list[str] = []
    for token in tokens:
        stripped = token.replace("~0", "").replace("~1", "")
        if "~" in stripped:
            raise ValueError(f"invalid escape in JSON pointer: {pointer!r}")
        out.append(token.replace("~1", "/").replace("~0", "~"))
    return out


def decode_json_patch(body: bytes | str) -> list[dict[str, Any]]:
    """Decode a JSON Patch body into its list of operations.

    Raises:
        StatusError: 400 BadRequest if the body is not a JSON list of objects,
            413 RequestEntityTooLarge beyond
            ``MAX_JSON_PATCH_OPERATIONS`` (10000) operations.
    """
    ops = decode_json(body, "error decoding patch")
    if not is_array(ops):
        raise bad_request(
            f"json: cannot unmarshal {_json_type(ops)} into Go value of type jsonpatch.Patch"
        )
    for op in ops:
        if not is_object(op):
            raise bad_request(
                f"json: cannot unmarshal {_json_type(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise request_entity_too_large(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(ops)}"
        )
    return ops


def _json_type(value: Any) -> str:
    if is_object(value):
        return "object"
    if is_array(value):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return "number"


def apply_json_patch(document: Any, patch: Sequence[Mapping[str, Any]] | bytes | str) -> Any:
    """Apply an RFC 6902 JSON Patch to *document* and return the result.

    *document* is not modified. *patch* is a list of operations or the raw
    request body. All six operations are supported (``add``, ``remove``,
    ``replace``, ``move``, ``copy``, ``test``); the patch is atomic: if one
    operation fails, nothing is returned.

    Raises:
        StatusError: 400 for an undecodable patch, 422 Invalid for an
            operation that does not apply or once the ``copy`` operations
            have added more than ``MAX_JSON_PATCH_COPY_BYTES`` (3 MiB).
    """
    ops = decode_json_patch(patch) if isinstance(patch, (bytes, str)) else list(patch)
    doc = copy_json(document)
    copied = [0]
    try:
        for op in ops:
            doc = _apply_operation(doc, op, copied)
    except _PatchFailed as exc:
        raise _unprocessable(str(exc)) from None
    return doc


def _require_path(op: Mapping[str, Any], key: str, kind: str) -> list[str]:
    pointer = op.get(key)
    if not isinstance(pointer, str):
        raise _PatchFailed(f"{kind} operation missing {key} string")
    try:
        return parse_json_pointer(pointer)
    except ValueError as exc:
        raise _PatchFailed(str(exc)) from None


def _copy_value(doc: Any, op: Mapping[str, Any], copied: list[int]) -> Any:
    value = _get(doc, _require_path(op, "from", "copy"), op["from"], "copy")
    # Measured before copying, so an amplifying patch stops at the limit.
    copied[0] += len(encode_json(value))
    if copied[0] > MAX_JSON_PATCH_COPY_BYTES:
        raise _PatchFailed(
            "Unable to complete the copy, the accumulated size increase of copy is "
            f"{copied[0]}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
        )
    return copy_json(value)


def _apply_operation(doc: Any, op: Mapping[str, Any], copied: list[int]) -> Any:
    kind = op.get("op")
    if kind == "add":
        if "value" not in op:
            raise _PatchFailed("add operation does not apply: value is missing")
        return _add(doc, _require_path(op, "path", "add"), copy_json(op["value"]), op["path"])
    if kind == "remove":
        doc, _ = _remove(doc, _require_path(op, "path", "remove"), op["path"], "remove")
        return doc
    if kind == "replace":
        if "value" not in op:
            raise _PatchFailed("replace operation does not apply: value is missing")
        tokens = _require_path(op, "path", "replace")
        if not tokens:
            return copy_json(op["value"])
        parent, key = _container(doc, tokens, op["path"], "replace")
        if is_object(parent):
            if key not in parent:
                raise _PatchFailed(
                    f"replace operation does not apply: doc is missing key: {op['path']}: "
                    "missing value"
                )
            parent[key] = copy_json(op["value"])
        else:
            index = _array_index(parent, key, allow_end=False)
            parent[index] = copy_json(op["value"])
        return doc
    if kind in ("move", "copy"):
        source = _require_path(op, "from", kind)
        target = _require_path(op, "path", kind)
        if kind == "move":
            if target[: len(source)] == source and len(target) > len(source):
                raise _PatchFailed(
                    f"move operation does not apply: cannot move {op['from']} into its own "
                    f"child {op['path']}"
                )
            doc, value = _remove(doc, source, op["from"], "move")
        else:
            value = _copy_value(doc, op, copied)
        return _add(doc, target, value, op["path"])
    if kind == "test":
        tokens = _require_path(op, "path", "test")
        try:
            current = _get(doc, tokens, op["path"], "test")
        except _PatchFailed:
            raise _PatchFailed(f"testing value {op['path']} failed: test failed") from None
        if not _json_equal(current, op.get("value")):
            raise _PatchFailed(f"testing value {op['path']} failed: test failed")
        return doc
    raise _PatchFailed(f"Unexpected kind: {kind}")


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if is_object(left) and is_object(right):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if is_array(left) and is_array(right):
        return len(left) == len(right) and all(
            _json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and bool(left == right)


def _array_index(array: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(array)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _PatchFailed(f"Unable to access invalid index: {token}: invalid index referenced")
    index = int(token)
    limit = len(array) if allow_end else len(array) - 1
    if index > limit:
        raise _PatchFailed(f"Unable to access invalid index: {index}: invalid index referenced")
    return index


def _walk(doc: Any, tokens: Sequence[str]) -> Any:
    node = doc
    for token in tokens:
        if is_object(node):
            if token not in node:
                return _MISSING
            node = node[token]
        elif is_array(node):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                return _MISSING
            index = int(token)
            if index >= len(node):
                return _MISSING
            node = node[index]
        else:
            return _MISSING
    return node


_MISSING: Any = object()


def _container(doc: Any, tokens: Sequence[str], pointer: str, kind: str) -> tuple[Any, str]:
    parent = _walk(doc, tokens[:-1])
    if parent is _MISSING or not (is_object(parent) or is_array(parent)):
        raise _PatchFailed(
            f'{kind} operation does not apply: doc is missing path: "{pointer}": missing value'
        )
    return parent, tokens[-1]


def _get(doc: Any, tokens: Sequence[str], pointer: str, kind: str) -> Any:
    value = _walk(doc, tokens)
    if value is _MISSING:
        raise _PatchFailed(
            f'{kind} operation does not apply: doc is missing path: "{pointer}": missing value'
        )
    return value


def _add(doc: Any, tokens: Sequence[str], value: Any, pointer: str) -> Any:
    if not tokens:
        return value
    parent, key = _container(doc, tokens, pointer, "add")
    if is_object(parent):
        parent[key] = value
    else:
        parent.insert(_array_index(parent, key, allow_end=True), value)
    return doc


def _remove(doc: Any, tokens: Sequence[str], pointer: str, kind: str) -> tuple[Any, Any]:
    if not tokens:
        # Like kube-apiserver's json-patch library: the root cannot be removed.
        raise _PatchFailed(
            f'{kind} operation does not apply: doc is missing path: "{pointer}": missing value'
        )
    parent, key = _container(doc, tokens, pointer, kind)
    if is_object(parent):
        if key not in parent:
            raise _PatchFailed(
                f"error in {kind} for path: '{pointer}': Unable to remove nonexistent key: "
                f"{key}: missing value"
            )
        return doc, parent.pop(key)
    index = _array_index(parent, key, allow_end=False)
    return doc, parent.pop(index)


def json_patch(current: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The ``application/json-patch+json`` patch function: *body* applied to *current*.

    Raises:
        StatusError: 400 for an undecodable patch, 422 for an operation that
            does not apply, or when the result is no longer a JSON object.
    """
    result = apply_json_patch(current, body)
    if not is_object(result):
        raise _unprocessable("the patched document is not a JSON object")
    return result
