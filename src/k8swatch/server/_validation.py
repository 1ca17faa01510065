"""Server-side field validation against a structural schema (``fieldValidation``).

kube-apiserver decodes a request body strictly when ``fieldValidation`` is
``Strict`` or ``Warn`` (the default) and checks custom resources against their
schema whatever the directive. This module does the same for a resource that
declares a schema:

- unknown fields (not in ``properties``, under no
  ``x-kubernetes-preserve-unknown-fields`` and no ``additionalProperties``):
  ``Strict`` → 400 BadRequest ``<Kind> in version "<v>" cannot be handled as a
  <Kind>: strict decoding error: unknown field "spec.foo"`` (a 422 on PATCH, as
  kube-apiserver answers), ``Warn`` → one ``Warning`` header per field,
  ``Ignore`` → nothing;
- wrong types → 422 Invalid ``<Kind>.<group> "<name>" is invalid: spec.running:
  Invalid value: "string": spec.running in body must be of type boolean:
  "string"``, whatever the directive;
- ``metadata.name`` / ``metadata.generateName`` breaking the constraints the
  schema puts on them (``maxLength``, ``minLength``, ``pattern``, ``enum``:
  the only ObjectMeta validation a CRD schema may add) → 422 Invalid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from k8swatch._status import StatusCause, bad_request, invalid
from k8swatch.server._jsontypes import is_array, is_mapping, is_object

__all__ = [
    "FIELD_VALIDATION_VALUES",
    "check_field_validation",
    "find_schema_errors",
    "format_warning",
    "prune_unknown_fields",
    "validate_object",
]

FIELD_VALIDATION_VALUES = ("Ignore", "Strict", "Warn")
"""The values of the ``fieldValidation`` query parameter (``""`` means ``Warn``)."""

_OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


def check_field_validation(value: str | None, verb: str = "create") -> str:
    """Return the effective ``fieldValidation`` directive (``Warn`` when empty).

    Raises:
        StatusError: 422 Invalid on ``<Verb>Options.meta.k8s.io`` for a value
            other than ``Ignore``, ``Warn`` or ``Strict``, worded as
            apimachinery words it.
    """
    if not value:
        return "Warn"
    if value in FIELD_VALIDATION_VALUES:
        return value
    supported = ", ".join(json.dumps(v) for v in ("", *FIELD_VALIDATION_VALUES))
    raise invalid(
        _OPTIONS_KIND.get(verb, "CreateOptions"),
        "",
        [
            StatusCause(
                reason="FieldValueNotSupported",
                message=f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                field="fieldValidation",
            )
        ],
        group="meta.k8s.io",
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if is_array(value):
        return "array"
    return "object"


def _type_ok(expected: str, value: Any) -> bool:
    actual = _json_type(value)
    if expected == actual:
        return True
    if expected == "number" and actual == "integer":
        return True
    return expected == "integer" and isinstance(value, float) and value.is_integer()


def _render_value(value: Any) -> str:
    # Go's %q/%v for the value shown in "Invalid value: ...".
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def find_schema_errors(
    value: Any, schema: Mapping[str, Any], path: str = ""
) -> tuple[list[StatusCause], list[str]]:
    """Check *value* against a structural *schema*.

    Returns ``(type errors as StatusCauses, unknown field paths)``. Paths are
    dotted (``spec.files``), with ``[i]`` for array items, as kube-apiserver
    prints them.
    """
    type_errors: list[StatusCause] = []
    unknown: list[str] = []
    _walk(value, schema, path, type_errors, unknown)
    return type_errors, unknown


def _walk(
    value: Any,
    schema: Mapping[str, Any],
    path: str,
    type_errors: list[StatusCause],
    unknown: list[str],
) -> None:
    if "allOf" in schema and not schema.get("type"):
        for sub in schema["allOf"]:
            if is_mapping(sub):
                _walk(value, sub, path, type_errors, unknown)
        return
    if schema.get("x-kubernetes-int-or-string"):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
            type_errors.append(_type_error(path, value, "integer or string"))
        return
    expected = schema.get("type")
    if value is None:
        # kube-apiserver prunes nulls of non-nullable fields rather than failing.
        return
    if isinstance(expected, str) and expected and not _type_ok(expected, value):
        type_errors.append(_type_error(path, value, expected))
        return
    if is_object(value):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        for key, item in value.items():
            child = _join(path, str(key))
            if is_mapping(props) and key in props:
                sub = props[key]
                if is_mapping(sub):
                    _walk(item, sub, child, type_errors, unknown)
            elif is_mapping(additional):
                _walk(item, additional, child, type_errors, unknown)
            elif additional is True or preserve:
                continue
            elif is_mapping(props) or expected == "object":
                unknown.append(child)
    elif is_array(value):
        items = schema.get("items")
        if is_mapping(items):
            for i, item in enumerate(value):
                _walk(item, items, f"{path}[{i}]", type_errors, unknown)


def _type_error(path: str, value: Any, expected: str) -> StatusCause:
    actual = _json_type(value)
    where = path or "<root>"
    return StatusCause(
        reason="FieldValueTypeInvalid",
        message=(
            f"Invalid value: {json.dumps(actual)}: {where} in body must be of type "
            f"{expected}: {json.dumps(actual)}"
        ),
        field=where,
    )


def format_warning(text: str) -> str:
    """Return a ``Warning`` header value (``299 - "<text>"``) as kube-apiserver sends it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def validate_object(
    obj: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    kind: str,
    version: str,
    group: str = "",
    directive: str = "Warn",
    verb: str = "create",
) -> list[str]:
    """Validate a request object; return the warnings to send (``Warning`` headers).

    *schema* is the full object schema (see
    [`object_schema`][k8swatch.server.object_schema]); *directive* the
    effective ``fieldValidation`` (from
    [`check_field_validation`][k8swatch.server.check_field_validation]); *verb*
    ``create``, ``update`` or ``patch`` (PATCH reports strict errors as 422, as
    kube-apiserver does).

    Raises:
        StatusError: 422 Invalid for type errors; for unknown fields under
            ``Strict``, 400 BadRequest (create/update) or 422 Invalid (patch).
    """
    type_errors, unknown = find_schema_errors(obj, schema)
    type_errors += _name_errors(obj, schema)
    if unknown and directive == "Strict":
        detail = "strict decoding error: " + ", ".join(
            f"unknown field {json.dumps(p)}" for p in unknown
        )
        if verb == "patch":
            raise invalid(
                "",
                "",
                [
                    StatusCause(
                        reason="FieldValueInvalid",
                        message=f"Invalid value: {_render_value(_compact(obj))}: {detail}",
                        field="patch",
                    )
                ],
            )
        raise bad_request(
            f"{kind} in version {json.dumps(version)} cannot be handled as a {kind}: {detail}"
        )
    if type_errors:
        metadata = obj.get("metadata")
        name = metadata.get("name", "") if is_mapping(metadata) else ""
        raise invalid(kind, str(name), type_errors, group=group)
    if unknown and directive == "Warn":
        return [f"unknown field {json.dumps(p)}" for p in unknown]
    return []


def _name_errors(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> list[StatusCause]:
    """The name constraints of *schema*'s ``metadata`` that *obj* breaks."""
    props = schema.get("properties")
    meta_schema = props.get("metadata") if is_mapping(props) else None
    meta_props = meta_schema.get("properties") if is_mapping(meta_schema) else None
    metadata = obj.get("metadata")
    if not is_mapping(meta_props) or not is_mapping(metadata):
        return []
    causes: list[StatusCause] = []
    for field in ("name", "generateName"):
        value = metadata.get(field)
        constraints = meta_props.get(field)
        if isinstance(value, str) and value and is_mapping(constraints):
            causes += _string_errors(f"metadata.{field}", value, constraints)
    return causes


def _string_errors(path: str, value: str, schema: Mapping[str, Any]) -> list[StatusCause]:
    causes: list[StatusCause] = []
    shown = json.dumps(value)
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        causes.append(
            StatusCause(
                reason="FieldValueTooLong",
                message=f"Too long: may not be more than {max_length} bytes",
                field=path,
            )
        )
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        causes.append(
            StatusCause(
                reason="FieldValueInvalid",
                message=(
                    f"Invalid value: {shown}: {path} in body should be at least "
                    f"{min_length} chars long"
                ),
                field=path,
            )
        )
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # a pattern Python cannot read is not the client's fault
        if not matched:
            causes.append(
                StatusCause(
                    reason="FieldValueInvalid",
                    message=f"Invalid value: {shown}: {path} in body should match '{pattern}'",
                    field=path,
                )
            )
    enum = schema.get("enum")
    if is_array(enum) and value not in enum:
        supported = ", ".join(json.dumps(v) for v in enum)
        causes.append(
            StatusCause(
                reason="FieldValueNotSupported",
                message=f"Unsupported value: {shown}: supported values: {supported}",
                field=path,
            )
        )
    return causes


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


def prune_unknown_fields(value: Any, schema: Mapping[str, Any]) -> Any:
    """Return a copy of *value* without the fields *schema* does not declare.

    What kube-apiserver does to a custom resource accepted under
    ``fieldValidation=Warn`` or ``Ignore``: unknown fields are dropped, not
    stored. Fields under ``x-kubernetes-preserve-unknown-fields`` or
    ``additionalProperties`` are kept.
    """
    if "allOf" in schema and not schema.get("type"):
        for sub in schema["allOf"]:
            if is_mapping(sub):
                value = prune_unknown_fields(value, sub)
        return value
    if is_object(value):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_mapping(props) and key in props:
                sub = props[key]
                out[key] = prune_unknown_fields(item, sub) if is_mapping(sub) else item
            elif is_mapping(additional):
                out[key] = prune_unknown_fields(item, additional)
            elif (
                additional is True
                or preserve
                or not (is_mapping(props) or schema.get("type") == "object")
            ):
                out[key] = item
        return out
    if is_array(value):
        items = schema.get("items")
        if is_mapping(items):
            return [prune_unknown_fields(item, items) for item in value]
        return list(value)
    return value
