"""Structural OpenAPI schemas and printer columns of the Coder kinds.

The schemas describe ``CoderWorkspace`` and ``CoderTemplate`` exactly as the
storages produce and accept them (``coder-adapters.md`` §1.2 and §1.3): they are
what ``kubectl explain`` prints and what ``fieldValidation=Strict`` checks
request bodies against. ``spec.files`` is an atomic string map, as in
coder-k8s.
"""

from __future__ import annotations

from typing import Any

from k8swatch.server._columns import PrinterColumn, age_column

__all__ = [
    "CODER_TEMPLATE_COLUMNS",
    "CODER_WORKSPACE_COLUMNS",
    "coder_template_schema",
    "coder_workspace_schema",
]


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _time(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "description": description}


def coder_workspace_schema() -> dict[str, Any]:
    """The structural schema of a ``CoderWorkspace`` (spec and status)."""
    return {
        "description": (
            "CoderWorkspace is a Coder workspace seen as a Kubernetes object. Its name is "
            "<organization>.<owner>.<workspace>; the namespace selects the Coder deployment."
        ),
        "type": "object",
        "properties": {
            "spec": {
                "description": "Desired state of the workspace.",
                "type": "object",
                "properties": {
                    "organization": _string(
                        "Name of the Coder organization owning the workspace (the first "
                        "segment of the object name)."
                    ),
                    "templateName": _string(
                        "Name of the template the workspace is built from. Required on create."
                    ),
                    "templateVersionID": _string(
                        "UUID of the template version to build; empty means the template's "
                        "active version."
                    ),
                    "running": {
                        "type": "boolean",
                        "description": (
                            "Whether the workspace should run. Read back as true when the latest "
                            "build is a start transition that is pending, starting or running. "
                            "Changing it starts or stops the workspace."
                        ),
                    },
                    "ttlMillis": {
                        "type": "integer",
                        "format": "int64",
                        "nullable": True,
                        "description": (
                            "Time in milliseconds a started workspace stays up before it is "
                            "stopped automatically; absent for no limit."
                        ),
                    },
                    "autostartSchedule": {
                        "type": "string",
                        "nullable": True,
                        "description": (
                            "Cron schedule on which the workspace is started, e.g. "
                            "'CRON_TZ=UTC 0 9 * * 1-5'; absent for none."
                        ),
                    },
                },
            },
            "status": {
                "description": "Observed state of the workspace, as reported by Coder (read-only).",
                "type": "object",
                "properties": {
                    "id": _string("Coder's UUID of the workspace (also metadata.uid)."),
                    "ownerName": _string("Username of the workspace owner."),
                    "organizationName": _string("Name of the organization."),
                    "templateName": _string("Name of the template the workspace uses."),
                    "latestBuildID": _string("UUID of the most recent build."),
                    "latestBuildStatus": _string(
                        "Status of the most recent build: pending, starting, running, "
                        "stopping, stopped, failed, canceling, canceled, deleting or deleted."
                    ),
                    "autoShutdown": {
                        **_time("When the running workspace will be stopped automatically."),
                        "nullable": True,
                    },
                    "lastUsedAt": _time("When the workspace was last used."),
                },
            },
        },
    }


def coder_template_schema() -> dict[str, Any]:
    """The structural schema of a ``CoderTemplate`` (spec and status)."""
    return {
        "description": (
            "CoderTemplate is a Coder template seen as a Kubernetes object. Its name is "
            "<organization>.<template>; the namespace selects the Coder deployment."
        ),
        "type": "object",
        "properties": {
            "spec": {
                "description": "Desired state of the template.",
                "type": "object",
                "properties": {
                    "organization": _string("Name of the Coder organization owning the template."),
                    "versionID": _string(
                        "UUID of the template version to publish. Required on create unless "
                        "files is given; read-only afterwards."
                    ),
                    "displayName": _string("Human-friendly name shown in the Coder UI."),
                    "description": _string("Description shown in the Coder UI."),
                    "icon": _string("URL or path of the icon shown in the Coder UI."),
                    "files": {
                        "type": "object",
                        "description": (
                            "Template source files (path to UTF-8 text). On create they become "
                            "a new template version; on update a new active version. Returned "
                            "by get, not by list."
                        ),
                        "additionalProperties": {"type": "string"},
                        "x-kubernetes-map-type": "atomic",
                    },
                    "running": {
                        "type": "boolean",
                        "description": "Legacy field; ignored on write and never set.",
                    },
                },
            },
            "status": {
                "description": "Observed state of the template, as reported by Coder (read-only).",
                "type": "object",
                "properties": {
                    "id": _string("Coder's UUID of the template (also metadata.uid)."),
                    "organizationName": _string("Name of the organization."),
                    "activeVersionID": _string("UUID of the active template version."),
                    "deprecated": {
                        "type": "boolean",
                        "description": "Whether the template is deprecated.",
                    },
                    "updatedAt": _time("When the template was last updated."),
                    "autoShutdown": {
                        **_time("Legacy field; never set."),
                        "nullable": True,
                    },
                },
            },
        },
    }


CODER_WORKSPACE_COLUMNS: tuple[PrinterColumn, ...] = (
    PrinterColumn(
        name="Owner",
        type="string",
        json_path=".status.ownerName",
        description="Username of the workspace owner.",
    ),
    PrinterColumn(
        name="Template",
        type="string",
        json_path=".spec.templateName",
        description="Template the workspace is built from.",
    ),
    PrinterColumn(
        name="Running",
        type="boolean",
        json_path=".spec.running",
        description="Whether the workspace is (to be) running.",
    ),
    PrinterColumn(
        name="Status",
        type="string",
        json_path=".status.latestBuildStatus",
        description="Status of the latest build.",
    ),
    age_column(),
    PrinterColumn(
        name="Organization",
        type="string",
        json_path=".spec.organization",
        description="Organization owning the workspace.",
        priority=1,
    ),
    PrinterColumn(
        name="Last-Used",
        type="date",
        json_path=".status.lastUsedAt",
        description="When the workspace was last used.",
        priority=1,
    ),
)
"""Printer columns of ``coderworkspaces``: owner, template, running, build status, age
(and with ``-o wide``: organization, last used)."""

CODER_TEMPLATE_COLUMNS: tuple[PrinterColumn, ...] = (
    PrinterColumn(
        name="Organization",
        type="string",
        json_path=".spec.organization",
        description="Organization owning the template.",
    ),
    PrinterColumn(
        name="Active-Version",
        type="string",
        json_path=".status.activeVersionID",
        description="UUID of the active template version.",
    ),
    age_column(),
    PrinterColumn(
        name="Display-Name",
        type="string",
        json_path=".spec.displayName",
        description="Human-friendly name of the template.",
        priority=1,
    ),
    PrinterColumn(
        name="Deprecated",
        type="boolean",
        json_path=".status.deprecated",
        description="Whether the template is deprecated.",
        priority=1,
    ),
)
"""Printer columns of ``codertemplates``: organization, active version, age (and with
``-o wide``: display name, deprecated)."""
