"""An async client for the subset of the Coder REST API the storages use.

One ``httpx.AsyncClient`` per `CoderClient`: connections are pooled and
reused, every request carries ``Coder-Session-Token`` and a timeout. It runs on
asyncio and on trio (httpx uses anyio underneath).

Request bodies are byte-for-byte what the Go SDK (codersdk v2.30.0) sends for
the same call, including unset UUIDs sent as the nil UUID, so the behaviour
against a real Coder matches the Go original's.

Errors: an answer with an unexpected status code raises `CoderError`
(parsed like the SDK does); no answer at all (connection refused, reset,
timeout) raises `CoderUnavailableError`; a success answer that is not the
expected JSON raises `CoderProtocolError`. `map_coder_error` turns them into
Kubernetes `StatusError`s. The session token never appears in a message, a
repr or a log line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, cast

import anyio
import anyio.abc
import h11
import httpx
from typing_extensions import final

from k8swatch._status import (
    StatusCause,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    internal_error,
    not_found,
    service_unavailable,
    too_many_requests,
    unauthorized,
)

from ._convert import (
    create_template_body,
    create_template_version_body,
    create_workspace_body,
    template_meta_body,
    workspace_build_body,
)

__all__ = [
    "CoderClient",
    "CoderError",
    "CoderProtocolError",
    "CoderUnavailableError",
    "map_coder_error",
]

logger = logging.getLogger("k8swatch.coder")

SESSION_TOKEN_HEADER = "Coder-Session-Token"
_MAX_DETAIL_BYTES = 2048


class CoderError(Exception):
    """Coder answered with an unexpected HTTP status code.

    Attributes:
        status_code: The HTTP status code.
        message: The ``message`` of Coder's error body (or the SDK's substitute
            for a body without one).
        detail: The ``detail`` of the body, if any.
        validations: ``(field, detail)`` pairs from the body's ``validations``.
        method: The request method.
        url: The request URL (never contains the session token).
        raw_detail: True when *detail* is the start of a body that is not
            Coder's JSON (an HTML page of a proxy, say): it is logged, never
            shown to a Kubernetes client.

    ``str(err)`` is the Go SDK's error text:
    ``<METHOD> <URL>: unexpected status code <code>: <message>`` followed by
    the detail and one line per validation.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        detail: str = "",
        validations: Sequence[tuple[str, str]] = (),
        method: str = "",
        url: str = "",
        raw_detail: bool = False,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.detail = detail
        self.validations: tuple[tuple[str, str], ...] = tuple(validations)
        self.method = method
        self.url = url
        self.raw_detail = raw_detail
        super().__init__(self._text())

    def _text(self) -> str:
        text = (
            f"{self.method} {self.url}: unexpected status code {self.status_code}: {self.message}"
        )
        if self.detail:
            text += f"\n\tError: {self.detail}"
        for field, detail in self.validations:
            text += f"\n\t{field}: {detail}"
        return text


class CoderUnavailableError(Exception):
    """Coder could not be reached: connection refused or reset, or a timeout.

    The message names the request (method and URL) and the transport error,
    never the session token.
    """


class CoderProtocolError(Exception):
    """Coder answered with a success status but a body that is not the expected JSON."""


def _error_from_response(response: httpx.Response, body: bytes, token: str) -> CoderError:
    """Parse an error answer the way codersdk's ``ReadBodyAsError`` does.

    The session *token*, should the answer repeat it (the coder-k8s mock's 401
    does), is replaced by ``[redacted]`` everywhere.
    """
    err = _parse_error(response, body)
    if token and token in str(err):
        err = CoderError(
            err.status_code,
            _redact(err.message, token),
            detail=_redact(err.detail, token),
            validations=[(_redact(f, token), _redact(d, token)) for f, d in err.validations],
            method=err.method,
            url=err.url,
            raw_detail=err.raw_detail,
        )
    return err


def _redact(text: str, token: str) -> str:
    return text.replace(token, "[redacted]")


def _parse_error(response: httpx.Response, body: bytes) -> CoderError:
    method = response.request.method
    url = str(response.request.url)
    code = response.status_code
    content_type = response.headers.get("content-type", "")
    if not body:
        return CoderError(code, "empty response body", method=method, url=url)
    if not content_type.split(";", 1)[0].strip().lower().endswith("json"):
        detail = body[:_MAX_DETAIL_BYTES].decode("utf-8", "replace")
        # only the content type is said: a proxy's page may name hosts and ports
        kind = content_type.split(";", 1)[0].strip()
        return CoderError(
            code,
            f'unexpected non-JSON response "{kind}"',
            detail=detail,
            method=method,
            url=url,
            raw_detail=True,
        )
    try:
        data = json.loads(body)
    except ValueError as exc:
        logger.info("%s %s: Coder's error body is not JSON: %s", method, url, exc)
        return CoderError(code, "Coder's error answer is not valid JSON", method=method, url=url)
    if not isinstance(data, Mapping):
        data = {}
    message = str(data.get("message") or "")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if not message:
        message = f"unexpected status code {code}, response has no message"
    validations: list[tuple[str, str]] = []
    for item in data.get("validations") or ():  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(item, Mapping):
            validations.append((str(item.get("field", "")), str(item.get("detail", ""))))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    return CoderError(
        code,
        message,
        detail=str(data.get("detail") or ""),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        validations=validations,
        method=method,
        url=url,
    )


def map_coder_error(
    err: BaseException, resource: str, name: str, *, group: str = ""
) -> StatusError:
    """Turn an error of a Coder call into the Kubernetes `StatusError` to answer with.

    The Go original's mapping (``coder-adapters.md`` §2.5) for *resource* (a
    plural such as ``coderworkspaces``) and object *name*:

    * 404 → NotFound; 403 → Forbidden; 409 → AlreadyExists when the message
      says "already exists", else Conflict; 400, 422 and every other 4xx →
      BadRequest (Coder's ``validations`` become the Status' causes); 401 →
      Unauthorized; 429 → TooManyRequests;
    * a `StatusError` passes through unchanged.

    Different from the Go original, which answers 500 InternalError: when
    Coder cannot be reached, times out or answers 5xx, the result is **503
    ServiceUnavailable**, so clients (kubectl, informers) retry. Anything else
    (a malformed success answer, a bug) is 500 InternalError.

    Also different: the Status says what failed in the user's terms and
    passes on Coder's own ``message``, ``detail`` and validations, but never
    the request URL, the Coder host or port (should Coder's words contain
    them, they read ``<coder>``), the body of an answer that is not Coder's
    JSON, or the HTTP client's exception; those go to the ``k8swatch.coder``
    logger (an unexpected exception with its traceback to
    ``k8swatch.errors``, see [`internal_error`][k8swatch.internal_error]).
    A 401 says that Coder refused this server's session token, not the
    client's credentials.
    """
    if isinstance(err, StatusError):
        return err
    if isinstance(err, CoderUnavailableError):
        logger.warning("Coder is unreachable: %s", err)
        return service_unavailable("the Coder deployment is unreachable; try again later")
    if not isinstance(err, CoderError):
        return internal_error(err, context=f"a Coder call on {resource}/{name}")
    code = err.status_code
    log = logger.warning if code in (401, 403) or code >= 500 or code < 400 else logger.info
    log("Coder answered %s to a call on %s/%s: %s", code, resource, name, err)
    scrub = Scrubber(err.url)
    message = scrub(err.message.strip()) or f"unexpected status code {code}"
    if code == 404:
        return not_found(resource, name, group=group)
    if code == 403:
        return forbidden(resource, name, _coder_says(err, scrub), group=group)
    if code == 409:
        if "already exists" in err.message.lower():
            return already_exists(resource, name, group=group)
        return conflict(
            resource, name, f"Coder refused the change: {_coder_says(err, scrub)}", group=group
        )
    if code == 401:
        return unauthorized(f"the Coder deployment refused this server's session token: {message}")
    if code == 429:
        return too_many_requests(message, 0)
    if 400 <= code < 500:
        if not err.validations:
            return bad_request(message)
        causes = tuple(
            StatusCause(reason="FieldValueInvalid", message=scrub(detail), field=scrub(field))
            for field, detail in err.validations
        )
        return bad_request(message, causes=causes)
    return service_unavailable(f"the Coder deployment failed: {message}")


def _coder_says(err: CoderError, scrub: Scrubber) -> str:
    """Coder's own words for *err*: its message and JSON detail, never the request URL."""
    text = scrub(err.message.strip()) or f"unexpected status code {err.status_code}"
    if err.detail and not err.raw_detail:
        text += f": {scrub(err.detail)}"
    return text


@final
class Scrubber:
    """Replaces the Coder deployment's URL, host and port in a text by ``<coder>``.

    The host alone is replaced where it stands as a name of its own, and only
    when it has a dot or a colon (a domain name or an IP address): a
    one-label name such as a Service's ``coder`` says nothing outside the
    cluster and would otherwise mangle Coder's own words.
    """

    def __init__(self, url: str) -> None:
        patterns: list[str] = []
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            parsed = None
        if parsed is not None and parsed.host:
            netloc = parsed.netloc.decode("ascii", "replace")
            patterns.append(re.escape(f"{parsed.scheme}://{netloc}"))
            for name in dict.fromkeys((netloc, parsed.host)):
                if "." in name or ":" in name:
                    patterns.append(rf"(?<![\w.-]){re.escape(name)}(?![\w-])")
            if parsed.port is not None:
                patterns.append(rf":{parsed.port}(?!\d)")
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub("<coder>", text)


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise CoderProtocolError(
            f"{response.request.method} {response.request.url}: invalid JSON in answer: {exc}"
        ) from None


@final
class CoderClient:
    """An async client for the Coder REST API subset of the reference storages.

    Args:
        url: The deployment's base URL (``https://coder.example.com``).
        token: The session token, sent as ``Coder-Session-Token`` on every
            request. It is never logged and never part of an error message.
        timeout: Seconds allowed per request (connect, read, write and pool
            wait each); the Go original's default is 30.
        max_connections: Connection pool size; idle connections are reused.
        transport: An httpx transport to use instead of the network (tests).

    Use it as an async context manager, or call `aclose()` when done. Methods
    return Coder's JSON objects as dicts.

    Raises (every method):
        CoderError: Coder answered with an unexpected status code.
        CoderUnavailableError: no answer (connection failure, timeout).
        CoderProtocolError: a success answer with an unexpected body.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        max_connections: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self._url + "/api/v2",
            headers={SESSION_TOKEN_HEADER: token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
        )
        self._timeout = timeout
        self._token = token
        self._closed = False

    def __repr__(self) -> str:
        return f"CoderClient({self._url!r})"

    @property
    def url(self) -> str:
        """The deployment's base URL."""
        return self._url

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    async def __aenter__(self) -> CoderClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- transport -------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        body: bytes | None = content
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, path, params=params, content=body, headers=headers
            )
        except httpx.TransportError as exc:
            url = f"{self._url}/api/v2{path}"
            reason = type(exc).__name__
            text = str(exc)
            raise CoderUnavailableError(
                f"{method} {url}: {reason}" + (f": {text}" if text else "")
            ) from None
        if response.status_code not in expect:
            raise _error_from_response(response, response.content, self._token)
        return response

    async def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return _json_body(await self._send("GET", path, params=params))

    # --- organizations and users -----------------------------------------------

    async def organization(self, org: str) -> dict[str, Any]:
        """``GET /organizations/{org}`` (*org* is a name or an id)."""
        return dict(await self._get_json(f"/organizations/{org}"))

    async def user(self, user: str) -> dict[str, Any]:
        """``GET /users/{user}`` (*user* is a username, an id or ``me``)."""
        return dict(await self._get_json(f"/users/{user}"))

    async def build_info(self) -> dict[str, Any]:
        """``GET /buildinfo``: the deployment's version (a cheap liveness probe)."""
        return dict(await self._get_json("/buildinfo"))

    # --- templates -------------------------------------------------------------

    async def templates(self, query: str = "") -> list[dict[str, Any]]:
        """``GET /templates?q=<query>``: every template the token can see."""
        return list(await self._get_json("/templates", {"q": query}))

    async def template(self, template_id: str) -> dict[str, Any]:
        """``GET /templates/{id}``."""
        return dict(await self._get_json(f"/templates/{template_id}"))

    async def template_by_name(self, org_id: str, name: str) -> dict[str, Any]:
        """``GET /organizations/{org_id}/templates/{name}``."""
        return dict(await self._get_json(f"/organizations/{org_id}/templates/{name}"))

    async def create_template(
        self,
        org_id: str,
        *,
        name: str,
        version_id: str,
        display_name: str = "",
        description: str = "",
        icon: str = "",
    ) -> dict[str, Any]:
        """``POST /organizations/{org_id}/templates`` (201), the Go SDK's body."""
        body = create_template_body(
            name, version_id, display_name=display_name, description=description, icon=icon
        )
        response = await self._send(
            "POST", f"/organizations/{org_id}/templates", expect=(201,), json_body=body
        )
        return dict(_json_body(response))

    async def update_template_meta(
        self, template_id: str, *, display_name: str, description: str, icon: str
    ) -> dict[str, Any]:
        """``PATCH /templates/{id}`` with the three presentation fields, as coder-k8s sends it."""
        body = template_meta_body(display_name, description, icon)
        response = await self._send("PATCH", f"/templates/{template_id}", json_body=body)
        return dict(_json_body(response))

    async def update_active_template_version(self, template_id: str, version_id: str) -> None:
        """``PATCH /templates/{id}/versions`` ``{"id": version_id}``: promote a version."""
        await self._send(
            "PATCH", f"/templates/{template_id}/versions", json_body={"id": version_id}
        )

    async def delete_template(self, template_id: str) -> None:
        """``DELETE /templates/{id}``."""
        await self._send("DELETE", f"/templates/{template_id}")

    async def create_template_version(
        self, org_id: str, *, file_id: str, template_id: str | None = None
    ) -> dict[str, Any]:
        """``POST /organizations/{org_id}/templateversions`` (201): import an uploaded file.

        *template_id* unset is sent as the nil UUID, as the Go SDK does.
        """
        body = create_template_version_body(file_id, template_id)
        response = await self._send(
            "POST", f"/organizations/{org_id}/templateversions", expect=(201,), json_body=body
        )
        return dict(_json_body(response))

    async def template_version(self, version_id: str) -> dict[str, Any]:
        """``GET /templateversions/{id}``."""
        return dict(await self._get_json(f"/templateversions/{version_id}"))

    # --- files -----------------------------------------------------------------

    async def upload(self, data: bytes, content_type: str = "application/zip") -> str:
        """``POST /files`` (200 or 201); return the file id (the answer's ``hash``)."""
        response = await self._send(
            "POST", "/files", expect=(200, 201), content=data, content_type=content_type
        )
        body: Any = _json_body(response)
        file_id: object = (
            cast("dict[str, Any]", body).get("hash") if isinstance(body, dict) else None
        )
        if not isinstance(file_id, str) or not file_id:
            raise CoderProtocolError("POST /files: answer has no hash")
        return file_id

    async def download(self, file_id: str, *, format: str = "zip") -> bytes:
        """``GET /files/{id}?format=zip``: the archive's bytes."""
        response = await self._send("GET", f"/files/{file_id}", params={"format": format})
        return response.content

    # --- workspaces ------------------------------------------------------------

    async def workspaces(self, query: str = "") -> list[dict[str, Any]]:
        """``GET /workspaces?q=<query>``: every workspace the token can see."""
        body = await self._get_json("/workspaces", {"q": query})
        if not isinstance(body, Mapping):
            raise CoderProtocolError("GET /workspaces: answer is not an object")
        return list(body.get("workspaces") or ())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]

    async def workspace(self, workspace_id: str) -> dict[str, Any]:
        """``GET /workspaces/{id}`` (410 once the workspace is deleted)."""
        return dict(await self._get_json(f"/workspaces/{workspace_id}"))

    async def workspace_by_owner_and_name(self, owner: str, name: str) -> dict[str, Any]:
        """``GET /users/{owner}/workspace/{name}?include_deleted=false``."""
        return dict(
            await self._get_json(f"/users/{owner}/workspace/{name}", {"include_deleted": "false"})
        )

    async def create_user_workspace(
        self,
        owner: str,
        *,
        name: str,
        template_id: str | None = None,
        template_version_id: str | None = None,
        ttl_ms: int | None = None,
        autostart_schedule: str | None = None,
    ) -> dict[str, Any]:
        """``POST /users/{owner}/workspaces`` (201), the Go SDK's body.

        Give exactly one of *template_id* and *template_version_id*; the other
        is sent as the nil UUID.
        """
        body = create_workspace_body(
            name,
            template_id=template_id,
            template_version_id=template_version_id,
            ttl_ms=ttl_ms,
            autostart_schedule=autostart_schedule,
        )
        response = await self._send(
            "POST", f"/users/{owner}/workspaces", expect=(201,), json_body=body
        )
        return dict(_json_body(response))

    async def create_workspace_build(
        self, workspace_id: str, transition: str, *, template_version_id: str | None = None
    ) -> dict[str, Any]:
        """``POST /workspaces/{id}/builds`` (201): start a ``start``/``stop``/``delete`` build."""
        body = workspace_build_body(transition, template_version_id=template_version_id)
        response = await self._send(
            "POST", f"/workspaces/{workspace_id}/builds", expect=(201,), json_body=body
        )
        return dict(_json_body(response))

    @contextlib.asynccontextmanager
    async def watch_workspace(
        self, workspace_id: str
    ) -> AsyncGenerator[AsyncIterator[dict[str, Any]], None]:
        """Stream ``GET /workspaces/{id}/watch`` (Server-Sent Events).

        Use as ``async with client.watch_workspace(id) as updates: async for
        workspace in updates: ...``. Yields the full workspace on every ``data``
        frame (the first one is the current state); pings are skipped; an
        ``error`` frame raises `CoderError`. The stream has no read timeout
        (Coder pings every 15 s); leaving the block closes the connection.

        The stream uses its own connection (h11 over an anyio socket), so
        leaving it early never leaves a half-read response in the pool.

        Raises:
            CoderError: Coder answered with something else than 200 (e.g.
                404 for an unknown workspace), before streaming.
            CoderUnavailableError: the connection failed or timed out.
        """
        updates = await _SSEStream.open(
            self._url + f"/api/v2/workspaces/{workspace_id}/watch", self._token, self._timeout
        )
        try:
            yield updates
        finally:
            await updates.aclose()


_SSE_ERRORS = (OSError, anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError)


@final
class _SSEStream:
    """Server-Sent Events from one HTTP/1.1 response, read with h11 over anyio."""

    def __init__(self, stream: anyio.abc.ByteStream, conn: h11.Connection, url: str) -> None:
        self._stream = stream
        self._conn = conn
        self._url = url
        self._buffer = b""
        self._eof = False
        self._event = ""
        self._data: list[str] = []

    @classmethod
    async def open(cls, url: str, token: str, timeout: float) -> _SSEStream:
        parsed = httpx.URL(url)
        https = parsed.scheme == "https"
        host = parsed.host
        port = parsed.port or (443 if https else 80)
        target = parsed.raw_path
        netloc = parsed.netloc
        try:
            with anyio.fail_after(timeout):
                stream: anyio.abc.ByteStream
                if https:
                    stream = await anyio.connect_tcp(host, port, tls=True, tls_hostname=host)
                else:
                    stream = await anyio.connect_tcp(host, port)
        except (TimeoutError, *_SSE_ERRORS) as exc:
            raise CoderUnavailableError(f"GET {url}: {type(exc).__name__}") from None
        conn = h11.Connection(h11.CLIENT)
        self = cls(stream, conn, url)
        try:
            with anyio.fail_after(timeout):
                await stream.send(
                    conn.send(
                        h11.Request(
                            method="GET",
                            target=target,
                            headers=[
                                (b"Host", netloc),
                                (SESSION_TOKEN_HEADER.encode(), token.encode()),
                                (b"Accept", b"text/event-stream"),
                            ],
                        )
                    )
                    or b""
                )
                await stream.send(conn.send(h11.EndOfMessage()) or b"")
                response = await self._next_event()
                if not isinstance(response, h11.Response):
                    raise CoderProtocolError(f"GET {url}: no response")
                if response.status_code != 200:
                    body = b""
                    while True:
                        event = await self._next_event()
                        if isinstance(event, h11.Data):
                            body += bytes(event.data)
                        else:
                            break
                    headers = [(k.decode(), v.decode()) for k, v in response.headers]
                    fake = httpx.Response(
                        response.status_code,
                        headers=headers,
                        content=body,
                        request=httpx.Request("GET", url),
                    )
                    raise _error_from_response(fake, body, token)
        except BaseException as exc:
            await anyio.aclose_forcefully(stream)
            if isinstance(exc, (TimeoutError, *_SSE_ERRORS)):
                raise CoderUnavailableError(f"GET {url}: {type(exc).__name__}") from None
            if isinstance(exc, h11.ProtocolError):
                raise CoderProtocolError(f"GET {url}: {exc}") from None
            raise
        return self

    async def _next_event(self) -> Any:
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self._stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                data = b""
            self._conn.receive_data(data)

    def __aiter__(self) -> _SSEStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            payload = self._take_frame()
            if payload is not None:
                return payload
            if self._eof:
                raise StopAsyncIteration
            try:
                event = await self._next_event()
            except _SSE_ERRORS as exc:
                raise CoderUnavailableError(
                    f"workspace watch stream broke: {type(exc).__name__}"
                ) from None
            except h11.ProtocolError as exc:
                raise CoderProtocolError(f"workspace watch stream: {exc}") from None
            if isinstance(event, h11.Data):
                self._buffer += bytes(event.data)
            else:
                self._eof = True

    def _take_frame(self) -> dict[str, Any] | None:
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if line.startswith("event:"):
                self._event = line[6:].strip()
            elif line.startswith("data:"):
                self._data.append(line[5:].strip())
            elif line == "":
                event, data = self._event, "\n".join(self._data)
                self._event, self._data = "", []
                if event == "data" and data:
                    try:
                        payload = json.loads(data)
                    except ValueError as exc:
                        raise CoderProtocolError(f"bad workspace watch frame: {exc}") from None
                    if isinstance(payload, dict):
                        return cast("dict[str, Any]", payload)
                elif event == "error":
                    try:
                        body = json.loads(data or "{}")
                    except ValueError:
                        body = {}
                    if not isinstance(body, dict):
                        body = {}
                    body = cast("dict[str, Any]", body)
                    raise CoderError(
                        200,
                        str(body.get("message") or "workspace watch error"),
                        detail=str(body.get("detail") or ""),
                        method="GET",
                        url=self._url,
                    )
        return None

    async def aclose(self) -> None:
        self._eof = True
        await anyio.aclose_forcefully(self._stream)
