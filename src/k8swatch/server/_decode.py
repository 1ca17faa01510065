"""The one strict decoder for request bodies: only JSON every encoder can write back.

Every body the app reads (objects for create and update, patch documents)
goes through ``decode_json``, so nothing reaches a storage that a later list,
get or watch could not encode. Python's ``json`` module accepts more than
that; this decoder answers 400 BadRequest for:

- bytes that are not UTF-8 (the message names the byte offset);
- lone UTF-16 surrogates, raw or as ``\\ud800`` escapes (they have no UTF-8
  encoding; the message names the line and column);
- ``NaN``, ``Infinity`` and numbers beyond a double's range (not JSON; Go's
  decoder and orjson refuse them too);
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
import sys
from collections.abc import Iterable
from typing import Any, NoReturn, cast

from k8swatch._status import bad_request

__all__ = ["MAX_NESTING_DEPTH", "check_json_value", "decode_json"]

MAX_NESTING_DEPTH = 100
"""Most levels of arrays and objects a request body (or a patched object) may nest."""

_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
# What a lone surrogate escape needs (or a harmless look-alike: a pair, ``\\ud800``).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_MAX_DOUBLE = sys.float_info.max


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
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        _too_deep(context)
    except ValueError as exc:
        raise bad_request(f"{context}: {exc}") from None
    try:
        # Python strings decoded from UTF-8 bytes hold a surrogate only from
        # an escape: without one, strings need no look.
        _check([value], -1, surrogates=_SURROGATE_ESCAPE.search(text) is not None)
    except _Surrogate:
        raise bad_request(f"{context}: {_surrogate_position(text)}") from None
    except _Rejected as exc:
        raise bad_request(f"{context}: {exc}") from None
    return value


def check_json_value(value: Any) -> None:
    """Check that *value* nests at most ``MAX_NESTING_DEPTH`` levels and holds only JSON.

    Strings must have a UTF-8 encoding (no lone surrogates) and numbers must
    be finite doubles' worth.

    Raises:
        ValueError: naming what is wrong.
    """
    _check([value], -1, surrogates=True)


def _check(value: Any, depth: int, *, surrogates: bool) -> None:
    # Recursive, but never deeper than MAX_NESTING_DEPTH; one walk over
    # everything costs about half of what json.loads took to build it. The
    # top-level value comes wrapped in a list at depth -1.
    if depth >= MAX_NESTING_DEPTH:
        raise _Rejected(_depth_message())
    children: Iterable[Any]
    if isinstance(value, dict):
        mapping = cast("dict[str, Any]", value)
        if surrogates:
            for key in mapping:
                _check_text(key)
        children = mapping.values()
    else:
        children = cast("list[Any]", value)
    for child in children:
        kind = cast("type[object]", type(child))
        if kind is str:
            if surrogates:
                _check_text(child)
        elif kind is dict or kind is list:
            _check(child, depth + 1, surrogates=surrogates)
        elif kind is int:
            if child > _MAX_DOUBLE or child < -_MAX_DOUBLE:
                # Go's decoder and orjson (the Redis storage's) refuse it.
                raise _Rejected(f"the number {str(child)[:40]}... is out of range")
        elif kind is float:
            if not math.isfinite(child):
                raise _Rejected(f"a number is out of range ({child})")
        elif isinstance(child, (dict, list)):
            _check(child, depth + 1, surrogates=surrogates)
        elif isinstance(child, str) and surrogates:
            _check_text(child)


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
