"""`TemplateStorage`: Coder templates behind the storage protocol."""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import anyio
import attrs
from typing_extensions import final

from k8swatch._broadcaster import FullChannelBehavior
from k8swatch._eventlog import EventLog
from k8swatch._events import Event, EventType
from k8swatch._finalizers import DeletePreconditions
from k8swatch._go import format_go_duration, go_quote
from k8swatch._json import copy_json
from k8swatch._options import ListOptions
from k8swatch._status import (
    Status,
    StatusCause,
    StatusError,
    already_exists,
    bad_request,
    internal_error,
    invalid,
    timeout,
)
from k8swatch._storage import ObjectList
from k8swatch._watch import Watch
from k8swatch.coder._client import CoderClient, CoderError, Scrubber
from k8swatch.coder._convert import parse_uuid
from k8swatch.coder._files import build_archive, merge_archive, normalize_files
from k8swatch.coder._files_cache import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DecoratedWatch,
    FilesCache,
    Unreadable,
    files_of,
)
from k8swatch.coder._ledger import sub, with_files_of
from k8swatch.coder._metadata import MetadataStore, dress, kept_metadata
from k8swatch.coder._models import GROUP, CoderTemplate
from k8swatch.coder._names import parse_template_name
from k8swatch.coder._provider import ClientProvider
from k8swatch.coder._storage_base import (
    WATCH_QUEUE_LENGTH,
    DeleteTarget,
    _CoderStorage,
    check_create_identity,
    check_update_identity,
    name_from_name,
    name_from_object,
    with_name,
    writes,
)

__all__ = ["TemplateStorage"]

logger = logging.getLogger("k8swatch.coder")


_DEFAULT_WAIT_TIMEOUT = 25 * 60.0
_DEFAULT_POLL_INTERVAL = 2.0
_DEFAULT_BACKOFF_AFTER = 2 * 60.0
_DEFAULT_MAX_POLL_INTERVAL = 10.0


@final
class TemplateStorage(_CoderStorage):
    """``codertemplates``: Coder templates as ``CoderTemplate`` objects.

    * get, list and watch: the template plus ``spec.files``, the text files
      of its active version's source archive;
    * create: from ``spec.versionID``, or from ``spec.files`` (uploaded as a
      new version) → ADDED;
    * update: display name, description and icon; ``spec.files`` uploads a
      new version, waits for its import and promotes it → MODIFIED (always);
    * delete: ``DELETE /templates/{id}`` → DELETED with the template as it
      was.

    Template versions are immutable, so the files are read once per version
    and kept in a bounded cache (by version id; entries of versions no
    template lists as active any more are dropped after each listing, and a
    byte budget evicts the least recently used); objects are recorded without
    them and get them on the way out. A list reads the missing versions
    concurrently, at most *files_concurrency* at a time. A version whose
    source cannot be read for good is listed and watched without
    ``spec.files`` (logged once; get answers 500); a passing Coder failure
    fails the list (503) and ends a watch with an ERROR event.

    Args:
        provider: Resolves the Coder deployment of a namespace.
        watch_cache: See [`WorkspaceStorage`][k8swatch.coder.WorkspaceStorage].
        full_channel_behavior: See `WorkspaceStorage`.
        queue_length: See `WorkspaceStorage`.
        cache_window: See `WorkspaceStorage`.
        bookmark_interval: See `WorkspaceStorage`.
        build_wait_timeout: Seconds to wait for a new version's import
            (default 25 min); then 400 ``... did not succeed within ...``.
        build_poll_interval: First poll interval (default 2 s).
        build_backoff_after: Seconds after which the interval doubles (2 min).
        build_max_poll_interval: Interval cap (10 s).
        log: See `WorkspaceStorage`.
        files_cache_bytes: The files cache's byte budget (default 64 MiB).
        files_concurrency: Versions read from Coder at once (default 8).
        metadata_store: See `WorkspaceStorage` (``"codertemplates"``).
    """

    _RESOURCE: ClassVar[str] = CoderTemplate.PLURAL
    _KIND: ClassVar[str] = CoderTemplate.KIND
    _LIST_KIND: ClassVar[str] = CoderTemplate.LIST_KIND

    def __init__(
        self,
        provider: ClientProvider,
        *,
        watch_cache: bool = False,
        full_channel_behavior: FullChannelBehavior = FullChannelBehavior.TERMINATE_IF_FULL,
        queue_length: int = WATCH_QUEUE_LENGTH,
        cache_window: int = 1000,
        bookmark_interval: float = 60.0,
        build_wait_timeout: float = _DEFAULT_WAIT_TIMEOUT,
        build_poll_interval: float = _DEFAULT_POLL_INTERVAL,
        build_backoff_after: float = _DEFAULT_BACKOFF_AFTER,
        build_max_poll_interval: float = _DEFAULT_MAX_POLL_INTERVAL,
        log: EventLog | None = None,
        files_cache_bytes: int = DEFAULT_MAX_BYTES,
        files_concurrency: int = DEFAULT_CONCURRENCY,
        metadata_store: MetadataStore | None = None,
    ) -> None:
        self._files_cache = FilesCache(max_bytes=files_cache_bytes, concurrency=files_concurrency)
        # a watch event's recorded object (by identity) -> the same with spec.files, so
        # every watcher of the event gets one shared object (the server encodes it once)
        self._decorated: collections.OrderedDict[int, tuple[dict[str, Any], dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._decorated_drops = 0  # the cache's drops when the memo was last valid
        super().__init__(
            provider,
            watch_cache=watch_cache,
            full_channel_behavior=full_channel_behavior,
            queue_length=queue_length,
            cache_window=cache_window,
            bookmark_interval=bookmark_interval,
            log=log,
            metadata_store=metadata_store,
        )
        self._wait_timeout = build_wait_timeout
        self._poll_interval = build_poll_interval
        self._backoff_after = build_backoff_after
        self._max_poll_interval = build_max_poll_interval

    async def _fetch_all(self, client: CoderClient) -> list[dict[str, Any]]:
        templates = await client.templates()
        # a complete listing: versions no template has active are not needed any more
        self._files_cache.retain(client, (str(t.get("active_version_id")) for t in templates))
        return templates

    def _convert(self, namespace: str, coder_obj: Mapping[str, Any]) -> dict[str, Any]:
        return CoderTemplate.from_coder(namespace, coder_obj).to_dict()

    def _parse(self, name: str) -> tuple[str, str]:
        try:
            return parse_template_name(name)
        except ValueError as exc:
            raise bad_request(f"invalid template name {go_quote(name)}: {exc}") from None

    async def _fetch(
        self, client: CoderClient, name: str, org: str, tmpl: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        organization = await self._call(name, client.organization(org))
        template = await self._call(name, client.template_by_name(str(organization["id"]), tmpl))
        return organization, template

    async def _active_archive(
        self, client: CoderClient, name: str, template: Mapping[str, Any]
    ) -> bytes:
        """The active version's source zip, to build the next version on.

        Raises:
            StatusError: 500 when the version has no source file or it is
                gone; mapped Coder errors otherwise.
        """
        version_id = str(template["active_version_id"])
        try:
            version = await client.template_version(version_id)
            file_id = sub(version, "job").get("file_id")
            if file_id:
                return await client.download(str(file_id))
        except CoderError as exc:
            if exc.status_code != 404:
                raise self._map(exc, name) from None
            logger.warning("coder: the source of %s is gone: %s", name, exc)
        except Exception as exc:
            raise self._map(exc, name) from None
        raise internal_error(
            f"cannot read the source of template version {go_quote(version_id)} of {name}"
        )

    async def _files(self, client: CoderClient, template: Mapping[str, Any]) -> dict[str, str]:
        """The active version's text files, through the cache.

        Raises:
            StatusError: 500 when the source cannot be read for good (the
                reason in the message, the details in the log); mapped Coder
                errors otherwise.
        """
        name = _name_of(template)
        entry = await self._files_cache.files(client, str(template["active_version_id"]), name)
        if isinstance(entry, Unreadable):
            raise internal_error(entry.reason)
        return dict(entry)

    async def _with_files(
        self, client: CoderClient, name: str, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """*obj* with ``spec.files``, best effort: for the answer of a write already done.

        A failure to read the files is logged, and *obj* answered without them
        (failing would make a retry of the write hit AlreadyExists or NotFound).
        """
        version_id = str(obj["spec"].get("versionID") or "")
        if not version_id:
            return obj
        try:
            entry = await self._files_cache.files(client, version_id, name)
        except StatusError as exc:
            logger.warning("coder: answering %s without spec.files: %s", name, exc.status.message)
            return obj
        files = files_of(entry)
        if files is not None:
            obj["spec"]["files"] = files
        return obj

    # --- spec.files in lists and watches -------------------------------------------

    async def _decorate(
        self, objects: Sequence[dict[str, Any]], *, remember: bool = False
    ) -> list[dict[str, Any]]:
        """*objects* (read-only) as new objects with ``spec.files``, read concurrently.

        Objects that carry their files already, or whose version's source cannot
        be read for good, are passed on as they are. With *remember* (watch
        events, whose objects every watcher shares), the new object is kept for
        the next watcher of the same event.

        Raises:
            StatusError: the provider or Coder failed (mapped; e.g. 503).
        """
        if self._decorated_drops != self._files_cache.drops:
            # files left the cache: so do the objects holding them (the bound holds)
            self._decorated.clear()
            self._decorated_drops = self._files_cache.drops
        wanted: dict[str, dict[str, str]] = {}
        for obj in objects:
            spec = sub(obj, "spec")
            version_id = spec.get("versionID")
            if version_id and "files" not in spec and not self._memoized(obj):
                namespace = str(obj["metadata"].get("namespace") or "")
                wanted.setdefault(namespace, {})[str(version_id)] = str(obj["metadata"]["name"])
        found: dict[tuple[str, str], dict[str, str] | Unreadable] = {}
        for namespace, versions in wanted.items():
            client = await self._client(namespace)
            for version_id, entry in (await self._files_cache.fill(client, versions)).items():
                found[namespace, version_id] = entry
        out: list[dict[str, Any]] = []
        for obj in objects:
            memo = self._memoized(obj)
            if memo is not None:
                out.append(memo)
                continue
            spec = sub(obj, "spec")
            key = (str(obj["metadata"].get("namespace") or ""), str(spec.get("versionID") or ""))
            files = files_of(found.get(key)) if "files" not in spec else None
            if files is None:
                out.append(obj)
                continue
            decorated = {**obj, "spec": {**spec, "files": files}}
            if remember:
                self._decorated[id(obj)] = (obj, decorated)
                if len(self._decorated) > _DECORATED_MAX:
                    self._decorated.popitem(last=False)
            out.append(decorated)
        return out

    def _memoized(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        entry = self._decorated.get(id(obj))
        if entry is None or entry[0] is not obj:
            return None
        self._decorated.move_to_end(id(obj))
        return entry[1]

    async def _decorate_events(
        self, events: Sequence[Event[dict[str, Any]]]
    ) -> list[Event[dict[str, Any]]]:
        objects = [e.object for e in events if e.type in _OBJECT_EVENTS]
        decorated = iter(await self._decorate(objects, remember=True))
        return [Event(e.type, next(decorated)) if e.type in _OBJECT_EVENTS else e for e in events]

    async def _full(
        self, client: CoderClient, namespace: str, template: Mapping[str, Any]
    ) -> dict[str, Any]:
        files = await self._files(client, template)
        obj = CoderTemplate.from_coder(namespace, template, files=files).to_dict()
        obj["spec"]["files"] = files  # present even when empty: GET always reads the source
        return obj

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The template with ``spec.files`` from its active version.

        Raises:
            StatusError: 400 bad name; 404; 500 when the source cannot be read.
        """
        self._require_namespace(namespace)
        org, tmpl = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            _, template = await self._fetch(client, name, org, tmpl)
        except StatusError as exc:
            await self._forget_if_gone(namespace, name, exc)
            raise
        full = await self._full(client, namespace, template)
        return (await self._answer(namespace, full, template, epoch))[0]

    async def _answer(
        self, namespace: str, full: dict[str, Any], template: Mapping[str, Any], epoch: int
    ) -> tuple[dict[str, Any], int, int]:
        """The template as read, with its metadata, folded into the known state.

        Returns ``(object, version, metadata revision)``.
        """
        if not full["spec"].get("files"):
            full["spec"].pop("files", None)
        obj, version, revision = await self._dress_one(namespace, template, full)
        return await self._sink.observe(namespace, obj, version, epoch), version, revision

    @staticmethod
    def _files_or_error(files: Mapping[str, str]) -> dict[str, str]:
        try:
            normalized = normalize_files(files)
            build_archive(normalized)
        except ValueError as exc:
            raise bad_request(f"invalid template spec.files: {exc}") from None
        return normalized

    @writes(name_from_object)
    async def create(
        self, namespace: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Create the template from ``spec.files`` or ``spec.versionID``.

        With *dry_run*, the object is checked and Coder is read (the
        organization; an existing template is 409 AlreadyExists) but nothing
        is uploaded or created: the answer is the object as given, with the
        metadata the write would keep.

        Raises:
            StatusError: 400 for a bad object; 409 AlreadyExists; 404 for an
                unknown version; mapped Coder errors.
        """
        self._require_namespace(namespace)
        desired = CoderTemplate.from_dict(obj)
        check_create_identity(desired.name, desired.namespace, namespace)
        name = desired.name
        org, tmpl = self._parse(name)
        spec = desired.spec
        if spec.organization != org:
            raise bad_request(
                f"spec.organization {go_quote(spec.organization)} must match organization "
                f"{go_quote(org)} parsed from metadata.name"
            )
        self._check_legacy_running(name, spec.running)
        kept = self._created_metadata(name, obj)
        client = await self._client(namespace)
        base = await self._begin_write(namespace, name)
        organization = await self._call(name, client.organization(org))
        org_id = str(organization["id"])
        if dry_run:
            return await self._dry_create(client, org_id, name, tmpl, desired, kept)
        if spec.files is not None:
            archive = self._archive_or_error(spec.files)
            file_id = await self._call(name, client.upload(archive))
            version = await self._call(
                name, client.create_template_version(org_id, file_id=file_id)
            )
            version_id = str(version["id"])
        else:
            try:
                version_id = parse_uuid(spec.version_id)
            except ValueError as exc:
                raise bad_request(
                    f"parse template spec.versionID {go_quote(spec.version_id)}: {exc}"
                ) from None
        template = await self._call(
            name,
            client.create_template(
                org_id,
                name=tmpl,
                version_id=version_id,
                display_name=spec.display_name,
                description=spec.description,
                icon=spec.icon,
            ),
        )
        if spec.files is not None and template.get("active_version_id") == version_id:
            # the new version's files are the ones just uploaded: no need to read them back
            self._files_cache.put(client, version_id, normalize_files(spec.files))
        result = await self._with_files(client, name, self._convert(namespace, template))
        rv = self._version(template)
        if kept:
            revision = await self._store_metadata(
                namespace, name, str(template["id"]), kept, expected=0, after=rv
            )
            dress(result, kept, revision)
            rv = max(rv, revision)
        return await self._sink.publish(EventType.ADDED, namespace, result, rv, base=base)

    async def _dry_create(
        self,
        client: CoderClient,
        org_id: str,
        name: str,
        tmpl: str,
        desired: CoderTemplate,
        kept: Mapping[str, Any],
    ) -> dict[str, Any]:
        """What a create would answer, found without changing Coder."""
        spec = desired.spec
        if spec.files is not None:
            self._archive_or_error(spec.files)
        else:
            try:
                parse_uuid(spec.version_id)
            except ValueError as exc:
                raise bad_request(
                    f"parse template spec.versionID {go_quote(spec.version_id)}: {exc}"
                ) from None
        try:
            await self._call(name, client.template_by_name(org_id, tmpl))
        except StatusError as exc:
            if exc.status.code != 404:
                raise
        else:
            raise already_exists(self._RESOURCE, name, group=GROUP)
        return dress(desired.to_dict(), kept, 0)

    def _check_legacy_running(self, name: str, running: bool) -> None:
        """422 for ``spec.running: true``: a legacy field no template keeps."""
        if running:
            raise invalid(
                self._KIND,
                name,
                [
                    StatusCause(
                        "FieldValueForbidden",
                        "Forbidden: a template cannot run; the legacy field is always false",
                        "spec.running",
                    )
                ],
                group=GROUP,
            )

    def _archive_or_error(self, files: Mapping[str, str]) -> bytes:
        try:
            return build_archive(files)
        except ValueError as exc:
            raise bad_request(f"invalid template spec.files: {exc}") from None

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
        """Update; with *force_allow_create* (server-side apply), create a missing template.

        Returns ``(object, created)``. Always emits MODIFIED on success. The
        metadata the store keeps may change too; removing the last finalizer
        of a template being deleted deletes it in Coder (DELETED). *dry_run*:
        see `update`.

        Raises:
            StatusError: 400 for a read-only ``spec.versionID``, bad files, a
                failed or slow version import, a missing resourceVersion or an
                identity mismatch; 409 Conflict for a stale resourceVersion;
                504 Timeout when the request's deadline comes first; 500 when
                a promotion does not take effect; mapped Coder errors.
        """
        self._require_namespace(namespace)
        org, tmpl = self._parse(name)
        client = await self._client(namespace)
        epoch = await self._epoch()
        try:
            _, template = await self._fetch(client, name, org, tmpl)
        except StatusError as exc:
            if exc.status.code == 404 and force_allow_create:
                return await self.create(namespace, with_name(obj, name), dry_run=dry_run), True
            raise
        full = await self._full(client, namespace, template)
        current_files: dict[str, str] = full["spec"]["files"]
        current_dict, version, revision = await self._answer(namespace, full, template, epoch)
        base = self._ledger.base((namespace, name))
        current = CoderTemplate.from_dict(current_dict)
        desired = CoderTemplate.from_dict(obj)
        check_update_identity(desired.name, name, desired.namespace, namespace)
        self._check_resource_version(name, desired.resource_version, current.resource_version)
        have_meta = kept_metadata(current_dict["metadata"])
        want_meta = self._wanted_metadata(name, obj, current_dict)
        want, have = desired.spec, current.spec
        if want.organization != have.organization:
            raise bad_request(
                f"spec.organization {go_quote(want.organization)} must match existing organization "
                f"{go_quote(have.organization)}"
            )
        if want.version_id and want.version_id != have.version_id:
            raise bad_request(
                "spec.versionID is read-only; to change the active version, update spec.files "
                f"instead (current: {go_quote(have.version_id)}, "
                f"requested: {go_quote(want.version_id)})"
            )
        self._check_legacy_running(name, want.running)
        self._check_status(name, obj, current_dict)
        new_files = self._files_or_error(want.files) if want.files is not None else None
        template_id = str(template["id"])
        if dry_run:
            answer = dress(copy_json(current_dict), want_meta, 0)
            answer["spec"].update(
                {
                    "displayName": want.display_name,
                    "description": want.description,
                    "icon": want.icon,
                }
            )
            for field in ("displayName", "description", "icon"):
                if not answer["spec"][field]:
                    del answer["spec"][field]
            if new_files is not None:
                answer["spec"]["files"] = new_files
            return answer, False
        if self._releases_deletion(have_meta, want_meta):
            # The last finalizer is gone: the deletion held back happens now.
            await self._call(name, client.delete_template(template_id))
            await self._forget_metadata([template_id])
            gone = with_files_of(
                dress(self._convert(namespace, template), want_meta, revision), current_dict
            )
            await self._sink.publish(
                EventType.DELETED, namespace, gone, max(version, revision), base=base
            )
            return gone, False
        if (want.display_name, want.description, want.icon) != (
            have.display_name,
            have.description,
            have.icon,
        ):
            await self._call(
                name,
                client.update_template_meta(
                    template_id,
                    display_name=want.display_name,
                    description=want.description,
                    icon=want.icon,
                ),
            )
        if new_files is not None and new_files != current_files:
            await self._replace_source(client, name, org, template, new_files)
        if want_meta != have_meta:
            revision = await self._store_metadata(
                namespace, name, template_id, want_meta, expected=revision, after=version
            )
        template = await self._call(name, client.template(template_id))
        full = await self._full(client, namespace, template)
        if not full["spec"].get("files"):
            full["spec"].pop("files", None)
        dress(full, want_meta, revision)
        stored = await self._sink.publish(
            EventType.MODIFIED,
            namespace,
            full,
            max(self._version(template), revision),
            base=base,
        )
        return stored, False

    async def _replace_source(
        self,
        client: CoderClient,
        name: str,
        org: str,
        template: Mapping[str, Any],
        files: dict[str, str],
    ) -> None:
        template_id = str(template["id"])
        old = await self._active_archive(client, name, template)
        try:
            archive = merge_archive(files, old)
        except ValueError as exc:
            raise bad_request(f"invalid template spec.files: {exc}") from None
        file_id = await self._call(name, client.upload(archive))
        organization = await self._call(name, client.organization(org))
        version = await self._call(
            name,
            client.create_template_version(
                str(organization["id"]), file_id=file_id, template_id=template_id
            ),
        )
        version_id = str(version["id"])
        await self._wait_for_import(client, name, version_id)
        # the new version's text files are exactly *files*: no need to read them back
        self._files_cache.put(client, version_id, files)
        await self._call(name, client.update_active_template_version(template_id, version_id))
        after = await self._call(name, client.template(template_id))
        if after.get("active_version_id") != version_id:
            raise internal_error(
                "assertion failed: active version promotion did not take effect: expected "
                f"{go_quote(version_id)}, got {go_quote(str(after.get('active_version_id')))}"
            )

    async def _wait_for_import(self, client: CoderClient, name: str, version_id: str) -> None:
        """Poll the new version until its import job ends (Go's backoff schedule).

        The request's own deadline (the enclosing cancel scope's) is honoured:
        shortly before it, the wait gives up with 504 Timeout, so the client
        gets an answer instead of a dropped connection.
        """
        deadline = anyio.current_effective_deadline()
        last: list[str] = [""]
        if math.isinf(deadline):
            await self._poll_import(client, name, version_id, last)
            return
        margin = min(0.5, max(0.0, deadline - anyio.current_time()) * 0.2)
        with anyio.CancelScope(deadline=deadline - margin) as scope:
            await self._poll_import(client, name, version_id, last)
        if scope.cancelled_caught:
            raise timeout(
                f"waiting for template version {go_quote(version_id)} to build "
                f"(last status: {go_quote(last[0])}): request deadline exceeded"
            )

    async def _poll_import(
        self, client: CoderClient, name: str, version_id: str, last: list[str]
    ) -> None:
        start = anyio.current_time()
        interval = self._poll_interval
        while True:
            version = await self._call(name, client.template_version(version_id))
            job = sub(version, "job")
            status = last[0] = str(job.get("status") or "")
            if status == "succeeded":
                return
            if status in ("failed", "canceled"):
                # the provisioner's words, about the template; not the deployment's address
                reason = Scrubber(client.url)(
                    str(job.get("error") or "template version build did not succeed")
                )
                raise bad_request(
                    f"template version {go_quote(version_id)} build ended with status "
                    f"{go_quote(status)}: {reason}"
                )
            elapsed = anyio.current_time() - start
            if elapsed >= self._wait_timeout:
                raise bad_request(
                    f"template version {go_quote(version_id)} did not succeed within "
                    f"{format_go_duration(self._wait_timeout)} (last status: {go_quote(status)})"
                )
            if elapsed >= self._backoff_after:
                interval = min(interval * 2, self._max_poll_interval)
            await anyio.sleep(min(interval, self._wait_timeout - elapsed))

    @writes(name_from_name)
    async def delete(
        self,
        namespace: str,
        name: str,
        *,
        preconditions: DeletePreconditions | None = None,
        dry_run: bool = False,
    ) -> Status | dict[str, Any]:
        """``DELETE /templates/{id}``; emit DELETED with the template as fetched before.

        A template with finalizers is not deleted yet: its
        ``metadata.deletionTimestamp`` is set (MODIFIED) and the answer is
        the template; Coder deletes it when an update removes the last
        finalizer. The template's metadata is removed with it.
        *preconditions* (``uid``, ``resourceVersion``) must match the
        template; *dry_run* checks and answers, changing nothing.

        Raises:
            StatusError: 400 bad name or templates still used by workspaces;
                404; mapped Coder errors; 409 Conflict when the metadata
                changed meanwhile.
        """
        self._require_namespace(namespace)
        org, tmpl = self._parse(name)
        client = await self._client(namespace)

        async def fetch_template() -> dict[str, Any]:
            return (await self._fetch(client, name, org, tmpl))[1]

        async def delete_template(target: DeleteTarget) -> None:
            template_id = str(target.coder["id"])
            await self._call(name, client.delete_template(template_id))
            await self._forget_metadata([template_id])
            result = await self._with_files(client, name, target.obj)
            await self._sink.publish(
                EventType.DELETED, namespace, result, target.version, base=target.base
            )

        return await self._delete(
            namespace,
            name,
            fetch=fetch_template,
            remove=delete_template,
            preconditions=preconditions,
            dry_run=dry_run,
        )

    # --- list and watch (last: the method named list shadows the builtin below it) ---

    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        """List templates, each with ``spec.files`` (see `_CoderStorage.list`).

        The files of versions not in the cache are read concurrently.

        Raises:
            StatusError: provider errors, mapped Coder errors (also while
                reading the files: the list is complete or fails).
        """
        listed = await super().list(namespace, options)
        return attrs.evolve(listed, items=tuple(await self._decorate(listed.items)))

    async def watch(self, namespace: str, options: ListOptions) -> Watch[dict[str, Any]]:
        """Watch templates; every ADDED, MODIFIED and DELETED object has ``spec.files``.

        When Coder fails while the files of an event are read, the watch
        sends an ERROR event with the Status and ends (see `_CoderStorage.watch`).

        Raises:
            StatusError: as `_CoderStorage.watch`.
        """
        watch = await super().watch(namespace, options)
        return DecoratedWatch(watch, self._decorate_events)


_DECORATED_MAX = 1024
"""Watch event objects whose decorated copy is kept for the next watcher of the event."""

_OBJECT_EVENTS = frozenset({EventType.ADDED, EventType.MODIFIED, EventType.DELETED})


def _name_of(template: Mapping[str, Any]) -> str:
    """The object name of a Coder template: ``<organization>.<template>``."""
    return f"{template.get('organization_name')}.{template.get('name')}"
