"""`WorkspaceStorage`: Coder workspaces behind the storage protocol."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from typing_extensions import final

from k8swatch._events import EventType
from k8swatch._finalizers import DeletePreconditions
from k8swatch._go import go_quote
from k8swatch._json import copy_json
from k8swatch._status import Status, StatusError, already_exists, bad_request, not_found
from k8swatch._warnings import add_warning
from k8swatch.coder._client import CoderClient
from k8swatch.coder._convert import parse_rfc3339_ns, parse_uuid
from k8swatch.coder._ledger import name_of, sub
from k8swatch.coder._metadata import dress, kept_metadata
from k8swatch.coder._models import GROUP, CoderTemplate, CoderWorkspace
from k8swatch.coder._names import build_template_name, parse_workspace_name
from k8swatch.coder._storage_base import (
    DeleteTarget,
    _CoderStorage,
    check_create_identity,
    check_update_identity,
    name_from_name,
    name_from_object,
    with_name,
    writes,
)

__all__ = ["WorkspaceStorage"]

logger = logging.getLogger("k8swatch.coder")


def _apply_build(workspace: dict[str, Any], build: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(workspace)
    out["latest_build"] = dict(build)
    updated = build.get("updated_at")
    if updated and not str(updated).startswith("0001-01-01"):
        out["updated_at"] = updated
    return out


def _workspace_version(workspace: Mapping[str, Any]) -> int:
    version = parse_rfc3339_ns(str(workspace["updated_at"]))
    build_updated = sub(workspace, "latest_build").get("updated_at")
    if build_updated:
        version = max(version, parse_rfc3339_ns(str(build_updated)))
    return version


@final
class WorkspaceStorage(_CoderStorage):
    """``coderworkspaces``: Coder workspaces as ``CoderWorkspace`` objects.

    * create: ``POST /users/{owner}/workspaces`` (then a ``stop`` build when
      ``spec.running`` is false; its failure is ignored) → ADDED;
    * update: only ``spec.running`` may change: a ``start``/``stop`` build →
      MODIFIED; an update that changes nothing answers the current object
      and emits nothing;
    * delete: a ``delete`` build → MODIFIED (Coder deletes asynchronously; the
      event carries the delete build as the latest build), answers
      ``Status Success``; the poller reports the DELETED once Coder is done.
      With finalizers, the delete only sets ``deletionTimestamp`` (MODIFIED)
      and the build starts when an update removes the last finalizer.

    Labels, annotations, finalizers, ownerReferences and managedFields are
    kept in the *metadata_store*: an update that changes only them emits
    MODIFIED with a new resourceVersion and calls no Coder API.

    Args:
        provider: Resolves the Coder deployment of a namespace.
        watch_cache: Serve list and watch from a `WatchCache` (resume,
            bookmarks, ``sendInitialEvents``) instead of a plain broadcaster.
        full_channel_behavior: Broadcaster policy for slow watchers (default
            `TERMINATE_IF_FULL`: the slow watcher gets a 410 and relists; the
            Go original drops events instead, `DROP_IF_FULL`).
        queue_length: Events buffered per watcher.
        cache_window: Events the cache keeps for resume.
        bookmark_interval: Seconds between bookmarks on an idle cached watch.
        log: A shared [`EventLog`][k8swatch.EventLog] (implies the watch
            cache), e.g. ``RedisBackend.log_for("coderworkspaces",
            group="aggregation.coder.com")``, so that several replicas in
            front of one Coder serve one consistent API: every change is
            recorded in the log, which numbers it with a global
            resourceVersion, and the cache is fed from the log (run
            `follow` for the storage's lifetime). See the how-to "Run
            several replicas on Redis".
        metadata_store: Where the labels, annotations, finalizers,
            ownerReferences and managedFields of the workspaces are kept
            (default: a new [`MemoryMetadataStore`][k8swatch.coder.MemoryMetadataStore];
            ``RedisBackend.metadata_store_for("coderworkspaces",
            group="aggregation.coder.com")`` shares them between replicas
            and keeps them across restarts).
    """

    _RESOURCE: ClassVar[str] = CoderWorkspace.PLURAL
    _KIND: ClassVar[str] = CoderWorkspace.KIND
    _LIST_KIND: ClassVar[str] = CoderWorkspace.LIST_KIND

    async def _fetch_all(self, client: CoderClient) -> list[dict[str, Any]]:
        return await client.workspaces()

    def _convert(self, namespace: str, coder_obj: Mapping[str, Any]) -> dict[str, Any]:
        return CoderWorkspace.from_coder(namespace, coder_obj).to_dict()

    @staticmethod
    def _version(coder_obj: Mapping[str, Any]) -> int:
        return _workspace_version(coder_obj)

    def _parse(self, name: str) -> tuple[str, str, str]:
        try:
            return parse_workspace_name(name)
        except ValueError as exc:
            raise bad_request(f"invalid workspace name {go_quote(name)}: {exc}") from None

    async def _fetch(
        self, client: CoderClient, name: str, org: str, owner: str, ws: str
    ) -> dict[str, Any]:
        workspace = await self._call(name, client.workspace_by_owner_and_name(owner, ws))
        if workspace.get("organization_name") != org:
            raise not_found(self._RESOURCE, name, group=GROUP)
        return workspace

    async def _answer(
        self, namespace: str, workspace: Mapping[str, Any], epoch: int
    ) -> tuple[dict[str, Any], int, int]:
        """The workspace as read, with its metadata, folded into the known state.

        Returns ``(object, version, metadata revision)``.
        """
        obj, version, revision = await self._dress_one(namespace, workspace)
        return await self._sink.observe(namespace, obj, version, epoch), version, revision

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """``GET /users/{owner}/workspace/{name}``; another organization is NotFound.

        Raises:
            StatusError: 400 namespace missing or bad name; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, owner, ws = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            workspace = await self._fetch(client, name, org, owner, ws)
        except StatusError as exc:
            await self._forget_if_gone(namespace, name, exc)
            raise
        return (await self._answer(namespace, workspace, epoch))[0]

    @writes(name_from_object)
    async def create(
        self, namespace: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Create the workspace (``spec.organization`` and ``spec.templateName`` required).

        With *dry_run*, Coder is read (organization, template, version) but
        nothing is created: the answer is the object as given, with the
        metadata the write would keep.

        Raises:
            StatusError: 400 for a bad object; 404 ``codertemplates ... not
                found`` for an unknown template; 409 AlreadyExists; mapped
                Coder errors.
        """
        self._require_namespace(namespace)
        desired = CoderWorkspace.from_dict(obj)
        check_create_identity(desired.name, desired.namespace, namespace)
        name = desired.name
        org, owner, ws = self._parse(name)
        spec = desired.spec
        if spec.organization != org:
            raise bad_request(
                f"spec.organization {go_quote(spec.organization)} must match organization "
                f"{go_quote(org)} parsed from metadata.name"
            )
        if not spec.template_name:
            raise bad_request("spec.templateName must not be empty")
        kept = self._created_metadata(name, obj)
        client = await self._client(namespace)
        base = await self._begin_write(namespace, name)
        organization = await self._call(name, client.organization(org))
        template_name = build_template_name(org, spec.template_name)
        template = await self._call(
            template_name,
            client.template_by_name(str(organization["id"]), spec.template_name),
            resource=CoderTemplate.PLURAL,
        )
        version_id: str | None = None
        if spec.template_version_id:
            try:
                version_id = parse_uuid(spec.template_version_id)
            except ValueError as exc:
                raise bad_request(
                    "invalid workspace spec: invalid templateVersionID "
                    f"{go_quote(spec.template_version_id)}: {exc}"
                ) from None
            version = await self._call(name, client.template_version(version_id))
            if not version.get("template_id") or version.get("template_id") != template["id"]:
                raise bad_request(
                    f"spec.templateVersionID {go_quote(spec.template_version_id)} does not belong "
                    f"to template {go_quote(spec.template_name)}"
                )
        if dry_run:
            try:
                await self._fetch(client, name, org, owner, ws)
            except StatusError as exc:
                if exc.status.code != 404:
                    raise
            else:
                raise already_exists(self._RESOURCE, name, group=GROUP)
            return dress(desired.to_dict(), kept, 0)
        created = await self._call(
            name,
            client.create_user_workspace(
                owner,
                name=ws,
                template_id=None if version_id else str(template["id"]),
                template_version_id=version_id,
                ttl_ms=spec.ttl_millis,
                autostart_schedule=spec.autostart_schedule,
            ),
        )
        if not spec.running:
            try:
                build = await client.create_workspace_build(str(created["id"]), "stop")
            except Exception as exc:
                # The workspace exists; failing now would make a retry hit
                # AlreadyExists. The stop can be retried with an update.
                logger.info("coder: stop build after creating %s failed: %s", name, exc)
            else:
                created = _apply_build(created, build)
        result = self._convert(namespace, created)
        rv = _workspace_version(created)
        if kept:
            revision = await self._store_metadata(
                namespace, name, str(created["id"]), kept, expected=0, after=rv
            )
            dress(result, kept, revision)
            rv = max(rv, revision)
        return await self._sink.publish(EventType.ADDED, namespace, result, rv, base=base)

    @writes(name_from_name)
    async def update_or_create(
        self,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        force_allow_create: bool = False,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Update; with *force_allow_create* (server-side apply), create a missing workspace.

        Only ``spec.running`` may change in Coder; the metadata the store
        keeps may change too (a metadata-only change emits MODIFIED with a
        new resourceVersion and calls no Coder API). Removing the last
        finalizer of a workspace being deleted starts its ``delete`` build.
        Returns ``(object, created)``. *dry_run*: see `update`.

        Raises:
            StatusError: 400 for a changed immutable field, a missing
                resourceVersion or an identity mismatch; 409 Conflict for a
                stale resourceVersion or an active build; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, owner, ws = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            workspace = await self._call(name, client.workspace_by_owner_and_name(owner, ws))
        except StatusError as exc:
            if exc.status.code == 404 and force_allow_create:
                return await self.create(namespace, with_name(obj, name), dry_run=dry_run), True
            raise
        if workspace.get("organization_name") != org:
            raise not_found(self._RESOURCE, name, group=GROUP)
        current_dict, version, revision = await self._answer(namespace, workspace, epoch)
        base = self._ledger.base((namespace, name))
        current = CoderWorkspace.from_dict(current_dict)
        desired = CoderWorkspace.from_dict(obj)
        check_update_identity(desired.name, name, "", namespace)
        if desired.spec.organization and desired.spec.organization != org:
            raise bad_request(
                f"updated object spec.organization {go_quote(desired.spec.organization)} must "
                f"match organization {go_quote(org)} parsed from metadata.name"
            )
        check_update_identity("", name, desired.namespace, namespace)
        self._check_resource_version(name, desired.resource_version, current.resource_version)
        have_meta = kept_metadata(current_dict["metadata"])
        want_meta = self._wanted_metadata(name, obj, current_dict)
        want, have = desired.spec, current.spec
        if (
            want.organization != have.organization
            or want.template_name != have.template_name
            or (want.template_version_id and want.template_version_id != have.template_version_id)
            or (want.ttl_millis is not None and want.ttl_millis != have.ttl_millis)
            or (
                want.autostart_schedule is not None
                and want.autostart_schedule != have.autostart_schedule
            )
        ):
            raise bad_request(
                "workspace update only supports changing spec.running; other spec fields are "
                "immutable"
            )
        self._check_status(name, obj, current_dict)
        for field, kept_value, cleared in (
            ("ttlMillis", have.ttl_millis, want.ttl_millis is None),
            ("autostartSchedule", have.autostart_schedule, want.autostart_schedule is None),
            ("templateVersionID", have.template_version_id, not want.template_version_id),
        ):
            if kept_value and cleared:
                add_warning(
                    f"spec.{field}: an existing workspace's value cannot be cleared; "
                    f"it stays {go_quote(str(kept_value))}"
                )
        meta_changed = want_meta != have_meta
        if want.running == have.running and not meta_changed:
            return current_dict, False
        if dry_run:
            answer = dress(copy_json(current_dict), want_meta, 0)
            answer["spec"]["running"] = want.running
            return answer, False
        build: dict[str, Any] | None = None
        if self._releases_deletion(have_meta, want_meta):
            # The last finalizer is gone: the deletion held back starts now.
            build = await self._call(
                name, client.create_workspace_build(str(workspace["id"]), "delete")
            )
        elif want.running != have.running:
            build = await self._toggle(client, name, workspace, want.running)
        if meta_changed:
            revision = await self._store_metadata(
                namespace, name, str(workspace["id"]), want_meta, expected=revision, after=version
            )
        return await self._publish_build(
            namespace, workspace, build, base, want_meta, revision
        ), False

    async def _toggle(
        self, client: CoderClient, name: str, workspace: Mapping[str, Any], running: bool
    ) -> dict[str, Any]:
        transition = "start" if running else "stop"
        return await self._call(
            name, client.create_workspace_build(str(workspace["id"]), transition)
        )

    async def _publish_build(
        self,
        namespace: str,
        workspace: dict[str, Any],
        build: Mapping[str, Any] | None,
        base: int | None,
        kept: Mapping[str, Any],
        revision: int,
    ) -> dict[str, Any]:
        """Record the workspace with its new *build* (if any) and metadata *kept* at *revision*.

        MODIFIED, unless the same state was recorded already (the stream can
        be faster than the answer to the build).
        """
        updated = _apply_build(workspace, build) if build is not None else workspace
        obj = dress(self._convert(namespace, updated), kept, revision)
        return await self._sink.publish(
            EventType.MODIFIED,
            namespace,
            obj,
            max(_workspace_version(updated), revision),
            base=base,
            unless_seen=True,
        )

    @writes(name_from_name)
    async def delete(
        self,
        namespace: str,
        name: str,
        *,
        preconditions: DeletePreconditions | None = None,
        dry_run: bool = False,
    ) -> Status | dict[str, Any]:
        """Start a ``delete`` build; emit MODIFIED with it applied; answer Status Success.

        A workspace with finalizers is not deleted yet: its
        ``metadata.deletionTimestamp`` is set (MODIFIED) and the answer is
        the workspace; the ``delete`` build starts when an update removes
        the last finalizer. *preconditions* (``uid``, ``resourceVersion``)
        must match the workspace; *dry_run* checks and answers, changing
        nothing.

        Raises:
            StatusError: 400 bad name; 404; mapped Coder errors; 409 Conflict
                when the preconditions do not hold or the metadata changed
                meanwhile.
        """
        self._require_namespace(namespace)
        org, owner, ws = self._parse(name)
        client = await self._client(namespace)

        async def start_delete_build(target: DeleteTarget) -> None:
            workspace = target.coder
            build = await self._call(
                name, client.create_workspace_build(str(workspace["id"]), "delete")
            )
            await self._publish_build(
                namespace, workspace, build, target.base, target.kept, target.revision
            )

        return await self._delete(
            namespace,
            name,
            fetch=functools.partial(self._fetch, client, name, org, owner, ws),
            remove=start_delete_build,
            preconditions=preconditions,
            dry_run=dry_run,
        )

    async def observe(self, namespace: str, workspace: Mapping[str, Any]) -> None:
        """Fold one workspace read from Coder (e.g. from its watch stream) into the state.

        Emits MODIFIED (or ADDED) if it differs from the last known state and
        is not older than it; used by `CoderPoller`'s stream bridge.
        """
        try:
            obj, version, _ = await self._dress_one(namespace, workspace)
        except (KeyError, ValueError) as exc:
            logger.warning("coder: skipping malformed workspace: %s", exc)
            return
        except StatusError as exc:
            logger.warning("coder: workspace update not folded in: %s", exc.status.message)
            return
        key = (namespace, name_of(obj))
        if namespace not in self._ledger.primed or key in self._ledger.inflight:
            return
        known = self._ledger.known.get(key)
        if known is None:
            if self._ledger.tombstones.get(key) is None:
                await self._sink.note(EventType.ADDED, namespace, obj, version)
            return
        if version < known.version or known.fingerprint == self._sink.fingerprint(obj):
            return
        await self._sink.note(EventType.MODIFIED, namespace, obj, version)

    def active_workspaces(self) -> list[tuple[str, str]]:
        """``(namespace, workspace id)`` of known workspaces whose latest build is in progress."""
        out: list[tuple[str, str]] = []
        for (namespace, _), known in self._ledger.known.items():
            status = known.object.get("status", {})
            if status.get("latestBuildStatus") in _ACTIVE_BUILD_STATUSES and status.get("id"):
                out.append((namespace, str(status["id"])))
        return out


_ACTIVE_BUILD_STATUSES = frozenset({"pending", "starting", "stopping", "deleting", "canceling"})
