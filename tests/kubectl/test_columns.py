"""Printer columns, the JSONPath subset and Table building."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from k8swatch.server._columns import (
    JSONPathError,
    PrinterColumn,
    age_column,
    build_table,
    build_table_row,
    evaluate_jsonpath,
    format_age,
    parse_jsonpath,
)

NOW = datetime.datetime(2026, 1, 2, 0, 0, 0, tzinfo=datetime.timezone.utc)

OBJ: dict[str, Any] = {
    "metadata": {
        "name": "w",
        "creationTimestamp": "2026-01-01T23:55:00Z",
        "labels": {"app.kubernetes.io/name": "x", "tier": "web"},
    },
    "spec": {
        "replicas": 3,
        "ratio": 1.5,
        "running": True,
        "containers": [{"name": "a", "image": "i1"}, {"name": "b", "image": "i2"}],
    },
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]
    },
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        ("$.spec.running", [True]),
        (".spec.containers[0].image", ["i1"]),
        (".spec.containers[-1].name", ["b"]),
        (".spec.containers[*].name", ["a", "b"]),
        (".spec.containers.*.name", ["a", "b"]),
        (".spec.containers[0:1].name", ["a"]),
        (".spec.containers[5].name", []),
        (".metadata.labels.app\\.kubernetes\\.io/name", ["x"]),
        (".metadata.labels['app.kubernetes.io/name']", ["x"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type!='Ready')].type", ["Synced"]),
        (".status.conditions[?(@.status)].type", ["Ready", "Synced"]),
        (".spec.nothing", []),
        (".spec.replicas.deeper", []),
    ],
)
def test_jsonpath(path: str, expected: list[Any]) -> None:
    assert evaluate_jsonpath(path, OBJ) == expected


def test_jsonpath_numeric_filters() -> None:
    items = {"l": [{"n": 1}, {"n": 5}, {"n": "x"}]}
    assert evaluate_jsonpath(".l[?(@.n > 2)].n", items) == [5]
    assert evaluate_jsonpath(".l[?(@.n <= 1)].n", items) == [1]


@pytest.mark.parametrize("path", [".a[", ".a]", ".a[?(@.b ~ 1)]", ".a[x]", ".a[1:2:3:4]", "a"])
def test_jsonpath_errors(path: str) -> None:
    with pytest.raises(JSONPathError):
        parse_jsonpath(path)


def test_column_validation() -> None:
    with pytest.raises(ValueError, match="column type"):
        PrinterColumn(name="X", type="float", json_path=".a")
    with pytest.raises(ValueError, match="priority"):
        PrinterColumn(name="X", type="string", json_path=".a", priority=-1)
    with pytest.raises(JSONPathError):
        PrinterColumn(name="X", type="string", json_path=".a[")


@pytest.mark.parametrize(
    ("column_type", "path", "expected"),
    [
        ("integer", ".spec.replicas", 3),
        ("integer", ".spec.ratio", 1),
        ("integer", ".spec.running", None),
        ("number", ".spec.replicas", 3.0),
        ("boolean", ".spec.running", True),
        ("boolean", ".spec.replicas", None),
        ("string", ".spec.replicas", "3"),
        ("string", ".spec.running", "true"),
        ("string", ".spec.containers[0]", '{"image":"i1","name":"a"}'),
        ("string", ".spec.missing", None),
        ("date", ".metadata.creationTimestamp", "5m"),
        ("date", ".metadata.name", "<invalid>"),
    ],
)
def test_cells(column_type: str, path: str, expected: Any) -> None:
    column = PrinterColumn(name="C", type=column_type, json_path=path)
    assert column.cell(OBJ, now=NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (200, "3m20s"),
        (240, "4m"),
        (25 * 60, "25m"),
        (179 * 60, "179m"),
        (5 * 3600 + 600, "5h10m"),
        (5 * 3600, "5h"),
        (20 * 3600, "20h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (730 * 86400, "2y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_format_age(seconds: int, text: str) -> None:
    assert format_age(NOW - datetime.timedelta(seconds=seconds), now=NOW) == text


def test_format_age_unknown() -> None:
    assert format_age(None) == "<unknown>"
    assert format_age("garbage") == "<unknown>"
    assert format_age("2026-01-01T23:59:00.123456789Z", now=NOW) == "59s"
    assert format_age(datetime.datetime(2026, 1, 1, 23, 59), now=NOW) == "60s"


def test_table() -> None:
    columns = (
        PrinterColumn(name="Replicas", type="integer", json_path=".spec.replicas"),
        age_column(),
        PrinterColumn(
            name="Image", type="string", json_path=".spec.containers[0].image", priority=1
        ),
    )
    table = build_table([OBJ], columns, resource_version="7", continue_token="c", now=NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "7", "continue": "c"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas", "Age", "Image"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 1]
    assert table["rows"] == [
        {
            "cells": ["w", 3, "5m", "i1"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": OBJ["metadata"],
            },
        }
    ]


def test_table_defaults_and_options() -> None:
    table = build_table([], no_headers=True, remaining_item_count=2)
    assert "columnDefinitions" not in table
    assert table["metadata"] == {"remainingItemCount": 2}
    table = build_table([OBJ], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert build_table_row(OBJ, (), include_object="None") == {"cells": ["w"]}
    assert build_table_row(OBJ, (), include_object="Object")["object"] == OBJ
