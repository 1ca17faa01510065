"""``meta.k8s.io/v1`` Table responses with the default Name and Age columns.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and
prints the cells exactly as it receives them, so the Age cell is sent already
humanised (``5m``, ``3h``), as kube-apiserver does.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ._columns import PrinterColumn, human_duration, parse_timestamp
from ._columns import build_table as build_column_table
from ._columns import format_age as format_column_age

__all__ = [
    "INCLUDE_METADATA",
    "INCLUDE_NONE",
    "INCLUDE_OBJECT",
    "build_table",
    "format_age",
    "human_duration",
    "parse_timestamp",
]

INCLUDE_NONE = "None"
INCLUDE_METADATA = "Metadata"
INCLUDE_OBJECT = "Object"

_NAME_COLUMN: dict[str, Any] = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": (
        "Name must be unique within a namespace. Is required when creating resources, "
        "although some resources may allow a client to request the generation of an "
        "appropriate name automatically. Name is primarily intended for creation "
        "idempotence and configuration definition. Cannot be updated."
    ),
    "priority": 0,
}
_AGE_COLUMN: dict[str, Any] = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": (
        "CreationTimestamp is a timestamp representing the server time when this object "
        "was created. It is not guaranteed to be set in happens-before order across "
        "separate operations."
    ),
    "priority": 0,
}
DEFAULT_COLUMNS: tuple[dict[str, Any], ...] = (_NAME_COLUMN, _AGE_COLUMN)


def format_age(timestamp: object, now: datetime.datetime | None = None) -> str:
    """The Age cell for a ``creationTimestamp``: ``<unknown>`` when missing or zero.

    The same rendering as printer columns of type ``date`` (`_columns.format_age`).
    """
    if not isinstance(timestamp, (str, datetime.datetime)):
        return "<unknown>"
    return format_column_age(timestamp, now=now)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata: Any = obj.get("metadata")
    return cast("Mapping[str, Any]", metadata) if isinstance(metadata, Mapping) else {}


def _row(obj: Mapping[str, Any], include_object: str, now: datetime.datetime) -> dict[str, Any]:
    metadata = _metadata(obj)
    row: dict[str, Any] = {
        "cells": [metadata.get("name", ""), format_age(metadata.get("creationTimestamp"), now)]
    }
    if include_object == INCLUDE_OBJECT:
        row["object"] = obj
    elif include_object == INCLUDE_METADATA:
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(metadata),
        }
    return row


def build_table(
    objects: Iterable[Mapping[str, Any]],
    *,
    resource_version: str = "",
    continue_token: str = "",
    include_object: str = INCLUDE_METADATA,
    now: datetime.datetime | None = None,
    columns: Sequence[PrinterColumn] = (),
) -> dict[str, Any]:
    """Return a ``meta.k8s.io/v1`` Table of *objects* with Name and Age columns.

    *include_object* follows the ``includeObject`` query parameter: ``None``
    (no object per row), ``Metadata`` (a ``PartialObjectMetadata``, the default)
    or ``Object`` (the whole object). *columns* (a resource's printer columns)
    replace the Age column.
    """
    if columns:
        return build_column_table(
            objects,
            columns,
            include_object=include_object,
            resource_version=resource_version,
            continue_token=continue_token,
            now=now,
        )
    current = now if now is not None else datetime.datetime.now(datetime.timezone.utc)
    list_meta: dict[str, Any] = {}
    if resource_version:
        list_meta["resourceVersion"] = resource_version
    if continue_token:
        list_meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": list(DEFAULT_COLUMNS),
        "rows": [_row(obj, include_object, current) for obj in objects],
    }
