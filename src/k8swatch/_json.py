"""JSON values as they cross the storage boundary: the one ``JSONObject`` and its copying."""

from __future__ import annotations

from typing import Any, TypeAlias, TypeVar, cast

__all__ = ["JSONObject", "copy_json"]

JSONObject: TypeAlias = dict[str, Any]
"""A Kubernetes-shaped object as decoded JSON (``apiVersion``, ``kind``, ``metadata``, ...)."""

_T = TypeVar("_T")


def copy_json(value: _T) -> _T:
    """Deep-copy a JSON value (dicts, lists, scalars), several times faster than ``deepcopy``.

    Dict and list subclasses are copied as plain dicts and lists; other values
    (strings, numbers, tuples, ...) are immutable or shared as they are.
    """
    return cast("_T", _copy(value))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return _copy_dict(cast("dict[str, Any]", value))
    if isinstance(value, list):
        return _copy_list(cast("list[Any]", value))  # type: ignore[redundant-cast]
    return value


def _copy_dict(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        kind = cast("type[object]", type(item))
        if kind is dict:
            item = _copy_dict(item)
        elif kind is list:
            item = _copy_list(item)
        elif kind is not str and isinstance(item, (dict, list)):
            item = _copy(item)
        out[key] = item
    return out


def _copy_list(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for item in value:
        kind = cast("type[object]", type(item))
        if kind is dict:
            item = _copy_dict(item)
        elif kind is list:
            item = _copy_list(item)
        elif kind is not str and isinstance(item, (dict, list)):
            item = _copy(item)
        append(item)
    return out
