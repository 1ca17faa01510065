"""The fake Coder's tables, clock and change listeners, with lookups (pure, no I/O).

`Store` is what every part of the fake's state shares: the records by id, the clock
that stamps them, and the listeners told about each mutation.  It knows Coder's
lookup rules (ids, names, ``me``) and their errors, not the operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import attrs

from ._fake_model import (
    NOT_FOUND,
    Build,
    ChangeAction,
    ChangeKind,
    FakeCoderChange,
    FakeCoderError,
    Organization,
    StoredFile,
    Template,
    TemplateVersion,
    User,
    Workspace,
)

__all__ = ["Store", "new_id"]


def new_id() -> str:
    """Return a fresh random UUID string."""
    return str(uuid.uuid4())


@attrs.define
class Store:
    """The records of one fake Coder deployment, its clock and its change listeners.

    Attributes:
        clock: returns the current time as POSIX seconds.
        me_id: the id of the token's user (``me``).
        last_stamp: the latest timestamp handed out (microseconds).
        listeners: called with every `FakeCoderChange`, in mutation order.
    """

    clock: Callable[[], float]
    organizations: dict[str, Organization] = attrs.field(factory=lambda: dict[str, Organization]())
    users: dict[str, User] = attrs.field(factory=lambda: dict[str, User]())
    me_id: str = ""
    templates: dict[str, Template] = attrs.field(factory=lambda: dict[str, Template]())
    versions: dict[str, TemplateVersion] = attrs.field(factory=lambda: dict[str, TemplateVersion]())
    files: dict[str, StoredFile] = attrs.field(factory=lambda: dict[str, StoredFile]())
    file_by_digest: dict[str, str] = attrs.field(factory=lambda: dict[str, str]())
    workspaces: dict[str, Workspace] = attrs.field(factory=lambda: dict[str, Workspace]())
    builds: dict[str, Build] = attrs.field(factory=lambda: dict[str, Build]())
    last_stamp: int = 0
    listeners: list[Callable[[FakeCoderChange], None]] = attrs.field(
        factory=lambda: list[Callable[[FakeCoderChange], None]]()
    )

    # ------------------------------------------------------------------ time & changes

    def now_us(self) -> int:
        """Return the clock's time in microseconds."""
        return round(self.clock() * 1_000_000)

    def stamp(self, at: int | None = None) -> int:
        """Return a fresh timestamp (now, or *at*), strictly after every earlier one."""
        value = max(self.now_us() if at is None else at, self.last_stamp + 1)
        self.last_stamp = value
        return value

    def publish(self, kind: ChangeKind, object_id: str, action: ChangeAction) -> None:
        """Tell every listener about one mutation."""
        change = FakeCoderChange(kind, object_id, action)
        for listener in self.listeners:
            listener(change)

    def publish_template_workspaces(self, template: Template) -> None:
        """Publish an update of each live workspace of *template* (they render it)."""
        for workspace in self.workspaces.values():
            if workspace.template_id == template.id and not workspace.deleted:
                self.publish("workspace", workspace.id, "updated")

    # ------------------------------------------------------------------ API lookups

    def organization(self, ref: str) -> Organization:
        """Return the organization with id or name *ref* (404 otherwise)."""
        for org in self.organizations.values():
            if ref in (org.id, org.name):
                return org
        raise FakeCoderError(404, NOT_FOUND)

    def user(self, ref: str) -> User:
        """Return the user with id or username *ref*, or ``me`` (400 otherwise, as coderd)."""
        if ref == "me":
            return self.users[self.me_id]
        for user in self.users.values():
            if ref in (user.id, user.username):
                return user
        raise FakeCoderError(
            400,
            '"user" must be an existing uuid or username.',
            detail=f'queried user="{ref}"',
        )

    def live_template(self, template_id: str) -> Template:
        """Return the undeleted template *template_id* (404 otherwise)."""
        template = self.templates.get(template_id)
        if template is None or template.deleted:
            raise FakeCoderError(404, NOT_FOUND)
        return template

    def template_by_name(self, org_ref: str, name: str) -> Template:
        """Return the undeleted template *name* of organization *org_ref* (404 otherwise)."""
        organization = self.organization(org_ref)
        for template in self.templates.values():
            if (
                template.organization_id == organization.id
                and template.name == name
                and not template.deleted
            ):
                return template
        raise FakeCoderError(404, NOT_FOUND)

    def version(self, version_id: str) -> TemplateVersion:
        """Return template version *version_id* (404 otherwise)."""
        version = self.versions.get(version_id)
        if version is None:
            raise FakeCoderError(404, NOT_FOUND)
        return version

    def build(self, build_id: str) -> Build:
        """Return workspace build *build_id* (404 otherwise)."""
        build = self.builds.get(build_id)
        if build is None:
            raise FakeCoderError(404, NOT_FOUND)
        return build

    def workspace_by_id(self, workspace_id: str, *, include_deleted: bool = False) -> Workspace:
        """Return workspace *workspace_id* (404 unknown; 410 deleted unless included)."""
        workspace = self.workspaces.get(workspace_id)
        if workspace is None:
            raise FakeCoderError(404, NOT_FOUND)
        if workspace.deleted and not include_deleted:
            raise FakeCoderError(
                410,
                f'Workspace "{workspace.id}" was deleted, you can view this workspace by '
                "specifying '?deleted=true' and trying again.",
            )
        return workspace

    def latest_build(self, workspace: Workspace) -> Build:
        """Return *workspace*'s latest build."""
        return self.builds[workspace.latest_build_id]

    # ------------------------------------------------------------------ test lookups

    def find_workspace(self, ref: str) -> Workspace:
        """Resolve an id, ``owner/name`` or ``org.owner.name`` (non-deleted first).

        Raises:
            KeyError: no such workspace.
        """
        if ref in self.workspaces:
            return self.workspaces[ref]
        org_name: str | None = None
        if "/" in ref:
            owner, _, name = ref.partition("/")
        elif ref.count(".") == 2:
            org_name, owner, name = ref.split(".")
        else:
            raise KeyError(f"no workspace {ref!r} (use an id, 'owner/name' or 'org.owner.name')")
        candidates = [
            ws
            for ws in self.workspaces.values()
            if ws.name == name
            and self.users[ws.owner_id].username == owner
            and (org_name is None or self.organizations[ws.organization_id].name == org_name)
        ]
        candidates.sort(key=lambda ws: (ws.deleted, -ws.created_at))
        if not candidates:
            raise KeyError(f"no workspace {ref!r}")
        return candidates[0]

    def find_template(self, ref: str) -> Template:
        """Resolve an id, ``org/name`` or ``org.name`` (non-deleted first).

        Raises:
            KeyError: no such template.
        """
        if ref in self.templates:
            return self.templates[ref]
        if "/" in ref:
            org_name, _, name = ref.partition("/")
        elif ref.count(".") == 1:
            org_name, name = ref.split(".")
        else:
            raise KeyError(f"no template {ref!r} (use an id, 'org/name' or 'org.name')")
        candidates = [
            t
            for t in self.templates.values()
            if t.name == name and self.organizations[t.organization_id].name == org_name
        ]
        candidates.sort(key=lambda t: (t.deleted, -t.created_at))
        if not candidates:
            raise KeyError(f"no template {ref!r}")
        return candidates[0]
