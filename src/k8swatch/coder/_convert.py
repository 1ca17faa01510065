"""Pure conversions shared by the Coder adapters: times, UUIDs, Go-style quoting.

Coder writes timestamps as RFC 3339 with as many fractional digits as needed
(Go's RFC3339Nano). The resourceVersion of a converted object is that instant
as integer nanoseconds since the epoch; it is computed with integers only, so
no digit is lost to a float. Kubernetes ``metav1.Time`` values are RFC 3339 UTC
truncated to whole seconds.
"""

from __future__ import annotations

import calendar
import json
import re
import time
import uuid

__all__ = [
    "NIL_UUID",
    "format_metav1_time",
    "is_zero_time",
    "parse_rfc3339_ns",
    "parse_uuid",
    "quote",
    "resource_version_of",
]

NIL_UUID = "00000000-0000-0000-0000-000000000000"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)
_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"


def quote(text: str) -> str:
    """Quote *text* the way Go's ``%q`` does for printable strings."""
    return json.dumps(text, ensure_ascii=False)


def parse_rfc3339_ns(text: str) -> int:
    """Return the RFC 3339 timestamp *text* as integer nanoseconds since the epoch.

    Every fractional digit is kept (up to nanoseconds); no float is involved.

    Raises:
        ValueError: *text* is not an RFC 3339 timestamp.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"parsing time {quote(text)}: not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(9):
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
        seconds -= offset if match.group(9) == "+" else -offset
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))


def is_zero_time(text: str | None) -> bool:
    """True for a missing time or Go's zero time (``0001-01-01T00:00:00Z``)."""
    return not text or text.startswith(_ZERO_TIME_PREFIX)


def format_metav1_time(text: str) -> str:
    """Return the RFC 3339 timestamp *text* as a metav1.Time: UTC, whole seconds.

    Raises:
        ValueError: *text* is not an RFC 3339 timestamp.
    """
    seconds = parse_rfc3339_ns(text) // 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def resource_version_of(updated_at: str) -> str:
    """The resourceVersion the Go original derives from ``updated_at`` (UnixNano)."""
    return str(parse_rfc3339_ns(updated_at))


def parse_uuid(text: str) -> str:
    """Return *text* as a canonical lowercase UUID string.

    Accepts the forms Go's ``uuid.Parse`` accepts (plain, braced, ``urn:uuid:``,
    32 hex digits).

    Raises:
        ValueError: with Go's messages (``invalid UUID length: N``,
            ``invalid UUID format``).
    """
    if len(text) not in (32, 36, 38, 45):
        raise ValueError(f"invalid UUID length: {len(text)}")
    candidate = text
    if len(text) == 45:
        if text[:9].lower() != "urn:uuid:":
            raise ValueError(f"invalid urn prefix: {quote(text[:9])}")
        candidate = text[9:]
    elif len(text) == 38:
        if text[0] != "{" or text[-1] != "}":
            raise ValueError("invalid UUID format")
        candidate = text[1:-1]
    if len(candidate) == 36 and (
        candidate[8] != "-" or candidate[13] != "-" or candidate[18] != "-" or candidate[23] != "-"
    ):
        raise ValueError("invalid UUID format")
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        raise ValueError("invalid UUID format") from None
