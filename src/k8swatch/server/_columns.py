"""Printer columns and ``meta.k8s.io/v1`` Table responses.

kubectl asks for tables (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``)
and prints the cells as it receives them. The server always sends every column;
kubectl hides those with ``priority > 0`` unless ``-o wide`` is given.

Column paths are the small JSONPath subset CRD ``additionalPrinterColumns`` use
(``.status.replicas``, ``.spec.containers[0].image``, ``.metadata.labels.app``,
``.status.conditions[?(@.type=="Ready")].status``), evaluated by
[`evaluate_jsonpath`][k8swatch.server.evaluate_jsonpath]. Cells are converted as
apiextensions-apiserver's table convertor converts them, and ``date`` cells are
sent already humanised (``5m``, ``3h``), as kube-apiserver does.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from typing_extensions import final

from k8swatch.server._jsontypes import is_array, is_mapping

__all__ = [
    "JSONPathError",
    "PrinterColumn",
    "age_column",
    "build_table",
    "build_table_row",
    "evaluate_jsonpath",
    "format_age",
    "parse_jsonpath",
]

_COLUMN_TYPES = frozenset({"integer", "number", "string", "boolean", "date"})

_NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)


class JSONPathError(ValueError):
    """A printer-column JSONPath that cannot be parsed.

    Raised by [`parse_jsonpath`][k8swatch.server.parse_jsonpath] (and so by
    [`PrinterColumn`][k8swatch.server.PrinterColumn] on construction); *text* is
    the path and *position* the offending offset.
    """

    def __init__(self, message: str, text: str, position: int) -> None:
        super().__init__(f"{message} at position {position} in {text!r}")
        self.text = text
        self.position = position


# --------------------------------------------------------------------------- JSONPath


@attrs.frozen
class _Field:
    name: str


@attrs.frozen
class _Wildcard:
    pass


@attrs.frozen
class _Index:
    index: int


@attrs.frozen
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


@attrs.frozen
class _Filter:
    path: tuple[Any, ...]
    op: str  # "" for existence
    value: Any


_Step = _Field | _Wildcard | _Index | _Slice | _Filter

_NAME_CHARS = re.compile(r"(?:\\.|[^.\[\]\\])+")
_FILTER_RE = re.compile(
    r"""\s*@(?P<path>(?:\.(?:\\.|[^.\[\]\s=!<>\\])+|\[[^\]]*\])*)\s*"""
    r"""(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s)]+)\s*)?$"""
)


def parse_jsonpath(text: str) -> tuple[Any, ...]:
    """Parse a printer-column JSONPath into steps.

    Accepts an optional ``{...}`` wrapper and leading ``$``; steps are ``.field``
    (``\\.`` escapes a dot inside a name), ``['key']``, ``[n]`` (negative counts
    from the end), ``[*]`` / ``.*``, ``[start:stop:step]`` and the filter
    ``[?(@.path OP value)]`` with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, or a
    bare ``[?(@.path)]`` (existence).

    Raises:
        JSONPathError: if *text* is not in that subset.
    """
    src = text.strip()
    if src.startswith("{") and src.endswith("}"):
        src = src[1:-1].strip()
    if src.startswith("$"):
        src = src[1:]
    steps: list[Any] = []
    pos = 0
    while pos < len(src):
        char = src[pos]
        if char == ".":
            pos += 1
            if pos < len(src) and src[pos] == "*":
                steps.append(_Wildcard())
                pos += 1
                continue
            match = _NAME_CHARS.match(src, pos)
            if match is None:
                if pos == len(src) and not steps:  # "." alone: the whole object
                    break
                raise JSONPathError("expected a field name", text, pos)
            steps.append(_Field(re.sub(r"\\(.)", r"\1", match.group())))
            pos = match.end()
        elif char == "[":
            end = _find_bracket_end(src, pos, text)
            steps.append(_parse_bracket(src[pos + 1 : end], text, pos))
            pos = end + 1
        else:
            raise JSONPathError(f"unexpected {char!r}", text, pos)
    return tuple(steps)


def _find_bracket_end(src: str, start: int, text: str) -> int:
    depth = 0
    quote = ""
    for i in range(start, len(src)):
        char = src[i]
        if quote:
            if char == "\\":
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0:
                return i
    raise JSONPathError("unterminated '['", text, start)


def _parse_bracket(inner: str, text: str, pos: int) -> Any:
    inner = inner.strip()
    if inner == "*":
        return _Wildcard()
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
        return _Field(inner[1:-1])
    if inner.startswith("?(") and inner.endswith(")"):
        match = _FILTER_RE.match(inner[2:-1])
        if match is None:
            raise JSONPathError("unsupported filter expression", text, pos)
        path = parse_jsonpath(match.group("path")) if match.group("path") else ()
        op = match.group("op") or ""
        value: Any = None
        if op:
            raw = match.group("value")
            value = _parse_literal(raw)
        return _Filter(path, op, value)
    if ":" in inner:
        parts = inner.split(":")
        if len(parts) > 3:
            raise JSONPathError("bad slice", text, pos)
        try:
            nums = [int(p) if p.strip() else None for p in parts]
        except ValueError:
            raise JSONPathError("bad slice", text, pos) from None
        while len(nums) < 3:
            nums.append(None)
        return _Slice(nums[0], nums[1], nums[2])
    try:
        return _Index(int(inner))
    except ValueError:
        raise JSONPathError(f"unsupported subscript [{inner}]", text, pos) from None


def _parse_literal(raw: str) -> Any:
    if raw[0] == raw[-1] and raw[0] in "\"'" and len(raw) >= 2:
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def _apply_step(step: Any, values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(step, _Field):
            if is_mapping(value) and step.name in value:
                out.append(value[step.name])
        elif isinstance(step, _Wildcard):
            if is_mapping(value):
                out.extend(value[k] for k in sorted(value))
            elif is_array(value):
                out.extend(value)
        elif isinstance(step, _Index):
            if is_array(value) and -len(value) <= step.index < len(value):
                out.append(value[step.index])
        elif isinstance(step, _Slice):
            if is_array(value) and step.step != 0:
                out.extend(value[step.start : step.stop : step.step])
        elif is_array(value):
            out.extend(item for item in value if _filter_matches(step, item))
    return out


def _filter_matches(step: _Filter, item: Any) -> bool:
    found = _evaluate(step.path, item)
    if not step.op:
        return bool(found)
    if not found:
        return False
    left = found[0]
    right = step.value
    if step.op == "==":
        return _loose_equal(left, right)
    if step.op == "!=":
        return not _loose_equal(left, right)
    try:
        if step.op == "<":
            return bool(left < right)
        if step.op == "<=":
            return bool(left <= right)
        if step.op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def _loose_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right or (isinstance(right, str) and str(left).lower() == right)
    if isinstance(left, (int, float)) and isinstance(right, str):
        return str(left) == right
    return bool(left == right)


def _evaluate(steps: Sequence[Any], obj: Any) -> list[Any]:
    values: list[Any] = [obj]
    for step in steps:
        values = _apply_step(step, values)
        if not values:
            break
    return values


def evaluate_jsonpath(path: str | Sequence[Any], obj: Any) -> list[Any]:
    """Return every value *path* selects in *obj* (``[]`` when nothing matches).

    *path* is a JSONPath string or the result of
    [`parse_jsonpath`][k8swatch.server.parse_jsonpath].
    """
    steps = parse_jsonpath(path) if isinstance(path, str) else path
    return _evaluate(steps, obj)


# --------------------------------------------------------------------------- columns


def _check_column_type(_instance: Any, _attribute: Any, value: str) -> None:
    if value not in _COLUMN_TYPES:
        raise ValueError(f"column type must be one of {sorted(_COLUMN_TYPES)}, not {value!r}")


def _check_priority(_instance: Any, _attribute: Any, value: int) -> None:
    if value < 0:
        raise ValueError("priority must be >= 0")


@final
@attrs.frozen
class PrinterColumn:
    """An additional column of ``kubectl get`` output (CRD ``additionalPrinterColumns``).

    Attributes:
        name: The column header (kubectl prints it upper-cased).
        type: ``integer``, ``number``, ``string``, ``boolean`` or ``date``.
            ``date`` cells are sent humanised (``5m``), as kube-apiserver does.
        json_path: Where the value lives, e.g. ``.status.latestBuildStatus``.
        description: Shown by ``kubectl explain`` and in the Table.
        priority: 0 = always shown; greater = only with ``kubectl get -o wide``.
        format: Optional OpenAPI format hint (``name``, ``int32``, ...).
    """

    name: str
    type: str = attrs.field(validator=_check_column_type)
    json_path: str
    description: str = ""
    priority: int = attrs.field(default=0, validator=_check_priority)
    format: str = ""
    _steps: tuple[Any, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_steps", parse_jsonpath(self.json_path))

    def to_definition(self) -> dict[str, Any]:
        """Return the ``meta.k8s.io/v1`` TableColumnDefinition JSON."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }

    def cell(self, obj: Mapping[str, Any], *, now: datetime.datetime | None = None) -> Any:
        """Return this column's cell for *obj* (``None`` when the path finds nothing)."""
        found = _evaluate(self._steps, obj)
        if not found:
            return None
        value = found[0]
        if self.type == "string":
            return _print_jsonpath_value(value)
        return _typed_cell(self.type, value, now)


def _print_jsonpath_value(value: Any) -> Any:
    # kubectl's JSONPath printer: strings bare, scalars as Go prints them,
    # maps and lists as JSON.
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _typed_cell(column_type: str, value: Any, now: datetime.datetime | None) -> Any:
    if value is None:
        return None
    if column_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return int(value)
        return None
    if column_type == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
        return None
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    # date
    if not isinstance(value, str):
        return None
    stamp = parse_timestamp(value.strip())
    if stamp is None:
        return "<invalid>"
    return format_age(stamp, now=now)


def parse_timestamp(value: object) -> datetime.datetime | None:
    """Parse an RFC 3339 timestamp (``2024-05-01T10:00:00Z``); None if absent or bad.

    Fractions beyond microseconds are cut (Python 3.10 accepts at most six digits);
    a timestamp without an offset is taken as UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 only accepts up to 6 fractional digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp


def format_age(
    timestamp: datetime.datetime | str | None, *, now: datetime.datetime | None = None
) -> str:
    """Humanise the time since *timestamp* as kubectl's AGE column does.

    ``45s``, ``3m20s``, ``25m``, ``5h10m``, ``20h``, ``3d4h``, ``30d``, ``2y10d``...
    (apimachinery's ``duration.HumanDuration``). A missing or zero timestamp is
    ``<unknown>``; one more than a second in the future is ``<invalid>``.
    """
    if timestamp is None:
        return "<unknown>"
    if isinstance(timestamp, str):
        parsed = parse_timestamp(timestamp.strip())
        if parsed is None:
            return "<unknown>"
        timestamp = parsed
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=datetime.timezone.utc)
    if timestamp.year <= 1:
        return "<unknown>"
    current = now or datetime.datetime.now(datetime.timezone.utc)
    return human_duration((current - timestamp).total_seconds())


def human_duration(seconds: float) -> str:
    """Format a duration the way apimachinery's ``duration.HumanDuration`` does.

    ``90`` ⇒ ``90s``, ``300`` ⇒ ``5m``, ``330`` ⇒ ``5m30s``, ``10800`` ⇒ ``3h``,
    ``200000`` ⇒ ``2d7h``; negative beyond one second ⇒ ``<invalid>``.
    """
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def age_column() -> PrinterColumn:
    """The ``Age`` column (``.metadata.creationTimestamp``, type ``date``)."""
    return PrinterColumn(
        name="Age",
        type="date",
        json_path=".metadata.creationTimestamp",
        description=(
            "CreationTimestamp is a timestamp representing the server time when this "
            "object was created."
        ),
    )


def _name_definition() -> dict[str, Any]:
    return {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": _NAME_DESCRIPTION,
        "priority": 0,
    }


def _partial_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(metadata) if is_mapping(metadata := obj.get("metadata")) else {},
    }


def build_table_row(
    obj: Mapping[str, Any],
    columns: Sequence[PrinterColumn],
    *,
    include_object: str = "Metadata",
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Return one ``TableRow`` for *obj*: its name, then a cell per column.

    *include_object* is the ``includeObject`` query parameter: ``None`` (no
    object), ``Metadata`` (the default: a ``PartialObjectMetadata``) or
    ``Object`` (the whole object).
    """
    metadata: Any = obj.get("metadata")
    name = metadata.get("name", "") if is_mapping(metadata) else ""
    cells: list[Any] = [name]
    cells.extend(column.cell(obj, now=now) for column in columns)
    row: dict[str, Any] = {"cells": cells}
    if include_object == "Object":
        row["object"] = dict(obj)
    elif include_object != "None":
        row["object"] = _partial_metadata(obj)
    return row


def build_table(
    objects: Iterable[Mapping[str, Any]],
    columns: Sequence[PrinterColumn] | None = None,
    *,
    include_object: str = "Metadata",
    no_headers: bool = False,
    resource_version: str = "",
    continue_token: str = "",
    remaining_item_count: int | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Return a ``meta.k8s.io/v1`` Table of *objects*.

    The first column is always ``Name``; *columns* follow (default: the
    [`age_column`][k8swatch.server.age_column] alone). Every column is sent,
    whatever its priority: kubectl hides ``priority > 0`` columns unless
    ``-o wide``. *no_headers* omits ``columnDefinitions`` (the rows of a watch
    after its first event).
    """
    cols = tuple(columns) if columns is not None else (age_column(),)
    when = now or datetime.datetime.now(datetime.timezone.utc)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    }
    if not no_headers:
        table["columnDefinitions"] = [_name_definition()] + [c.to_definition() for c in cols]
    table["rows"] = [
        build_table_row(obj, cols, include_object=include_object, now=when) for obj in objects
    ]
    return table
