"""The fake Coder's ASGI application: routes, session-token auth, request parsing.

`FakeCoderApp` reads a request, applies the build steps that are due, finds the route,
checks the token, asks the state (`FakeCoderState`) to do the work and renders the
result with `_fake_render`; a `FakeCoderError` becomes Coder's error body.  The watch
streams are `_fake_stream`'s.
"""

from __future__ import annotations

import collections
import json
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, cast

import attrs

from k8swatch._go import go_json

from ._fake_model import FakeCoderError, parse_uuid_param
from ._fake_render import (
    render_build,
    render_buildinfo,
    render_organization,
    render_template,
    render_user,
    render_version,
    render_workspace,
)
from ._fake_state import FakeCoderState
from ._fake_stream import (
    FakeCoderChanges,
    Receive,
    Scope,
    Send,
    stream_workspace_sse,
    stream_workspace_ws,
)

__all__ = ["FakeCoderApp"]

_SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
_JSON_TYPE = "application/json; charset=utf-8"


@attrs.define
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_scope(cls, scope: Scope, body: bytes) -> _Request:
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        query = {
            key: values[0]
            for key, values in urllib.parse.parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ).items()
        }
        return cls(scope.get("method", "GET").upper(), scope["path"], query, headers, body)

    def json_object(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"null")
        except ValueError as exc:
            raise FakeCoderError(400, "Request body must be valid JSON.", detail=str(exc)) from None
        if not isinstance(value, dict):
            raise FakeCoderError(
                400,
                "Request body must be valid JSON.",
                detail=f"json: cannot unmarshal {type(value).__name__} into an object",
            )
        return cast("dict[str, Any]", value)

    def int_query(self, key: str) -> int:
        raw = self.query.get(key, "")
        if not raw:
            return 0
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            raise FakeCoderError(
                400,
                "Query parameters have invalid values.",
                validations=[(key, f"Query param {key!r} must be a valid non-negative integer")],
            )
        return value


@attrs.define
class _Response:
    status: int
    body: bytes = b""
    content_type: str = _JSON_TYPE


def _json_response(status: int, value: object) -> _Response:
    return _Response(status, go_json(value).encode() + b"\n")


@attrs.define
class _Stream:
    """A streamed answer: the handler validated the request, ``run`` sends it."""

    run: Callable[[Receive, Send], Awaitable[None]]


_Handler = Callable[..., "_Response | _Stream"]
_Route = tuple[str, tuple[str, ...], _Handler, bool]


class FakeCoderApp:
    """Serve a `FakeCoderState` as Coder's REST API (``http``, ``websocket``, ``lifespan``).

    Args:
        state: the fake's state.
        token: the session token every request but ``/buildinfo`` must carry.
        heartbeat_seconds: the watch streams' ping interval.
        subscribe: opens a subscription to the fake's change feed.
        close: run on lifespan shutdown (ends the feed and the streams).
    """

    def __init__(
        self,
        state: FakeCoderState,
        *,
        token: str,
        heartbeat_seconds: float,
        subscribe: Callable[[], FakeCoderChanges],
        close: Callable[[], None],
    ) -> None:
        self.state = state
        self.token = token
        self.heartbeat_seconds = heartbeat_seconds
        self._subscribe = subscribe
        self._close = close
        self.routes = self._build_routes()
        self.request_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        """Requests per ``(method, route)``, e.g. ``("GET", "files/{id}")``."""
        self.faults: dict[tuple[str, str], collections.deque[_Response]] = {}
        """Queued answers per ``(method, route)``, served instead of the route's own."""

    def route_names(self) -> set[tuple[str, str]]:
        """Every ``(method, route)`` the app serves."""
        return {(method, "/".join(pattern)) for method, pattern, _, _ in self.routes}

    def add_fault(
        self, method: str, route: str, status: int, body: bytes, content_type: str, times: int
    ) -> None:
        """Answer the next *times* requests of *route* with *status* and *body*.

        Raises:
            ValueError: no such route.
        """
        key = (method.upper(), route.strip("/"))
        if key not in self.route_names():
            raise ValueError(f"the fake Coder has no route {method} {route}")
        queue = self.faults.setdefault(key, collections.deque())
        queue.extend(_Response(status, body, content_type) for _ in range(times))

    # ------------------------------------------------------------------ routing

    def _build_routes(self) -> list[_Route]:
        """(method, path segments with ``{param}`` holes, handler, needs auth)."""
        spec: list[tuple[str, str, _Handler, bool]] = [
            ("GET", "buildinfo", self._h_buildinfo, False),
            ("GET", "organizations", self._h_list_organizations, True),
            ("GET", "organizations/{org}", self._h_get_organization, True),
            ("GET", "organizations/{org}/templates/{name}", self._h_template_by_name, True),
            ("POST", "organizations/{org}/templates", self._h_create_template, True),
            ("POST", "organizations/{org}/templateversions", self._h_create_version, True),
            (
                "POST",
                "organizations/{org}/members/{user}/workspaces",
                self._h_create_workspace_in_org,
                True,
            ),
            ("GET", "templates", self._h_list_templates, True),
            ("GET", "templates/{id}", self._h_get_template, True),
            ("PATCH", "templates/{id}", self._h_patch_template, True),
            ("DELETE", "templates/{id}", self._h_delete_template, True),
            ("PATCH", "templates/{id}/versions", self._h_promote, True),
            ("GET", "templateversions/{id}", self._h_get_version, True),
            ("POST", "files", self._h_upload, True),
            ("GET", "files/{id}", self._h_download, True),
            ("GET", "users/{user}", self._h_get_user, True),
            ("GET", "users/{user}/workspace/{name}", self._h_workspace_by_owner, True),
            ("POST", "users/{user}/workspaces", self._h_create_workspace, True),
            ("GET", "workspaces", self._h_list_workspaces, True),
            ("GET", "workspaces/{id}", self._h_get_workspace, True),
            ("POST", "workspaces/{id}/builds", self._h_create_build, True),
            ("GET", "workspaces/{id}/watch", self._h_watch_workspace, True),
            ("GET", "workspacebuilds/{id}", self._h_get_build, True),
        ]
        return [
            (method, tuple(path.split("/")), handler, auth) for method, path, handler, auth in spec
        ]

    def match(
        self, method: str, path: str
    ) -> tuple[_Handler, dict[str, str], bool] | FakeCoderError:
        """Return (handler, path parameters, needs auth) for a request, or its 404/405."""
        prefix = "/api/v2/"
        if not path.startswith(prefix):
            return FakeCoderError(404, "Route not found.")
        segments = tuple(
            urllib.parse.unquote(s) for s in path[len(prefix) :].rstrip("/").split("/")
        )
        method_mismatch = False
        for route_method, pattern, handler, auth in self.routes:
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for part, segment in zip(pattern, segments, strict=True):
                if part.startswith("{"):
                    if not segment:
                        break
                    params[part[1:-1]] = segment
                elif part != segment:
                    break
            else:
                if route_method != method:
                    method_mismatch = True
                    continue
                return handler, params, auth
        if method_mismatch:
            return FakeCoderError(405, "Method not allowed.")
        return FakeCoderError(404, "Route not found.")

    def _route_of(self, handler: _Handler) -> str:
        for _, pattern, candidate, _ in self.routes:
            if candidate == handler:
                return "/".join(pattern)
        raise AssertionError("matched a handler that has no route")

    def _authenticate(self, request: _Request) -> None:
        token = request.headers.get("coder-session-token")
        if token is None:
            cookies = request.headers.get("cookie", "")
            for part in cookies.split(";"):
                key, _, value = part.strip().partition("=")
                if key == "coder_session_token":
                    token = value
        if token is None:
            token = request.query.get("coder_session_token")
        if not token:
            raise FakeCoderError(
                401, 'Cookie "coder_session_token" or query parameter must be provided.'
            )
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            # coderd splits "<id>-<secret>": a known id with a wrong secret says so.
            key_id = token.partition("-")[0]
            known_id = bool(key_id) and key_id == self.token.partition("-")[0]
            raise FakeCoderError(
                401,
                _SIGNED_OUT,
                detail="API key secret is invalid." if known_id else "API key is invalid.",
            )

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (``http``, ``websocket`` and ``lifespan`` scopes)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"FakeCoder cannot serve ASGI scope type {scope['type']!r}")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request = _Request.from_scope(scope, bytes(body))
        self.state.advance()
        try:
            matched = self.match(request.method, request.path)
            if isinstance(matched, FakeCoderError):
                raise matched
            handler, params, auth = matched
            key = (request.method, self._route_of(handler))
            self.request_counts[key] += 1
            if auth:
                self._authenticate(request)
            queued = self.faults.get(key)
            result = queued.popleft() if queued else handler(request, **params)
        except FakeCoderError as exc:
            result = _json_response(exc.status, exc.to_body())
        if isinstance(result, _Stream):
            await result.run(receive, send)
        else:
            await _send_response(send, result)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``GET /api/v2/workspaces/{id}/watch-ws`` (one-way JSON messages)."""
        if (await receive())["type"] != "websocket.connect":
            return
        request = _Request.from_scope(scope, b"")
        self.state.advance()
        try:
            prefix, suffix = "/api/v2/workspaces/", "/watch-ws"
            path = request.path
            workspace_ref = path[len(prefix) : -len(suffix)]
            if not (path.startswith(prefix) and path.endswith(suffix)) or "/" in workspace_ref:
                raise FakeCoderError(404, "Route not found.")
            self._authenticate(request)
            workspace = self.state.store.workspace_by_id(parse_uuid_param(workspace_ref))
        except FakeCoderError as exc:
            await _refuse_websocket(scope, send, exc)
            return
        await stream_workspace_ws(
            lambda: render_workspace(self.state.store, workspace),
            workspace.id,
            self._subscribe(),
            lambda: self.heartbeat_seconds,
            receive,
            send,
        )

    # ------------------------------------------------------------------ handlers

    def _h_buildinfo(self, request: _Request) -> _Response:
        return _json_response(200, render_buildinfo())

    def _h_list_organizations(self, request: _Request) -> _Response:
        orgs = sorted(self.state.store.organizations.values(), key=lambda o: o.created_at)
        return _json_response(200, [render_organization(org) for org in orgs])

    def _h_get_organization(self, request: _Request, org: str) -> _Response:
        return _json_response(200, render_organization(self.state.store.organization(org)))

    def _h_template_by_name(self, request: _Request, org: str, name: str) -> _Response:
        store = self.state.store
        return _json_response(200, render_template(store, store.template_by_name(org, name)))

    def _h_create_template(self, request: _Request, org: str) -> _Response:
        template = self.state.templates.create(org, request.json_object())
        return _json_response(201, render_template(self.state.store, template))

    def _h_create_version(self, request: _Request, org: str) -> _Response:
        version = self.state.templates.create_version(org, request.json_object())
        return _json_response(201, render_version(self.state.store, version))

    def _h_list_templates(self, request: _Request) -> _Response:
        templates = self.state.templates.search(request.query.get("q", ""))
        return _json_response(200, [render_template(self.state.store, t) for t in templates])

    def _h_get_template(self, request: _Request, id: str) -> _Response:
        store = self.state.store
        return _json_response(
            200, render_template(store, store.live_template(parse_uuid_param(id)))
        )

    def _h_patch_template(self, request: _Request, id: str) -> _Response:
        template_id = parse_uuid_param(id)
        if not self.state.templates.patch(template_id, request.json_object()):
            return _Response(304, content_type="")
        store = self.state.store
        return _json_response(200, render_template(store, store.templates[template_id]))

    def _h_delete_template(self, request: _Request, id: str) -> _Response:
        self.state.templates.delete(parse_uuid_param(id))
        return _json_response(200, {"message": "Template has been deleted!"})

    def _h_promote(self, request: _Request, id: str) -> _Response:
        self.state.templates.promote(parse_uuid_param(id), request.json_object())
        return _json_response(200, {"message": "Updated the active template version!"})

    def _h_get_version(self, request: _Request, id: str) -> _Response:
        version = self.state.templates.poll_version(parse_uuid_param(id))
        return _json_response(200, render_version(self.state.store, version))

    def _h_upload(self, request: _Request) -> _Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        file_id, created = self.state.templates.upload(content_type, request.body)
        return _json_response(201 if created else 200, {"hash": file_id})

    def _h_download(self, request: _Request, id: str) -> _Response:
        file_id = parse_uuid_param(id)
        data, content_type = self.state.templates.download(file_id, request.query.get("format", ""))
        return _Response(200, data, content_type)

    def _h_get_user(self, request: _Request, user: str) -> _Response:
        store = self.state.store
        return _json_response(200, render_user(store, store.user(user)))

    def _h_workspace_by_owner(self, request: _Request, user: str, name: str) -> _Response:
        include_deleted = request.query.get("include_deleted", "false").lower() == "true"
        workspace = self.state.workspaces.by_owner(user, name, include_deleted=include_deleted)
        return _json_response(200, render_workspace(self.state.store, workspace))

    def _h_create_workspace(self, request: _Request, user: str) -> _Response:
        workspace = self.state.workspaces.create(user, request.json_object())
        return _json_response(201, render_workspace(self.state.store, workspace))

    def _h_create_workspace_in_org(self, request: _Request, org: str, user: str) -> _Response:
        body = request.json_object()
        workspace = self.state.workspaces.create(user, body, org_ref=org)
        return _json_response(201, render_workspace(self.state.store, workspace))

    def _h_list_workspaces(self, request: _Request) -> _Response:
        limit = request.int_query("limit")
        offset = request.int_query("offset")
        page, count = self.state.workspaces.search(request.query.get("q", ""), limit, offset)
        rendered = [render_workspace(self.state.store, ws) for ws in page]
        return _json_response(200, {"workspaces": rendered, "count": count})

    def _h_get_workspace(self, request: _Request, id: str) -> _Response:
        include = request.query.get("include_deleted", request.query.get("deleted", "false"))
        store = self.state.store
        workspace = store.workspace_by_id(parse_uuid_param(id), include_deleted=include == "true")
        return _json_response(200, render_workspace(store, workspace))

    def _h_create_build(self, request: _Request, id: str) -> _Response:
        build = self.state.workspaces.create_build(parse_uuid_param(id), request.json_object())
        return _json_response(201, render_build(self.state.store, build))

    def _h_get_build(self, request: _Request, id: str) -> _Response:
        store = self.state.store
        return _json_response(200, render_build(store, store.build(parse_uuid_param(id))))

    def _h_watch_workspace(self, request: _Request, id: str) -> _Stream:
        store = self.state.store
        workspace = store.workspace_by_id(parse_uuid_param(id))
        changes = self._subscribe()  # before the first frame: no change is missed

        async def run(receive: Receive, send: Send) -> None:
            await stream_workspace_sse(
                lambda: render_workspace(store, workspace),
                workspace.id,
                changes,
                lambda: self.heartbeat_seconds,
                receive,
                send,
            )

        return _Stream(run)


async def _send_response(send: Send, response: _Response) -> None:
    headers = [(b"content-length", str(len(response.body)).encode())]
    if response.content_type:
        headers.append((b"content-type", response.content_type.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _refuse_websocket(scope: Scope, send: Send, exc: FakeCoderError) -> None:
    """Answer a refused handshake with Coder's JSON error where the server can, else 1008."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = go_json(exc.to_body()).encode() + b"\n"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": exc.status,
                "headers": [
                    (b"content-type", _JSON_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": exc.message})
