"""Field paths and field sets, as structured-merge-diff defines them (sans-I/O).

A *path element* names one step into an object, written as kube-apiserver
writes it in ``metadata.managedFields[].fieldsV1``:

- ``f:<name>``: a field of an object (``f:spec``);
- ``k:<json>``: an item of an associative list by its key fields, a compact
  JSON object with the keys sorted (``k:{"name":"nginx"}``);
- ``v:<json>``: an item of a set (a list of scalars) by its value (``v:"a"``);
- ``i:<n>``: a list item by its index.

A *path* is a tuple of elements; a *field set* is a ``frozenset`` of paths,
the paths that are members. (structured-merge-diff keeps a tree whose inner
nodes need not be members; the flat set holds the same information, and its
algebra is Python's set algebra.)

``encode_fields_v1`` and ``decode_fields_v1`` convert a field set to and from
the ``FieldsV1`` JSON: an object whose keys are path elements, whose values are
``{}`` for a member without members below it, and otherwise the same kind of
object for the members below, with a ``"."`` key when the path itself is a
member too.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias, cast

from ._jsontypes import is_array, is_object

__all__ = [
    "FieldSet",
    "Path",
    "decode_fields_v1",
    "element_sort_key",
    "element_string",
    "encode_fields_v1",
    "field_element",
    "go_json",
    "index_element",
    "key_element",
    "path_string",
    "value_element",
    "with_prefix",
]

Path: TypeAlias = tuple[str, ...]
"""A field path: a tuple of path elements (``("f:spec", "f:replicas")``)."""

FieldSet: TypeAlias = frozenset[Path]
"""The member paths of a field set."""

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json(value: Any) -> str:
    """*value* as Go's ``encoding/json`` writes it: compact, sorted object keys, HTML-safe."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    if any(ch in text for ch in _GO_ESCAPES):
        text = "".join(_GO_ESCAPES.get(ch, ch) for ch in text)
    return text


def field_element(name: str) -> str:
    """The path element of the object field *name*."""
    return "f:" + name


def key_element(keys: Mapping[str, Any]) -> str:
    """The path element of an associative-list item with the key fields *keys*."""
    return "k:" + go_json(dict(keys))


def value_element(value: Any) -> str:
    """The path element of a set item (a scalar list item) *value*."""
    return "v:" + go_json(value)


def index_element(index: int) -> str:
    """The path element of the list item at *index*."""
    return f"i:{index}"


def with_prefix(paths: Iterable[Path], element: str) -> FieldSet:
    """The paths below *element* (first element dropped) that have more elements."""
    return frozenset(p[1:] for p in paths if len(p) > 1 and p[0] == element)


# -- the FieldsV1 encoding ----------------------------------------------------------


class _Node:
    __slots__ = ("children", "member")

    def __init__(self) -> None:
        self.member = False
        self.children: dict[str, _Node] = {}


def element_sort_key(element: str) -> tuple[int, Any]:
    """The order of path elements (structured-merge-diff's: fields, keys, values, indexes)."""
    # structured-merge-diff's order: fields, then keys, then values, then indexes.
    kind = element[:2]
    if kind == "f:":
        return (0, element[2:])
    if kind == "k:":
        return (1, element[2:])
    if kind == "v:":
        return (2, element[2:])
    try:
        return (3, int(element[2:]))
    except ValueError:
        return (4, element)


def encode_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` object of the field set *paths* (keys in kube-apiserver's order)."""
    root = _Node()
    for path in paths:
        node = root
        for element in path:
            child = node.children.get(element)
            if child is None:
                child = node.children[element] = _Node()
            node = child
        node.member = True
    return _emit(root, include_self=False)


def _emit(node: _Node, *, include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self and node.member and node.children:
        out["."] = {}
    for element in sorted(node.children, key=element_sort_key):
        child = node.children[element]
        out[element] = _emit(child, include_self=True) if child.children else {}
    return out


def decode_fields_v1(value: object) -> FieldSet:
    """The field set of a ``fieldsV1`` object.

    Raises:
        ValueError: naming what is not a valid encoding (a key that is no path
            element, a value that is not an object).
    """
    out: set[Path] = set()
    if not is_object(value):
        raise ValueError("fieldsV1 must be an object")
    _decode(value, (), out)
    return frozenset(out)


def _decode(node: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for key, child in node.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            continue
        _check_element(key)
        if not is_object(child):
            raise ValueError(f"the value of {key!r} in fieldsV1 must be an object")
        path = (*prefix, key)
        child_map = child
        if child_map:
            _decode(child_map, path, out)
        else:
            out.add(path)


@functools.lru_cache(maxsize=4096)
def _check_element(element: str) -> None:
    kind, rest = element[:2], element[2:]
    if kind == "f:":
        return
    if kind == "i:" and rest.lstrip("-").isdigit():
        return
    if kind in ("k:", "v:"):
        try:
            decoded = json.loads(rest)
        except ValueError:
            raise ValueError(f"invalid path element {element!r} in fieldsV1") from None
        if kind == "v:" or is_object(decoded):
            return
    raise ValueError(f"invalid path element {element!r} in fieldsV1")


# -- paths as kube-apiserver prints them ---------------------------------------------


def _go_value(value: Any) -> str:
    # structured-merge-diff's value.ToString: strings quoted (Go %q), the rest as Go prints it.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if is_array(value):
        return "[" + ",".join(_go_value(v) for v in value) + "]"
    if is_object(value):
        items = value
        return "".join(f"{k}={_go_value(v)}" for k, v in items.items())
    return str(value)


def element_string(element: str) -> str:
    """One path element as kube-apiserver prints it (``.spec``, ``[name="a"]``, ``[="x"]``)."""
    kind, rest = element[:2], element[2:]
    if kind == "f:":
        return "." + rest
    if kind == "k:":
        keys = cast("dict[str, Any]", json.loads(rest))
        return "[" + ",".join(f"{k}={_go_value(v)}" for k, v in sorted(keys.items())) + "]"
    if kind == "v:":
        return "[=" + _go_value(json.loads(rest)) + "]"
    return f"[{rest}]"


def path_string(path: Path) -> str:
    """*path* as kube-apiserver prints it in conflicts (``.spec.containers[name="a"].image``)."""
    return "".join(element_string(element) for element in path)
