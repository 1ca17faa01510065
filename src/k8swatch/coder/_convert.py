"""Pure conversions shared by the Coder adapters: times, UUIDs, Go-style quoting.

Coder writes timestamps as RFC 3339 with as many fractional digits as needed
(Go's RFC3339Nano). The resourceVersion of a converted object is that instant
as integer nanoseconds since the epoch; it is computed with integers only, so
no digit is lost to a float. Kubernetes ``metav1.Time`` values are RFC 3339 UTC
truncated to whole seconds.
"""

from __future__ import annotations

import calendar
import re
import time
import uuid
from typing import Any

from k8swatch._go import go_quote

__all__ = [
    "create_template_body",
    "create_template_version_body",
    "create_workspace_body",
    "template_meta_body",
    "workspace_build_body",
    "NIL_UUID",
    "format_metav1_time",
    "is_zero_time",
    "parse_rfc3339_ns",
    "parse_uuid",
    "resource_version_of",
]

NIL_UUID = "00000000-0000-0000-0000-000000000000"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)
_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"


def parse_rfc3339_ns(text: str) -> int:
    """Return the RFC 3339 timestamp *text* as integer nanoseconds since the epoch.

    Every fractional digit is kept (up to nanoseconds); no float is involved.

    Raises:
        ValueError: *text* is not an RFC 3339 timestamp.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"parsing time {go_quote(text)}: not an RFC 3339 timestamp")
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
            raise ValueError(f"invalid urn prefix: {go_quote(text[:9])}")
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


# --- request bodies, exactly as the Go SDK (codersdk v2.30.0) sends them ----------


def _uuid_or_nil(value: str | None) -> str:
    return value or NIL_UUID


def create_workspace_body(
    name: str,
    *,
    template_id: str | None = None,
    template_version_id: str | None = None,
    ttl_ms: int | None = None,
    autostart_schedule: str | None = None,
) -> dict[str, Any]:
    """``CreateWorkspaceRequest``: unset UUIDs as the nil UUID, unset options omitted."""
    body: dict[str, Any] = {
        "template_id": _uuid_or_nil(template_id),
        "template_version_id": _uuid_or_nil(template_version_id),
        "name": name,
    }
    if autostart_schedule is not None:
        body["autostart_schedule"] = autostart_schedule
    if ttl_ms is not None:
        body["ttl_ms"] = ttl_ms
    body["template_version_preset_id"] = NIL_UUID
    return body


def workspace_build_body(
    transition: str, *, template_version_id: str | None = None
) -> dict[str, Any]:
    """``CreateWorkspaceBuildRequest`` for a ``start``, ``stop`` or ``delete`` build."""
    return {
        "template_version_id": _uuid_or_nil(template_version_id),
        "transition": transition,
        "template_version_preset_id": NIL_UUID,
    }


def create_template_body(
    name: str,
    version_id: str,
    *,
    display_name: str = "",
    description: str = "",
    icon: str = "",
) -> dict[str, Any]:
    """``CreateTemplateRequest``: the presentation fields omitted when empty."""
    body: dict[str, Any] = {"name": name}
    if display_name:
        body["display_name"] = display_name
    if description:
        body["description"] = description
    if icon:
        body["icon"] = icon
    body.update(
        {
            "template_version_id": version_id,
            "allow_user_cancel_workspace_jobs": None,
            "disable_everyone_group_access": False,
            "require_active_version": False,
            "max_port_share_level": None,
        }
    )
    return body


def template_meta_body(display_name: str, description: str, icon: str) -> dict[str, Any]:
    """``UpdateTemplateMeta`` as coder-k8s sends it: the three presentation fields."""
    return {
        "display_name": display_name,
        "description": description,
        "icon": icon,
        "update_workspace_last_used_at": False,
        "update_workspace_dormant_at": False,
        "disable_everyone_group_access": False,
    }


def create_template_version_body(file_id: str, template_id: str | None = None) -> dict[str, Any]:
    """``CreateTemplateVersionRequest`` importing an uploaded file with terraform."""
    return {
        "template_id": _uuid_or_nil(template_id),
        "storage_method": "file",
        "file_id": file_id,
        "provisioner": "terraform",
        "tags": None,
    }
