"""An ASGI wrapper that records every request and carries out the injected faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from typing_extensions import final

from k8swatch._events import Event, EventType
from k8swatch._status import Status, expired
from k8swatch._wire import encode_event, encode_json

from ._fault import Fault
from ._faults import Faults
from ._requestlog import RecordedRequest, RequestLog

__all__ = ["InstrumentedApp"]

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]

_WATCH_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-cache, private")]
_END = {"type": "http.response.body", "body": b"", "more_body": False}


class _BufferedBody:
    """The request body read up front, replayed to the app as one message."""

    def __init__(self, receive: _Receive) -> None:
        self.raw_receive = receive
        self.body = b""
        self.disconnected = False
        self._pending: list[_Message] = []

    async def read(self) -> None:
        chunks: list[bytes] = []
        while True:
            message = await self.raw_receive()
            if message["type"] != "http.request":
                self.disconnected = True
                self._pending.append(message)
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.body = b"".join(chunks)
        self._pending.insert(0, {"type": "http.request", "body": self.body, "more_body": False})

    async def receive(self) -> _Message:
        if self._pending:
            return self._pending.pop(0)
        return await self.raw_receive()


def _too_old(request: RecordedRequest) -> Status:
    requested = request.param("resourceVersion") or "0"
    rv = int(requested) if requested.isdigit() else 0
    return expired(f"too old resource version: {rv} ({rv + 1})").status


async def _send_status(send: _Send, status: Status) -> None:
    body = encode_json(status.to_dict())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache, private"),
    ]
    if status.details is not None and status.details.retry_after_seconds:
        headers.append((b"retry-after", str(status.details.retry_after_seconds).encode()))
    await send({"type": "http.response.start", "status": status.code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _start_watch(send: _Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(_WATCH_HEADERS)})
    await send({"type": "http.response.body", "body": b"", "more_body": True})


def _take_lines(body: bytes, wanted: int) -> tuple[bytes, int]:
    """The start of *body* holding up to *wanted* lines, and how many lines are still wanted."""
    end = 0
    while wanted:
        newline = body.find(b"\n", end)
        if newline < 0:
            return body, wanted
        end = newline + 1
        wanted -= 1
    return body[:end], 0


@final
class InstrumentedApp:
    """Wrap an ASGI app: record every HTTP request and inject faults into chosen ones.

    Requests go to [`log`][k8swatch.testing.InstrumentedApp.log] (with the
    fault they got, if any) and are matched against
    [`faults`][k8swatch.testing.InstrumentedApp.faults]; the others reach the
    app untouched. Pure ASGI on anyio, so it works on asyncio and trio, under
    [`ASGIClient`][k8swatch.testing.ASGIClient] and under
    [`serve_app`][k8swatch.testing.serve_app] with real clients. Lifespan
    and websocket connections pass through unrecorded.

    ```python
    app = InstrumentedApp(create_app([...]))
    app.faults.add(Fault.expired(), watch=True)
    ...  # a client lists, watches, gets the 410 and lists again
    app.log.assert_requested("GET", watch=False, times=2)
    ```

    Args:
        app: The ASGI application to wrap.
        log: Where to record requests; a new [`RequestLog`][k8swatch.testing.RequestLog]
            by default.
        faults: The faults to inject; a new [`Faults`][k8swatch.testing.Faults] by default.
    """

    def __init__(
        self, app: Any, *, log: RequestLog | None = None, faults: Faults | None = None
    ) -> None:
        self.app = app
        """The wrapped application."""
        self.log: RequestLog = RequestLog() if log is None else log
        """The [`RequestLog`][k8swatch.testing.RequestLog] of every HTTP request."""
        self.faults: Faults = Faults() if faults is None else faults
        """The [`Faults`][k8swatch.testing.Faults] to inject."""
        self._closed = False

    async def aclose(self) -> None:
        """Release every stalled request and stop stalling, then ``aclose()`` the app if it can.

        [`serve_app`][k8swatch.testing.serve_app] calls this on exit, so a
        stalled watch does not hold up the server's shutdown. Idempotent if the
        app's ``aclose()`` is.
        """
        self._closed = True
        self.faults.release()
        closer = getattr(self.app, "aclose", None)
        if closer is not None:
            await closer()

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send
    ) -> None:
        """Serve one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        buffered = _BufferedBody(receive)
        await buffered.read()
        request = RecordedRequest.from_scope(scope, buffered.body)
        # Decided before the request is logged: a test that sees it in the log
        # and then calls faults.release() cannot miss its stall.
        fault = self.faults.take(request)
        request.fault = fault
        self.log.append(request)

        async def recording_send(message: _Message) -> None:
            if message["type"] == "http.response.start":
                request.status = int(message["status"])
            await send(message)

        if fault is None:
            await self.app(scope, buffered.receive, recording_send)
        elif fault.kind == "status" and fault.error is not None:
            await _send_status(recording_send, fault.error)
        elif fault.kind == "expired":
            await self._expire(request, fault, recording_send)
        elif fault.kind == "drop":
            await self._drop(scope, buffered.receive, recording_send, fault)
        elif fault.kind == "stall":
            await self._stall(scope, buffered, recording_send, request)
        else:
            await anyio.sleep(fault.seconds)
            await self.app(scope, buffered.receive, recording_send)

    @staticmethod
    async def _expire(request: RecordedRequest, fault: Fault, send: _Send) -> None:
        status = fault.error if fault.error is not None else _too_old(request)
        if not request.watch:
            await _send_status(send, status)
            return
        await _start_watch(send)
        line = encode_event(Event(EventType.ERROR, status))
        await send({"type": "http.response.body", "body": line, "more_body": True})
        await send(dict(_END))

    async def _drop(
        self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send, fault: Fault
    ) -> None:
        wanted = fault.after
        started = ended = stopped = False

        with anyio.CancelScope() as cancel:

            def stop() -> None:
                nonlocal stopped
                stopped = True
                cancel.cancel()  # the app's next checkpoint ends it

            async def send_some(message: _Message) -> None:
                nonlocal wanted, started, ended
                if stopped:
                    return
                if message["type"] == "http.response.start":
                    await send(message)
                    started = True
                    if wanted == 0:
                        stop()
                    return
                if message["type"] == "http.response.body":
                    kept, wanted = _take_lines(message.get("body", b""), wanted)
                    if wanted == 0:
                        if kept:
                            await send(
                                {"type": "http.response.body", "body": kept, "more_body": True}
                            )
                        stop()
                        return
                    ended = not message.get("more_body", False)
                await send(message)

            await self.app(scope, receive, send_some)
        if started and not ended and not fault.cut:
            await send(dict(_END))

    async def _stall(
        self,
        scope: MutableMapping[str, Any],
        buffered: _BufferedBody,
        send: _Send,
        request: RecordedRequest,
    ) -> None:
        if request.watch:
            await _start_watch(send)
        released = False
        if not buffered.disconnected:
            async with anyio.create_task_group() as tg:

                async def wait_for_release() -> None:
                    nonlocal released
                    if not self._closed:
                        await self.faults.wait_released(request)
                    released = True
                    tg.cancel_scope.cancel()

                async def wait_for_disconnect() -> None:
                    while (await buffered.raw_receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(wait_for_release)
                tg.start_soon(wait_for_disconnect)
        if not released:
            self.faults.forget(request)
        elif request.watch:
            await send(dict(_END))
        else:
            await self.app(scope, buffered.receive, send)
