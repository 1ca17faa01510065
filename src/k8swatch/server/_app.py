"""The ASGI application: ``create_app(resources)``."""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio
import attrs
from typing_extensions import final

from k8swatch._fields import escape_field_value, parse_field_selector
from k8swatch._label_parser import parse_label_selector
from k8swatch._options import ListOptions, default_list_options, validate_list_options
from k8swatch._selectors import SelectorError
from k8swatch._status import (
    Status,
    StatusCause,
    StatusError,
    bad_request,
    internal_error,
    invalid,
    method_not_supported,
    not_found,
    too_many_requests,
)
from k8swatch._storage import ObjectList
from k8swatch._wire import encode_json

from ._discovery import AGGREGATED_CONTENT_TYPE, Discovery, parse_accept
from ._openapi import OpenAPIService, object_schema
from ._patch import DEFAULT_PATCH_TYPES, PatchFunction, check_patch_type, patch_object
from ._resource import ResourceSpec
from ._routes import DiscoveryRoute, NamespacesRoute, ResourceRoute, match_path
from ._stream import FORMAT_JSON, EventEncoder, stream_watch, table_format, with_type_meta
from ._table import INCLUDE_METADATA, INCLUDE_NONE, INCLUDE_OBJECT, build_table
from ._types import (
    JSONObject,
    Message,
    Receive,
    Scope,
    Send,
    as_object,
    metadata_of,
)
from ._validation import (
    check_field_validation,
    format_warning,
    prune_unknown_fields,
    validate_object,
)

__all__ = ["App", "create_app"]

logger = logging.getLogger("k8swatch.server")

DEFAULT_SERVER_VERSION: Mapping[str, str] = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-k8swatch",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "1970-01-01T00:00:00Z",
    "goVersion": "go1.25",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_NOT_FOUND = Status(
    code=404, reason="NotFound", message="the server could not find the requested resource"
)
_PATCH_CONFLICT_RETRIES = 5
_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _request_entity_too_large(limit: int) -> StatusError:
    return StatusError(
        Status(
            code=413,
            reason="RequestEntityTooLarge",
            message=f"Request entity too large: limit is {limit}",
        )
    )


def _method_not_allowed(method: str) -> StatusError:
    return StatusError(
        Status(
            code=405,
            reason="MethodNotAllowed",
            message=f"the server does not allow this method on the requested resource ({method})",
        )
    )


@attrs.frozen
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    def first(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None


@final
class App:
    """The ASGI application returned by [`create_app`][k8swatch.server.create_app].

    Serves discovery, the resource paths of every
    [`ResourceSpec`][k8swatch.server.ResourceSpec] and ``/api/v1/namespaces``.
    Handles ``http`` and ``lifespan`` scopes; lifespan shutdown (or
    ``aclose()``) ends every open watch stream and ``aclose()``s every storage.
    """

    def __init__(
        self,
        resources: Iterable[ResourceSpec],
        *,
        max_watches: int = 10_000,
        max_body_bytes: int = 3 * 1024 * 1024,
        min_request_timeout: float = 1800.0,
        retry_after_seconds: int = 1,
        server_version: Mapping[str, str] | None = None,
        patch_types: Mapping[str, PatchFunction] | None = None,
    ) -> None:
        self.resources: tuple[ResourceSpec, ...] = tuple(resources)
        by_path: dict[tuple[str, str, str], ResourceSpec] = {}
        for res in self.resources:
            key = (res.group, res.version, res.plural)
            if key in by_path:
                raise ValueError(f"resource {res.plural} served twice in {res.api_version}")
            by_path[key] = res
        self._by_path = by_path
        self.max_watches = max_watches
        self.max_body_bytes = max_body_bytes
        self.min_request_timeout = min_request_timeout
        self.retry_after_seconds = retry_after_seconds
        self.patch_types: dict[str, PatchFunction] = {**DEFAULT_PATCH_TYPES, **(patch_types or {})}
        self.discovery: Discovery = Discovery(
            self.resources, server_version or DEFAULT_SERVER_VERSION
        )
        self.openapi: OpenAPIService = OpenAPIService(self.resources)
        """Serves ``/openapi/v2``, ``/openapi/v3`` and the group-version documents."""
        self._schemas = {id(res): object_schema(res) for res in self.resources}
        self.encoder: EventEncoder = EventEncoder()
        """The shared [`EventEncoder`][k8swatch.server.EventEncoder] (``encode_count``)."""
        self._watch_stops: set[anyio.Event] = set()
        self._closed = False

    @property
    def active_watches(self) -> int:
        """The number of watch streams currently open."""
        return len(self._watch_stops)

    async def aclose(self) -> None:
        """End every open watch stream and close every storage (idempotent)."""
        for done in list(self._watch_stops):
            done.set()
        if self._closed:
            return
        self._closed = True
        seen: set[int] = set()
        for res in self.resources:
            closer = getattr(res.storage, "aclose", None)
            if closer is None or id(res.storage) in seen:
                continue
            seen.add(id(res.storage))
            await closer()

    # -- ASGI entry point ---------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.aclose()
                except Exception as exc:
                    logger.exception("closing the storages failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        path: str = scope.get("path", "/")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        raw_query: bytes = scope.get("query_string", b"")
        request = _Request(
            method=scope.get("method", "GET").upper(),
            path=unquote(path),
            query=parse_qs(raw_query.decode("latin-1"), keep_blank_values=True),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        )
        try:
            await self._dispatch(request, receive, tracking_send)
        except StatusError as err:
            if started:
                raise
            await _send_status(tracking_send, err.status, self._status_headers(err.status))
        except Exception as exc:
            if started:
                raise
            logger.exception("%s %s failed", request.method, request.path)
            status = internal_error(exc).status
            await _send_status(tracking_send, status)

    def _status_headers(self, status: Status) -> list[tuple[bytes, bytes]]:
        if status.details is not None and status.details.retry_after_seconds:
            return [(b"retry-after", str(status.details.retry_after_seconds).encode())]
        return []

    # -- routing ------------------------------------------------------------

    async def _dispatch(self, request: _Request, receive: Receive, send: Send) -> None:
        openapi = self.openapi.respond(
            request.method,
            request.path,
            {key: values[0] for key, values in request.query.items() if values},
            request.headers,
        )
        if openapi is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": openapi.status,
                    "headers": [
                        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in openapi.headers),
                        (b"content-length", str(len(openapi.body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": openapi.body})
            return
        route = match_path(request.path, self._by_path)
        if isinstance(route, ResourceRoute):
            await self._resource(route, request, receive, send)
        elif isinstance(route, DiscoveryRoute):
            await self._discovery(route, request, send)
        elif isinstance(route, NamespacesRoute):
            await self._namespaces(route, request, send)
        else:
            await _send_status(send, _NOT_FOUND)

    async def _discovery(self, route: DiscoveryRoute, request: _Request, send: Send) -> None:
        if request.method not in ("GET", "HEAD"):
            raise _method_not_allowed(request.method)
        document: dict[str, Any] | None
        content_type = "application/json"
        if route.document in ("api", "apis") and _wants_aggregated(request):
            document = self.discovery.aggregated(core=route.document == "api")
            content_type = AGGREGATED_CONTENT_TYPE
        elif route.document == "root":
            document = {"paths": self._root_paths()}
        elif route.document == "health":
            await _send_bytes(send, 200, b"ok", "text/plain; charset=utf-8")
            return
        elif route.document == "version":
            document = self.discovery.version()
        elif route.document == "api":
            document = self.discovery.api_versions()
        elif route.document == "core":
            document = self.discovery.core_resources()
        elif route.document == "apis":
            document = self.discovery.group_list()
        elif route.document == "group":
            document = self.discovery.group(route.group)
        else:
            document = self.discovery.resource_list(route.group, route.version)
        if document is None:
            await _send_status(send, _NOT_FOUND)
            return
        await _send_bytes(send, 200, encode_json(document), content_type)

    def _root_paths(self) -> list[str]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
        for res in self.resources:
            if res.group:
                paths.add(f"/apis/{res.group}")
                paths.add(f"/apis/{res.group}/{res.version}")
        return sorted(paths)

    # -- namespaces ---------------------------------------------------------

    async def _known_namespaces(self) -> list[str]:
        names = {"default"}
        for res in self.resources:
            lister = getattr(res.storage, "list", None)
            if not res.namespaced or lister is None:
                continue
            result: ObjectList = await lister("", ListOptions())
            for item in result.items:
                namespace = metadata_of(item).get("namespace")
                if namespace:
                    names.add(str(namespace))
        return sorted(names)

    async def _namespaces(self, route: NamespacesRoute, request: _Request, send: Send) -> None:
        if request.method != "GET":
            raise _method_not_allowed(request.method)
        if route.watch_path or _parse_bool(request.first("watch")):
            raise method_not_supported("namespaces", "watch")
        if route.name:
            # Namespaces are implicit: every valid name exists (kubectl checks the
            # namespace after a NotFound and would blame a missing namespace).
            if not _NAMESPACE_NAME.fullmatch(route.name):
                raise not_found("namespaces", route.name)
            await self._send_object(send, request, _namespace(route.name), None, 200)
            return
        names = await self._known_namespaces()
        items = [_namespace(n) for n in names]
        if _table_request(request) is not None:
            table = build_table(items, include_object=_table_request(request) or INCLUDE_METADATA)
            await _send_bytes(send, 200, encode_json(table))
            return
        document: JSONObject = {
            "kind": "NamespaceList",
            "apiVersion": "v1",
            "metadata": {},
            "items": items,
        }
        await _send_bytes(send, 200, encode_json(document))

    # -- resources ----------------------------------------------------------

    async def _resource(
        self, route: ResourceRoute, request: _Request, receive: Receive, send: Send
    ) -> None:
        method = request.method
        res = route.resource
        collection = not route.name
        if method == "GET":
            watch = route.watch_path or _parse_bool(request.first("watch"))
            if watch:
                await self._watch(route, request, receive, send)
            elif collection:
                await self._list(route, request, send)
            else:
                await self._get(route, request, send)
            return
        if route.watch_path:
            raise _method_not_allowed(method)
        if method == "POST" and collection and (route.namespace or not res.namespaced):
            await self._create(route, request, receive, send)
        elif method == "PUT" and not collection:
            await self._update(route, request, receive, send)
        elif method == "PATCH" and not collection:
            await self._patch(route, request, receive, send)
        elif method == "DELETE" and not collection:
            await _read_body(receive, self.max_body_bytes)
            await self._delete(route, request, send)
        else:
            raise _method_not_allowed(method)

    def _require(self, res: ResourceSpec, verb: str) -> Any:
        method = getattr(res.storage, _STORAGE_METHOD[verb], None)
        if verb not in res.verbs or method is None:
            raise method_not_supported(res.plural, verb, group=res.group)
        return method

    def _list_options(self, route: ResourceRoute, request: _Request) -> ListOptions:
        options = ListOptions.from_query(request.query)
        if route.watch_path and not options.watch:
            options = attrs.evolve(options, watch=True)
        try:
            parse_label_selector(options.label_selector)
            fields = parse_field_selector(options.field_selector)
        except SelectorError as exc:
            raise bad_request(exc.detail) from None
        if route.name:
            if not fields.empty:
                if fields.requires_exact_match("metadata.name") != route.name:
                    raise bad_request("fieldSelector metadata.name doesn't match requested name")
            else:
                options = attrs.evolve(
                    options, field_selector="metadata.name=" + escape_field_value(route.name)
                )
        options = default_list_options(options)
        validate_list_options(options)
        return options

    async def _list(self, route: ResourceRoute, request: _Request, send: Send) -> None:
        res = route.resource
        lister = self._require(res, "list")
        options = self._list_options(route, request)
        result: ObjectList = await lister(route.namespace, options)
        items = [with_type_meta(item, res) for item in result.items]
        include = _table_request(request)
        if include is not None:
            table = build_table(
                items,
                resource_version=result.resource_version,
                continue_token=result.continue_token,
                include_object=include,
                columns=res.printer_columns,
            )
            await _send_bytes(send, 200, encode_json(table))
            return
        metadata: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_token:
            metadata["continue"] = result.continue_token
        if result.remaining_item_count is not None:
            metadata["remainingItemCount"] = result.remaining_item_count
        document = {
            "apiVersion": res.api_version,
            "kind": res.list_kind,
            "metadata": metadata,
            "items": items,
        }
        await _send_bytes(send, 200, encode_json(document))

    async def _get(self, route: ResourceRoute, request: _Request, send: Send) -> None:
        getter = self._require(route.resource, "get")
        obj = await getter(route.namespace, route.name)
        await self._send_object(send, request, obj, route.resource, 200)

    async def _watch(
        self, route: ResourceRoute, request: _Request, receive: Receive, send: Send
    ) -> None:
        res = route.resource
        watcher = self._require(res, "watch")
        options = self._list_options(route, request)
        if not options.watch:
            options = attrs.evolve(options, watch=True)
        if self._closed:
            raise StatusError(
                Status(code=503, reason="ServiceUnavailable", message="the server is shutting down")
            )
        if len(self._watch_stops) >= self.max_watches:
            raise too_many_requests(
                f"too many watches: the limit is {self.max_watches}",
                self.retry_after_seconds,
            )
        include = _table_request(request)
        fmt = FORMAT_JSON if include is None else table_format(include)
        done = anyio.Event()
        self._watch_stops.add(done)
        try:
            watch = await watcher(route.namespace, options)
            if options.timeout_seconds is not None and options.timeout_seconds > 0:
                timeout: float = float(options.timeout_seconds)
            else:
                timeout = self.min_request_timeout * (1.0 + random.random())
            encoder = self.encoder
            try:
                await stream_watch(
                    watch,
                    receive=receive,
                    send=send,
                    encode=lambda event: encoder.encode(event, res, fmt),
                    timeout=timeout,
                    done=done,
                )
            finally:
                watch.stop()
        finally:
            self._watch_stops.discard(done)

    async def _read_object(self, request: _Request, receive: Receive) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise _request_entity_too_large(self.max_body_bytes)
        body = await _read_body(receive, self.max_body_bytes)
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None
        found = as_object(obj)
        if found is None:
            raise bad_request("the request body must be a JSON object")
        return found

    def _check_type_meta(self, res: ResourceSpec, obj: dict[str, Any]) -> dict[str, Any]:
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version not in (None, "", res.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({res.api_version})"
            )
        if kind not in (None, "", res.kind):
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
            )
        metadata = obj.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be a JSON object")
        return {**obj, "apiVersion": res.api_version, "kind": res.kind, "metadata": metadata}

    def _check_namespace(self, route: ResourceRoute, metadata: dict[str, Any]) -> dict[str, Any]:
        if not route.resource.namespaced:
            return metadata
        namespace = metadata.get("namespace")
        if namespace and namespace != route.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace "
                "sent on the request"
            )
        return {**metadata, "namespace": route.namespace}

    async def _create(
        self, route: ResourceRoute, request: _Request, receive: Receive, send: Send
    ) -> None:
        res = route.resource
        creator = self._require(res, "create")
        obj = self._check_type_meta(res, await self._read_object(request, receive))
        metadata = self._check_namespace(route, obj["metadata"])
        if not metadata.get("name") and not metadata.get("generateName"):
            raise invalid(
                res.kind,
                "",
                [
                    StatusCause(
                        reason="FieldValueRequired",
                        message="Required value: name or generateName is required",
                        field="metadata.name",
                    )
                ],
                group=res.group,
            )
        obj, warnings = self._validate(res, {**obj, "metadata": metadata}, request, "create")
        if _dry_run(request, "CreateOptions"):
            await self._send_object(send, request, obj, res, 201, headers=warnings)
            return
        created = await creator(route.namespace, obj)
        await self._send_object(send, request, created, res, 201, headers=warnings)

    def _check_name(self, route: ResourceRoute, metadata: dict[str, Any]) -> dict[str, Any]:
        name = metadata.get("name")
        if name and name != route.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({route.name})"
            )
        return {**self._check_namespace(route, metadata), "name": route.name}

    async def _update(
        self, route: ResourceRoute, request: _Request, receive: Receive, send: Send
    ) -> None:
        res = route.resource
        updater = self._require(res, "update")
        obj = self._check_type_meta(res, await self._read_object(request, receive))
        metadata = self._check_name(route, obj["metadata"])
        obj, warnings = self._validate(res, {**obj, "metadata": metadata}, request, "update")
        if _dry_run(request, "UpdateOptions"):
            await self._require(res, "get")(route.namespace, route.name)  # 404 if missing
            await self._send_object(send, request, obj, res, 200, headers=warnings)
            return
        updated = await updater(route.namespace, route.name, obj)
        await self._send_object(send, request, updated, res, 200, headers=warnings)

    async def _patch(
        self, route: ResourceRoute, request: _Request, receive: Receive, send: Send
    ) -> None:
        res = route.resource
        self._require(res, "patch")
        getter = res.storage.get
        updater = res.storage.update
        content_type = request.headers.get("content-type", "")
        check_patch_type(self.patch_types, content_type)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise _request_entity_too_large(self.max_body_bytes)
        body = await _read_body(receive, self.max_body_bytes)
        for attempt in range(_PATCH_CONFLICT_RETRIES):
            current = await getter(route.namespace, route.name)
            patched = patch_object(self.patch_types, content_type, current, body)
            patched = self._check_type_meta(res, patched)
            metadata = self._check_name(route, patched["metadata"])
            patched, warnings = self._validate(
                res, {**patched, "metadata": metadata}, request, "patch"
            )
            if _dry_run(request, "PatchOptions"):
                await self._send_object(send, request, patched, res, 200, headers=warnings)
                return
            try:
                updated = await updater(route.namespace, route.name, patched)
            except StatusError as err:
                # A patch without its own resourceVersion is retried on conflict,
                # as kube-apiserver does.
                current_rv = metadata_of(current).get("resourceVersion")
                own_rv = metadata.get("resourceVersion") != current_rv
                if err.reason != "Conflict" or own_rv or attempt == _PATCH_CONFLICT_RETRIES - 1:
                    raise
                continue
            await self._send_object(send, request, updated, res, 200, headers=warnings)
            return

    async def _delete(self, route: ResourceRoute, request: _Request, send: Send) -> None:
        deleter = self._require(route.resource, "delete")
        if _dry_run(request, "DeleteOptions"):
            current = await self._require(route.resource, "get")(route.namespace, route.name)
            await self._send_object(send, request, current, route.resource, 200)
            return
        deleted = await deleter(route.namespace, route.name)
        if isinstance(deleted, Status):
            await _send_status(send, deleted)
            return
        await self._send_object(send, request, deleted, route.resource, 200)

    def _validate(
        self, res: ResourceSpec, obj: dict[str, Any], request: _Request, verb: str
    ) -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
        """Check *obj* against the resource's schema (``fieldValidation``).

        Returns the object to store, without the fields the schema does not
        declare (pruned, as kube-apiserver prunes custom resources), and the
        ``Warning`` headers to send (``fieldValidation=Warn``); raises
        StatusError for ``Strict`` unknown fields and for wrong types.
        """
        directive = check_field_validation(request.first("fieldValidation"), verb)
        schema = self._schemas[id(res)]
        warnings = validate_object(
            obj,
            schema,
            kind=res.kind,
            version=res.version,
            group=res.group,
            directive=directive,
            verb=verb,
        )
        pruned: dict[str, Any] = prune_unknown_fields(obj, schema)
        return pruned, [(b"warning", format_warning(text).encode()) for text in warnings]

    async def _send_object(
        self,
        send: Send,
        request: _Request,
        obj: dict[str, Any],
        res: ResourceSpec | None,
        code: int,
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        if res is not None:
            obj = with_type_meta(obj, res)
        include = _table_request(request)
        if include is not None:
            metadata = metadata_of(obj)
            table = build_table(
                [obj],
                resource_version=str(metadata.get("resourceVersion", "")),
                include_object=include,
                columns=res.printer_columns if res is not None else (),
            )
            await _send_bytes(send, code, encode_json(table), headers=headers)
            return
        await _send_bytes(send, code, encode_json(obj), headers=headers)


_STORAGE_METHOD = {
    "get": "get",
    "list": "list",
    "create": "create",
    "update": "update",
    "patch": "update",
    "delete": "delete",
    "watch": "watch",
}


def create_app(
    resources: Iterable[ResourceSpec],
    *,
    max_watches: int = 10_000,
    max_body_bytes: int = 3 * 1024 * 1024,
    min_request_timeout: float = 1800.0,
    retry_after_seconds: int = 1,
    server_version: Mapping[str, str] | None = None,
    patch_types: Mapping[str, PatchFunction] | None = None,
) -> App:
    """Return an ASGI app serving *resources* the way kube-apiserver serves them.

    Args:
        resources: The [`ResourceSpec`][k8swatch.server.ResourceSpec]s to serve.
        max_watches: Concurrent watch streams allowed; more get 429
            TooManyRequests with a ``Retry-After`` header.
        max_body_bytes: Largest request body accepted; larger ones get 413.
        min_request_timeout: A watch without ``timeoutSeconds`` ends after a
            random time in ``[min, 2*min)`` seconds, as kube-apiserver's
            ``--min-request-timeout`` (default 1800).
        retry_after_seconds: ``Retry-After`` sent with 429.
        server_version: The ``/version`` document (defaults to a 1.37 one).
        patch_types: Extra PATCH content types (content type →
            [`PatchFunction`][k8swatch.server.PatchFunction]); JSON merge patch
            is always there.

    The app needs no web framework and can be mounted under Starlette or
    FastAPI. It answers ``http`` and ``lifespan`` scopes.
    """
    return App(
        resources,
        max_watches=max_watches,
        max_body_bytes=max_body_bytes,
        min_request_timeout=min_request_timeout,
        retry_after_seconds=retry_after_seconds,
        server_version=server_version,
        patch_types=patch_types,
    )


# -- helpers -----------------------------------------------------------------


def _dry_run(request: _Request, options_kind: str) -> bool:
    """Whether ``dryRun=All`` was asked for (then nothing may be persisted).

    The storage protocol has no dry-run mode, so the app answers with the object
    as it would be stored (validated, patched) without calling the storage's
    write methods; server-set fields (uid, resourceVersion) are not filled in.
    """
    values = request.query.get("dryRun") or []
    for value in values:
        if value != "All":
            raise invalid(
                options_kind,
                "",
                [
                    StatusCause(
                        reason="FieldValueNotSupported",
                        message=f'Unsupported value: "{value}": supported values: "All"',
                        field="dryRun",
                    )
                ],
                group="meta.k8s.io",
            )
    return bool(values)


def _parse_bool(value: str | None) -> bool:
    """The apiserver's query boolean: absent is false; only ``0``/``false`` are false."""
    if value is None:
        return False
    return not (value == "0" or value.lower() == "false")


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _wants_aggregated(request: _Request) -> bool:
    for media in parse_accept(request.headers.get("accept", "")):
        if media.is_as("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2"):
            return True
        if media.accepts_json() and "as" not in media.params:
            return False
    return False


def _table_request(request: _Request) -> str | None:
    """The ``includeObject`` policy when a Table was asked for, else None."""
    for media in parse_accept(request.headers.get("accept", "")):
        if media.is_as("Table", "meta.k8s.io", "v1"):
            include = request.first("includeObject") or INCLUDE_METADATA
            if include not in (INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT):
                raise bad_request(
                    f'includeObject: Unsupported value: "{include}": supported values: '
                    '"None", "Metadata", "Object"'
                )
            return include
        if media.accepts_json() and "as" not in media.params:
            return None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _request_entity_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_bytes(
    send: Send,
    code: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-cache, private"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_status(
    send: Send, status: Status, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    code = status.code if status.code else 200
    await _send_bytes(send, code, encode_json(status.to_dict()), headers=headers)
