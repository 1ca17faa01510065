"""`FakeCoder`: an in-memory Coder REST API (ASGI app) for tests and ``k8swatch serve``.

The fake models the subset of the Coder API that the Coder client uses
(``coder-adapters.md`` §3): organizations, users, templates, template versions,
files, workspaces and builds, with Coder's success codes, JSON shapes and error
bodies.  Build progress in ``async`` mode is driven lazily from the clock: every
request, every Python call and every change-feed waiter first applies the build steps
that are due, so no background task outlives the app and the fake runs on any anyio
backend (uvicorn on asyncio, hypercorn's trio worker, ``httpx.ASGITransport``).

The fake is not thread-safe: use it from the event loop that serves it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import secrets
import string
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, cast

import anyio
import anyio.lowlevel
import attrs
from typing_extensions import Self, final

from k8swatch._go import go_json

from ._fake_model import (
    ACTIVE_JOB_STATUSES,
    NIL_UUID,
    WORKSPACE_STATUSES,
    Build,
    BuildTransition,
    FakeCoderError,
    Job,
    JobStatus,
    Organization,
    StoredFile,
    Template,
    TemplateVersion,
    User,
    Workspace,
    build_zip,
    format_optional_time,
    format_time,
    is_uuid,
    job_for_workspace_status,
    parse_search_query,
    parse_time,
    parse_uuid_param,
    tar_to_zip,
    validate_name,
)
from ._fake_model import workspace_status as derive_workspace_status

__all__ = ["FakeCoder", "FakeCoderChange", "FakeCoderChanges", "FakeCoderError"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ChangeKind = Literal["template", "template_version", "file", "workspace"]
ChangeAction = Literal["created", "updated", "deleted"]

#: The Coder version the fake reports in ``/api/v2/buildinfo``.
CODER_VERSION = "v2.30.0"

_NOT_FOUND = "Resource not found or you do not have access to this resource"
_SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
_JSON_TYPE = "application/json; charset=utf-8"
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_SEED_NOW = "2026-01-01T12:00:00Z"
_MAIN_TF = b'resource "null_resource" "example" {}'


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


@final
class FakeCoderChanges:
    """A subscription to a fake's change feed, from `FakeCoder.subscribe()`.

    Iterate it with ``async for``; each item is a `FakeCoderChange`, in mutation order,
    starting with the first mutation after `FakeCoder.subscribe()`.  While waiting it
    applies due build steps (``async`` mode), so a waiter alone drives progress.  The
    iteration ends when the subscription or the fake is closed.  Buffering is
    unbounded: a subscriber that never reads keeps every change.
    """

    def __init__(self, fake: FakeCoder) -> None:
        self._fake = fake
        self._pending: collections.deque[FakeCoderChange] = collections.deque()
        self._wakeup: anyio.Event | None = None
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> FakeCoderChange:
        while True:
            self._fake.advance()
            if self._pending:
                await anyio.lowlevel.checkpoint()
                return self._pending.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = anyio.Event()
            delay = self._fake.seconds_until_next_step()
            with anyio.move_on_after(math.inf if delay is None else delay):
                await self._wakeup.wait()

    def receive_nowait(self) -> FakeCoderChange | None:
        """Return the next buffered change, or ``None`` when there is none yet."""
        self._fake.advance()
        return self._pending.popleft() if self._pending else None

    def close(self) -> None:
        """Stop receiving changes; idempotent.  A waiting iteration ends."""
        if not self._closed:
            self._closed = True
            self._fake._subscribers.discard(self)
            self._wake()

    def _push(self, change: FakeCoderChange) -> None:
        self._pending.append(change)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None


@attrs.define
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json_object(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"null")
        except ValueError as exc:
            raise FakeCoderError(400, "Request body must be valid JSON.", detail=str(exc)) from None
        if not isinstance(value, dict):
            raise FakeCoderError(
                400,
                "Request body must be valid JSON.",
                detail=f"json: cannot unmarshal {type(value).__name__} into an object",
            )
        return cast("dict[str, Any]", value)


@attrs.define
class _Response:
    status: int
    body: bytes = b""
    content_type: str = _JSON_TYPE
    headers: list[tuple[str, str]] = attrs.field(factory=lambda: list[tuple[str, str]]())


def _json_response(status: int, value: object) -> _Response:
    return _Response(status, go_json(value).encode() + b"\n")


def _optional_uuid(body: dict[str, Any], key: str) -> str | None:
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


def _optional_str(body: dict[str, Any], key: str) -> str | None:
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


def _optional_int(body: dict[str, Any], key: str) -> int | None:
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


def _generate_token() -> str:
    key_id = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(10))
    secret = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(22))
    return f"{key_id}-{secret}"


def _new_id() -> str:
    return str(uuid.uuid4())


@attrs.define
class _Stream:
    """A streamed answer: the handler validated the request, ``run`` sends it."""

    run: Callable[[Receive, Send], Awaitable[None]]


_Handler = Callable[..., "_Response | _Stream"]


@final
class FakeCoder:
    """An in-memory Coder REST API, served as an ASGI application.

    Args:
        token: the session token every request must carry (``Coder-Session-Token``
            header, ``coder_session_token`` cookie or query parameter); a random
            Coder-shaped token when ``None``.  Read it back from `token`.
        seed: create the demo data (`seed_demo_data`): organization ``acme``, users
            ``admin`` (the token's user, ``me``) and ``alice``, template
            ``starter-template`` (version ``starter-template-v1`` whose source is a zip
            with ``main.tf`` and a binary ``binary.dat``) and ``alice``'s running
            workspace ``dev-workspace``, with the ids and times of ``coder-fixtures/``.
        build_mode: ``"instant"`` (the default, like the coder-k8s mock: a new build is
            already terminal — start → ``running``, stop → ``stopped``, delete →
            ``deleted``) or ``"async"`` (job ``pending`` at creation, ``running`` after
            *build_step_seconds*, ``succeeded`` after twice that; a second build
            meanwhile answers 409, as real Coder does).
        build_step_seconds: the duration of each ``async`` build step.
        clock: returns the current time as POSIX seconds (default `time.time`).
            Timestamps have microsecond precision and never repeat: every mutation
            gets a time strictly after the previous one, so ``updated_at`` (and hence
            the resourceVersions derived from it) always moves.
        heartbeat_seconds: interval of the ``event: ping`` heartbeat of the workspace
            watch stream (Coder: 15 s).
        accept_unknown_template_versions: as the coder-k8s mock, ``POST
            .../templates`` with an unknown ``template_version_id`` registers a
            synthetic succeeded version whose source is an empty zip instead of
            answering 404 like real Coder.

    Raises:
        ValueError: an unknown *build_mode* or a negative duration.

    Attributes:
        token: the session token clients must send.
        build_mode: ``"instant"`` or ``"async"``; may be changed between requests.
        build_step_seconds: the ``async`` step duration for builds created from now on.
        heartbeat_seconds: the watch streams' heartbeat interval.
        accept_unknown_template_versions: see the argument of the same name.

    The fake is an ASGI application (``http``, ``websocket`` and ``lifespan`` scopes);
    lifespan shutdown calls `close()`.  It is not thread-safe: use it from the event
    loop that serves it.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        seed: bool = True,
        build_mode: Literal["instant", "async"] = "instant",
        build_step_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 15.0,
        accept_unknown_template_versions: bool = True,
    ) -> None:
        if build_mode not in ("instant", "async"):
            raise ValueError(f"build_mode must be 'instant' or 'async', got {build_mode!r}")
        if build_step_seconds < 0:
            raise ValueError("build_step_seconds must be >= 0")
        if heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be > 0")
        self.token: str = token if token is not None else _generate_token()
        self.build_mode: Literal["instant", "async"] = build_mode
        self.build_step_seconds = build_step_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.accept_unknown_template_versions = accept_unknown_template_versions
        self._clock = clock
        self._last_stamp = 0
        self._organizations: dict[str, Organization] = {}
        self._users: dict[str, User] = {}
        self._me_id = ""
        self._templates: dict[str, Template] = {}
        self._versions: dict[str, TemplateVersion] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_by_digest: dict[str, str] = {}
        self._workspaces: dict[str, Workspace] = {}
        self._builds: dict[str, Build] = {}
        self._scheduled: dict[str, Build] = {}
        self._build_transitions: dict[str, list[str]] = {}
        self._build_failures: dict[str, collections.deque[tuple[int, str]]] = {}
        self._ignored_promotions = 0
        self._next_version: tuple[JobStatus, int | None, str] | None = None
        self._subscribers: set[FakeCoderChanges] = set()
        self._closed = False
        self._routes = self._build_routes()
        self._create_admin()
        if seed:
            self.seed_demo_data()

    @classmethod
    def seeded(
        cls,
        *,
        token: str | None = None,
        build_mode: Literal["instant", "async"] = "instant",
        build_step_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 15.0,
        accept_unknown_template_versions: bool = True,
    ) -> FakeCoder:
        """Return a fake with the demo data; the arguments are those of `FakeCoder`."""
        return cls(
            token=token,
            seed=True,
            build_mode=build_mode,
            build_step_seconds=build_step_seconds,
            clock=clock,
            heartbeat_seconds=heartbeat_seconds,
            accept_unknown_template_versions=accept_unknown_template_versions,
        )

    def __repr__(self) -> str:
        workspaces = sum(not ws.deleted for ws in self._workspaces.values())
        templates = sum(not t.deleted for t in self._templates.values())
        return (
            f"<FakeCoder {self.build_mode} builds, {templates} template(s), "
            f"{workspaces} workspace(s){', closed' if self._closed else ''}>"
        )

    # ------------------------------------------------------------------ time & feed

    def _now_us(self) -> int:
        return round(self._clock() * 1_000_000)

    def _stamp(self, at: int | None = None) -> int:
        """A fresh timestamp, strictly after every earlier one."""
        value = max(self._now_us() if at is None else at, self._last_stamp + 1)
        self._last_stamp = value
        return value

    def _publish(self, kind: ChangeKind, object_id: str, action: ChangeAction) -> None:
        change = FakeCoderChange(kind, object_id, action)
        for subscriber in list(self._subscribers):
            subscriber._push(change)

    def subscribe(self) -> FakeCoderChanges:
        """Subscribe to every later mutation (HTTP or Python, including build steps).

        Use as ``with fake.subscribe() as changes: async for change in changes: ...``.
        """
        changes = FakeCoderChanges(self)
        if self._closed:
            changes._closed = True
        else:
            self._subscribers.add(changes)
        return changes

    def close(self) -> None:
        """End every subscription and open watch stream; idempotent.

        The fake keeps answering ordinary requests; new watch streams end at once.
        """
        self._closed = True
        for subscriber in list(self._subscribers):
            subscriber.close()

    def advance(self) -> int:
        """Apply every ``async`` build step that is due by the clock; return how many.

        Called automatically before each request and by change-feed waiters; call it
        after moving a custom clock to publish the due steps at once.
        """
        if not self._scheduled:
            return 0
        now = self._now_us()
        applied = 0
        for build in sorted(self._scheduled.values(), key=lambda b: b.schedule[0][0]):
            while build.schedule and build.schedule[0][0] <= now:
                due, status = build.schedule.pop(0)
                self._set_job_status(build, status, at=due)
                applied += 1
            if not build.schedule:
                self._scheduled.pop(build.id, None)
        return applied

    def seconds_until_next_step(self) -> float | None:
        """Seconds until the next ``async`` build step is due, or ``None`` if none is."""
        if not self._scheduled:
            return None
        due = min(build.schedule[0][0] for build in self._scheduled.values())
        return max(0.0, (due - self._now_us()) / 1_000_000)

    # ------------------------------------------------------------------ seed

    def _create_admin(self) -> None:
        admin = User(
            id="ad000000-1111-4222-8333-444455556666",
            username="admin",
            name="Admin",
            email="admin@example.com",
            avatar_url="",
            created_at=parse_time("2025-12-31T12:00:00Z"),
            updated_at=parse_time("2025-12-31T12:00:00Z"),
            roles=[{"name": "owner", "display_name": "Owner", "organization_id": ""}],
        )
        self._users[admin.id] = admin
        self._me_id = admin.id

    def seed_demo_data(self) -> None:
        """Create the demo world of ``coder-fixtures/`` (idempotent per fake).

        Organization ``acme``, user ``alice``, template ``starter-template`` with active
        version ``starter-template-v1`` (file: a zip with ``main.tf`` and ``binary.dat``
        = bytes 80 81 82, deflated, mode 0755) and workspace ``alice/dev-workspace``
        (running, ttl 1 h, autostart ``CRON_TZ=UTC 0 9 * * 1-5``).
        """
        if "5f1c2b7e-8d3a-4c6f-9b21-0a7e4d3c2b10" in self._organizations:
            return
        t = parse_time
        org = Organization(
            id="5f1c2b7e-8d3a-4c6f-9b21-0a7e4d3c2b10",
            name="acme",
            display_name="Acme",
            description="Acme Corp engineering",
            icon="",
            created_at=t("2025-12-31T12:00:00Z"),
            updated_at=t("2026-01-01T11:00:00Z"),
            is_default=True,
        )
        self._organizations[org.id] = org
        alice = User(
            id="a11ce000-4b7e-4c1d-8e2f-3a4b5c6d7e01",
            username="alice",
            name="Alice Example",
            email="alice@example.com",
            avatar_url="https://example.com/alice.png",
            created_at=t("2025-12-31T12:05:00Z"),
            updated_at=t("2026-01-01T11:50:00Z"),
            roles=[{"name": "member", "display_name": "Member", "organization_id": ""}],
        )
        self._users[alice.id] = alice
        archive = build_zip({"main.tf": _MAIN_TF, "binary.dat": bytes([0x80, 0x81, 0x82])})
        file = StoredFile(
            id="f11e0000-3c5d-4e7f-9a1b-2c3d4e5f6a40",
            data=archive,
            content_type="application/zip",
            created_at=t("2026-01-01T00:00:00Z"),
            creator_id=self._me_id,
        )
        self._files[file.id] = file
        self._file_by_digest[hashlib.sha256(archive).hexdigest()] = file.id
        template_id = "7e3a9c10-2b4d-4f6a-8c1e-5d7f9a0b1c20"
        version = TemplateVersion(
            id="9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30",
            template_id=template_id,
            organization_id=org.id,
            name="starter-template-v1",
            message="initial version",
            created_at=t("2026-01-01T00:00:00Z"),
            updated_at=t("2026-01-01T00:00:41Z"),
            created_by_id=self._me_id,
            job=Job(
                id="10b00003-3c4d-4e5f-8a61-7c8d9e0f1a23",
                created_at=t("2026-01-01T00:00:00Z"),
                started_at=t("2026-01-01T00:00:01Z"),
                completed_at=t("2026-01-01T00:00:40Z"),
                status="succeeded",
                file_id=file.id,
                organization_id=org.id,
                initiator_id=self._me_id,
            ),
        )
        self._versions[version.id] = version
        self._templates[template_id] = Template(
            id=template_id,
            organization_id=org.id,
            name="starter-template",
            display_name="Starter Template",
            description="Default development template",
            icon="/icons/starter.png",
            active_version_id=version.id,
            created_at=t("2026-01-01T00:00:00Z"),
            updated_at=t("2026-01-01T10:00:00Z"),
            created_by_id=self._me_id,
            default_ttl_ms=3_600_000,
        )
        workspace_id = "3b5d7f90-4c6e-4a8b-9c0d-1e2f3a4b5c50"
        build = Build(
            id="b0110001-5d7f-4b9c-8d1e-2f3a4b5c6d60",
            workspace_id=workspace_id,
            build_number=3,
            transition="start",
            template_version_id=version.id,
            initiator_id=alice.id,
            created_at=t("2026-01-01T11:28:00Z"),
            updated_at=t("2026-01-01T11:30:00Z"),
            job=Job(
                id="10b00001-1a2b-4c3d-8e4f-5a6b7c8d9e01",
                created_at=t("2026-01-01T11:28:00Z"),
                started_at=t("2026-01-01T11:28:01Z"),
                completed_at=t("2026-01-01T11:30:00Z"),
                status="succeeded",
                file_id=file.id,
                organization_id=org.id,
                initiator_id=alice.id,
            ),
            deadline=t("2026-01-01T12:30:00Z"),
        )
        self._builds[build.id] = build
        self._workspaces[workspace_id] = Workspace(
            id=workspace_id,
            owner_id=alice.id,
            organization_id=org.id,
            template_id=template_id,
            name="dev-workspace",
            created_at=t("2026-01-01T04:00:00Z"),
            updated_at=t("2026-01-01T11:30:00Z"),
            last_used_at=t("2026-01-01T11:50:00Z"),
            latest_build_id=build.id,
            ttl_ms=3_600_000,
            autostart_schedule="CRON_TZ=UTC 0 9 * * 1-5",
            next_start_at=t("2026-01-02T09:00:00Z"),
        )
        self._last_stamp = max(self._last_stamp, t(_SEED_NOW))

    # ------------------------------------------------------------------ lookups

    def _organization(self, ref: str) -> Organization:
        for org in self._organizations.values():
            if ref in (org.id, org.name):
                return org
        raise FakeCoderError(404, _NOT_FOUND)

    def _user(self, ref: str) -> User:
        if ref == "me":
            return self._users[self._me_id]
        for user in self._users.values():
            if ref in (user.id, user.username):
                return user
        raise FakeCoderError(
            400,
            '"user" must be an existing uuid or username.',
            detail=f'queried user="{ref}"',
        )

    def _live_template(self, template_id: str) -> Template:
        template = self._templates.get(template_id)
        if template is None or template.deleted:
            raise FakeCoderError(404, _NOT_FOUND)
        return template

    def _version(self, version_id: str) -> TemplateVersion:
        version = self._versions.get(version_id)
        if version is None:
            raise FakeCoderError(404, _NOT_FOUND)
        return version

    def _workspace_by_id(self, workspace_id: str, *, include_deleted: bool = False) -> Workspace:
        workspace = self._workspaces.get(workspace_id)
        if workspace is None:
            raise FakeCoderError(404, _NOT_FOUND)
        if workspace.deleted and not include_deleted:
            raise FakeCoderError(
                410,
                f'Workspace "{workspace.id}" was deleted, you can view this workspace by '
                "specifying '?deleted=true' and trying again.",
            )
        return workspace

    def _find_workspace(self, ref: str) -> Workspace:
        """Resolve an id, ``owner/name`` or ``org.owner.name`` (non-deleted first)."""
        if ref in self._workspaces:
            return self._workspaces[ref]
        org_name: str | None = None
        if "/" in ref:
            owner, _, name = ref.partition("/")
        elif ref.count(".") == 2:
            org_name, owner, name = ref.split(".")
        else:
            raise KeyError(f"no workspace {ref!r} (use an id, 'owner/name' or 'org.owner.name')")
        candidates = [
            ws
            for ws in self._workspaces.values()
            if ws.name == name
            and self._users[ws.owner_id].username == owner
            and (org_name is None or self._organizations[ws.organization_id].name == org_name)
        ]
        candidates.sort(key=lambda ws: (ws.deleted, -ws.created_at))
        if not candidates:
            raise KeyError(f"no workspace {ref!r}")
        return candidates[0]

    def _find_template(self, ref: str) -> Template:
        """Resolve an id, ``org/name`` or ``org.name`` (non-deleted first)."""
        if ref in self._templates:
            return self._templates[ref]
        if "/" in ref:
            org_name, _, name = ref.partition("/")
        elif ref.count(".") == 1:
            org_name, name = ref.split(".")
        else:
            raise KeyError(f"no template {ref!r} (use an id, 'org/name' or 'org.name')")
        candidates = [
            t
            for t in self._templates.values()
            if t.name == name and self._organizations[t.organization_id].name == org_name
        ]
        candidates.sort(key=lambda t: (t.deleted, -t.created_at))
        if not candidates:
            raise KeyError(f"no template {ref!r}")
        return candidates[0]

    # ------------------------------------------------------------------ rendering

    def _template_json(self, template: Template) -> dict[str, Any]:
        org = self._organizations[template.organization_id]
        creator = self._users[template.created_by_id]
        owners = {
            ws.owner_id
            for ws in self._workspaces.values()
            if ws.template_id == template.id and not ws.deleted
        }
        stats = {"P50": None, "P95": None}
        return {
            "id": template.id,
            "created_at": format_time(template.created_at),
            "updated_at": format_time(template.updated_at),
            "organization_id": org.id,
            "organization_name": org.name,
            "organization_display_name": org.display_name,
            "organization_icon": org.icon,
            "name": template.name,
            "display_name": template.display_name,
            "provisioner": "terraform",
            "active_version_id": template.active_version_id,
            "active_user_count": len(owners),
            "build_time_stats": {
                "start": dict(stats),
                "stop": dict(stats),
                "delete": dict(stats),
            },
            "description": template.description,
            "deprecated": bool(template.deprecation_message),
            "deprecation_message": template.deprecation_message,
            "icon": template.icon,
            "default_ttl_ms": template.default_ttl_ms,
            "activity_bump_ms": template.activity_bump_ms,
            "autostop_requirement": {"days_of_week": [], "weeks": 1},
            "autostart_requirement": {
                "days_of_week": [
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                ]
            },
            "created_by_id": creator.id,
            "created_by_name": creator.username,
            "allow_user_autostart": True,
            "allow_user_autostop": True,
            "allow_user_cancel_workspace_jobs": False,
            "failure_ttl_ms": 0,
            "time_til_dormant_ms": 0,
            "time_til_dormant_autodelete_ms": 0,
            "require_active_version": False,
            "max_port_share_level": "owner",
            "cors_behavior": "simple",
            "use_classic_parameter_flow": False,
        }

    def _template_metadata(self, template_id: str | None) -> dict[str, Any]:
        template = self._templates.get(template_id or "")
        if template is None:
            return {
                "template_id": NIL_UUID,
                "template_name": "",
                "template_display_name": "",
                "template_icon": "",
            }
        return {
            "template_id": template.id,
            "template_name": template.name,
            "template_display_name": template.display_name,
            "template_icon": template.icon,
        }

    def _version_json(self, version: TemplateVersion) -> dict[str, Any]:
        creator = self._users[version.created_by_id]
        out: dict[str, Any] = {"id": version.id}
        if version.template_id is not None:
            out["template_id"] = version.template_id
        metadata = {"template_version_name": version.name}
        metadata.update(self._template_metadata(version.template_id))
        out.update(
            {
                "organization_id": version.organization_id,
                "created_at": format_time(version.created_at),
                "updated_at": format_time(version.updated_at),
                "name": version.name,
                "message": version.message,
                "job": version.job.render(
                    kind="template_version_import",
                    job_input={"template_version_id": version.id},
                    metadata=metadata,
                ),
                "readme": "",
                "created_by": {"id": creator.id, "username": creator.username},
                "archived": False,
                "has_external_agent": False,
            }
        )
        return out

    def _build_json(self, build: Build) -> dict[str, Any]:
        workspace = self._workspaces[build.workspace_id]
        owner = self._users[workspace.owner_id]
        initiator = self._users[build.initiator_id]
        version = self._versions[build.template_version_id]
        metadata = {"template_version_name": version.name}
        metadata.update(self._template_metadata(workspace.template_id))
        metadata.update({"workspace_id": workspace.id, "workspace_name": workspace.name})
        return {
            "id": build.id,
            "created_at": format_time(build.created_at),
            "updated_at": format_time(build.updated_at),
            "workspace_id": workspace.id,
            "workspace_name": workspace.name,
            "workspace_owner_id": owner.id,
            "workspace_owner_name": owner.username,
            "workspace_owner_avatar_url": owner.avatar_url,
            "template_version_id": version.id,
            "template_version_name": version.name,
            "build_number": build.build_number,
            "transition": build.transition,
            "initiator_id": initiator.id,
            "initiator_name": initiator.username,
            "job": build.job.render(
                kind="workspace_build",
                job_input={"workspace_build_id": build.id},
                metadata=metadata,
            ),
            "reason": "initiator",
            "resources": [],
            "deadline": format_optional_time(build.deadline),
            "max_deadline": None,
            "status": derive_workspace_status(build.transition, build.job.status),
            "daily_cost": 0,
            "template_version_preset_id": None,
        }

    def _workspace_json(self, workspace: Workspace) -> dict[str, Any]:
        owner = self._users[workspace.owner_id]
        org = self._organizations[workspace.organization_id]
        template = self._templates[workspace.template_id]
        build = self._builds[workspace.latest_build_id]
        out: dict[str, Any] = {
            "id": workspace.id,
            "created_at": format_time(workspace.created_at),
            "updated_at": format_time(workspace.updated_at),
            "owner_id": owner.id,
            "owner_name": owner.username,
            "owner_avatar_url": owner.avatar_url,
            "organization_id": org.id,
            "organization_name": org.name,
            "template_id": template.id,
            "template_name": template.name,
            "template_display_name": template.display_name,
            "template_icon": template.icon,
            "template_allow_user_cancel_workspace_jobs": False,
            "template_active_version_id": template.active_version_id,
            "template_require_active_version": False,
            "template_use_classic_parameter_flow": False,
            "latest_build": self._build_json(build),
            "latest_app_status": None,
            "outdated": build.template_version_id != template.active_version_id,
            "name": workspace.name,
        }
        if workspace.autostart_schedule:
            out["autostart_schedule"] = workspace.autostart_schedule
        if workspace.ttl_ms:
            out["ttl_ms"] = workspace.ttl_ms
        out.update(
            {
                "last_used_at": format_time(workspace.last_used_at),
                "deleting_at": None,
                "dormant_at": None,
                "health": {"healthy": True, "failing_agents": []},
                "automatic_updates": "never",
                "allow_renames": False,
                "favorite": False,
                "next_start_at": format_optional_time(workspace.next_start_at),
                "is_prebuild": False,
            }
        )
        return out

    def _user_json(self, user: User) -> dict[str, Any]:
        return user.to_json(sorted(self._organizations))

    # ------------------------------------------------------------------ builds

    def _set_job_status(self, build: Build, status: JobStatus, *, at: int | None = None) -> None:
        stamp = self._stamp(at)
        job = build.job
        job.status = status
        if status != "pending" and job.started_at is None:
            job.started_at = stamp
        if status in ("succeeded", "failed", "canceled"):
            job.completed_at = stamp
            if status == "failed" and not job.error:
                job.error = "workspace build failed"
        else:
            job.completed_at = None
        workspace = self._workspaces[build.workspace_id]
        build.deadline = None
        if status == "succeeded" and build.transition == "start" and workspace.ttl_ms:
            build.deadline = stamp + workspace.ttl_ms * 1000
        build.updated_at = stamp
        action: ChangeAction = "updated"
        if workspace.latest_build_id == build.id:
            workspace.updated_at = stamp
            if build.transition == "delete" and status == "succeeded":
                workspace.deleted = True
                action = "deleted"
        self._publish("workspace", workspace.id, action)

    def _check_version_buildable(self, version: TemplateVersion) -> None:
        status = version.job.status
        if status in ("pending", "running"):
            raise FakeCoderError(
                406,
                f"The provided template version is {status}. Wait for it to complete importing!",
            )
        if status in ("failed", "canceled"):
            raise FakeCoderError(
                400,
                f'The provided template version "{version.name}" has failed to import: '
                f'"{version.job.error}". You cannot build workspaces with it!',
            )

    def _create_build(
        self,
        workspace: Workspace,
        transition: BuildTransition,
        version: TemplateVersion,
        *,
        build_number: int,
    ) -> Build:
        stamp = self._stamp()
        org = self._organizations[workspace.organization_id]
        build = Build(
            id=_new_id(),
            workspace_id=workspace.id,
            build_number=build_number,
            transition=transition,
            template_version_id=version.id,
            initiator_id=self._me_id,
            created_at=stamp,
            updated_at=stamp,
            job=Job(
                id=_new_id(),
                created_at=stamp,
                status="pending",
                file_id=version.job.file_id,
                organization_id=org.id,
                initiator_id=self._me_id,
            ),
        )
        self._builds[build.id] = build
        workspace.latest_build_id = build.id
        workspace.updated_at = stamp
        if self.build_mode == "instant":
            build.job.started_at = stamp
            build.job.completed_at = stamp
            build.job.status = "succeeded"
            if transition == "start" and workspace.ttl_ms:
                build.deadline = stamp + workspace.ttl_ms * 1000
            if transition == "delete":
                workspace.deleted = True
        else:
            step = round(self.build_step_seconds * 1_000_000)
            build.schedule = [(stamp + step, "running"), (stamp + 2 * step, "succeeded")]
            self._scheduled[build.id] = build
        return build

    # ------------------------------------------------------------------ operations

    def _op_buildinfo(self) -> dict[str, Any]:
        return {
            "external_url": "https://github.com/coder/coder/tree/v2.30.0",
            "version": CODER_VERSION,
            "dashboard_url": "",
            "workspace_proxy": False,
            "agent_api_version": "2.0",
            "provisioner_api_version": "1.0",
            "upgrade_message": "",
            "deployment_id": "fake-coder",
            "telemetry": False,
        }

    def _op_list_templates(self, query: str) -> list[dict[str, Any]]:
        terms = parse_search_query(
            query,
            allowed=("organization", "exact_name", "name", "deprecated"),
            default_key="name",
            what="template",
        )
        items: list[tuple[str, str, Template]] = []
        for template in self._templates.values():
            if template.deleted:
                continue
            org = self._organizations[template.organization_id]
            if "organization" in terms and terms["organization"] not in (org.id, org.name):
                continue
            if "exact_name" in terms and template.name != terms["exact_name"]:
                continue
            if "name" in terms and terms["name"].lower() not in template.name.lower():
                continue
            if "deprecated" in terms and (
                bool(template.deprecation_message) != (terms["deprecated"].lower() == "true")
            ):
                continue
            items.append((org.name, template.name, template))
        items.sort(key=lambda item: (item[0], item[1]))
        return [self._template_json(template) for _, _, template in items]

    def _op_create_template(self, org_ref: str, body: dict[str, Any]) -> dict[str, Any]:
        org = self._organization(org_ref)
        name = validate_name(body.get("name"), tag="template_name")
        version_id = _optional_uuid(body, "template_version_id")
        display_name = _optional_str(body, "display_name") or ""
        description = _optional_str(body, "description") or ""
        icon = _optional_str(body, "icon") or ""
        if version_id is None:
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[
                    (
                        "template_version_id",
                        f'Validation failed for tag "required" with value: "{NIL_UUID}"',
                    )
                ],
            )
        for other in self._templates.values():
            if other.organization_id == org.id and other.name == name and not other.deleted:
                raise FakeCoderError(
                    409,
                    f'Template with name "{name}" already exists.',
                    validations=[("name", "This value is already in use and should be unique.")],
                )
        version = self._versions.get(version_id)
        if version is None:
            if not self.accept_unknown_template_versions:
                raise FakeCoderError(
                    404,
                    f'Template version "{version_id}" does not exist.',
                    validations=[("template_version_id", "Template version does not exist")],
                )
            version = self._register_version(org, version_id=version_id, data=build_zip({}))
        elif version.template_id is not None:
            raise FakeCoderError(
                400,
                f"Template version {version_id} is already part of a template",
                validations=[
                    ("template_version_id", "Template version is already part of a template")
                ],
            )
        stamp = self._stamp()
        template = Template(
            id=_new_id(),
            organization_id=org.id,
            name=name,
            display_name=display_name,
            description=description,
            icon=icon,
            active_version_id=version.id,
            created_at=stamp,
            updated_at=stamp,
            created_by_id=self._me_id,
        )
        self._templates[template.id] = template
        version.template_id = template.id
        version.updated_at = stamp
        self._publish("template_version", version.id, "updated")
        self._publish("template", template.id, "created")
        return self._template_json(template)

    def _register_version(
        self,
        org: Organization,
        *,
        version_id: str | None = None,
        data: bytes,
        status: JobStatus = "succeeded",
    ) -> TemplateVersion:
        file_id, _ = self._store_file(data, "application/zip")
        return self._new_version(
            org,
            template_id=None,
            file_id=file_id,
            name=None,
            message="",
            version_id=version_id,
            status=status,
        )

    def _new_version(
        self,
        org: Organization,
        *,
        template_id: str | None,
        file_id: str,
        name: str | None,
        message: str,
        version_id: str | None = None,
        status: JobStatus = "succeeded",
        pending_polls: int | None = None,
        error: str = "",
    ) -> TemplateVersion:
        stamp = self._stamp()
        job = Job(
            id=_new_id(),
            created_at=stamp,
            status=status,
            file_id=file_id,
            organization_id=org.id,
            initiator_id=self._me_id,
            error=error,
        )
        if status != "pending":
            job.started_at = stamp
        if status in ("succeeded", "failed", "canceled"):
            job.completed_at = stamp
        version = TemplateVersion(
            id=version_id or _new_id(),
            template_id=template_id,
            organization_id=org.id,
            name=name or f"template-version-{len(self._versions) + 1}",
            message=message,
            created_at=stamp,
            updated_at=stamp,
            created_by_id=self._me_id,
            job=job,
            pending_polls=pending_polls,
        )
        self._versions[version.id] = version
        self._publish("template_version", version.id, "created")
        return version

    def _op_patch_template(self, template_id: str, body: dict[str, Any]) -> _Response:
        template = self._live_template(template_id)
        template.meta_update_count += 1
        changes = {
            key: value
            for key in ("display_name", "description", "icon", "deprecation_message")
            if (value := _optional_str(body, key)) is not None
        }
        current = {
            "display_name": template.display_name,
            "description": template.description,
            "icon": template.icon,
            "deprecation_message": template.deprecation_message,
        }
        if all(current[key] == value for key, value in changes.items()):
            return _Response(304, content_type="")
        for key, value in changes.items():
            setattr(template, key, value)
        template.updated_at = self._stamp()
        self._publish("template", template.id, "updated")
        self._publish_template_workspaces(template)
        return _json_response(200, self._template_json(template))

    def _publish_template_workspaces(self, template: Template) -> None:
        for workspace in self._workspaces.values():
            if workspace.template_id == template.id and not workspace.deleted:
                self._publish("workspace", workspace.id, "updated")

    def _op_promote(self, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
        template = self._live_template(template_id)
        version_id = _optional_uuid(body, "id")
        if version_id is None:
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[
                    ("id", f'Validation failed for tag "required" with value: "{NIL_UUID}"')
                ],
            )
        version = self._version(version_id)
        if version.template_id is None:
            version.template_id = template.id
        elif version.template_id != template.id:
            raise FakeCoderError(
                400, "The provided template version doesn't belong to the specified template."
            )
        if version.job.status != "succeeded":
            raise FakeCoderError(
                403,
                "Only versions that have been built successfully can be promoted.",
                detail=f"Attempted to promote a version with a {version.job.status} build",
            )
        if self._ignored_promotions:
            self._ignored_promotions -= 1
        else:
            template.active_version_id = version.id
        template.updated_at = self._stamp()
        self._publish("template", template.id, "updated")
        self._publish_template_workspaces(template)
        return {"message": "Updated the active template version!"}

    def _op_delete_template(self, template_id: str) -> dict[str, Any]:
        template = self._live_template(template_id)
        if any(
            ws.template_id == template.id and not ws.deleted for ws in self._workspaces.values()
        ):
            raise FakeCoderError(
                400, "All workspaces must be deleted before a template can be removed."
            )
        template.deleted = True
        template.updated_at = self._stamp()
        self._publish("template", template.id, "deleted")
        return {"message": "Template has been deleted!"}

    def _op_create_version(self, org_ref: str, body: dict[str, Any]) -> dict[str, Any]:
        org = self._organization(org_ref)
        template_id = _optional_uuid(body, "template_id")
        file_id = _optional_uuid(body, "file_id")
        storage_method = _optional_str(body, "storage_method") or "file"
        name = _optional_str(body, "name")
        message = _optional_str(body, "message") or ""
        if storage_method != "file":
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[
                    (
                        "storage_method",
                        f'Validation failed for tag "oneof" with value: "{storage_method}"',
                    )
                ],
            )
        if file_id is None:
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[
                    (
                        "file_id",
                        f'Validation failed for tag "required_without" with value: "{NIL_UUID}"',
                    )
                ],
            )
        if template_id is not None:
            template = self._templates.get(template_id)
            if template is None or template.deleted:
                raise FakeCoderError(404, "Template does not exist.")
        if file_id not in self._files:
            raise FakeCoderError(404, "File not found.")
        status: JobStatus = "succeeded"
        pending_polls: int | None = None
        error = ""
        if self._next_version is not None:
            status, pending_polls, error = self._next_version
            self._next_version = None
        version = self._new_version(
            org,
            template_id=template_id,
            file_id=file_id,
            name=name,
            message=message,
            status=status,
            pending_polls=pending_polls,
            error=error,
        )
        return self._version_json(version)

    def _op_get_version(self, version_id: str) -> dict[str, Any]:
        version = self._version(version_id)
        if version.job.status == "pending" and version.pending_polls is not None:
            if version.pending_polls > 0:
                version.pending_polls -= 1
            else:
                stamp = self._stamp()
                version.job.status = "succeeded"
                version.job.started_at = version.job.started_at or stamp
                version.job.completed_at = stamp
                version.updated_at = stamp
                version.pending_polls = None
                self._publish("template_version", version.id, "updated")
        return self._version_json(version)

    def _store_file(self, data: bytes, content_type: str) -> tuple[str, bool]:
        digest = hashlib.sha256(data).hexdigest()
        existing = self._file_by_digest.get(digest)
        if existing is not None:
            return existing, False
        file = StoredFile(
            id=_new_id(),
            data=data,
            content_type=content_type,
            created_at=self._stamp(),
            creator_id=self._me_id,
        )
        self._files[file.id] = file
        self._file_by_digest[digest] = file.id
        self._publish("file", file.id, "created")
        return file.id, True

    def _op_upload(self, request: _Request) -> _Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/zip", "application/x-tar"):
            raise FakeCoderError(400, f'Unsupported content type header "{content_type}".')
        if not request.body:
            raise FakeCoderError(400, "File must not be empty.")
        file_id, created = self._store_file(request.body, content_type)
        return _json_response(201 if created else 200, {"hash": file_id})

    def _op_download(self, file_id: str, fmt: str) -> _Response:
        if fmt not in ("", "zip"):
            raise FakeCoderError(
                400, "Invalid format.", detail=f'format "{fmt}" is not supported; use "zip"'
            )
        file = self._files.get(file_id)
        if file is None:
            raise FakeCoderError(404, _NOT_FOUND)
        if fmt == "zip" and file.content_type == "application/x-tar":
            return _Response(200, tar_to_zip(file.data), "application/zip")
        return _Response(200, file.data, file.content_type)

    def _op_list_workspaces(self, query: str, limit: int, offset: int) -> dict[str, Any]:
        terms = parse_search_query(
            query,
            allowed=("owner", "name", "template", "status", "organization"),
            default_key="name",
            what="workspace",
        )
        if "status" in terms and terms["status"] not in WORKSPACE_STATUSES:
            raise FakeCoderError(
                400,
                "Invalid workspace search query.",
                validations=[("status", f'"{terms["status"]}" is not a valid workspace status')],
            )
        owner_ref = terms.get("owner")
        if owner_ref == "me":
            owner_ref = self._users[self._me_id].username
        items: list[tuple[tuple[str, str, str], Workspace]] = []
        for workspace in self._workspaces.values():
            if workspace.deleted:
                continue
            owner = self._users[workspace.owner_id]
            org = self._organizations[workspace.organization_id]
            template = self._templates[workspace.template_id]
            build = self._builds[workspace.latest_build_id]
            if owner_ref is not None and owner_ref not in (owner.username, owner.id):
                continue
            if "name" in terms and terms["name"].lower() not in workspace.name.lower():
                continue
            if "template" in terms and terms["template"] != template.name:
                continue
            if "organization" in terms and terms["organization"] not in (org.id, org.name):
                continue
            if "status" in terms and (
                derive_workspace_status(build.transition, build.job.status) != terms["status"]
            ):
                continue
            items.append(((org.name, owner.username, workspace.name), workspace))
        items.sort(key=lambda item: item[0])
        count = len(items)
        page = items[offset:] if limit <= 0 else items[offset : offset + limit]
        return {"workspaces": [self._workspace_json(ws) for _, ws in page], "count": count}

    def _op_workspace_by_owner(
        self, user_ref: str, name: str, include_deleted: bool
    ) -> dict[str, Any]:
        owner = self._user(user_ref)
        matches = [
            ws
            for ws in self._workspaces.values()
            if ws.owner_id == owner.id and ws.name == name and (include_deleted or not ws.deleted)
        ]
        if not matches:
            raise FakeCoderError(404, _NOT_FOUND)
        matches.sort(key=lambda ws: (not ws.deleted, ws.created_at))
        return self._workspace_json(matches[-1])

    def _op_create_workspace(
        self, user_ref: str, body: dict[str, Any], *, org_ref: str | None = None
    ) -> dict[str, Any]:
        owner = self._user(user_ref)
        org_from_path = self._organization(org_ref) if org_ref is not None else None
        name = validate_name(body.get("name"), tag="workspace_name")
        template_id = _optional_uuid(body, "template_id")
        version_id = _optional_uuid(body, "template_version_id")
        ttl_ms = _optional_int(body, "ttl_ms")
        schedule = _optional_str(body, "autostart_schedule")
        if (template_id is None) == (version_id is None):
            detail = "exactly one of template_id and template_version_id must be set"
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[("template_id", detail), ("template_version_id", detail)],
            )
        if version_id is not None:
            version = self._versions.get(version_id)
            if version is None:
                raise FakeCoderError(
                    400,
                    f'Template version "{version_id}" doesn\'t exist.',
                    validations=[("template_version_id", "template not found")],
                )
            if version.template_id is None:
                raise FakeCoderError(
                    400,
                    f"Template version {version_id} must be associated with a template.",
                    validations=[("template_version_id", "template version has no template")],
                )
            template_id = version.template_id
        assert template_id is not None
        template = self._templates.get(template_id)
        if template is None:
            raise FakeCoderError(
                400,
                f'Template "{template_id}" doesn\'t exist.',
                validations=[("template_id", "template not found")],
            )
        if template.deleted:
            raise FakeCoderError(404, f'Template "{template.name}" has been deleted!')
        if org_from_path is not None and template.organization_id != org_from_path.id:
            raise FakeCoderError(
                400,
                f'Template "{template.name}" is not in organization "{org_from_path.name}".',
            )
        if template.deprecation_message:
            raise FakeCoderError(
                400,
                f'Template "{template.name}" has been deprecated, and cannot be used to '
                "create a new workspace.",
                detail=template.deprecation_message,
            )
        if version_id is None:
            version_id = template.active_version_id
        version = self._version(version_id)
        if ttl_ms is not None and ttl_ms != 0 and ttl_ms < 60_000:
            raise FakeCoderError(
                400,
                "Invalid Workspace Time to Shutdown.",
                validations=[("ttl_ms", "time until shutdown must be at least one minute")],
            )
        if schedule is not None and schedule != "":
            fields = schedule.split()
            if fields and fields[0].startswith("CRON_TZ="):
                fields = fields[1:]
            if len(fields) != 5:
                raise FakeCoderError(
                    400,
                    "Invalid Autostart Schedule.",
                    validations=[("schedule", f"parse schedule: invalid cron spec {schedule!r}")],
                )
        for other in self._workspaces.values():
            if other.owner_id == owner.id and other.name == name and not other.deleted:
                raise FakeCoderError(
                    409,
                    f'Workspace "{name}" already exists.',
                    validations=[("name", "This value is already in use and should be unique.")],
                )
        self._check_version_buildable(version)
        stamp = self._stamp()
        workspace = Workspace(
            id=_new_id(),
            owner_id=owner.id,
            organization_id=template.organization_id,
            template_id=template.id,
            name=name,
            created_at=stamp,
            updated_at=stamp,
            last_used_at=stamp,
            latest_build_id="",
            ttl_ms=ttl_ms or None,
            autostart_schedule=schedule or None,
        )
        self._workspaces[workspace.id] = workspace
        self._create_build(workspace, "start", version, build_number=1)
        self._publish("workspace", workspace.id, "created")
        return self._workspace_json(workspace)

    def _op_create_build(self, workspace_id: str, body: dict[str, Any]) -> dict[str, Any]:
        workspace = self._workspace_by_id(workspace_id)
        transition = body.get("transition")
        if transition not in ("start", "stop", "delete"):
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[
                    (
                        "transition",
                        f'Validation failed for tag "oneof" with value: "{transition or ""}"',
                    )
                ],
            )
        version_id = _optional_uuid(body, "template_version_id")
        failures = self._build_failures.get(transition)
        if failures:
            status, message = failures.popleft()
            raise FakeCoderError(status, message)
        latest = self._builds[workspace.latest_build_id]
        if latest.job.status in ACTIVE_JOB_STATUSES:
            raise FakeCoderError(
                409,
                "A workspace build is already active.",
                detail="A workspace build is already active.",
            )
        if version_id is None:
            version_id = latest.template_version_id
        version = self._versions.get(version_id)
        if version is None:
            raise FakeCoderError(
                400,
                f'Template version "{version_id}" doesn\'t exist.',
                validations=[("template_version_id", "template version not found")],
            )
        if version.template_id != workspace.template_id:
            raise FakeCoderError(
                400, "The provided template version doesn't belong to the specified template."
            )
        self._check_version_buildable(version)
        self._build_transitions.setdefault(workspace.id, []).append(transition)
        build = self._create_build(
            workspace, transition, version, build_number=latest.build_number + 1
        )
        self._publish("workspace", workspace.id, "deleted" if workspace.deleted else "updated")
        return self._build_json(build)

    # ------------------------------------------------------------------ routing

    def _build_routes(self) -> list[tuple[str, tuple[str, ...], _Handler, bool]]:
        """(method, path segments with ``{param}`` holes, handler, needs auth)."""
        spec: list[tuple[str, str, _Handler, bool]] = [
            ("GET", "buildinfo", self._h_buildinfo, False),
            ("GET", "organizations", self._h_list_organizations, True),
            ("GET", "organizations/{org}", self._h_get_organization, True),
            ("GET", "organizations/{org}/templates/{name}", self._h_template_by_name, True),
            ("POST", "organizations/{org}/templates", self._h_create_template, True),
            ("POST", "organizations/{org}/templateversions", self._h_create_version, True),
            (
                "POST",
                "organizations/{org}/members/{user}/workspaces",
                self._h_create_workspace_in_org,
                True,
            ),
            ("GET", "templates", self._h_list_templates, True),
            ("GET", "templates/{id}", self._h_get_template, True),
            ("PATCH", "templates/{id}", self._h_patch_template, True),
            ("DELETE", "templates/{id}", self._h_delete_template, True),
            ("PATCH", "templates/{id}/versions", self._h_promote, True),
            ("GET", "templateversions/{id}", self._h_get_version, True),
            ("POST", "files", self._h_upload, True),
            ("GET", "files/{id}", self._h_download, True),
            ("GET", "users/{user}", self._h_get_user, True),
            ("GET", "users/{user}/workspace/{name}", self._h_workspace_by_owner, True),
            ("POST", "users/{user}/workspaces", self._h_create_workspace, True),
            ("GET", "workspaces", self._h_list_workspaces, True),
            ("GET", "workspaces/{id}", self._h_get_workspace, True),
            ("POST", "workspaces/{id}/builds", self._h_create_build, True),
            ("GET", "workspaces/{id}/watch", self._h_watch_workspace, True),
            ("GET", "workspacebuilds/{id}", self._h_get_build, True),
        ]
        return [
            (method, tuple(path.split("/")), handler, auth) for method, path, handler, auth in spec
        ]

    def _match(
        self, method: str, path: str
    ) -> tuple[_Handler, dict[str, str], bool] | FakeCoderError:
        prefix = "/api/v2/"
        if not path.startswith(prefix):
            return FakeCoderError(404, "Route not found.")
        segments = tuple(
            urllib.parse.unquote(s) for s in path[len(prefix) :].rstrip("/").split("/")
        )
        method_mismatch = False
        for route_method, pattern, handler, auth in self._routes:
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for part, segment in zip(pattern, segments, strict=True):
                if part.startswith("{"):
                    if not segment:
                        break
                    params[part[1:-1]] = segment
                elif part != segment:
                    break
            else:
                if route_method != method:
                    method_mismatch = True
                    continue
                return handler, params, auth
        if method_mismatch:
            return FakeCoderError(405, "Method not allowed.")
        return FakeCoderError(404, "Route not found.")

    def _authenticated(self, request: _Request) -> None:
        token = request.headers.get("coder-session-token")
        if token is None:
            cookies = request.headers.get("cookie", "")
            for part in cookies.split(";"):
                key, _, value = part.strip().partition("=")
                if key == "coder_session_token":
                    token = value
        if token is None:
            token = request.query.get("coder_session_token")
        if not token:
            raise FakeCoderError(
                401, 'Cookie "coder_session_token" or query parameter must be provided.'
            )
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            # coderd splits "<id>-<secret>": a known id with a wrong secret says so.
            key_id = token.partition("-")[0]
            known_id = bool(key_id) and key_id == self.token.partition("-")[0]
            raise FakeCoderError(
                401,
                _SIGNED_OUT,
                detail="API key secret is invalid." if known_id else "API key is invalid.",
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (``http``, ``websocket`` and ``lifespan`` scopes)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"FakeCoder cannot serve ASGI scope type {scope['type']!r}")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request = self._request_from_scope(scope, bytes(body))
        self.advance()
        try:
            matched = self._match(request.method, request.path)
            if isinstance(matched, FakeCoderError):
                raise matched
            handler, params, auth = matched
            if auth:
                self._authenticated(request)
            result = handler(request, **params)
        except FakeCoderError as exc:
            result = _json_response(exc.status, exc.to_body())
        if isinstance(result, _Stream):
            await result.run(receive, send)
        else:
            await self._send_response(send, result)

    @staticmethod
    def _request_from_scope(scope: Scope, body: bytes) -> _Request:
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        query = {
            key: values[0]
            for key, values in urllib.parse.parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ).items()
        }
        return _Request(scope.get("method", "GET").upper(), scope["path"], query, headers, body)

    async def _send_response(self, send: Send, response: _Response) -> None:
        headers = [(b"content-length", str(len(response.body)).encode())]
        if response.content_type:
            headers.append((b"content-type", response.content_type.encode()))
        headers.extend((k.encode(), v.encode()) for k, v in response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ handlers

    def _h_buildinfo(self, request: _Request) -> _Response:
        return _json_response(200, self._op_buildinfo())

    def _h_list_organizations(self, request: _Request) -> _Response:
        orgs = sorted(self._organizations.values(), key=lambda o: o.created_at)
        return _json_response(200, [org.to_json() for org in orgs])

    def _h_get_organization(self, request: _Request, org: str) -> _Response:
        return _json_response(200, self._organization(org).to_json())

    def _h_template_by_name(self, request: _Request, org: str, name: str) -> _Response:
        organization = self._organization(org)
        for template in self._templates.values():
            if (
                template.organization_id == organization.id
                and template.name == name
                and not template.deleted
            ):
                return _json_response(200, self._template_json(template))
        raise FakeCoderError(404, _NOT_FOUND)

    def _h_create_template(self, request: _Request, org: str) -> _Response:
        return _json_response(201, self._op_create_template(org, request.json_object()))

    def _h_create_version(self, request: _Request, org: str) -> _Response:
        return _json_response(201, self._op_create_version(org, request.json_object()))

    def _h_list_templates(self, request: _Request) -> _Response:
        return _json_response(200, self._op_list_templates(request.query.get("q", "")))

    def _h_get_template(self, request: _Request, id: str) -> _Response:
        return _json_response(200, self._template_json(self._live_template(parse_uuid_param(id))))

    def _h_patch_template(self, request: _Request, id: str) -> _Response:
        template_id = parse_uuid_param(id)
        return self._op_patch_template(template_id, request.json_object())

    def _h_delete_template(self, request: _Request, id: str) -> _Response:
        return _json_response(200, self._op_delete_template(parse_uuid_param(id)))

    def _h_promote(self, request: _Request, id: str) -> _Response:
        return _json_response(200, self._op_promote(parse_uuid_param(id), request.json_object()))

    def _h_get_version(self, request: _Request, id: str) -> _Response:
        return _json_response(200, self._op_get_version(parse_uuid_param(id)))

    def _h_upload(self, request: _Request) -> _Response:
        return self._op_upload(request)

    def _h_download(self, request: _Request, id: str) -> _Response:
        return self._op_download(parse_uuid_param(id), request.query.get("format", ""))

    def _h_get_user(self, request: _Request, user: str) -> _Response:
        return _json_response(200, self._user_json(self._user(user)))

    def _h_workspace_by_owner(self, request: _Request, user: str, name: str) -> _Response:
        include_deleted = request.query.get("include_deleted", "false").lower() == "true"
        return _json_response(200, self._op_workspace_by_owner(user, name, include_deleted))

    def _h_create_workspace(self, request: _Request, user: str) -> _Response:
        return _json_response(201, self._op_create_workspace(user, request.json_object()))

    def _h_create_workspace_in_org(self, request: _Request, org: str, user: str) -> _Response:
        body = request.json_object()
        return _json_response(201, self._op_create_workspace(user, body, org_ref=org))

    def _h_list_workspaces(self, request: _Request) -> _Response:
        limit = self._int_query(request, "limit")
        offset = self._int_query(request, "offset")
        return _json_response(
            200, self._op_list_workspaces(request.query.get("q", ""), limit, offset)
        )

    @staticmethod
    def _int_query(request: _Request, key: str) -> int:
        raw = request.query.get(key, "")
        if not raw:
            return 0
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            raise FakeCoderError(
                400,
                "Query parameters have invalid values.",
                validations=[(key, f"Query param {key!r} must be a valid non-negative integer")],
            )
        return value

    def _h_get_workspace(self, request: _Request, id: str) -> _Response:
        include = request.query.get("include_deleted", request.query.get("deleted", "false"))
        workspace = self._workspace_by_id(parse_uuid_param(id), include_deleted=include == "true")
        return _json_response(200, self._workspace_json(workspace))

    def _h_create_build(self, request: _Request, id: str) -> _Response:
        return _json_response(
            201, self._op_create_build(parse_uuid_param(id), request.json_object())
        )

    def _h_get_build(self, request: _Request, id: str) -> _Response:
        build = self._builds.get(parse_uuid_param(id))
        if build is None:
            raise FakeCoderError(404, _NOT_FOUND)
        return _json_response(200, self._build_json(build))

    def _h_watch_workspace(self, request: _Request, id: str) -> _Stream:
        workspace = self._workspace_by_id(parse_uuid_param(id))
        subscription = self.subscribe()  # before the first frame: no change is missed

        async def run(receive: Receive, send: Send) -> None:
            with subscription:
                await self._stream_workspace(workspace, subscription, receive, send)

        return _Stream(run)

    async def _pump_workspace_events(
        self,
        workspace: Workspace,
        changes: FakeCoderChanges,
        emit: Callable[[str, dict[str, Any] | None], Awaitable[None]],
    ) -> None:
        """Emit ping, the current workspace, then one ``data`` per change, with heartbeats.

        Returns when the subscription ends (`FakeCoder.close()`).
        """
        await emit("ping", None)
        await emit("data", self._workspace_json(workspace))
        next_ping = anyio.current_time() + self.heartbeat_seconds
        while True:
            change: FakeCoderChange | None = None
            with anyio.move_on_after(max(0.0, next_ping - anyio.current_time())) as scope:
                try:
                    change = await changes.__anext__()
                except StopAsyncIteration:
                    return
            if scope.cancelled_caught or change is None:
                await emit("ping", None)
                next_ping = anyio.current_time() + self.heartbeat_seconds
            elif change.kind == "workspace" and change.id == workspace.id:
                # Template changes are also published for each of its workspaces.
                await emit("data", self._workspace_json(workspace))

    async def _stream_workspace(
        self, workspace: Workspace, changes: FakeCoderChanges, receive: Receive, send: Send
    ) -> None:
        """Send Coder's SSE workspace watch: ping, current state, one frame per change."""
        disconnected = False

        async def emit(event: str, data: dict[str, Any] | None) -> None:
            frame = b"event: " + event.encode() + b"\n"
            if data is not None:
                frame += b"data: " + go_json(data).encode() + b"\n"
            await send({"type": "http.response.body", "body": frame + b"\n", "more_body": True})

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    (b"connection", b"keep-alive"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                nonlocal disconnected
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected = True
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            await self._pump_workspace_events(workspace, changes, emit)
            tg.cancel_scope.cancel()
        if not disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``GET /api/v2/workspaces/{id}/watch-ws`` (one-way JSON messages)."""
        if (await receive())["type"] != "websocket.connect":
            return
        request = self._request_from_scope(scope, b"")
        self.advance()
        try:
            prefix, suffix = "/api/v2/workspaces/", "/watch-ws"
            path = request.path
            workspace_ref = path[len(prefix) : -len(suffix)]
            if not (path.startswith(prefix) and path.endswith(suffix)) or "/" in workspace_ref:
                raise FakeCoderError(404, "Route not found.")
            self._authenticated(request)
            workspace = self._workspace_by_id(parse_uuid_param(workspace_ref))
        except FakeCoderError as exc:
            if "websocket.http.response" in scope.get("extensions", {}):
                body = go_json(exc.to_body()).encode() + b"\n"
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": exc.status,
                        "headers": [
                            (b"content-type", _JSON_TYPE.encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": exc.message})
            return
        closed_by_client = False
        with self.subscribe() as changes:
            await send({"type": "websocket.accept"})

            async def emit(event: str, data: dict[str, Any] | None) -> None:
                text = go_json({"type": event, "data": data})
                await send({"type": "websocket.send", "text": text})

            async with anyio.create_task_group() as tg:

                async def watch_client() -> None:
                    nonlocal closed_by_client
                    message = await receive()
                    closed_by_client = True
                    if message["type"] == "websocket.receive":
                        # The stream is one-way: a client message is a protocol error.
                        await send({"type": "websocket.close", "code": 1002})
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_client)
                await self._pump_workspace_events(workspace, changes, emit)
                tg.cancel_scope.cancel()
        if not closed_by_client:
            await send({"type": "websocket.close", "code": 1000})

    # ------------------------------------------------------------------ knobs

    def fail_next_build(
        self,
        transition: BuildTransition,
        *,
        status: int = 500,
        message: str = "An internal server error occurred.",
    ) -> None:
        """Make the next ``POST /workspaces/{id}/builds`` of *transition* fail.

        The request answers *status* with ``{"message": message}`` and changes
        nothing.  Calls queue up: each one fails one later build of that transition.
        """
        self._build_failures.setdefault(transition, collections.deque()).append((status, message))

    def ignore_next_promotion(self, times: int = 1) -> None:
        """Make the next *times* ``PATCH /templates/{id}/versions`` answer 200 without
        changing ``active_version_id`` (``updated_at`` still moves)."""
        self._ignored_promotions += times

    def set_next_template_version(
        self, status: JobStatus = "succeeded", *, pending_polls: int | None = None, error: str = ""
    ) -> None:
        """Decide the import job of the next created template version (one shot).

        Args:
            status: its initial job status (default ``succeeded``).
            pending_polls: with ``status="pending"``, the number of
                ``GET /templateversions/{id}`` answers that still say ``pending``
                before the import turns ``succeeded``; ``None`` keeps it pending.
            error: the job's ``error`` text (for ``failed``).
        """
        if status == "failed" and not error:
            error = "template import failed"
        self._next_version = (status, pending_polls, error)

    # ------------------------------------------------------------------ inspectors

    def has_template(self, ref: str) -> bool:
        """Tell whether template *ref* (id, ``org/name`` or ``org.name``) exists, undeleted."""
        self.advance()
        try:
            return not self._find_template(ref).deleted
        except KeyError:
            return False

    def has_workspace(self, ref: str) -> bool:
        """Tell whether workspace *ref* (id, ``owner/name``, ``org.owner.name``) exists,
        not deleted (a workspace whose delete build succeeded is deleted)."""
        self.advance()
        try:
            return not self._find_workspace(ref).deleted
        except KeyError:
            return False

    def file_count(self) -> int:
        """Return how many distinct files were uploaded (seed included)."""
        return len(self._files)

    def template_version_count(self) -> int:
        """Return how many template versions exist (seed included)."""
        return len(self._versions)

    def template_active_version_id(self, ref: str) -> str:
        """Return template *ref*'s ``active_version_id``.

        Raises:
            KeyError: no such template.
        """
        return self._find_template(ref).active_version_id

    def template_active_source_zip(self, ref: str) -> bytes:
        """Return the source archive of template *ref*'s active version (as stored)."""
        version = self._versions[self._find_template(ref).active_version_id]
        return self._files[version.job.file_id].data

    def template_meta_update_count(self, ref: str) -> int:
        """Return how many ``PATCH /templates/{id}`` requests template *ref* received."""
        return self._find_template(ref).meta_update_count

    def workspace_latest_build_template_version_id(self, ref: str) -> str:
        """Return the template version id of workspace *ref*'s latest build."""
        self.advance()
        return self._builds[self._find_workspace(ref).latest_build_id].template_version_id

    def workspace_status(self, ref: str) -> str:
        """Return ``latest_build.status`` of workspace *ref* (e.g. ``"running"``)."""
        self.advance()
        build = self._builds[self._find_workspace(ref).latest_build_id]
        return derive_workspace_status(build.transition, build.job.status)

    def build_transitions(self, ref: str) -> list[str]:
        """Return the transitions requested through ``POST /workspaces/{id}/builds``
        for workspace *ref*, oldest first (the start build of a create is not listed)."""
        return list(self._build_transitions.get(self._find_workspace(ref).id, ()))

    def workspace_json(self, ref: str) -> dict[str, Any]:
        """Return workspace *ref* as the API renders it (deleted ones included)."""
        self.advance()
        return self._workspace_json(self._find_workspace(ref))

    def template_json(self, ref: str) -> dict[str, Any]:
        """Return template *ref* as the API renders it (deleted ones included)."""
        return self._template_json(self._find_template(ref))

    def template_version_json(self, version_id: str) -> dict[str, Any]:
        """Return template version *version_id* as the API renders it (no poll counted)."""
        return self._version_json(self._versions[version_id])

    # ------------------------------------------------------------------ out of band

    def complete_builds(self) -> int:
        """Finish every active build now (job ``succeeded``), as a provisioner would.

        Returns how many builds were completed.  Each completion is published.
        """
        self.advance()
        completed = 0
        for build in list(self._builds.values()):
            if build.job.status in ACTIVE_JOB_STATUSES:
                build.schedule.clear()
                self._scheduled.pop(build.id, None)
                self._set_job_status(build, "succeeded")
                completed += 1
        return completed

    def set_workspace_status(self, ref: str, status: str, *, error: str = "") -> None:
        """Force workspace *ref*'s latest build into the state giving *status*.

        E.g. ``"stopped"`` (transition stop, job succeeded), ``"starting"`` (start,
        running), ``"failed"`` (job failed with *error*), ``"deleted"`` (the workspace
        is then deleted; any other status brings a deleted workspace back, as editing
        Coder's database would).  Scheduled ``async`` steps of that build are dropped.

        Raises:
            KeyError: no such workspace.
            ValueError: an unknown *status*.
        """
        self.advance()
        workspace = self._find_workspace(ref)
        build = self._builds[workspace.latest_build_id]
        transition, job_status = job_for_workspace_status(status, build.transition)
        build.transition = transition  # type: ignore[assignment]
        build.schedule.clear()
        self._scheduled.pop(build.id, None)
        build.job.error = error if job_status == "failed" else ""
        if job_status == "pending":
            build.job.started_at = None
        workspace.deleted = False  # deleted again only if the status is "deleted"
        self._set_job_status(build, job_status)

    def start_build_out_of_band(
        self, ref: str, transition: BuildTransition, *, complete: bool = False
    ) -> str:
        """Create a build of *transition* on workspace *ref* as a Coder user would.

        The build follows the fake's *build_mode* unless *complete* finishes it at
        once.  Unlike the HTTP endpoint, an active build does not block it (the active
        one is abandoned) and no fault injection applies.  Returns the build id.
        """
        self.advance()
        workspace = self._find_workspace(ref)
        if workspace.deleted:
            raise FakeCoderError(410, f'Workspace "{workspace.id}" was deleted.')
        latest = self._builds[workspace.latest_build_id]
        latest.schedule.clear()
        self._scheduled.pop(latest.id, None)
        version = self._versions[latest.template_version_id]
        build = self._create_build(
            workspace, transition, version, build_number=latest.build_number + 1
        )
        self._publish("workspace", workspace.id, "deleted" if workspace.deleted else "updated")
        if complete and build.job.status in ACTIVE_JOB_STATUSES:
            build.schedule.clear()
            self._scheduled.pop(build.id, None)
            self._set_job_status(build, "succeeded")
        return build.id

    def delete_workspace_out_of_band(self, ref: str, *, complete: bool = True) -> None:
        """Delete workspace *ref* as a Coder user would (a ``delete`` build).

        With *complete* (the default) the delete build succeeds at once, so the
        workspace vanishes from lists; otherwise it follows *build_mode*.
        """
        self.start_build_out_of_band(ref, "delete", complete=complete)

    def create_workspace_out_of_band(
        self,
        owner: str,
        name: str,
        *,
        template: str = "acme/starter-template",
        ttl_ms: int | None = None,
        autostart_schedule: str | None = None,
    ) -> str:
        """Create a workspace as a Coder user would; returns its id.

        Raises:
            FakeCoderError: as ``POST /users/{owner}/workspaces`` would answer.
            KeyError: no such template.
        """
        self.advance()
        body: dict[str, Any] = {"name": name, "template_id": self._find_template(template).id}
        if ttl_ms is not None:
            body["ttl_ms"] = ttl_ms
        if autostart_schedule is not None:
            body["autostart_schedule"] = autostart_schedule
        return str(self._op_create_workspace(owner, body)["id"])

    def create_template_out_of_band(
        self,
        organization: str,
        name: str,
        *,
        files: dict[str, bytes] | None = None,
        display_name: str = "",
        description: str = "",
        icon: str = "",
    ) -> str:
        """Create a template (with a succeeded version of *files*) and return its id.

        Raises:
            FakeCoderError: as ``POST /organizations/{org}/templates`` would answer.
        """
        self.advance()
        org = self._organization(organization)
        version = self._register_version(org, data=build_zip(files or {"main.tf": _MAIN_TF}))
        body = {
            "name": name,
            "template_version_id": version.id,
            "display_name": display_name,
            "description": description,
            "icon": icon,
        }
        return str(self._op_create_template(org.id, body)["id"])

    def edit_template(
        self,
        ref: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        icon: str | None = None,
        deprecation_message: str | None = None,
    ) -> None:
        """Change template *ref*'s metadata as the Coder UI would (``updated_at`` moves).

        A non-empty *deprecation_message* deprecates the template; ``""`` undeprecates.
        """
        self.advance()
        template = self._find_template(ref)
        for key, value in (
            ("display_name", display_name),
            ("description", description),
            ("icon", icon),
            ("deprecation_message", deprecation_message),
        ):
            if value is not None:
                setattr(template, key, value)
        template.updated_at = self._stamp()
        self._publish("template", template.id, "updated")
        self._publish_template_workspaces(template)

    def delete_template_out_of_band(self, ref: str) -> None:
        """Soft-delete template *ref* (Coder's rules: no live workspace may use it).

        Raises:
            FakeCoderError: 400 when a workspace still uses it.
        """
        self.advance()
        self._op_delete_template(self._find_template(ref).id)

    def touch_workspace(self, ref: str) -> None:
        """Mark workspace *ref* as used now (``last_used_at`` and ``updated_at`` move)."""
        self.advance()
        workspace = self._find_workspace(ref)
        stamp = self._stamp()
        workspace.last_used_at = stamp
        workspace.updated_at = stamp
        self._publish("workspace", workspace.id, "updated")
