"""Templates, template versions and files of the fake Coder: Coder's rules (pure, no I/O).

The operations take what a request carries (path parameters, the decoded JSON body as
a mapping) and return records; rendering them is `_fake_render`'s job.  Errors are
`FakeCoderError`s with coderd's status and message, checked in coderd's order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from ._fake_model import (
    NIL_UUID,
    NOT_FOUND,
    FakeCoderError,
    Job,
    JobStatus,
    Organization,
    StoredFile,
    Template,
    TemplateVersion,
    build_zip,
    optional_str,
    optional_uuid,
    parse_search_query,
    tar_to_zip,
    validate_name,
)
from ._fake_store import Store, new_id

__all__ = ["MAIN_TF", "TemplateOps"]

#: The ``main.tf`` of the demo template and of templates created from Python.
MAIN_TF = b'resource "null_resource" "example" {}'

_TEMPLATE_FIELDS = ("display_name", "description", "icon", "deprecation_message")


@attrs.define
class TemplateOps:
    """What the fake does to templates, template versions and files.

    Attributes:
        store: the shared records.
        accept_unknown_template_versions: register a synthetic version for an unknown
            ``template_version_id`` on template creation instead of a 404.
        ignored_promotions: promotions left that answer 200 without promoting.
        next_version: (status, pending polls, error) of the next created version.
    """

    store: Store
    accept_unknown_template_versions: bool = True
    ignored_promotions: int = 0
    next_version: tuple[JobStatus, int | None, str] | None = None

    # ------------------------------------------------------------------ templates

    def search(self, query: str) -> list[Template]:
        """``GET /templates?q=``: live templates matching *query*, by (org, name)."""
        terms = parse_search_query(
            query,
            allowed=("organization", "exact_name", "name", "deprecated"),
            default_key="name",
            what="template",
        )
        items: list[tuple[str, str, Template]] = []
        for template in self.store.templates.values():
            if template.deleted:
                continue
            org = self.store.organizations[template.organization_id]
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
        return [template for _, _, template in items]

    def create(self, org_ref: str, body: Mapping[str, Any]) -> Template:
        """``POST /organizations/{org}/templates`` (codersdk.CreateTemplateRequest)."""
        store = self.store
        org = store.organization(org_ref)
        name = validate_name(body.get("name"), tag="template_name")
        version_id = optional_uuid(body, "template_version_id")
        display_name = optional_str(body, "display_name") or ""
        description = optional_str(body, "description") or ""
        icon = optional_str(body, "icon") or ""
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
        for other in store.templates.values():
            if other.organization_id == org.id and other.name == name and not other.deleted:
                raise FakeCoderError(
                    409,
                    f'Template with name "{name}" already exists.',
                    validations=[("name", "This value is already in use and should be unique.")],
                )
        version = store.versions.get(version_id)
        if version is None:
            if not self.accept_unknown_template_versions:
                raise FakeCoderError(
                    404,
                    f'Template version "{version_id}" does not exist.',
                    validations=[("template_version_id", "Template version does not exist")],
                )
            version = self.register_version(org, version_id=version_id, data=build_zip({}))
        elif version.template_id is not None:
            raise FakeCoderError(
                400,
                f"Template version {version_id} is already part of a template",
                validations=[
                    ("template_version_id", "Template version is already part of a template")
                ],
            )
        stamp = store.stamp()
        template = Template(
            id=new_id(),
            organization_id=org.id,
            name=name,
            display_name=display_name,
            description=description,
            icon=icon,
            active_version_id=version.id,
            created_at=stamp,
            updated_at=stamp,
            created_by_id=store.me_id,
        )
        store.templates[template.id] = template
        version.template_id = template.id
        version.updated_at = stamp
        store.publish("template_version", version.id, "updated")
        store.publish("template", template.id, "created")
        return template

    def patch(self, template_id: str, body: Mapping[str, Any]) -> bool:
        """``PATCH /templates/{id}`` (display fields only); ``False`` when nothing changed.

        Every call counts in the template's ``meta_update_count``.
        """
        template = self.store.live_template(template_id)
        template.meta_update_count += 1
        changes = {
            key: value for key in _TEMPLATE_FIELDS if (value := optional_str(body, key)) is not None
        }
        if all(getattr(template, key) == value for key, value in changes.items()):
            return False
        for key, value in changes.items():
            setattr(template, key, value)
        self._touch(template)
        return True

    def edit(self, ref: str, changes: Mapping[str, str | None]) -> None:
        """Set template *ref*'s display fields that are not ``None``, as the UI would."""
        template = self.store.find_template(ref)
        for key in _TEMPLATE_FIELDS:
            value = changes.get(key)
            if value is not None:
                setattr(template, key, value)
        self._touch(template)

    def _touch(self, template: Template) -> None:
        template.updated_at = self.store.stamp()
        self.store.publish("template", template.id, "updated")
        self.store.publish_template_workspaces(template)

    def promote(self, template_id: str, body: Mapping[str, Any]) -> None:
        """``PATCH /templates/{id}/versions`` (codersdk.UpdateActiveTemplateVersion)."""
        template = self.store.live_template(template_id)
        version_id = optional_uuid(body, "id")
        if version_id is None:
            raise FakeCoderError(
                400,
                "Validation failed.",
                validations=[
                    ("id", f'Validation failed for tag "required" with value: "{NIL_UUID}"')
                ],
            )
        version = self.store.version(version_id)
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
        if self.ignored_promotions:
            self.ignored_promotions -= 1
        else:
            template.active_version_id = version.id
        self._touch(template)

    def delete(self, template_id: str) -> None:
        """``DELETE /templates/{id}``: a soft delete, refused while a workspace uses it."""
        store = self.store
        template = store.live_template(template_id)
        if any(
            ws.template_id == template.id and not ws.deleted for ws in store.workspaces.values()
        ):
            raise FakeCoderError(
                400, "All workspaces must be deleted before a template can be removed."
            )
        template.deleted = True
        template.updated_at = store.stamp()
        store.publish("template", template.id, "deleted")

    def create_out_of_band(
        self, organization: str, name: str, *, files: Mapping[str, bytes], **fields: str
    ) -> Template:
        """Create template *name* with a succeeded version of *files*, as a user would.

        *fields* are the other fields of the creation request (``display_name``...).
        """
        org = self.store.organization(organization)
        version = self.register_version(org, data=build_zip(files))
        return self.create(org.id, {"name": name, "template_version_id": version.id, **fields})

    # ------------------------------------------------------------------ versions

    def create_version(self, org_ref: str, body: Mapping[str, Any]) -> TemplateVersion:
        """``POST /organizations/{org}/templateversions``; the import job follows the knob."""
        store = self.store
        org = store.organization(org_ref)
        template_id = optional_uuid(body, "template_id")
        file_id = optional_uuid(body, "file_id")
        storage_method = optional_str(body, "storage_method") or "file"
        name = optional_str(body, "name")
        message = optional_str(body, "message") or ""
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
            template = store.templates.get(template_id)
            if template is None or template.deleted:
                raise FakeCoderError(404, "Template does not exist.")
        if file_id not in store.files:
            raise FakeCoderError(404, "File not found.")
        status: JobStatus = "succeeded"
        pending_polls: int | None = None
        error = ""
        if self.next_version is not None:
            status, pending_polls, error = self.next_version
            self.next_version = None
        return self._new_version(
            org,
            template_id=template_id,
            file_id=file_id,
            name=name,
            message=message,
            status=status,
            pending_polls=pending_polls,
            error=error,
        )

    def poll_version(self, version_id: str) -> TemplateVersion:
        """``GET /templateversions/{id}``: counts down a pending import's polls."""
        version = self.store.version(version_id)
        if version.job.status == "pending" and version.pending_polls is not None:
            if version.pending_polls > 0:
                version.pending_polls -= 1
            else:
                stamp = self.store.stamp()
                version.job.status = "succeeded"
                version.job.started_at = version.job.started_at or stamp
                version.job.completed_at = stamp
                version.updated_at = stamp
                version.pending_polls = None
                self.store.publish("template_version", version.id, "updated")
        return version

    def set_next_version(self, status: JobStatus, *, pending_polls: int | None, error: str) -> None:
        """Decide the import job of the next created version (one shot)."""
        if status == "failed" and not error:
            error = "template import failed"
        self.next_version = (status, pending_polls, error)

    def register_version(
        self,
        org: Organization,
        *,
        version_id: str | None = None,
        data: bytes,
        status: JobStatus = "succeeded",
    ) -> TemplateVersion:
        """Store *data* (a zip) and create a version of no template from it."""
        file_id, _ = self.store_file(data, "application/zip")
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
        store = self.store
        stamp = store.stamp()
        job = Job(
            id=new_id(),
            created_at=stamp,
            status=status,
            file_id=file_id,
            organization_id=org.id,
            initiator_id=store.me_id,
            error=error,
        )
        if status != "pending":
            job.started_at = stamp
        if status in ("succeeded", "failed", "canceled"):
            job.completed_at = stamp
        version = TemplateVersion(
            id=version_id or new_id(),
            template_id=template_id,
            organization_id=org.id,
            name=name or f"template-version-{len(store.versions) + 1}",
            message=message,
            created_at=stamp,
            updated_at=stamp,
            created_by_id=store.me_id,
            job=job,
            pending_polls=pending_polls,
        )
        store.versions[version.id] = version
        store.publish("template_version", version.id, "created")
        return version

    # ------------------------------------------------------------------ files

    def upload(self, content_type: str, data: bytes) -> tuple[str, bool]:
        """``POST /files``: return (file id, whether it is new); same bytes, same id."""
        if content_type not in ("application/zip", "application/x-tar"):
            raise FakeCoderError(400, f'Unsupported content type header "{content_type}".')
        if not data:
            raise FakeCoderError(400, "File must not be empty.")
        return self.store_file(data, content_type)

    def store_file(self, data: bytes, content_type: str) -> tuple[str, bool]:
        """Store *data* unless the same bytes are stored; return (id, whether new)."""
        store = self.store
        digest = hashlib.sha256(data).hexdigest()
        existing = store.file_by_digest.get(digest)
        if existing is not None:
            return existing, False
        file = StoredFile(
            id=new_id(),
            data=data,
            content_type=content_type,
            created_at=store.stamp(),
            creator_id=store.me_id,
        )
        store.files[file.id] = file
        store.file_by_digest[digest] = file.id
        store.publish("file", file.id, "created")
        return file.id, True

    def download(self, file_id: str, fmt: str) -> tuple[bytes, str]:
        """``GET /files/{id}?format=``: return (bytes, content type); tar → zip on request."""
        if fmt not in ("", "zip"):
            raise FakeCoderError(
                400, "Invalid format.", detail=f'format "{fmt}" is not supported; use "zip"'
            )
        file = self.store.files.get(file_id)
        if file is None:
            raise FakeCoderError(404, NOT_FOUND)
        if fmt == "zip" and file.content_type == "application/x-tar":
            return tar_to_zip(file.data), "application/zip"
        return file.data, file.content_type
