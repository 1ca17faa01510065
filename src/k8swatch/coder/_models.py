"""The ``aggregation.coder.com/v1alpha1`` resources as typed values.

`CoderWorkspace` and `CoderTemplate` convert three ways:

* ``from_coder(namespace, coder_json)``: from a Coder API object, exactly as the
  Go original's converters do it (names, omitted fields, times truncated to
  seconds, resourceVersion = ``updated_at`` in integer nanoseconds);
* ``to_dict()``: to the Kubernetes JSON the storages hand to the server, with
  the Go types' key order and ``omitempty`` rules (``spec.running`` is always
  present on a workspace, omitted when false on a template);
* ``from_dict(obj)``: from a Kubernetes JSON object sent by a client; wrong
  types raise a 400 BadRequest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from typing_extensions import Self, final

from k8swatch._go import go_quote
from k8swatch._status import bad_request
from k8swatch.coder._names import (
    build_template_name,
    build_workspace_name,
    parse_template_name,
    parse_workspace_name,
)

from ._convert import (
    NIL_UUID,
    create_template_body,
    create_workspace_body,
    format_metav1_time,
    is_zero_time,
    resource_version_of,
    template_meta_body,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "CoderTemplate",
    "CoderTemplateSpec",
    "CoderTemplateStatus",
    "CoderWorkspace",
    "CoderWorkspaceSpec",
    "CoderWorkspaceStatus",
]

GROUP = "aggregation.coder.com"
"""The API group of the Coder resources (``aggregation.coder.com``)."""
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

_RUNNING_STATUSES = frozenset({"pending", "starting", "running"})


# --- reading client JSON ---------------------------------------------------------


def _where(kind: str, path: str) -> str:
    return f"{kind}.{path}"


def _section(obj: Mapping[str, Any], key: str, kind: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad_request(f"{_where(kind, key)}: expected an object, got {type(value).__name__}")
    return value  # pyright: ignore[reportUnknownVariableType]


def _str(section: Mapping[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def _opt_str(section: Mapping[str, Any], key: str, where: str) -> str | None:
    if section.get(key) is None:
        return None
    return _str(section, key, where)


def _bool(section: Mapping[str, Any], key: str, where: str) -> bool:
    value = section.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{where}.{key}: expected a boolean, got {type(value).__name__}")
    return value


def _opt_int(section: Mapping[str, Any], key: str, where: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{where}.{key}: expected an integer, got {type(value).__name__}")
    return value


def _files(section: Mapping[str, Any], where: str) -> dict[str, str] | None:
    if "files" not in section or section["files"] is None:
        return None
    value = section["files"]
    if not isinstance(value, Mapping):
        raise bad_request(f"{where}.files: expected an object, got {type(value).__name__}")
    out: dict[str, str] = {}
    for path, content in value.items():  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(content, str):
            raise bad_request(f"{where}.files[{go_quote(str(path))}]: expected a string")  # pyright: ignore[reportUnknownArgumentType]
        out[str(path)] = content  # pyright: ignore[reportUnknownArgumentType]
    return out


@attrs.frozen
class _Meta:
    name: str
    namespace: str
    uid: str
    resource_version: str
    creation_timestamp: str


def _read_meta(obj: Mapping[str, Any], kind: str) -> _Meta:
    meta = _section(obj, "metadata", kind)
    where = _where(kind, "metadata")
    return _Meta(
        name=_str(meta, "name", where),
        namespace=_str(meta, "namespace", where),
        uid=_str(meta, "uid", where),
        resource_version=_str(meta, "resourceVersion", where),
        creation_timestamp=_str(meta, "creationTimestamp", where),
    )


def _meta_dict(
    name: str, namespace: str, uid: str, resource_version: str, creation_timestamp: str
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if uid:
        meta["uid"] = uid
    if resource_version:
        meta["resourceVersion"] = resource_version
    if creation_timestamp:
        meta["creationTimestamp"] = creation_timestamp
    return meta


def _metav1(value: str | None) -> str | None:
    return None if is_zero_time(value) else format_metav1_time(value or "")


def _uuid_str(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return "" if text == NIL_UUID else text


# --- CoderWorkspace --------------------------------------------------------------


@final
@attrs.frozen
class CoderWorkspaceSpec:
    """``spec`` of a [`CoderWorkspace`][k8swatch.coder.CoderWorkspace].

    Attributes:
        organization: The Coder organization (repeats the name's first segment).
        template_name: The template the workspace was created from.
        template_version_id: The template version of the latest build; on
            create, pins that version.
        running: True while the latest build is a ``start`` that is pending,
            starting or running. Toggling it starts or stops a build.
        ttl_millis: The auto-stop TTL in milliseconds, if any.
        autostart_schedule: The auto-start cron schedule, if any.
    """

    organization: str = ""
    template_name: str = ""
    template_version_id: str = ""
    running: bool = False
    ttl_millis: int | None = None
    autostart_schedule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as Kubernetes JSON (``running`` always present)."""
        out: dict[str, Any] = {}
        if self.organization:
            out["organization"] = self.organization
        if self.template_name:
            out["templateName"] = self.template_name
        if self.template_version_id:
            out["templateVersionID"] = self.template_version_id
        out["running"] = self.running
        if self.ttl_millis is not None:
            out["ttlMillis"] = self.ttl_millis
        if self.autostart_schedule is not None:
            out["autostartSchedule"] = self.autostart_schedule
        return out


@final
@attrs.frozen
class CoderWorkspaceStatus:
    """``status`` of a [`CoderWorkspace`][k8swatch.coder.CoderWorkspace], read from Coder.

    Attributes:
        id: The workspace UUID.
        owner_name: The owner's username.
        organization_name: The organization name.
        template_name: The template name.
        latest_build_id: The UUID of the latest build.
        latest_build_status: The workspace status of the latest build
            (``pending``, ``starting``, ``running``, ``stopping``, ``stopped``,
            ``deleting``, ``deleted``, ``canceling``, ``canceled``, ``failed``).
        auto_shutdown: The latest build's deadline (metav1 time), if any.
        last_used_at: When the workspace was last used (metav1 time).
    """

    id: str = ""
    owner_name: str = ""
    organization_name: str = ""
    template_name: str = ""
    latest_build_id: str = ""
    latest_build_status: str = ""
    auto_shutdown: str | None = None
    last_used_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the status as Kubernetes JSON (empty members omitted)."""
        out: dict[str, Any] = {}
        for key, value in (
            ("id", self.id),
            ("ownerName", self.owner_name),
            ("organizationName", self.organization_name),
            ("templateName", self.template_name),
            ("latestBuildID", self.latest_build_id),
            ("latestBuildStatus", self.latest_build_status),
            ("autoShutdown", self.auto_shutdown),
            ("lastUsedAt", self.last_used_at),
        ):
            if value:
                out[key] = value
        return out


@final
@attrs.frozen
class CoderWorkspace:
    """A ``CoderWorkspace`` (``aggregation.coder.com/v1alpha1``): one Coder workspace.

    ``name`` is ``<organization>.<owner>.<workspace>``; the namespace selects
    the Coder deployment, not an organization.

    Attributes:
        name: ``metadata.name``.
        namespace: ``metadata.namespace``.
        uid: ``metadata.uid`` (the Coder workspace id).
        resource_version: ``metadata.resourceVersion``.
        creation_timestamp: ``metadata.creationTimestamp`` (metav1 time).
        spec: The desired state.
        status: The observed state.
    """

    KIND = "CoderWorkspace"
    LIST_KIND = "CoderWorkspaceList"
    PLURAL = "coderworkspaces"
    SINGULAR = "coderworkspace"

    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    creation_timestamp: str = ""
    spec: CoderWorkspaceSpec = CoderWorkspaceSpec()
    status: CoderWorkspaceStatus = CoderWorkspaceStatus()

    @classmethod
    def from_coder(cls, namespace: str, workspace: Mapping[str, Any]) -> Self:
        """Convert a Coder ``Workspace`` JSON object, as the Go original does.

        Raises:
            ValueError: a name segment is empty or a timestamp is malformed.
        """
        build: Mapping[str, Any] = workspace.get("latest_build") or {}
        transition = build.get("transition") or ""
        build_status = build.get("status") or ""
        deadline = build.get("deadline")
        org = str(workspace.get("organization_name") or "")
        owner = str(workspace.get("owner_name") or "")
        return cls(
            name=build_workspace_name(org, owner, str(workspace.get("name") or "")),
            namespace=namespace,
            uid=_uuid_str(workspace.get("id")),
            resource_version=resource_version_of(str(workspace["updated_at"])),
            creation_timestamp=_metav1(workspace.get("created_at")) or "",
            spec=CoderWorkspaceSpec(
                organization=org,
                template_name=str(workspace.get("template_name") or ""),
                template_version_id=_uuid_str(build.get("template_version_id")),
                running=transition == "start" and build_status in _RUNNING_STATUSES,
                ttl_millis=workspace.get("ttl_ms"),
                autostart_schedule=workspace.get("autostart_schedule"),
            ),
            status=CoderWorkspaceStatus(
                id=_uuid_str(workspace.get("id")),
                owner_name=owner,
                organization_name=org,
                template_name=str(workspace.get("template_name") or ""),
                latest_build_id=_uuid_str(build.get("id")),
                latest_build_status=str(build_status),
                auto_shutdown=_metav1(deadline),
                last_used_at=_metav1(workspace.get("last_used_at")),
            ),
        )

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        """Read a Kubernetes JSON object sent by a client.

        Unknown fields are ignored; status is read as sent.

        Raises:
            StatusError: 400 BadRequest when a field has the wrong JSON type.
        """
        kind = cls.KIND
        meta = _read_meta(obj, kind)
        spec = _section(obj, "spec", kind)
        status = _section(obj, "status", kind)
        ws, ss = _where(kind, "spec"), _where(kind, "status")
        return cls(
            name=meta.name,
            namespace=meta.namespace,
            uid=meta.uid,
            resource_version=meta.resource_version,
            creation_timestamp=meta.creation_timestamp,
            spec=CoderWorkspaceSpec(
                organization=_str(spec, "organization", ws),
                template_name=_str(spec, "templateName", ws),
                template_version_id=_str(spec, "templateVersionID", ws),
                running=_bool(spec, "running", ws),
                ttl_millis=_opt_int(spec, "ttlMillis", ws),
                autostart_schedule=_opt_str(spec, "autostartSchedule", ws),
            ),
            status=CoderWorkspaceStatus(
                id=_str(status, "id", ss),
                owner_name=_str(status, "ownerName", ss),
                organization_name=_str(status, "organizationName", ss),
                template_name=_str(status, "templateName", ss),
                latest_build_id=_str(status, "latestBuildID", ss),
                latest_build_status=_str(status, "latestBuildStatus", ss),
                auto_shutdown=_opt_str(status, "autoShutdown", ss),
                last_used_at=_opt_str(status, "lastUsedAt", ss),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the object as Kubernetes JSON, keys in the Go types' order."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.KIND,
            "metadata": _meta_dict(
                self.name, self.namespace, self.uid, self.resource_version, self.creation_timestamp
            ),
            "spec": self.spec.to_dict(),
            "status": self.status.to_dict(),
        }

    def to_coder_create_request(
        self, *, template_id: str | None = None, template_version_id: str | None = None
    ) -> dict[str, Any]:
        """The Coder ``CreateWorkspaceRequest`` for this object, as the Go SDK sends it.

        Give *template_id* (the template's active version) or
        *template_version_id* (a pinned version).

        Raises:
            ValueError: the name is not ``<org>.<owner>.<workspace>``.
        """
        return create_workspace_body(
            parse_workspace_name(self.name)[2],
            template_id=template_id,
            template_version_id=template_version_id,
            ttl_ms=self.spec.ttl_millis,
            autostart_schedule=self.spec.autostart_schedule,
        )


# --- CoderTemplate ---------------------------------------------------------------


@final
@attrs.frozen
class CoderTemplateSpec:
    """``spec`` of a [`CoderTemplate`][k8swatch.coder.CoderTemplate].

    Attributes:
        organization: The Coder organization (repeats the name's first segment).
        version_id: The active template version. Required (a UUID) on create
            unless ``files`` is given; read-only afterwards.
        display_name: Coder's display name.
        description: Coder's description.
        icon: Coder's icon URL.
        files: The active version's source tree, path to UTF-8 text. Filled on
            GET, on the object an update returns and in MODIFIED events; absent
            from lists, create results, ADDED and DELETED events. ``None`` means
            absent; on write, any map (even empty) replaces the source.
        running: Legacy flag: never read from Coder, ignored on write.
    """

    organization: str = ""
    version_id: str = ""
    display_name: str = ""
    description: str = ""
    icon: str = ""
    files: Mapping[str, str] | None = None
    running: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as Kubernetes JSON (Go's ``omitempty`` rules)."""
        out: dict[str, Any] = {"organization": self.organization, "versionID": self.version_id}
        if self.display_name:
            out["displayName"] = self.display_name
        if self.description:
            out["description"] = self.description
        if self.icon:
            out["icon"] = self.icon
        if self.files:
            out["files"] = dict(self.files)
        if self.running:
            out["running"] = True
        return out


@final
@attrs.frozen
class CoderTemplateStatus:
    """``status`` of a [`CoderTemplate`][k8swatch.coder.CoderTemplate], read from Coder.

    Attributes:
        id: The template UUID.
        organization_name: The organization name.
        active_version_id: The active version UUID.
        deprecated: Whether the template is deprecated.
        updated_at: Coder's ``updated_at`` (metav1 time).
        auto_shutdown: Legacy; never set.
    """

    id: str = ""
    organization_name: str = ""
    active_version_id: str = ""
    deprecated: bool = False
    updated_at: str | None = None
    auto_shutdown: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the status as Kubernetes JSON (empty members omitted)."""
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        if self.organization_name:
            out["organizationName"] = self.organization_name
        if self.active_version_id:
            out["activeVersionID"] = self.active_version_id
        if self.deprecated:
            out["deprecated"] = True
        if self.updated_at:
            out["updatedAt"] = self.updated_at
        if self.auto_shutdown:
            out["autoShutdown"] = self.auto_shutdown
        return out


@final
@attrs.frozen
class CoderTemplate:
    """A ``CoderTemplate`` (``aggregation.coder.com/v1alpha1``): one Coder template.

    ``name`` is ``<organization>.<template>``; the namespace selects the Coder
    deployment, not an organization.

    Attributes:
        name: ``metadata.name``.
        namespace: ``metadata.namespace``.
        uid: ``metadata.uid`` (the Coder template id).
        resource_version: ``metadata.resourceVersion``.
        creation_timestamp: ``metadata.creationTimestamp`` (metav1 time).
        spec: The desired state.
        status: The observed state.
    """

    KIND = "CoderTemplate"
    LIST_KIND = "CoderTemplateList"
    PLURAL = "codertemplates"
    SINGULAR = "codertemplate"

    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    creation_timestamp: str = ""
    spec: CoderTemplateSpec = CoderTemplateSpec()
    status: CoderTemplateStatus = CoderTemplateStatus()

    @classmethod
    def from_coder(
        cls,
        namespace: str,
        template: Mapping[str, Any],
        files: Mapping[str, str] | None = None,
    ) -> Self:
        """Convert a Coder ``Template`` JSON object (plus its source *files*, if read).

        Raises:
            ValueError: a name segment is empty or a timestamp is malformed.
        """
        org = str(template.get("organization_name") or "")
        active = _uuid_str(template.get("active_version_id"))
        return cls(
            name=build_template_name(org, str(template.get("name") or "")),
            namespace=namespace,
            uid=_uuid_str(template.get("id")),
            resource_version=resource_version_of(str(template["updated_at"])),
            creation_timestamp=_metav1(template.get("created_at")) or "",
            spec=CoderTemplateSpec(
                organization=org,
                version_id=active,
                display_name=str(template.get("display_name") or ""),
                description=str(template.get("description") or ""),
                icon=str(template.get("icon") or ""),
                files=files,
            ),
            status=CoderTemplateStatus(
                id=_uuid_str(template.get("id")),
                organization_name=org,
                active_version_id=active,
                deprecated=bool(template.get("deprecated")),
                updated_at=_metav1(template.get("updated_at")),
            ),
        )

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        """Read a Kubernetes JSON object sent by a client.

        Unknown fields are ignored; ``spec.files`` keeps the difference between
        absent (``None``) and empty.

        Raises:
            StatusError: 400 BadRequest when a field has the wrong JSON type.
        """
        kind = cls.KIND
        meta = _read_meta(obj, kind)
        spec = _section(obj, "spec", kind)
        status = _section(obj, "status", kind)
        ws, ss = _where(kind, "spec"), _where(kind, "status")
        return cls(
            name=meta.name,
            namespace=meta.namespace,
            uid=meta.uid,
            resource_version=meta.resource_version,
            creation_timestamp=meta.creation_timestamp,
            spec=CoderTemplateSpec(
                organization=_str(spec, "organization", ws),
                version_id=_str(spec, "versionID", ws),
                display_name=_str(spec, "displayName", ws),
                description=_str(spec, "description", ws),
                icon=_str(spec, "icon", ws),
                files=_files(spec, ws),
                running=_bool(spec, "running", ws),
            ),
            status=CoderTemplateStatus(
                id=_str(status, "id", ss),
                organization_name=_str(status, "organizationName", ss),
                active_version_id=_str(status, "activeVersionID", ss),
                deprecated=_bool(status, "deprecated", ss),
                updated_at=_opt_str(status, "updatedAt", ss),
                auto_shutdown=_opt_str(status, "autoShutdown", ss),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the object as Kubernetes JSON, keys in the Go types' order."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.KIND,
            "metadata": _meta_dict(
                self.name, self.namespace, self.uid, self.resource_version, self.creation_timestamp
            ),
            "spec": self.spec.to_dict(),
            "status": self.status.to_dict(),
        }

    def to_coder_create_request(self, *, version_id: str) -> dict[str, Any]:
        """The Coder ``CreateTemplateRequest`` for this object with active *version_id*.

        Raises:
            ValueError: the name is not ``<org>.<template>``.
        """
        return create_template_body(
            parse_template_name(self.name)[1],
            version_id,
            display_name=self.spec.display_name,
            description=self.spec.description,
            icon=self.spec.icon,
        )

    def to_coder_meta_update(self) -> dict[str, Any]:
        """The Coder ``UpdateTemplateMeta`` body setting this object's presentation fields."""
        return template_meta_body(self.spec.display_name, self.spec.description, self.spec.icon)
