"""Structured merge of JSON objects under an OpenAPI v3 schema (sans-I/O).

What kube-apiserver's field manager (structured-merge-diff) does with a typed
object, on decoded JSON and a CRD-style schema:

- objects are *granular* (each field on its own) unless the schema says
  ``x-kubernetes-map-type: atomic``;
- lists are *atomic* (one value) unless the schema says
  ``x-kubernetes-list-type: set`` (scalar items, one path element per value)
  or ``map`` with ``x-kubernetes-list-map-keys`` (items by their key fields);
- where there is no schema (``x-kubernetes-preserve-unknown-fields``, or no
  ``properties``), objects are granular and lists atomic, and every key of
  such an object is a member of the field set (it is no declared field).

Functions: ``to_field_set`` (the fields a value sets), ``compare`` (added,
modified, removed), ``merge`` (an applied configuration over a live object),
``remove_items`` and ``ensure_named_fields_are_members``. Values are never
modified; results share unchanged parts with their inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

import attrs

from ._fieldpath import FieldSet, Path, field_element, key_element, path_string, value_element
from ._jsontypes import is_array, is_object

__all__ = [
    "Comparison",
    "StructureError",
    "compare",
    "ensure_named_fields_are_members",
    "manager_schema",
    "merge",
    "remove_items",
    "to_field_set",
]

Schema = Mapping[str, Any] | None
"""An OpenAPI v3 schema; ``None`` for an untyped value (shape deduced from the value)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""An absent value (JSON ``null`` is ``None``)."""


class StructureError(ValueError):
    """A value that does not fit its schema's list semantics (a missing key, a duplicate)."""


def _str_schema() -> dict[str, Any]:
    return {"type": "string"}


# ObjectMeta as the field manager sees it, whatever a resource's schema says of it.
_OBJECT_META: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {
        **{
            name: _str_schema()
            for name in (
                "name",
                "generateName",
                "namespace",
                "selfLink",
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
            )
        },
        "generation": {"type": "integer"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "labels": {"type": "object", "additionalProperties": _str_schema()},
        "annotations": {"type": "object", "additionalProperties": _str_schema()},
        "finalizers": {
            "type": "array",
            "items": _str_schema(),
            "x-kubernetes-list-type": "set",
        },
        "ownerReferences": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
            "items": {
                "type": "object",
                "properties": {
                    "apiVersion": _str_schema(),
                    "kind": _str_schema(),
                    "name": _str_schema(),
                    "uid": _str_schema(),
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}


def manager_schema(object_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """*object_schema* with ``metadata`` as ObjectMeta (never the resource's own idea of it)."""
    root = dict(object_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = root.get("properties")
    root["properties"] = {
        **(dict(cast("Mapping[str, Any]", props)) if isinstance(props, Mapping) else {}),
        "metadata": _OBJECT_META,
    }
    root.setdefault("type", "object")
    return root


# -- schema queries -------------------------------------------------------------------


def _resolve(schema: Schema) -> Schema:
    if schema is None or "allOf" not in schema or schema.get("type"):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema.get("allOf") or ():
        if isinstance(sub, Mapping):
            for key, value in cast("Mapping[str, Any]", sub).items():
                merged.setdefault(key, value)
    return merged


def _shape(schema: Schema, value: Any) -> str:
    """``map``, ``list`` or ``scalar``: how *value* is treated under *schema*."""
    if schema is not None and not schema.get("x-kubernetes-int-or-string"):
        kind = schema.get("type")
        if kind == "object" or (not kind and ("properties" in schema)):
            return "map" if value is None or is_object(value) else "scalar"
        if kind == "array" or (not kind and "items" in schema):
            return "list" if value is None or is_array(value) else "scalar"
        if kind:
            return "scalar"
    elif schema is not None:
        return "scalar"
    if is_object(value):
        return "map"
    if is_array(value):
        return "list"
    return "scalar"


def _map_atomic(schema: Schema) -> bool:
    return schema is not None and schema.get("x-kubernetes-map-type") == "atomic"


def _is_mapping(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _field(schema: Schema, name: str) -> tuple[Schema, bool]:
    """(the schema of field *name*, whether it is a declared property)."""
    if schema is None:
        return None, False
    props = schema.get("properties")
    if props is not None and _is_mapping(props) and name in props:
        child: object = cast("Mapping[str, Any]", props)[name]
        if _is_mapping(child):
            return _resolve(cast("Mapping[str, Any]", child)), True
        return None, True
    extra = schema.get("additionalProperties")
    if extra is not None and _is_mapping(extra):
        return _resolve(cast("Mapping[str, Any]", extra)), False
    return None, False


def _items(schema: Schema) -> Schema:
    if schema is None:
        return None
    items = schema.get("items")
    if items is not None and _is_mapping(items):
        return _resolve(cast("Mapping[str, Any]", items))
    return None


def _list_kind(schema: Schema) -> tuple[str, tuple[str, ...]]:
    """(``atomic``, ``set`` or ``map``; the map keys)."""
    if schema is None:
        return "atomic", ()
    kind = schema.get("x-kubernetes-list-type")
    if kind == "set":
        return "set", ()
    keys = schema.get("x-kubernetes-list-map-keys")
    if kind == "map" and is_array(keys) and keys:
        return "map", tuple(str(k) for k in keys)
    return "atomic", ()


def _item_element(kind: str, keys: tuple[str, ...], item_schema: Schema, item: Any) -> str:
    if kind == "set":
        if is_object(item):
            raise StructureError("associative list without keys has an element that's a map type")
        if is_array(item):
            raise StructureError("associative list without keys has an element that's a list type")
        return value_element(item)
    if not is_object(item):
        raise StructureError("associative list with keys has an element that's not a map type")
    mapping = item
    fields: dict[str, Any] = {}
    for key in keys:
        if key in mapping:
            found = mapping[key]
        else:
            key_schema, _ = _field(item_schema, key)
            if key_schema is None or "default" not in key_schema:
                raise StructureError(
                    f'associative list with keys has an element that omits key field "{key}" '
                    "(and doesn't have default value)"
                )
            found = key_schema["default"]
        if is_object(found) or is_array(found):
            raise StructureError(f'the key field "{key}" of an associative list is not a scalar')
        fields[key] = found
    return key_element(fields)


def _elements(
    schema: Schema, items: list[Any], path: Path, *, strict: bool
) -> tuple[list[str], Schema] | None:
    """The path elements of a granular list's *items*; None when the list is atomic.

    Non-strict (a stored object): a list whose items have no valid elements
    is treated as atomic. Strict (an applied configuration): StructureError,
    also for duplicates.
    """
    kind, keys = _list_kind(schema)
    if kind == "atomic":
        return None
    item_schema = _items(schema)
    elements: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            element = _item_element(kind, keys, item_schema, item)
        except StructureError as exc:
            if not strict:
                return None
            raise StructureError(f"{path_string(path) or '.'}: element {index}: {exc}") from None
        if strict and element in seen:
            raise StructureError(
                f"{path_string(path) or '.'}: duplicate entries for key {path_string((element,))}"
            )
        seen.add(element)
        elements.append(element)
    return elements, item_schema


_NO_ITEMS: Final[tuple[list[str], Schema]] = ([], None)


def _empty(value: Any) -> bool:
    return value is MISSING or value is None or value == {} or value == []


# -- field sets -----------------------------------------------------------------------


def to_field_set(value: Any, schema: Schema, *, strict: bool = False) -> FieldSet:
    """The field set *value* sets: its leaves, list items, untyped keys and empty objects.

    Raises:
        StructureError: *strict* and an associative list item without its key
            fields, or twice.
    """
    out: set[Path] = set()
    _to_set(value, _resolve(schema), (), out, strict)
    return frozenset(out)


def _to_set(value: Any, schema: Schema, path: Path, out: set[Path], strict: bool) -> None:
    shape = _shape(schema, value)
    if shape == "scalar":
        out.add(path)
    elif shape == "list":
        if value is None:
            return
        found = _elements(schema, value, path, strict=strict)
        if found is None:
            out.add(path)
            return
        elements, item_schema = found
        for element, item in zip(elements, value, strict=True):
            child = (*path, element)
            _to_set(item, item_schema, child, out, strict)
            out.add(child)
    elif _map_atomic(schema):
        out.add(path)
    elif value is not None:
        for key, item in value.items():
            child_schema, declared = _field(schema, key)
            child = (*path, field_element(key))
            _to_set(item, child_schema, child, out, strict)
            if item is None or item == {} or not declared:
                out.add(child)


def ensure_named_fields_are_members(paths: Iterable[Path], schema: Schema) -> FieldSet:
    """*paths* plus every declared field that has members below it."""
    out = set(paths)
    root = _resolve(schema)
    for path in list(out):
        node = root
        for depth, element in enumerate(path[:-1]):
            if element.startswith("f:"):
                node, declared = _field(node, element[2:])
                if declared:
                    out.add(path[: depth + 1])
            else:
                node = _items(node)
    return frozenset(out)


# -- compare ------------------------------------------------------------------------


@attrs.frozen
class Comparison:
    """What changed from one value to another, as field sets."""

    added: FieldSet
    modified: FieldSet
    removed: FieldSet


def compare(lhs: Any, rhs: Any, schema: Schema) -> Comparison:
    """The fields added, modified and removed from *lhs* to *rhs*.

    A granular object or list that appears or disappears is itself added or
    removed (besides its fields); an atomic one, or a scalar, is one field.
    """
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    _compare(lhs, rhs, _resolve(schema), (), added, modified, removed)
    return Comparison(frozenset(added), frozenset(modified), frozenset(removed))


def _compare(
    lhs: Any,
    rhs: Any,
    schema: Schema,
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
) -> None:
    if lhs is not MISSING and rhs is not MISSING and type(lhs) is type(rhs) and lhs == rhs:
        return  # nothing below changed (Python's equality runs at C speed)
    present = rhs if rhs is not MISSING else lhs
    shape = _shape(schema, present)
    other = lhs if rhs is not MISSING else MISSING
    if other is not MISSING and _shape(schema, other) != shape:
        shape = "scalar"  # a value that changed shape: one leaf
    leaf = shape == "scalar" or (_empty(lhs) and _empty(rhs))
    if not leaf and shape == "map" and _map_atomic(schema):
        leaf = True
    if not leaf and shape == "list":
        l_found = _elements(schema, lhs, path, strict=False) if is_array(lhs) else _NO_ITEMS
        r_found = _elements(schema, rhs, path, strict=False) if is_array(rhs) else _NO_ITEMS
        if l_found is None or r_found is None or _list_kind(schema)[0] == "atomic":
            leaf = True
        else:
            _compare_items(lhs, rhs, l_found, r_found, path, added, modified, removed)
    elif not leaf:
        l_map = lhs if is_object(lhs) else {}
        r_map = rhs if is_object(rhs) else {}
        for key in {**l_map, **r_map}:
            child_schema, _ = _field(schema, key)
            _compare(
                l_map.get(key, MISSING),
                r_map.get(key, MISSING),
                child_schema,
                (*path, field_element(key)),
                added,
                modified,
                removed,
            )
    if leaf:
        if lhs is MISSING:
            added.add(path)
        elif rhs is MISSING:
            removed.add(path)
        elif lhs != rhs or type(lhs) is not type(rhs):
            modified.add(path)
    elif lhs is MISSING:
        added.add(path)
    elif rhs is MISSING:
        removed.add(path)


def _compare_items(
    lhs: Any,
    rhs: Any,
    l_found: tuple[list[str], Schema],
    r_found: tuple[list[str], Schema],
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
) -> None:
    item_schema = l_found[1] if l_found[1] is not None else r_found[1]
    l_items: dict[str, list[Any]] = {}
    r_items: dict[str, list[Any]] = {}
    for element, item in zip(l_found[0], lhs if is_array(lhs) else [], strict=True):
        l_items.setdefault(element, []).append(item)
    for element, item in zip(r_found[0], rhs if is_array(rhs) else [], strict=True):
        r_items.setdefault(element, []).append(item)
    for element in {**l_items, **r_items}:
        before = l_items.get(element, [])
        after = r_items.get(element, [])
        child = (*path, element)
        if len(before) <= 1 and len(after) <= 1:
            _compare(
                before[0] if before else MISSING,
                after[0] if after else MISSING,
                item_schema,
                child,
                added,
                modified,
                removed,
            )
        elif len(before) >= 2 and len(after) >= 2:
            if before != after:
                modified.add(child)
        elif len(before) >= 2:
            if after:
                _compare(MISSING, after[0], item_schema, child, added, modified, removed)
            removed.add(child)
        else:
            if before:
                _compare(before[0], MISSING, item_schema, child, added, modified, removed)
            added.add(child)


# -- merge --------------------------------------------------------------------------


def merge(lhs: Any, rhs: Any, schema: Schema) -> Any:
    """*rhs* (an applied configuration) merged over *lhs* (the live object).

    Scalars and atomic values of *rhs* win; granular objects merge field by
    field, associative lists item by item (the live order, with the applied
    items in their applied order).

    Raises:
        StructureError: an associative list item of *rhs* without its key
            fields, or twice.
    """
    return _merge(lhs, rhs, _resolve(schema), ())


def _merge(lhs: Any, rhs: Any, schema: Schema, path: Path) -> Any:
    if rhs is MISSING:
        return lhs
    if type(lhs) is type(rhs) and lhs == rhs:
        return rhs
    shape = _shape(schema, rhs)
    if lhs is MISSING or _shape(schema, lhs) != shape or shape == "scalar":
        if shape == "list" and is_array(rhs):
            _elements(schema, rhs, path, strict=True)  # refuse bad applied lists
        return rhs
    if _empty(lhs) and _empty(rhs):
        return rhs
    if shape == "map":
        if _map_atomic(schema) or not is_object(rhs):
            return rhs
        l_map = lhs if is_object(lhs) else {}
        r_map = rhs
        out: dict[str, Any] = {}
        for key in {**l_map, **r_map}:
            child_schema, _ = _field(schema, key)
            out[key] = _merge(
                l_map.get(key, MISSING),
                r_map.get(key, MISSING),
                child_schema,
                (*path, field_element(key)),
            )
        return out
    if not is_array(rhs):
        return rhs
    r_found = _elements(schema, rhs, path, strict=True)
    l_found = _elements(schema, lhs, path, strict=False) if is_array(lhs) else _NO_ITEMS
    if r_found is None or l_found is None:
        return rhs
    return _merge_items(
        lhs if is_array(lhs) else [],
        rhs,
        l_found[0],
        r_found[0],
        r_found[1],
        path,
    )


def _merge_items(
    lhs: list[Any],
    rhs: list[Any],
    l_elements: list[str],
    r_elements: list[str],
    item_schema: Schema,
    path: Path,
) -> list[Any]:
    # structured-merge-diff's order: live items stay where they are; applied
    # items shared with the live list keep the applied order among themselves;
    # new applied items go after the applied item they follow.
    observed_l: dict[str, Any] = {}
    for element, entry in zip(l_elements, lhs, strict=True):
        observed_l[element] = None if element in observed_l else entry
    observed_r = dict(zip(r_elements, rhs, strict=True))
    shared = [e for e in r_elements if e in observed_l]
    shared.reverse()
    next_shared = shared.pop() if shared else None
    merged_r: set[str] = set()
    out: list[Any] = []
    li = ri = 0

    def take(element: str, left: Any, right: Any) -> None:
        out.append(_merge(left, right, item_schema, (*path, element)))

    while li < len(l_elements) or ri < len(r_elements):
        if li < len(l_elements) and ri < len(r_elements):
            element = l_elements[li]
            if element == r_elements[ri]:
                merged_r.add(element)
                take(element, observed_l[element], observed_r[element])
                li += 1
                ri += 1
                next_shared = shared.pop() if shared else None
                continue
            if element in observed_r and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(l_elements):
            element = l_elements[li]
            if element not in observed_r:
                take(element, lhs[li], MISSING)
                li += 1
                continue
            if element in merged_r:
                li += 1
        if ri < len(r_elements):
            element = r_elements[ri]
            merged_r.add(element)
            take(element, observed_l.get(element, MISSING), observed_r[element])
            ri += 1
            if next_shared is not None and next_shared == element:
                next_shared = shared.pop() if shared else None
    return out


# -- remove -------------------------------------------------------------------------


_GONE: Final = _Missing()


def remove_items(value: Any, paths: FieldSet, schema: Schema) -> Any:
    """*value* without the members of *paths* (each with everything below it).

    An object or list emptied by the removal goes too, as kube-apiserver drops
    the ``null`` structured-merge-diff leaves there.
    """
    result = _remove(value, paths, _resolve(schema))
    return {} if result is _GONE else result


def _remove(value: Any, paths: FieldSet, schema: Schema) -> Any:
    if not paths:
        return value
    shape = _shape(schema, value)
    if shape == "list" and is_array(value) and value:
        found = _elements(schema, value, (), strict=False)
        if found is None:
            return value
        elements, item_schema = found
        out_list: list[Any] = []
        for element, entry in zip(elements, value, strict=True):
            if (element,) in paths:
                continue
            below = _below(paths, element)
            out_list.append(_remove(entry, below, item_schema) if below else entry)
        return out_list or _GONE
    if shape == "map" and is_object(value) and value and not _map_atomic(schema):
        out: dict[str, Any] = {}
        for key, entry in value.items():
            element = field_element(key)
            if (element,) in paths:
                continue
            below = _below(paths, element)
            if below:
                child_schema, _ = _field(schema, key)
                entry = _remove(entry, below, child_schema)
                if entry is _GONE:
                    continue
            out[key] = entry
        return out or _GONE
    return value


def _below(paths: FieldSet, element: str) -> FieldSet:
    return frozenset(p[1:] for p in paths if len(p) > 1 and p[0] == element)
