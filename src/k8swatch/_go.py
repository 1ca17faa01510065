"""Go-compatible formatting and parsing: the one home for Go's rules.

Pure code. Messages that Kubernetes and Coder print come from Go's standard
library (``%q``, ``encoding/json``, ``strconv``, ``time.Duration``); anything
that must print or parse the way Go does calls these, so a message reads the
same here as it does from the Go servers.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "format_go_duration",
    "go_json",
    "go_parse_int",
    "go_quote",
    "parse_go_duration",
]

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Return *text* quoted as Go's ``strconv.Quote`` (and ``%q``) quotes it."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            # A lone surrogate is not valid UTF-8: Go would see (and escape) bytes.
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_json(value: object) -> str:
    """Return *value* encoded as Go's ``encoding/json`` encodes it: compact, HTML-safe."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # These characters only occur inside JSON strings, so plain replacement is safe.
    if any(c in text for c in "<>&\u2028\u2029"):
        text = (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    return text


def go_parse_int(text: str, *, unsigned: bool = False) -> int:
    """Parse *text* like Go's ``strconv.ParseInt(text, 10, 64)`` (or ``ParseUint``).

    Raises:
        ValueError: with Go's message, e.g. ``strconv.ParseInt: parsing "abc":
            invalid syntax`` or ``...: value out of range``.
    """
    func = "ParseUint" if unsigned else "ParseInt"
    digits = text
    negative = False
    if not unsigned and digits[:1] in ("+", "-"):
        negative = digits[0] == "-"
        digits = digits[1:]
    if not digits:
        raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: invalid syntax")
    # Go scans left to right and reports overflow as soon as it happens, even if
    # an invalid character follows; reproduce that order of checks.
    max_uint = (1 << 64) - 1
    value = 0
    for ch in digits:
        if not ("0" <= ch <= "9"):
            raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: invalid syntax")
        value = value * 10 + (ord(ch) - 48)
        if value > max_uint:
            raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: value out of range")
    if not unsigned:
        cutoff = 1 << 63
        if (not negative and value >= cutoff) or (negative and value > cutoff):
            raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: value out of range")
        return -value if negative else value
    return value


_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")


def parse_go_duration(text: str) -> float:
    """Parse a Go duration (``25m``, ``1m30s``, ``500ms``) into seconds.

    Raises:
        ValueError: *text* is not a Go duration.
    """
    pos, total = 0, 0.0
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return total


def format_go_duration(seconds: float) -> str:
    """Format *seconds* like Go's ``time.Duration.String()`` (``2m0s``, ``120ms``)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    total = round(seconds, 9)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:.9f}".rstrip("0").rstrip(".")
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{secs_text}s"
