"""Workspaces and their builds in the fake Coder: Coder's rules, clock-driven (pure, no I/O).

Builds are ``instant`` (terminal when created) or ``async``: an ``async`` build keeps a
schedule of (due time, job status) steps, and `WorkspaceOps.advance` applies the ones
the store's clock says are due.  Nothing here waits; the caller decides when to advance.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._fake_model import (
    ACTIVE_JOB_STATUSES,
    NOT_FOUND,
    WORKSPACE_STATUSES,
    Build,
    BuildTransition,
    ChangeAction,
    FakeCoderError,
    Job,
    JobStatus,
    TemplateVersion,
    Workspace,
    WorkspaceStatus,
    job_for_workspace_status,
    optional_int,
    optional_str,
    optional_uuid,
    parse_search_query,
    validate_name,
    workspace_status,
)
from ._fake_store import Store, new_id

__all__ = ["BuildMode", "WorkspaceOps"]

BuildMode = Literal["instant", "async"]


@attrs.define
class WorkspaceOps:
    """What the fake does to workspaces and builds, and when ``async`` builds progress.

    Attributes:
        store: the shared records.
        build_mode: ``"instant"`` or ``"async"``, for builds created from now on.
        build_step_seconds: the duration of each ``async`` build step.
        scheduled: the builds with ``async`` steps still to apply, by id.
        build_transitions: per workspace id, the transitions requested through
            ``POST /workspaces/{id}/builds``.
        build_failures: per transition, the (status, message) answers queued by
            `fail_next_build`.
    """

    store: Store
    build_mode: BuildMode = "instant"
    build_step_seconds: float = 1.0
    scheduled: dict[str, Build] = attrs.field(factory=lambda: dict[str, Build]())
    build_transitions: dict[str, list[str]] = attrs.field(factory=lambda: dict[str, list[str]]())
    build_failures: dict[str, collections.deque[tuple[int, str]]] = attrs.field(
        factory=lambda: dict[str, collections.deque[tuple[int, str]]]()
    )

    # ------------------------------------------------------------------ clock

    def advance(self) -> int:
        """Apply every ``async`` build step that is due by the clock; return how many."""
        if not self.scheduled:
            return 0
        now = self.store.now_us()
        applied = 0
        for build in sorted(self.scheduled.values(), key=lambda b: b.schedule[0][0]):
            while build.schedule and build.schedule[0][0] <= now:
                due, status = build.schedule.pop(0)
                self.set_job_status(build, status, at=due)
                applied += 1
            if not build.schedule:
                self.scheduled.pop(build.id, None)
        return applied

    def seconds_until_next_step(self) -> float | None:
        """Seconds until the next ``async`` build step is due, or ``None`` if none is."""
        if not self.scheduled:
            return None
        due = min(build.schedule[0][0] for build in self.scheduled.values())
        return max(0.0, (due - self.store.now_us()) / 1_000_000)

    # ------------------------------------------------------------------ builds

    def set_job_status(self, build: Build, status: JobStatus, *, at: int | None = None) -> None:
        """Move *build*'s job to *status* (stamped *at* or now) and publish the change."""
        stamp = self.store.stamp(at)
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
        workspace = self.store.workspaces[build.workspace_id]
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
        self.store.publish("workspace", workspace.id, action)

    def _unschedule(self, build: Build) -> None:
        build.schedule.clear()
        self.scheduled.pop(build.id, None)

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

    def _new_build(
        self,
        workspace: Workspace,
        transition: BuildTransition,
        version: TemplateVersion,
        *,
        build_number: int,
    ) -> Build:
        store = self.store
        stamp = store.stamp()
        org = store.organizations[workspace.organization_id]
        build = Build(
            id=new_id(),
            workspace_id=workspace.id,
            build_number=build_number,
            transition=transition,
            template_version_id=version.id,
            initiator_id=store.me_id,
            created_at=stamp,
            updated_at=stamp,
            job=Job(
                id=new_id(),
                created_at=stamp,
                status="pending",
                file_id=version.job.file_id,
                organization_id=org.id,
                initiator_id=store.me_id,
            ),
        )
        store.builds[build.id] = build
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
            self.scheduled[build.id] = build
        return build

    def create_build(self, workspace_id: str, body: Mapping[str, Any]) -> Build:
        """``POST /workspaces/{id}/builds`` (codersdk.CreateWorkspaceBuildRequest).

        A queued `fail_next_build` answer of the transition is raised instead.
        """
        store = self.store
        workspace = store.workspace_by_id(workspace_id)
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
        version_id = optional_uuid(body, "template_version_id")
        failures = self.build_failures.get(transition)
        if failures:
            status, message = failures.popleft()
            raise FakeCoderError(status, message)
        latest = store.latest_build(workspace)
        if latest.job.status in ACTIVE_JOB_STATUSES:
            raise FakeCoderError(
                409,
                "A workspace build is already active.",
                detail="A workspace build is already active.",
            )
        if version_id is None:
            version_id = latest.template_version_id
        version = store.versions.get(version_id)
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
        self.build_transitions.setdefault(workspace.id, []).append(transition)
        build = self._new_build(
            workspace, transition, version, build_number=latest.build_number + 1
        )
        store.publish("workspace", workspace.id, "deleted" if workspace.deleted else "updated")
        return build

    def fail_next_build(self, transition: BuildTransition, status: int, message: str) -> None:
        """Queue a (*status*, *message*) answer for the next build of *transition*."""
        self.build_failures.setdefault(transition, collections.deque()).append((status, message))

    # ------------------------------------------------------------------ workspaces

    def search(self, query: str, limit: int, offset: int) -> tuple[list[Workspace], int]:
        """``GET /workspaces?q=&limit=&offset=``: (the page, the count of all matches)."""
        store = self.store
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
            owner_ref = store.users[store.me_id].username
        items: list[tuple[tuple[str, str, str], Workspace]] = []
        for workspace in store.workspaces.values():
            if workspace.deleted:
                continue
            owner = store.users[workspace.owner_id]
            org = store.organizations[workspace.organization_id]
            template = store.templates[workspace.template_id]
            if owner_ref is not None and owner_ref not in (owner.username, owner.id):
                continue
            if "name" in terms and terms["name"].lower() not in workspace.name.lower():
                continue
            if "template" in terms and terms["template"] != template.name:
                continue
            if "organization" in terms and terms["organization"] not in (org.id, org.name):
                continue
            if "status" in terms and self.status(workspace) != terms["status"]:
                continue
            items.append(((org.name, owner.username, workspace.name), workspace))
        items.sort(key=lambda item: item[0])
        page = items[offset:] if limit <= 0 else items[offset : offset + limit]
        return [ws for _, ws in page], len(items)

    def by_owner(self, user_ref: str, name: str, *, include_deleted: bool) -> Workspace:
        """``GET /users/{user}/workspace/{name}``: the newest match, live ones first."""
        owner = self.store.user(user_ref)
        matches = [
            ws
            for ws in self.store.workspaces.values()
            if ws.owner_id == owner.id and ws.name == name and (include_deleted or not ws.deleted)
        ]
        if not matches:
            raise FakeCoderError(404, NOT_FOUND)
        matches.sort(key=lambda ws: (not ws.deleted, ws.created_at))
        return matches[-1]

    def status(self, workspace: Workspace) -> WorkspaceStatus:
        """Return *workspace*'s ``latest_build.status``."""
        build = self.store.latest_build(workspace)
        return workspace_status(build.transition, build.job.status)

    def create(
        self, user_ref: str, body: Mapping[str, Any], *, org_ref: str | None = None
    ) -> Workspace:
        """``POST /users/{user}/workspaces`` (or the organization form), with its start build."""
        store = self.store
        owner = store.user(user_ref)
        org_from_path = store.organization(org_ref) if org_ref is not None else None
        name = validate_name(body.get("name"), tag="workspace_name")
        template_id = optional_uuid(body, "template_id")
        version_id = optional_uuid(body, "template_version_id")
        ttl_ms = optional_int(body, "ttl_ms")
        schedule = optional_str(body, "autostart_schedule")
        if (template_id is None) == (version_id is None):
            detail = "exactly one of template_id and template_version_id must be set"
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[("template_id", detail), ("template_version_id", detail)],
            )
        if version_id is not None:
            version = store.versions.get(version_id)
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
        template = store.templates.get(template_id)
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
        version = store.version(version_id or template.active_version_id)
        _check_ttl_and_schedule(ttl_ms, schedule)
        for other in store.workspaces.values():
            if other.owner_id == owner.id and other.name == name and not other.deleted:
                raise FakeCoderError(
                    409,
                    f'Workspace "{name}" already exists.',
                    validations=[("name", "This value is already in use and should be unique.")],
                )
        self._check_version_buildable(version)
        stamp = store.stamp()
        workspace = Workspace(
            id=new_id(),
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
        store.workspaces[workspace.id] = workspace
        self._new_build(workspace, "start", version, build_number=1)
        store.publish("workspace", workspace.id, "created")
        return workspace

    # ------------------------------------------------------------------ out of band

    def complete_builds(self) -> int:
        """Finish every active build now (job ``succeeded``); return how many."""
        completed = 0
        for build in list(self.store.builds.values()):
            if build.job.status in ACTIVE_JOB_STATUSES:
                self._unschedule(build)
                self.set_job_status(build, "succeeded")
                completed += 1
        return completed

    def force_status(self, ref: str, status: str, *, error: str) -> None:
        """Put workspace *ref*'s latest build in the state giving *status* (undeleting)."""
        workspace = self.store.find_workspace(ref)
        build = self.store.latest_build(workspace)
        transition, job_status = job_for_workspace_status(status, build.transition)
        build.transition = transition  # type: ignore[assignment]
        self._unschedule(build)
        build.job.error = error if job_status == "failed" else ""
        if job_status == "pending":
            build.job.started_at = None
        workspace.deleted = False  # deleted again only if the status is "deleted"
        self.set_job_status(build, job_status)

    def start_build_out_of_band(
        self, ref: str, transition: BuildTransition, *, complete: bool
    ) -> Build:
        """Build *transition* on workspace *ref*, abandoning an active build; no knobs apply."""
        store = self.store
        workspace = store.find_workspace(ref)
        if workspace.deleted:
            raise FakeCoderError(410, f'Workspace "{workspace.id}" was deleted.')
        latest = store.latest_build(workspace)
        self._unschedule(latest)
        version = store.versions[latest.template_version_id]
        build = self._new_build(
            workspace, transition, version, build_number=latest.build_number + 1
        )
        store.publish("workspace", workspace.id, "deleted" if workspace.deleted else "updated")
        if complete and build.job.status in ACTIVE_JOB_STATUSES:
            self._unschedule(build)
            self.set_job_status(build, "succeeded")
        return build

    def touch(self, ref: str) -> None:
        """Mark workspace *ref* as used now (``last_used_at`` and ``updated_at`` move)."""
        workspace = self.store.find_workspace(ref)
        stamp = self.store.stamp()
        workspace.last_used_at = stamp
        workspace.updated_at = stamp
        self.store.publish("workspace", workspace.id, "updated")


def _check_ttl_and_schedule(ttl_ms: int | None, schedule: str | None) -> None:
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
