"""The fake Coder's records as Coder's JSON (codersdk shapes), key for key (pure).

Each ``render_*`` function returns the dict coderd would encode for one record, keys
in coderd's order (the fixtures compare bytes), reading related records from the
`Store`.  ``omitempty`` fields are left out when unset, as Go does.
"""

from __future__ import annotations

from typing import Any

from ._fake_model import (
    NIL_UUID,
    Build,
    Job,
    Organization,
    Template,
    TemplateVersion,
    User,
    Workspace,
    format_optional_time,
    format_time,
    workspace_status,
)
from ._fake_store import Store

__all__ = [
    "CODER_VERSION",
    "render_build",
    "render_buildinfo",
    "render_job",
    "render_organization",
    "render_template",
    "render_user",
    "render_version",
    "render_workspace",
]

#: The Coder version the fake reports in ``/api/v2/buildinfo``.
CODER_VERSION = "v2.30.0"

_WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def render_buildinfo() -> dict[str, Any]:
    """Render codersdk.BuildInfoResponse."""
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


def render_organization(org: Organization) -> dict[str, Any]:
    """Render codersdk.Organization."""
    return {
        "id": org.id,
        "name": org.name,
        "display_name": org.display_name,
        "icon": org.icon,
        "description": org.description,
        "created_at": format_time(org.created_at),
        "updated_at": format_time(org.updated_at),
        "is_default": org.is_default,
    }


def render_user(store: Store, user: User) -> dict[str, Any]:
    """Render codersdk.User (a member of every organization)."""
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "avatar_url": user.avatar_url,
        "email": user.email,
        "created_at": format_time(user.created_at),
        "updated_at": format_time(user.updated_at),
        "last_seen_at": format_time(user.updated_at),
        "status": "active",
        "login_type": "password",
        "organization_ids": sorted(store.organizations),
        "roles": [dict(role) for role in user.roles],
    }


def render_job(
    job: Job, *, kind: str, job_input: dict[str, str], metadata: dict[str, Any]
) -> dict[str, Any]:
    """Render codersdk.ProvisionerJob of *kind* (``omitempty`` fields left out when unset)."""
    out: dict[str, Any] = {"id": job.id, "created_at": format_time(job.created_at)}
    if job.started_at is not None:
        out["started_at"] = format_time(job.started_at)
    if job.completed_at is not None:
        out["completed_at"] = format_time(job.completed_at)
    if job.error:
        out["error"] = job.error
    out["status"] = job.status
    if job.started_at is not None:
        out["worker_id"] = "c0ffee00-0000-4000-8000-000000000001"
        out["worker_name"] = "provisioner-0"
    queued = 1 if kind == "template_version_import" and job.status == "pending" else 0
    out.update(
        {
            "file_id": job.file_id,
            "tags": {"owner": "", "scope": "organization"},
            "queue_position": queued,
            "queue_size": queued,
            "organization_id": job.organization_id,
            "initiator_id": job.initiator_id,
            "input": job_input,
            "type": kind,
            "metadata": metadata,
            "logs_overflowed": False,
        }
    )
    return out


def render_template(store: Store, template: Template) -> dict[str, Any]:
    """Render codersdk.Template."""
    org = store.organizations[template.organization_id]
    creator = store.users[template.created_by_id]
    owners = {
        ws.owner_id
        for ws in store.workspaces.values()
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
        "autostart_requirement": {"days_of_week": list(_WEEK)},
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


def _template_metadata(store: Store, template_id: str | None) -> dict[str, Any]:
    template = store.templates.get(template_id or "")
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


def render_version(store: Store, version: TemplateVersion) -> dict[str, Any]:
    """Render codersdk.TemplateVersion (``template_id`` left out for no template)."""
    creator = store.users[version.created_by_id]
    out: dict[str, Any] = {"id": version.id}
    if version.template_id is not None:
        out["template_id"] = version.template_id
    metadata = {"template_version_name": version.name}
    metadata.update(_template_metadata(store, version.template_id))
    out.update(
        {
            "organization_id": version.organization_id,
            "created_at": format_time(version.created_at),
            "updated_at": format_time(version.updated_at),
            "name": version.name,
            "message": version.message,
            "job": render_job(
                version.job,
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


def render_build(store: Store, build: Build) -> dict[str, Any]:
    """Render codersdk.WorkspaceBuild."""
    workspace = store.workspaces[build.workspace_id]
    owner = store.users[workspace.owner_id]
    initiator = store.users[build.initiator_id]
    version = store.versions[build.template_version_id]
    metadata = {"template_version_name": version.name}
    metadata.update(_template_metadata(store, workspace.template_id))
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
        "job": render_job(
            build.job,
            kind="workspace_build",
            job_input={"workspace_build_id": build.id},
            metadata=metadata,
        ),
        "reason": "initiator",
        "resources": [],
        "deadline": format_optional_time(build.deadline),
        "max_deadline": None,
        "status": workspace_status(build.transition, build.job.status),
        "daily_cost": 0,
        "template_version_preset_id": None,
    }


def render_workspace(store: Store, workspace: Workspace) -> dict[str, Any]:
    """Render codersdk.Workspace with its latest build."""
    owner = store.users[workspace.owner_id]
    org = store.organizations[workspace.organization_id]
    template = store.templates[workspace.template_id]
    build = store.builds[workspace.latest_build_id]
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
        "latest_build": render_build(store, build),
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
