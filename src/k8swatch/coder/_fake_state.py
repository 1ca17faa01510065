"""The whole state of a fake Coder deployment, driven by an injectable clock (pure, no I/O).

`FakeCoderState` composes the shared `Store` with the two sets of operations,
`TemplateOps` (templates, versions, files) and `WorkspaceOps` (workspaces, builds).
Nothing here awaits or touches anyio: the ASGI app and the change feed call in, and
time only moves when the clock says so and someone calls `FakeCoderState.advance`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import attrs

from ._fake_model import (
    Build,
    FakeCoderChange,
    Job,
    Organization,
    StoredFile,
    Template,
    TemplateVersion,
    User,
    Workspace,
    build_zip,
    parse_time,
)
from ._fake_store import Store
from ._fake_templates import MAIN_TF, TemplateOps
from ._fake_workspaces import BuildMode, WorkspaceOps

__all__ = ["FakeCoderState"]

_ADMIN_ID = "ad000000-1111-4222-8333-444455556666"
_SEED_ORG_ID = "5f1c2b7e-8d3a-4c6f-9b21-0a7e4d3c2b10"
_SEED_NOW = "2026-01-01T12:00:00Z"


@attrs.define
class FakeCoderState:
    """The records and rules of a fake Coder, without I/O.

    Build one with `create`; its only user is then ``admin`` (the token's user, ``me``).
    Operations raise [`FakeCoderError`][k8swatch.coder.FakeCoderError] where Coder
    would refuse; every mutation is told to the store's listeners as a
    [`FakeCoderChange`][k8swatch.coder.FakeCoderChange].

    Attributes:
        store: the records, the clock and the change listeners.
        templates: templates, template versions and files.
        workspaces: workspaces, builds and the ``async`` build schedule.
    """

    store: Store
    templates: TemplateOps
    workspaces: WorkspaceOps

    @classmethod
    def create(
        cls,
        clock: Callable[[], float],
        *,
        build_mode: BuildMode = "instant",
        build_step_seconds: float = 1.0,
        accept_unknown_template_versions: bool = True,
    ) -> FakeCoderState:
        """Return the state of a deployment with only the ``admin`` user.

        *clock* returns the current time as POSIX seconds; the other arguments are
        those of [`FakeCoder`][k8swatch.coder.FakeCoder].
        """
        store = Store(clock)
        _create_admin(store)
        return cls(
            store,
            TemplateOps(store, accept_unknown_template_versions=accept_unknown_template_versions),
            WorkspaceOps(store, build_mode=build_mode, build_step_seconds=build_step_seconds),
        )

    def add_listener(self, listener: Callable[[FakeCoderChange], None]) -> None:
        """Call *listener* with every later mutation, in order."""
        self.store.listeners.append(listener)

    def advance(self) -> int:
        """Apply every ``async`` build step that is due by the clock; return how many."""
        return self.workspaces.advance()

    def seconds_until_next_step(self) -> float | None:
        """Seconds until the next ``async`` build step is due, or ``None`` if none is."""
        return self.workspaces.seconds_until_next_step()

    def seed_demo_data(self) -> None:
        """Create the demo world of ``coder-fixtures/`` (idempotent)."""
        if _SEED_ORG_ID not in self.store.organizations:
            _seed(self.store)


def _create_admin(store: Store) -> None:
    admin = User(
        id=_ADMIN_ID,
        username="admin",
        name="Admin",
        email="admin@example.com",
        avatar_url="",
        created_at=parse_time("2025-12-31T12:00:00Z"),
        updated_at=parse_time("2025-12-31T12:00:00Z"),
        roles=[{"name": "owner", "display_name": "Owner", "organization_id": ""}],
    )
    store.users[admin.id] = admin
    store.me_id = admin.id


def _seed(store: Store) -> None:
    t = parse_time
    org = Organization(
        id=_SEED_ORG_ID,
        name="acme",
        display_name="Acme",
        description="Acme Corp engineering",
        icon="",
        created_at=t("2025-12-31T12:00:00Z"),
        updated_at=t("2026-01-01T11:00:00Z"),
        is_default=True,
    )
    store.organizations[org.id] = org
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
    store.users[alice.id] = alice
    archive = build_zip({"main.tf": MAIN_TF, "binary.dat": bytes([0x80, 0x81, 0x82])})
    file = StoredFile(
        id="f11e0000-3c5d-4e7f-9a1b-2c3d4e5f6a40",
        data=archive,
        content_type="application/zip",
        created_at=t("2026-01-01T00:00:00Z"),
        creator_id=store.me_id,
    )
    store.files[file.id] = file
    store.file_by_digest[hashlib.sha256(archive).hexdigest()] = file.id
    template_id = "7e3a9c10-2b4d-4f6a-8c1e-5d7f9a0b1c20"
    version = TemplateVersion(
        id="9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30",
        template_id=template_id,
        organization_id=org.id,
        name="starter-template-v1",
        message="initial version",
        created_at=t("2026-01-01T00:00:00Z"),
        updated_at=t("2026-01-01T00:00:41Z"),
        created_by_id=store.me_id,
        job=Job(
            id="10b00003-3c4d-4e5f-8a61-7c8d9e0f1a23",
            created_at=t("2026-01-01T00:00:00Z"),
            started_at=t("2026-01-01T00:00:01Z"),
            completed_at=t("2026-01-01T00:00:40Z"),
            status="succeeded",
            file_id=file.id,
            organization_id=org.id,
            initiator_id=store.me_id,
        ),
    )
    store.versions[version.id] = version
    store.templates[template_id] = Template(
        id=template_id,
        organization_id=org.id,
        name="starter-template",
        display_name="Starter Template",
        description="Default development template",
        icon="/icons/starter.png",
        active_version_id=version.id,
        created_at=t("2026-01-01T00:00:00Z"),
        updated_at=t("2026-01-01T10:00:00Z"),
        created_by_id=store.me_id,
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
    store.builds[build.id] = build
    store.workspaces[workspace_id] = Workspace(
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
    store.last_stamp = max(store.last_stamp, t(_SEED_NOW))
