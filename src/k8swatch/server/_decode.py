"""The one strict decoder for request bodies: only JSON every encoder can write back.

Every body the app reads (objects for create and update, patch documents)
goes through ``decode_json``, so nothing reaches a storage that a later list,
get or watch could not encode. Python's ``json`` module accepts more than
that; this decoder answers 400 BadRequest for:

- bytes that are not UTF-8 (the message names the byte offset);
- lone UTF-16 surrogates, raw or as ``\\ud800`` escapes (they have no UTF-8
  encoding; the message names the line and column);
- ``NaN``, ``Infinity`` and numbers too large for a float (not JSON);
- arrays and objects nested more than ``MAX_NESTING_DEPTH`` (100) levels deep.
  kube-apiserver allows 10,000 levels; every JSON encoder, selector, validator
  and copy in Python recurses once per level, so a limit that deep would trade
  a 400 for a ``RecursionError``. 100 levels is far beyond any Kubernetes
  object and well inside orjson's own encoding limit (254) with room for the
  ``List`` and watch-event wrapping.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn, cast

from k8swatch._status import bad_request

__all__ = ["MAX_NESTING_DEPTH", "check_json_value", "decode_json"]

MAX_NESTING_DEPTH = 100
"""Most levels of arrays and objects a request body (or a patched object) may nest."""

_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


class _Rejected(ValueError):
    """A value the decoder refuses (turned into a 400 with its context)."""


class _Surrogate(_Rejected):
    """A string with a lone surrogate (located in the text for the message)."""


def decode_json(body: bytes | str, context: str) -> Any:
    """Decode *body* as strict JSON; raise 400 BadRequest ``"{context}: ..."`` otherwise.

    Raises:
        StatusError: 400 BadRequest for invalid UTF-8, invalid JSON, a lone
            surrogate, ``NaN``/``Infinity``/an out-of-range number, or nesting
            deeper than ``MAX_NESTING_DEPTH``.
    """
    text = _text(body, context)
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        _too_deep(context)
    except ValueError as exc:
        raise bad_request(f"{context}: {exc}") from None
    try:
        check_json_value(value)
    except _Surrogate:
        raise bad_request(f"{context}: {_surrogate_position(text)}") from None
    except _Rejected as exc:
        raise bad_request(f"{context}: {exc}") from None
    return value


def check_json_value(value: Any) -> None:
    """Check that *value* nests at most ``MAX_NESTING_DEPTH`` levels and holds only UTF-8 text.

    Raises:
        ValueError: naming what is wrong.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_NESTING_DEPTH:
                raise _Rejected(_depth_message())
            for key, child in cast("dict[str, Any]", item).items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_NESTING_DEPTH:
                raise _Rejected(_depth_message())
            items = cast("list[Any]", item)  # type: ignore[redundant-cast]
            stack.extend((child, depth + 1) for child in items)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _Rejected(f"{item} is not a JSON number")


def _check_text(text: object) -> None:
    if isinstance(text, str) and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Surrogate(
                "a string holds a lone surrogate, which has no UTF-8 encoding"
            ) from None


def _text(body: bytes | str, context: str) -> str:
    if isinstance(body, str):
        try:
            body.encode("utf-8")
        except UnicodeEncodeError as exc:
            line, column = _line_column(body, exc.start)
            raise bad_request(
                f"{context}: lone surrogate at line {line} column {column} (char {exc.start})"
            ) from None
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"{context}: invalid UTF-8 at byte offset {exc.start}") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"the number {literal[:40]} is out of range")
    return number


def _depth_message() -> str:
    return f"arrays and objects nested more than {MAX_NESTING_DEPTH} levels deep"


def _too_deep(context: str) -> NoReturn:
    raise bad_request(f"{context}: {_depth_message()}") from None


def _surrogate_position(text: str) -> str:
    pending: re.Match[str] | None = None
    for match in _ESCAPE.finditer(text):
        code = int(match.group(1), 16) if match.group(1) else -1
        if pending is not None:
            if match.start() == pending.end() and 0xDC00 <= code <= 0xDFFF:
                pending = None
                continue
            break
        if 0xD800 <= code <= 0xDBFF:
            pending = match
        elif 0xDC00 <= code <= 0xDFFF:
            pending = match
            break
    if pending is None:  # pragma: no cover - check_json_value found one
        return "lone surrogate"
    line, column = _line_column(text, pending.start())
    return (
        f"lone surrogate {pending.group(0)} at line {line} column {column} (char {pending.start()})"
    )


def _line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
