"""Records, errors, time formats and small parsers of the fake Coder (pure, no I/O).

Everything here is synchronous and free of anyio: the state (``_fake_state.py`` and
its parts) keeps these records, ``_fake_render.py`` turns them into Coder's JSON and
``_fake_app.py`` serves them.  Times are integers of microseconds since the Unix
epoch, the precision of Coder's database, so arithmetic is exact.
"""

from __future__ import annotations

import datetime
import functools
import io
import re
import tarfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from typing_extensions import final

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "NIL_UUID",
    "NOT_FOUND",
    "WORKSPACE_STATUSES",
    "Build",
    "BuildTransition",
    "ChangeAction",
    "ChangeKind",
    "FakeCoderChange",
    "FakeCoderError",
    "Job",
    "JobStatus",
    "Organization",
    "StoredFile",
    "Template",
    "TemplateVersion",
    "User",
    "Workspace",
    "WorkspaceStatus",
    "build_zip",
    "format_optional_time",
    "format_time",
    "is_uuid",
    "job_for_workspace_status",
    "optional_int",
    "optional_str",
    "optional_uuid",
    "parse_search_query",
    "parse_time",
    "parse_uuid_param",
    "tar_to_zip",
    "validate_name",
    "workspace_status",
]

NIL_UUID = "00000000-0000-0000-0000-000000000000"
#: coderd's 404 message for an object that is missing or hidden from the caller.
NOT_FOUND = "Resource not found or you do not have access to this resource"

ChangeKind = Literal["template", "template_version", "file", "workspace"]
ChangeAction = Literal["created", "updated", "deleted"]

BuildTransition = Literal["start", "stop", "delete"]
JobStatus = Literal["pending", "running", "succeeded", "canceling", "canceled", "failed"]
WorkspaceStatus = Literal[
    "pending",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "canceling",
    "canceled",
    "deleting",
    "deleted",
]

ACTIVE_JOB_STATUSES: frozenset[str] = frozenset({"pending", "running", "canceling"})
WORKSPACE_STATUSES: tuple[str, ...] = (
    "pending",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "canceling",
    "canceled",
    "deleting",
    "deleted",
)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_NAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")


class FakeCoderError(Exception):
    """A Coder error answer of a [`FakeCoder`][k8swatch.coder.FakeCoder].

    The fake's operations raise it; over HTTP it becomes the status code *status* and
    Coder's error body ``{"message", "detail"?, "validations"?}`` (empty parts
    omitted).  The out-of-band helpers raise it to Python callers when Coder would
    refuse the change (e.g. a duplicate workspace name).

    Attributes:
        status: the HTTP status code.
        message: Coder's ``message`` (also ``str(error)``).
        detail: Coder's ``detail`` (``""`` when absent).
        validations: ``(field, detail)`` pairs of Coder's ``validations``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        detail: str = "",
        validations: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.validations: tuple[tuple[str, str], ...] = tuple(validations)

    def to_body(self) -> dict[str, Any]:
        """Return the Coder error body (``detail``/``validations`` only when set)."""
        body: dict[str, Any] = {"message": self.message}
        if self.detail:
            body["detail"] = self.detail
        if self.validations:
            body["validations"] = [{"field": f, "detail": d} for f, d in self.validations]
        return body


@final
@attrs.frozen
class FakeCoderChange:
    """One mutation of a [`FakeCoder`][k8swatch.coder.FakeCoder]'s state.

    Attributes:
        kind: what changed (``"workspace"`` also covers its builds).
        id: the id (UUID) of the changed object.
        action: ``"created"``, ``"updated"`` or ``"deleted"`` (a workspace whose delete
            build succeeded, a soft-deleted template).
    """

    kind: ChangeKind
    id: str
    action: ChangeAction


# --------------------------------------------------------------------------- time


@functools.lru_cache(maxsize=8192)
def format_time(us: int) -> str:
    """Format microseconds since the epoch as Go's RFC3339Nano in UTC (zeros trimmed)."""
    seconds, fraction = divmod(us, 1_000_000)
    t = _EPOCH + datetime.timedelta(seconds=seconds)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    return text + "Z"


def format_optional_time(us: int | None) -> str | None:
    """Like `format_time`, ``None`` staying ``None`` (a JSON ``null``)."""
    return None if us is None else format_time(us)


def parse_time(text: str) -> int:
    """Parse an RFC 3339 UTC timestamp (``...Z``, any fraction) into microseconds."""
    if not text.endswith("Z"):
        raise ValueError(f"timestamp must be UTC ('Z'), got {text!r}")
    body = text[:-1]
    base, _, fraction = body.partition(".")
    moment = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc
    )
    delta = moment - _EPOCH
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000
    if fraction:
        if not fraction.isdigit():
            raise ValueError(f"invalid fractional seconds in {text!r}")
        us += int((fraction + "000000")[:6])
    return us


# --------------------------------------------------------------------------- records


@attrs.define(eq=False)
class Organization:
    """A Coder organization."""

    id: str
    name: str
    display_name: str
    description: str
    icon: str
    created_at: int
    updated_at: int
    is_default: bool


@attrs.define(eq=False)
class User:
    """A Coder user (member of every organization)."""

    id: str
    username: str
    name: str
    email: str
    avatar_url: str
    created_at: int
    updated_at: int
    roles: list[dict[str, str]]


@attrs.define(eq=False)
class StoredFile:
    """An uploaded archive."""

    id: str
    data: bytes
    content_type: str
    created_at: int
    creator_id: str


@attrs.define(eq=False)
class Job:
    """A provisioner job (template version import or workspace build)."""

    id: str
    created_at: int
    status: JobStatus
    file_id: str
    organization_id: str
    initiator_id: str
    started_at: int | None = None
    completed_at: int | None = None
    error: str = ""


@attrs.define(eq=False)
class TemplateVersion:
    """A template version and its import job."""

    id: str
    template_id: str | None
    organization_id: str
    name: str
    message: str
    created_at: int
    updated_at: int
    created_by_id: str
    job: Job
    #: GETs left before a ``pending`` import turns ``succeeded`` (``None``: stays).
    pending_polls: int | None = None


@attrs.define(eq=False)
class Template:
    """A template (soft-deleted with ``deleted``)."""

    id: str
    organization_id: str
    name: str
    display_name: str
    description: str
    icon: str
    active_version_id: str
    created_at: int
    updated_at: int
    created_by_id: str
    default_ttl_ms: int = 0
    activity_bump_ms: int = 3_600_000
    deprecation_message: str = ""
    deleted: bool = False
    meta_update_count: int = 0


@attrs.define(eq=False)
class Build:
    """A workspace build; ``schedule`` lists future (due time, job status) steps."""

    id: str
    workspace_id: str
    build_number: int
    transition: BuildTransition
    template_version_id: str
    initiator_id: str
    created_at: int
    updated_at: int
    job: Job
    deadline: int | None = None
    schedule: list[tuple[int, JobStatus]] = attrs.field(
        factory=lambda: list[tuple[int, JobStatus]]()
    )


@attrs.define(eq=False)
class Workspace:
    """A workspace (``deleted`` once a delete build succeeded)."""

    id: str
    owner_id: str
    organization_id: str
    template_id: str
    name: str
    created_at: int
    updated_at: int
    last_used_at: int
    latest_build_id: str
    ttl_ms: int | None = None
    autostart_schedule: str | None = None
    next_start_at: int | None = None
    deleted: bool = False


def workspace_status(transition: str, job_status: str) -> WorkspaceStatus:
    """Derive ``latest_build.status`` from the job status and the transition."""
    if job_status == "pending":
        return "pending"
    if job_status == "running":
        return {"start": "starting", "stop": "stopping"}.get(transition, "deleting")  # type: ignore[return-value]
    if job_status == "succeeded":
        return {"start": "running", "stop": "stopped"}.get(transition, "deleted")  # type: ignore[return-value]
    if job_status in ("canceling", "canceled"):
        return job_status  # type: ignore[return-value]
    return "failed"


def job_for_workspace_status(status: str, transition: str) -> tuple[str, JobStatus]:
    """Return (transition, job status) that yields workspace *status*."""
    table: dict[str, tuple[str, JobStatus]] = {
        "pending": (transition, "pending"),
        "starting": ("start", "running"),
        "running": ("start", "succeeded"),
        "stopping": ("stop", "running"),
        "stopped": ("stop", "succeeded"),
        "deleting": ("delete", "running"),
        "deleted": ("delete", "succeeded"),
        "failed": (transition, "failed"),
        "canceling": (transition, "canceling"),
        "canceled": (transition, "canceled"),
    }
    try:
        return table[status]
    except KeyError:
        raise ValueError(
            f"unknown workspace status {status!r}; expected one of {', '.join(table)}"
        ) from None


# --------------------------------------------------------------------------- parsing


def is_uuid(text: str) -> bool:
    """Tell whether *text* is a UUID string."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def parse_uuid_param(text: str) -> str:
    """Parse a UUID path parameter as coderd does (400 ``Invalid UUID "x".``)."""
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise FakeCoderError(400, f'Invalid UUID "{text}".', detail=str(exc)) from None


def validate_name(value: object, *, field: str = "name", tag: str) -> str:
    """Validate a Coder name (1-32 chars of ``[a-zA-Z0-9]`` groups joined by ``-``)."""
    if not isinstance(value, str) or not value:
        raise FakeCoderError(
            400,
            "Validation failed.",
            validations=[(field, f'Validation failed for tag "required" with value: "{value}"')],
        )
    if len(value) > 32 or not _NAME_RE.match(value) or value in ("new", "create"):
        raise FakeCoderError(
            400,
            "Validation failed.",
            validations=[(field, f'Validation failed for tag "{tag}" with value: "{value}"')],
        )
    return value


def optional_uuid(body: Mapping[str, Any], key: str) -> str | None:
    """Read a UUID field; absent, ``null``, ``""`` and the nil UUID all mean unset."""
    value = body.get(key)
    if value in (None, "", NIL_UUID):
        return None
    if not isinstance(value, str) or not is_uuid(value):
        raise FakeCoderError(
            400,
            "Request body must be valid JSON.",
            detail=f"invalid UUID {value!r} in field {key!r}",
        )
    return str(uuid.UUID(value))


def optional_str(body: Mapping[str, Any], key: str) -> str | None:
    """Read a string field (``None`` when absent or ``null``)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FakeCoderError(
            400,
            "Request body must be valid JSON.",
            detail=f"json: cannot unmarshal {type(value).__name__} into field {key!r} (string)",
        )
    return value


def optional_int(body: Mapping[str, Any], key: str) -> int | None:
    """Read an integer field (``None`` when absent or ``null``; a bool is no integer)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise FakeCoderError(
            400,
            "Request body must be valid JSON.",
            detail=f"json: cannot unmarshal {type(value).__name__} into field {key!r} (int64)",
        )
    return value


_TERM_RE = re.compile(r'(?:[^\s"]+|"[^"]*")+')


def parse_search_query(
    query: str, *, allowed: Sequence[str], default_key: str, what: str
) -> dict[str, str]:
    """Parse Coder's ``q`` (space-separated ``key:value``, values may be quoted).

    A bare term is read as *default_key*.  Unknown keys raise a 400
    ``Invalid <what> search query.`` with one validation per bad key.
    """
    terms: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for raw in _TERM_RE.findall(query):
        key, sep, value = raw.partition(":")
        if not sep:
            key, value = default_key, raw
        key = key.strip().lower()
        value = value.strip().strip('"')
        if key not in allowed:
            problems.append((key, f'Query param "{key}" is not a valid query param'))
            continue
        if not value:
            problems.append((key, f'Query element "{raw}" has an empty value'))
            continue
        terms[key] = value
    if problems:
        raise FakeCoderError(400, f"Invalid {what} search query.", validations=problems)
    return terms


# --------------------------------------------------------------------------- archives


def build_zip(files: Mapping[str, bytes]) -> bytes:
    """Build a zip archive (deflated, unix mode 0755) of *files*, in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 & 0xFFFF) << 16
            info.create_system = 3
            archive.writestr(info, data)
    return buffer.getvalue()


def tar_to_zip(data: bytes) -> bytes:
    """Convert a tar archive to a zip archive (as coderd does for ``format=zip``)."""
    buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as source,
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for member in source.getmembers():
            if not member.isfile():
                continue
            extracted = source.extractfile(member)
            content = extracted.read() if extracted is not None else b""
            info = zipfile.ZipInfo(member.name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((0o100000 | (member.mode & 0o7777)) & 0xFFFF) << 16
            info.create_system = 3
            archive.writestr(info, content)
    return buffer.getvalue()
