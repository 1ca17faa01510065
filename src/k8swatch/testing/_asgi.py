"""An in-process ASGI client over memory streams (asyncio and trio).

It drives an ASGI app directly, without sockets, and supports streaming
responses (watches) and client disconnects, which ``httpx.ASGITransport``
does not.
"""

from __future__ import annotations

import json as _json
import math
from collections.abc import AsyncGenerator, Iterable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from typing_extensions import final

__all__ = ["ASGIClient", "ASGIResponse", "ASGIStream"]

_Message = MutableMapping[str, Any]


def _header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key == lowered:
            return value
    return None


@final
class ASGIResponse:
    """A complete response: ``status``, ``headers`` (lower-case names) and ``body``."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of header *name*, or None."""
        return _header_value(self.headers, name)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"ASGIResponse({self.status}, {self.body[:200]!r})"


@final
class ASGIStream:
    """A streaming response: read chunks or lines while the app is still sending."""

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        messages: MemoryObjectReceiveStream[_Message],
        first: bytes,
    ) -> None:
        self.status = status
        self.headers = headers
        self._messages = messages
        self._pending = first
        self._finished = False
        self._buffer = b""
        self.send_count: int = 0
        """How many ``http.response.body`` messages carried data."""
        self.complete: bool = False
        """True once the app ended the body; a body that stopped without it was cut."""

    def header(self, name: str) -> str | None:
        """The first value of header *name*, or None."""
        return _header_value(self.headers, name)

    async def receive_chunk(self) -> bytes | None:
        """The next non-empty body chunk (one ``send``), or None at the end of the body."""
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        while not self._finished:
            try:
                message = await self._messages.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._finished = True
                return None
            if message["type"] != "http.response.body":
                continue
            body: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                self._finished = True
                self.complete = True
            if body:
                self.send_count += 1
                return body
        return None

    async def receive_line(self) -> bytes | None:
        """The next line (without its newline), or None at the end of the body."""
        while b"\n" not in self._buffer:
            chunk = await self.receive_chunk()
            if chunk is None:
                if self._buffer:
                    line, self._buffer = self._buffer, b""
                    return line
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    async def receive_json(self) -> Any:
        """The next non-empty line decoded as JSON (a watch event), or None at the end."""
        while True:
            line = await self.receive_line()
            if line is None:
                return None
            if line.strip():
                return _json.loads(line)

    def __aiter__(self) -> ASGIStream:
        return self

    async def __anext__(self) -> Any:
        """Iterate over the JSON lines (watch events) of the body."""
        event = await self.receive_json()
        if event is None:
            raise StopAsyncIteration
        return event

    async def read(self) -> bytes:
        """Read the rest of the body."""
        chunks = [self._buffer]
        self._buffer = b""
        while (chunk := await self.receive_chunk()) is not None:
            chunks.append(chunk)
        return b"".join(chunks)


@final
class ASGIClient:
    """Call an ASGI app in-process: ``await client.request(...)`` or ``client.stream(...)``.

    Args:
        app: The ASGI application.
        headers: Headers sent with every request.
    """

    def __init__(self, app: Any, *, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers: dict[str, str] = dict(headers or {})

    def _scope(
        self, method: str, path: str, headers: Mapping[str, str] | None, body: bytes
    ) -> dict[str, Any]:
        parts = urlsplit(path)
        merged = {**self.headers, **(headers or {})}
        raw_headers = [(b"host", b"testserver")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in merged.items()]
        if body and "content-length" not in {k.lower() for k in merged}:
            raw_headers.append((b"content-length", str(len(body)).encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "root_path": "",
            "query_string": parts.query.encode(),
            "headers": raw_headers,
            "client": ("127.0.0.1", 12345),
            "server": ("testserver", 80),
        }

    @staticmethod
    def _encode_body(body: bytes | str | None, json: Any) -> tuple[bytes, dict[str, str]]:
        if json is not None:
            return _json.dumps(json).encode(), {"content-type": "application/json"}
        if isinstance(body, str):
            return body.encode(), {}
        return body or b"", {}

    async def _start(
        self, tg: TaskGroup, scope: dict[str, Any], body: bytes
    ) -> tuple[MemoryObjectSendStream[_Message], MemoryObjectReceiveStream[_Message]]:
        to_app_send, to_app_receive = anyio.create_memory_object_stream[_Message](math.inf)
        from_app_send, from_app_receive = anyio.create_memory_object_stream[_Message](math.inf)
        to_app_send.send_nowait({"type": "http.request", "body": body, "more_body": False})

        async def receive() -> _Message:
            try:
                return await to_app_receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return {"type": "http.disconnect"}

        async def send(message: _Message) -> None:
            try:
                from_app_send.send_nowait(message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the client went away; a real server ignores late sends too

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                from_app_send.close()
                to_app_receive.close()

        tg.start_soon(run)
        return to_app_send, from_app_receive

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        json: Any = None,
    ) -> ASGIResponse:
        """Send one request and return the whole response."""
        data, extra = self._encode_body(body, json)
        scope = self._scope(method, path, {**extra, **(headers or {})}, data)
        status = 500
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        async with anyio.create_task_group() as tg:
            to_app, from_app = await self._start(tg, scope, data)
            async with from_app:
                async for message in from_app:
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        response_headers = [
                            (k.decode("latin-1").lower(), v.decode("latin-1"))
                            for k, v in message.get("headers", [])
                        ]
                    elif message["type"] == "http.response.body":
                        chunks.append(message.get("body", b""))
                        if not message.get("more_body", False):
                            break
            to_app.close()
        return ASGIResponse(status, response_headers, b"".join(chunks))

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        json: Any = None,
    ) -> AsyncGenerator[ASGIStream, None]:
        """Send a request and yield the response as soon as its headers arrive.

        Leaving the block disconnects the client (``http.disconnect``) and
        waits for the app to finish.
        """
        data, extra = self._encode_body(body, json)
        scope = self._scope(method, path, {**extra, **(headers or {})}, data)
        async with anyio.create_task_group() as tg:
            to_app, from_app = await self._start(tg, scope, data)
            status = 500
            response_headers: list[tuple[str, str]] = []
            try:
                async for message in from_app:
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        response_headers = [
                            (k.decode("latin-1").lower(), v.decode("latin-1"))
                            for k, v in message.get("headers", [])
                        ]
                        break
                yield ASGIStream(status, response_headers, from_app, b"")
            finally:
                to_app.close()
                from_app.close()

    @asynccontextmanager
    async def lifespan(self) -> AsyncGenerator[None, None]:
        """Run the app's lifespan: startup on entry, shutdown on exit."""
        to_app_send, to_app_receive = anyio.create_memory_object_stream[_Message](math.inf)
        from_app_send, from_app_receive = anyio.create_memory_object_stream[_Message](math.inf)

        async def run() -> None:
            async with from_app_send:
                await self.app(
                    {"type": "lifespan", "asgi": {"version": "3.0"}},
                    to_app_receive.receive,
                    from_app_send.send,
                )

        failure = ""
        async with (
            to_app_send,
            to_app_receive,
            from_app_receive,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(run)
            to_app_send.send_nowait({"type": "lifespan.startup"})
            message = await from_app_receive.receive()
            if message["type"] != "lifespan.startup.complete":
                failure = f"lifespan startup failed: {message}"
                tg.cancel_scope.cancel()
            else:
                try:
                    yield
                finally:
                    to_app_send.send_nowait({"type": "lifespan.shutdown"})
                    message = await from_app_receive.receive()
                    if message["type"] != "lifespan.shutdown.complete":
                        failure = f"lifespan shutdown failed: {message}"
        if failure:
            raise RuntimeError(failure)
