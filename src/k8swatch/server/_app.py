"""The ASGI application: ``create_app(resources)``.

The app routes each request (OpenAPI, discovery, namespaces, resource paths),
turns errors into Status responses, owns the watch streams and closes the
storages at shutdown; the verbs themselves live in ``_reads`` and ``_writes``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any

import anyio
import attrs
from typing_extensions import final

from k8swatch._events import Event
from k8swatch._status import (
    Status,
    StatusError,
    internal_error,
    path_not_found,
    service_unavailable,
    too_many_requests,
    unauthorized,
)
from k8swatch._storage import Closer
from k8swatch._warnings import collect_warnings
from k8swatch._wire import encode_json

from . import _reads, _writes
from ._apply import is_apply, serve_apply
from ._auth import (
    ANONYMOUS,
    AuthenticationError,
    Authenticator,
    ClientRequest,
    UserInfo,
    _close_all,
)
from ._authz import AlwaysAllowAuthorizer, Attributes, Authorizer, Decision, forbidden_error
from ._context import serving_user
from ._discovery import AGGREGATED_CONTENT_TYPE, Discovery
from ._health import ENDPOINTS, HEADERS, HealthCheck, HealthEndpoints
from ._http import (
    Request,
    disallowed_method,
    retry_after_headers,
    send_bytes,
    send_status,
)
from ._managedfields import FieldManager, now
from ._metrics import MetricsRecorder, RequestLabels, request_labels
from ._namespaces import NamespaceRegistry
from ._openapi import OpenAPIService, object_schema
from ._patch import DEFAULT_PATCH_TYPES, PatchFunction
from ._requestinfo import request_info
from ._resource import ResourceSpec, require
from ._routes import DiscoveryRoute, NamespacesRoute, ResourceRoute, match_path
from ._stream import FORMAT_JSON, EventEncoder, stream_watch, table_format
from ._types import Message, Receive, Scope, Send
from ._validation import format_warning
from ._write_request import WriteRequest

__all__ = ["App", "create_app"]

logger = logging.getLogger("k8swatch.server")

DEFAULT_SEND_TIMEOUT = 30.0
"""Default ``send_timeout``: how long a watch may wait for its client to take data."""

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


@final
class App:
    """The ASGI application returned by [`create_app`][k8swatch.server.create_app].

    Serves discovery, the resource paths of every
    [`ResourceSpec`][k8swatch.server.ResourceSpec] and ``/api/v1/namespaces``.
    Handles ``http`` and ``lifespan`` scopes; lifespan shutdown (or
    ``aclose()``) ends every open watch stream and ``aclose()``s every storage
    that is a [`Closer`][k8swatch.Closer].

    Health: ``/healthz``, ``/livez`` and ``/readyz`` (and ``/<endpoint>/<check>``)
    answer as kube-apiserver's do. Every endpoint has the check ``ping``;
    ``/readyz`` also has ``shutdown``, which fails once the app is closing.
    Add your own with `add_health_checks`, `add_readyz_checks` and
    `add_livez_checks`. With a *metrics* recorder, ``/metrics`` serves its
    exposition.
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
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        if send_timeout is not None and not send_timeout > 0:
            raise ValueError(f"send_timeout must be > 0 or None, got {send_timeout}")
        self.authenticator: Authenticator | None = authenticator
        """Who sent each request (``None``: every request is anonymous)."""
        self.authorizer: Authorizer = authorizer or AlwaysAllowAuthorizer()
        """Whether each request is allowed (default: always)."""
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
        self.send_timeout = send_timeout
        self.patch_types: dict[str, PatchFunction] = {**DEFAULT_PATCH_TYPES, **(patch_types or {})}
        self.discovery: Discovery = Discovery(
            self.resources, server_version or DEFAULT_SERVER_VERSION
        )
        self.openapi: OpenAPIService = OpenAPIService(self.resources)
        """Serves ``/openapi/v2``, ``/openapi/v3`` and the group-version documents."""
        self._schemas = {id(res): object_schema(res) for res in self.resources}
        self._field_managers = {
            id(res): FieldManager(self._schemas[id(res)], res.api_version, now)
            for res in self.resources
        }
        # The namespaces the server knows (``/api/v1/namespaces``).
        self._known_namespaces = NamespaceRegistry(self.resources)
        self.encoder: EventEncoder = EventEncoder()
        """The shared [`EventEncoder`][k8swatch.server.EventEncoder] (``encode_count``)."""
        # The cancel scope of every open watch stream: cancelling one ends it.
        self._watch_scopes: set[anyio.CancelScope] = set()
        self._closed = False
        self._health = HealthEndpoints()
        self._health.add(ENDPOINTS, [HealthCheck("ping", _ping)])
        self._health.add(["readyz"], [HealthCheck("shutdown", self._check_shutdown)])
        self.metrics: MetricsRecorder | None = metrics
        """The recorder given to [`create_app`][k8swatch.server.create_app], if any."""
        if metrics is not None:
            metrics.attach(self.resources)

    # -- health -------------------------------------------------------------

    def add_health_checks(self, *checks: HealthCheck) -> None:
        """Add *checks* to ``/healthz``, ``/livez`` and ``/readyz``.

        As kube-apiserver's ``AddHealthChecks``: a failing check makes all
        three answer 500, so the kubelet restarts the pod; use it for what a
        restart can fix.

        Raises:
            ValueError: an endpoint already has a check of that name.
        """
        self._health.add(ENDPOINTS, checks)

    def add_readyz_checks(self, *checks: HealthCheck) -> None:
        """Add *checks* to ``/readyz`` only: failing, the pod gets no traffic
        (the backends this server needs: Coder, Redis).

        Raises:
            ValueError: ``/readyz`` already has a check of that name.
        """
        self._health.add(["readyz"], checks)

    def add_livez_checks(self, *checks: HealthCheck) -> None:
        """Add *checks* to ``/livez`` only.

        Raises:
            ValueError: ``/livez`` already has a check of that name.
        """
        self._health.add(["livez"], checks)

    def health_check_names(self, endpoint: str) -> tuple[str, ...]:
        """The names of the checks of *endpoint* (``healthz``, ``livez``, ``readyz``)."""
        return self._health.names(endpoint)

    async def _check_shutdown(self) -> None:
        if self._closed:
            raise RuntimeError("process is shutting down")

    @property
    def active_watches(self) -> int:
        """The number of watch streams currently open."""
        return len(self._watch_scopes)

    async def aclose(self) -> None:
        """End every open watch stream and close every [`Closer`][k8swatch.Closer] storage.

        The authenticator and the authorizer are closed too when they have
        ``aclose()`` (the delegated ones hold HTTP clients). Idempotent; a
        storage shared by several resources is closed once.
        """
        for scope in list(self._watch_scopes):
            scope.cancel()
        if self._closed:
            return
        self._closed = True
        await self._known_namespaces.storage.aclose()
        seen: set[int] = set()
        for res in self.resources:
            storage = res.storage
            if not isinstance(storage, Closer) or id(storage) in seen:
                continue
            seen.add(id(storage))
            await storage.aclose()
        await _close_all((self.authenticator, self.authorizer))

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
        # The outermost handler: no exception escapes to the ASGI server, which
        # would answer a plain-text 500 (or log its own traceback) instead.
        exchange = _Exchange()
        warnings: list[str] = []

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.code = message["status"]
                if warnings:  # what the storage added (add_warning) goes with the answer
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", ()),
                            *((b"warning", format_warning(text).encode()) for text in warnings),
                        ],
                    }
            await send(message)

        metrics = self.metrics
        started = time.perf_counter() if metrics is not None else 0.0
        try:
            request = Request.from_scope(scope)
            user = await self._authenticate(scope)
            await self._authorize(user, request)
            with serving_user(user), collect_warnings() as warnings:
                stream = await self._dispatch(
                    request,
                    receive,
                    tracking_send,
                    exchange if metrics is not None else None,
                )
            if stream is not None:
                # A watch, open: it runs here, after the storage calls (outside
                # the blocks above) and below no routing frame, holding no
                # request, since thousands of idle watches would pay for each.
                del request, user
                await stream
        except Exception as exc:
            where = f"{scope.get('method', '?')} {scope.get('path', '?')}"
            if exchange.code:
                logger.error("%s failed after its response started", where, exc_info=exc)
                await _quietly(send, {"type": "http.response.body", "body": b""})
            else:
                if isinstance(exc, StatusError):
                    status = exc.status
                else:
                    status = internal_error(exc, context=where).status
                await _quietly_status(tracking_send, status)
        if metrics is not None:
            labels, code = exchange.labels, exchange.code
            # Counted as kube-apiserver counts; an unknown path is not (kube's
            # NotFound handler is not instrumented): it would be an unbounded
            # label value.
            if labels is not None and (labels.is_resource_request or code != 404):
                metrics.request_done(labels, code or 500, time.perf_counter() - started)

    # -- authentication and authorization -----------------------------------

    async def _authenticate(self, scope: Scope) -> UserInfo:
        if self.authenticator is None:
            return ANONYMOUS
        try:
            user = await self.authenticator.authenticate(ClientRequest.from_scope(scope))
        except AuthenticationError as exc:
            logger.info(
                "%s %s: unauthorized: %s", scope.get("method"), scope.get("path"), exc or "no user"
            )
            raise unauthorized("Unauthorized") from None
        if user is None:
            raise unauthorized("Unauthorized")
        return user

    async def _authorize(self, user: UserInfo, request: Request) -> None:
        attributes = Attributes(user, request_info(request.method, request.path, request.query))
        result = await self.authorizer.authorize(attributes)
        if result.decision is Decision.ALLOW:
            return
        if result.error:
            where = f"authorizing {request.method} {request.path}"
            raise internal_error(RuntimeError(result.error), context=where)
        raise forbidden_error(attributes, result.reason)

    # -- routing ------------------------------------------------------------

    async def _dispatch(
        self, request: Request, receive: Receive, send: Send, exchange: _Exchange | None = None
    ) -> _Stream | None:
        """Answer *request*, or return the stream answering it (a watch), for the caller to run."""
        parts = request.path.split("/")[1:]
        if parts and parts[-1] == "":
            parts.pop()
        if parts and parts[0] in ENDPOINTS and len(parts) <= 2 and "" not in parts:
            if exchange is not None:
                exchange.non_resource(request)
            await self._serve_health(parts[0], parts[1] if len(parts) == 2 else "", request, send)
            return None
        if request.path == "/metrics" and self.metrics is not None:
            if exchange is not None:
                exchange.non_resource(request)
            if request.method not in ("GET", "HEAD"):
                raise disallowed_method(request.method)
            body, content_type = self.metrics.exposition()
            await send_bytes(send, 200, body, content_type)
            return None
        if exchange is not None:
            # discovery and OpenAPI, unless routing finds a resource below
            exchange.non_resource(request)
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
            return None
        route = match_path(request.path, self._by_path)
        if exchange is not None and isinstance(route, (ResourceRoute, NamespacesRoute)):
            exchange.labels = request_labels(
                request.method,
                request.path,
                route,
                request.query,
                request.headers.get("content-type", ""),
            )
        if isinstance(route, ResourceRoute):
            return await self._resource(route, request, receive, send, exchange)
        if isinstance(route, NamespacesRoute):
            return await self._namespaces(route, request, receive, send)
        if isinstance(route, DiscoveryRoute):
            await self._discovery(route, request, send)
        else:
            await send_status(send, path_not_found().status)
        return None

    async def _discovery(self, route: DiscoveryRoute, request: Request, send: Send) -> None:
        if request.method not in ("GET", "HEAD"):
            raise disallowed_method(request.method)
        document: dict[str, Any] | None
        content_type = "application/json"
        if route.document in ("api", "apis") and request.wants_aggregated():
            document = self.discovery.aggregated(core=route.document == "api")
            content_type = AGGREGATED_CONTENT_TYPE
        elif route.document == "root":
            document = {"paths": self._root_paths()}
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
            await send_status(send, path_not_found().status)
            return
        await send_bytes(send, 200, encode_json(document), content_type)

    def _root_paths(self) -> list[str]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
        for res in self.resources:
            if res.group:
                paths.add(f"/apis/{res.group}")
                paths.add(f"/apis/{res.group}/{res.version}")
        return sorted(paths)

    async def _namespaces(
        self, route: NamespacesRoute, request: Request, receive: Receive, send: Send
    ) -> _Stream | None:
        served = await self._known_namespaces.route(route, request)
        if served.watch_path or request.flag("watch"):
            return await self._watch(served, request, receive, send)
        if served.name:
            await self._known_namespaces.get(served.name, request, send)
        else:
            await _reads.list_objects(served, request, send)
        return None

    # -- resources ----------------------------------------------------------

    async def _serve_health(self, endpoint: str, name: str, request: Request, send: Send) -> None:
        if request.method not in ("GET", "HEAD"):
            raise disallowed_method(request.method)
        answer = await self._health.respond(endpoint, name, request.query)
        if answer is None:
            raise path_not_found()
        await send(
            {
                "type": "http.response.start",
                "status": answer.code,
                "headers": [
                    *HEADERS,
                    (b"content-length", str(len(answer.body)).encode()),
                    (b"cache-control", b"no-cache, private"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _resource(
        self,
        route: ResourceRoute,
        request: Request,
        receive: Receive,
        send: Send,
        exchange: _Exchange | None = None,
    ) -> _Stream | None:
        method = request.method
        res = route.resource
        collection = not route.name
        if route.subresource and method not in ("GET", "PUT", "PATCH"):
            raise disallowed_method(method)
        if route.subresource and method == "GET":
            await _reads.get(route, request, send)
            return None
        if method == "GET":
            if route.watch_path or request.flag("watch"):
                labels = exchange.labels if exchange is not None else None
                return await self._watch(route, request, receive, send, labels)
            if collection:
                await _reads.list_objects(route, request, send)
            else:
                await _reads.get(route, request, send)
            return None
        if route.watch_path:
            raise disallowed_method(method)
        write = WriteRequest(
            route,
            request,
            receive,
            send,
            schema=self._schemas[id(res)],
            fields=self._field_managers[id(res)],
            max_body_bytes=self.max_body_bytes,
            patch_types=self.patch_types,
        )
        if method == "POST" and collection and (route.namespace or not res.namespaced):
            await _writes.create(write)
            if res.namespaced:
                await self._known_namespaces.learn(route.namespace)
        elif method == "PUT" and not collection:
            await _writes.update(write)
        elif method == "PATCH" and not collection and is_apply(request):
            await serve_apply(write)
            if res.namespaced:  # an apply may have created the object
                await self._known_namespaces.learn(route.namespace)
        elif method == "PATCH" and not collection:
            await _writes.patch(write)
        elif method == "DELETE" and not collection:
            await _writes.delete(write)
        else:
            raise disallowed_method(method)
        return None

    async def _watch(
        self,
        route: ResourceRoute,
        request: Request,
        receive: Receive,
        send: Send,
        labels: RequestLabels | None = None,
    ) -> _Stream:
        """Open the watch *request* asks for; return its stream, for the caller to run."""
        res = route.resource
        storage = require(res, "watch")
        options = _reads.list_options(route, request)
        if not options.watch:
            options = attrs.evolve(options, watch=True)
        if self._closed:
            raise service_unavailable("the server is shutting down")
        if len(self._watch_scopes) >= self.max_watches:
            raise too_many_requests(
                f"too many watches: the limit is {self.max_watches}",
                self.retry_after_seconds,
            )
        include = request.table_include()
        fmt = FORMAT_JSON if include is None else table_format(include)
        scope = anyio.CancelScope()
        self._watch_scopes.add(scope)
        metrics = self.metrics if labels is not None else None
        if metrics is not None and labels is not None:
            metrics.watch_opened(labels)
        ties = _WatchTies(self.encoder, res, fmt, self._watch_scopes, scope, metrics, labels)
        try:
            watch = await storage.watch(route.namespace, options)
        except BaseException:
            ties.close()
            raise
        if options.timeout_seconds is not None and options.timeout_seconds > 0:
            timeout: float = float(options.timeout_seconds)
        else:
            timeout = self.min_request_timeout * (1.0 + random.random())
        return stream_watch(
            watch,
            receive=receive,
            send=send,
            encode=ties.encode,
            scope=scope,
            timeout=timeout,
            send_timeout=self.send_timeout,
            on_stalled=ties.release,
            sent=ties.sent if metrics is not None else None,
            on_end=ties.close,
        )


@final
class _WatchTies:
    """What an open watch stream needs of the app: its encoding, its slot, its metrics.

    One small object, whose bound methods the stream calls, rather than a
    closure or partial for each (every idle watch holds them).
    """

    __slots__ = ("_encoder", "_fmt", "_labels", "_metrics", "_resource", "_scope", "_scopes")

    def __init__(
        self,
        encoder: EventEncoder,
        resource: ResourceSpec,
        fmt: str,
        scopes: set[anyio.CancelScope],
        scope: anyio.CancelScope,
        metrics: MetricsRecorder | None,
        labels: RequestLabels | None,
    ) -> None:
        self._encoder = encoder
        self._resource = resource
        self._fmt = fmt
        self._scopes = scopes
        self._scope = scope
        self._metrics = metrics
        self._labels = labels

    def encode(self, batch: Sequence[Event[Any]]) -> tuple[bytes, bool]:
        """The bytes of *batch* (shared by every watcher that got the same one)."""
        return self._encoder.encode_batch(batch, self._resource, self._fmt)

    def sent(self, batch: Sequence[Event[Any]]) -> None:
        """Count *batch* as sent (metrics)."""
        if self._metrics is not None:
            self._metrics.watch_events_sent(self._resource, batch)

    def release(self) -> None:
        """Give the watch's slot back (``max_watches``); idempotent."""
        self._scopes.discard(self._scope)

    def close(self) -> None:
        """The stream has ended: release its slot and count it closed."""
        self.release()
        if self._metrics is not None and self._labels is not None:
            self._metrics.watch_closed(self._labels)


#: A watch's response, opened and ready to run (`App._watch`).
_Stream = Coroutine[Any, Any, None]


@attrs.define
class _Exchange:
    """What a request learns on its way: its status code and (when measured) metric labels."""

    labels: RequestLabels | None = None
    code: int = 0

    def non_resource(self, request: Request) -> None:
        """Label *request* as a non-resource request (its path is the subresource)."""
        self.labels = request_labels(request.method, request.path, None, request.query)


async def _ping() -> None:
    """kube-apiserver's ``ping`` check: the server answers."""


async def _quietly(send: Send, message: Message) -> None:
    """Send *message*, logging (not raising) when the client has gone."""
    try:
        await send(message)
    except Exception:
        logger.debug("could not end a response", exc_info=True)


async def _quietly_status(send: Send, status: Status) -> None:
    try:
        await send_status(send, status, retry_after_headers(status))
    except Exception:
        logger.debug("could not send a %s error", status.code, exc_info=True)


def create_app(
    resources: Iterable[ResourceSpec],
    *,
    max_watches: int = 10_000,
    max_body_bytes: int = 3 * 1024 * 1024,
    min_request_timeout: float = 1800.0,
    retry_after_seconds: int = 1,
    server_version: Mapping[str, str] | None = None,
    patch_types: Mapping[str, PatchFunction] | None = None,
    authenticator: Authenticator | None = None,
    authorizer: Authorizer | None = None,
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
    metrics: MetricsRecorder | None = None,
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
        authenticator: Finds the user of each request (an
            [`Authenticator`][k8swatch.server.Authenticator]); a request it
            refuses gets 401 Unauthorized. ``None``: every request is
            [`ANONYMOUS`][k8swatch.server.ANONYMOUS].
        authorizer: Allows or denies each request (an
            [`Authorizer`][k8swatch.server.Authorizer]) by the user and the
            [`RequestInfo`][k8swatch.server.RequestInfo] (verb ``watch`` for a
            watch, ``list`` for a list, ...); a denied request gets the
            apiserver's 403 Forbidden. ``None``: everything is allowed.
        send_timeout: Seconds a watch stream may wait for its client to take
            data (one ASGI ``send`` that does not return) before the stream
            ends: the watch stops, its slot, tasks and buffers are freed and
            the server closes the connection. Also bounds the last sends of a
            watch the storage ended (the 410 ``ERROR`` event). ``None``
            disables the bound. See "Slow and stuck clients" in the serving
            guide for why 30 seconds.
        metrics: A [`MetricsRecorder`][k8swatch.server.MetricsRecorder] (for
            example [`PrometheusMetrics`][k8swatch.metrics.PrometheusMetrics]):
            requests, watches and watch events are reported to it and
            ``/metrics`` serves it. Without one, ``/metrics`` is 404.

    Raises:
        ValueError: *send_timeout* is not positive.

    Storages read the request's user with
    [`current_user`][k8swatch.server.current_user].
    Health endpoints (``/healthz``, ``/livez``, ``/readyz``) are always
    served; see [`App`][k8swatch.server.App] for adding checks.

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
        authenticator=authenticator,
        authorizer=authorizer,
        send_timeout=send_timeout,
        metrics=metrics,
    )
