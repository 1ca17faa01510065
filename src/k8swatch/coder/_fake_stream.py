"""The fake Coder's change feed and workspace watch streams (the anyio edge).

`FakeCoderChanges` is one subscription to the feed; `ChangeFeed` fans the state's
changes out to the open ones.  `stream_workspace_sse` and `stream_workspace_ws` send
Coder's workspace watch (ping, the workspace, one frame per change, heartbeats) over
ASGI, each running its pump and a disconnect listener in one task group.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import anyio.lowlevel
from typing_extensions import Self, final

from k8swatch._go import go_json

from ._fake_model import FakeCoderChange

if TYPE_CHECKING:
    from ._fake import FakeCoder

__all__ = [
    "ChangeFeed",
    "FakeCoderChanges",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "stream_workspace_sse",
    "stream_workspace_ws",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

_Emit: TypeAlias = Callable[[str, "dict[str, Any] | None"], Awaitable[None]]


@final
class FakeCoderChanges:
    """A subscription to a fake's change feed, from `FakeCoder.subscribe()`.

    Iterate it with ``async for``; each item is a `FakeCoderChange`, in mutation order,
    starting with the first mutation after `FakeCoder.subscribe()`.  While waiting it
    applies due build steps (``async`` mode), so a waiter alone drives progress.  The
    iteration ends when the subscription or the fake is closed.  Buffering is
    unbounded: a subscriber that never reads keeps every change.
    """

    def __init__(self, fake: FakeCoder) -> None:
        self._fake = fake
        self._pending: collections.deque[FakeCoderChange] = collections.deque()
        self._wakeup: anyio.Event | None = None
        self._closed = False
        self._feed: ChangeFeed | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> FakeCoderChange:
        while True:
            self._fake.advance()
            if self._pending:
                await anyio.lowlevel.checkpoint()
                return self._pending.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = anyio.Event()
            delay = self._fake.seconds_until_next_step()
            with anyio.move_on_after(math.inf if delay is None else delay):
                await self._wakeup.wait()

    def receive_nowait(self) -> FakeCoderChange | None:
        """Return the next buffered change, or ``None`` when there is none yet."""
        self._fake.advance()
        return self._pending.popleft() if self._pending else None

    def close(self) -> None:
        """Stop receiving changes; idempotent.  A waiting iteration ends."""
        if not self._closed:
            self._closed = True
            if self._feed is not None:
                self._feed.subscribers.discard(self)
            self._wake()

    def _push(self, change: FakeCoderChange) -> None:
        self._pending.append(change)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None


class ChangeFeed:
    """The open subscriptions of one fake; a listener of its state's changes."""

    def __init__(self) -> None:
        self.subscribers: set[FakeCoderChanges] = set()
        self.closed = False

    def add(self, changes: FakeCoderChanges) -> None:
        """Deliver later changes to *changes* (closed at once if the feed is closed)."""
        if self.closed:
            changes._closed = True
        else:
            changes._feed = self
            self.subscribers.add(changes)

    def publish(self, change: FakeCoderChange) -> None:
        """Buffer *change* in every open subscription and wake its waiter."""
        for subscriber in list(self.subscribers):
            subscriber._push(change)

    def close(self) -> None:
        """Close every subscription, and every later one at once; idempotent."""
        self.closed = True
        for subscriber in list(self.subscribers):
            subscriber.close()


async def _pump_workspace_events(
    render: Callable[[], dict[str, Any]],
    workspace_id: str,
    changes: FakeCoderChanges,
    heartbeat: Callable[[], float],
    emit: _Emit,
) -> None:
    """Emit ping, the current workspace, then one ``data`` per change, with heartbeats.

    Returns when the subscription ends (`FakeCoder.close()`).
    """
    await emit("ping", None)
    await emit("data", render())
    next_ping = anyio.current_time() + heartbeat()
    while True:
        change: FakeCoderChange | None = None
        with anyio.move_on_after(max(0.0, next_ping - anyio.current_time())) as scope:
            try:
                change = await changes.__anext__()
            except StopAsyncIteration:
                return
        if scope.cancelled_caught or change is None:
            await emit("ping", None)
            next_ping = anyio.current_time() + heartbeat()
        elif change.kind == "workspace" and change.id == workspace_id:
            # Template changes are also published for each of its workspaces.
            await emit("data", render())


async def stream_workspace_sse(
    render: Callable[[], dict[str, Any]],
    workspace_id: str,
    changes: FakeCoderChanges,
    heartbeat: Callable[[], float],
    receive: Receive,
    send: Send,
) -> None:
    """Send Coder's SSE workspace watch: ping, current state, one frame per change.

    *render* returns the workspace's current JSON and *heartbeat* the ping interval;
    *changes* is closed when the stream ends.
    """
    with changes:
        await _send_sse(render, workspace_id, changes, heartbeat, receive, send)


async def _send_sse(
    render: Callable[[], dict[str, Any]],
    workspace_id: str,
    changes: FakeCoderChanges,
    heartbeat: Callable[[], float],
    receive: Receive,
    send: Send,
) -> None:
    disconnected = False

    async def emit(event: str, data: dict[str, Any] | None) -> None:
        frame = b"event: " + event.encode() + b"\n"
        if data is not None:
            frame += b"data: " + go_json(data).encode() + b"\n"
        await send({"type": "http.response.body", "body": frame + b"\n", "more_body": True})

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"connection", b"keep-alive"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    async with anyio.create_task_group() as tg:

        async def watch_disconnect() -> None:
            nonlocal disconnected
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected = True
            tg.cancel_scope.cancel()

        tg.start_soon(watch_disconnect)
        await _pump_workspace_events(render, workspace_id, changes, heartbeat, emit)
        tg.cancel_scope.cancel()
    if not disconnected:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def stream_workspace_ws(
    render: Callable[[], dict[str, Any]],
    workspace_id: str,
    changes: FakeCoderChanges,
    heartbeat: Callable[[], float],
    receive: Receive,
    send: Send,
) -> None:
    """Accept the WebSocket and send the watch as one-way JSON text messages.

    Closes *changes* before the closing handshake.
    """
    closed_by_client = False
    with changes:
        await send({"type": "websocket.accept"})

        async def emit(event: str, data: dict[str, Any] | None) -> None:
            text = go_json({"type": event, "data": data})
            await send({"type": "websocket.send", "text": text})

        async with anyio.create_task_group() as tg:

            async def watch_client() -> None:
                nonlocal closed_by_client
                message = await receive()
                closed_by_client = True
                if message["type"] == "websocket.receive":
                    # The stream is one-way: a client message is a protocol error.
                    await send({"type": "websocket.close", "code": 1002})
                tg.cancel_scope.cancel()

            tg.start_soon(watch_client)
            await _pump_workspace_events(render, workspace_id, changes, heartbeat, emit)
            tg.cancel_scope.cancel()
    if not closed_by_client:
        await send({"type": "websocket.close", "code": 1000})
