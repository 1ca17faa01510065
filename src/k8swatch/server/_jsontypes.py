"""Type guards for decoded JSON values (keep strict type checkers precise)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

__all__ = ["is_array", "is_mapping", "is_object"]


def is_object(value: object) -> TypeGuard[dict[str, Any]]:
    """Whether *value* is a decoded JSON object (a ``dict``)."""
    return isinstance(value, dict)


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether *value* is a mapping (a JSON object or a read-only view of one)."""
    return isinstance(value, Mapping)


def is_array(value: object) -> TypeGuard[list[Any]]:
    """Whether *value* is a decoded JSON array (a ``list``)."""
    return isinstance(value, list)
