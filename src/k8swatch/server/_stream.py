"""Watch streaming: encode-once event bytes and the chunked JSON-lines response."""

from __future__ import annotations

# A bare task for a stream's listener on asyncio (see _Listening): anyio has no
# cheaper way to run a second task than a task group.
import asyncio  # noqa: TID251
import logging
import operator
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.abc
from typing_extensions import final

from k8swatch._events import Event, EventType
from k8swatch._status import Status, StatusError, internal_error
from k8swatch._watch import Watch
from k8swatch._wire import encode_event, encode_json

from ._resource import ResourceSpec
from ._table import build_table
from ._types import Message, Receive, Send, as_object, metadata_of

__all__ = ["FORMAT_JSON", "EventEncoder", "stream_watch", "table_format"]

logger = logging.getLogger("k8swatch.server")

FORMAT_JSON = "json"
_TABLE_PREFIX = "table:"
# A Table row carries a humanised age; never reuse one older than this.
_TABLE_MAX_AGE = 1.0


def table_format(include_object: str) -> str:
    """The encoder format name for Table events with *include_object*."""
    return _TABLE_PREFIX + include_object


def with_type_meta(obj: Any, resource: ResourceSpec) -> Any:
    """Return *obj* with ``apiVersion`` and ``kind`` set (a copy only if missing)."""
    fields = as_object(obj)
    if fields is not None and ("apiVersion" not in fields or "kind" not in fields):
        return {"apiVersion": resource.api_version, "kind": resource.kind, **fields}
    return obj


def _resource_version(obj: Any) -> str:
    return str(metadata_of(obj).get("resourceVersion", ""))


def _status_of(obj: object) -> Status | None:
    if isinstance(obj, Status):
        return obj
    if isinstance(obj, StatusError):
        return obj.status
    return None


@final
class EventEncoder:
    """Encodes watch events once and hands every watcher the same bytes.

    Events come from a storage's shared event log, so the watchers of one
    resource receive the very same objects. The encoder keeps the bytes of
    the most recent *maxsize* (event type, object, format) combinations,
    holding a reference to each object so that identity checks stay valid.
    ``encode_count`` counts actual encodings (for benchmarks and tests).

    Watchers woken together usually receive the very same batch (the same
    run of the shared window): `encode_batch` also keeps the joined bytes of
    the most recent batches, so that each of them costs one lookup and one
    ``send``, however many events it holds.
    """

    __slots__ = ("_batches", "_entries", "_maxsize", "encode_count")

    def __init__(self, maxsize: int = 4096) -> None:
        self._entries: dict[tuple[EventType, int, str], tuple[object, bytes, float]] = {}
        self._batches: dict[tuple[int, int, int, int, str], _EncodedBatch] = {}
        self._maxsize = maxsize
        self.encode_count: int = 0
        """How many events were actually encoded (cache misses)."""

    def encode(self, event: Event[Any], resource: ResourceSpec, fmt: str = FORMAT_JSON) -> bytes:
        """Return the JSON line for *event* in *fmt* (``json`` or a table format)."""
        obj = event.object
        key = (event.type, id(obj), fmt)
        entry = self._entries.get(key)
        now = time.monotonic() if fmt != FORMAT_JSON else 0.0
        if entry is not None and entry[0] is obj and now - entry[2] <= _TABLE_MAX_AGE:
            return entry[1]
        data = self._encode(event, resource, fmt)
        self.encode_count += 1
        if entry is None and len(self._entries) >= self._maxsize:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (obj, data, now)
        return data

    def encode_batch(
        self, batch: Sequence[Event[Any]], resource: ResourceSpec, fmt: str = FORMAT_JSON
    ) -> tuple[bytes, bool]:
        """Return the JSON lines of *batch*, joined, and whether it holds an ``ERROR`` event.

        A batch of the very same event objects as a recent one (checked by
        identity) gets the very same bytes, without a lookup per event.
        Table formats are joined from `encode` (their rows age).
        """
        if fmt != FORMAT_JSON:
            return self._join(batch, resource, fmt)
        first, last = batch[0], batch[-1]
        key = (id(resource), id(first), id(last), len(batch), fmt)
        cached = self._batches.get(key)
        if cached is not None and cached.resource is resource and cached.holds(batch):
            return cached.data, cached.error
        data, error = self._join(batch, resource, fmt)
        if cached is None and len(self._batches) >= _MAX_BATCHES:
            del self._batches[next(iter(self._batches))]
        self._batches[key] = _EncodedBatch(resource, tuple(batch), data, error)
        return data, error

    def _join(
        self, batch: Sequence[Event[Any]], resource: ResourceSpec, fmt: str
    ) -> tuple[bytes, bool]:
        encode = self.encode
        error = False
        lines: list[bytes] = []
        for event in batch:
            lines.append(encode(event, resource, fmt))
            if event.type is EventType.ERROR:
                error = True
        return b"".join(lines), error

    @staticmethod
    def _encode(event: Event[Any], resource: ResourceSpec, fmt: str) -> bytes:
        obj = event.object
        if _status_of(obj) is not None or event.type is EventType.ERROR:
            return encode_event(event)
        obj = with_type_meta(obj, resource)
        if fmt.startswith(_TABLE_PREFIX):
            include_object = fmt[len(_TABLE_PREFIX) :]
            rv = _resource_version(obj)
            rows: list[dict[str, Any]] = [] if event.type is EventType.BOOKMARK else [obj]
            table = build_table(
                rows,
                resource_version=rv,
                include_object=include_object,
                columns=resource.printer_columns,
            )
            return encode_json({"type": str(event.type), "object": table}) + b"\n"
        return encode_json({"type": str(event.type), "object": obj}) + b"\n"


# Joined batches kept by EventEncoder.encode_batch: the watchers woken by one
# change share a handful of distinct batches (where each of them was up to).
_MAX_BATCHES = 64


@final
class _EncodedBatch:
    """The bytes of one batch, with its events (kept alive, so ids stay unique)."""

    __slots__ = ("data", "error", "events", "resource")

    def __init__(
        self, resource: ResourceSpec, events: tuple[Event[Any], ...], data: bytes, error: bool
    ) -> None:
        self.resource = resource
        self.events = events
        self.data = data
        self.error = error

    def holds(self, batch: Sequence[Event[Any]]) -> bool:
        """Whether *batch* is exactly these events (the same objects, in order)."""
        events = self.events
        return len(events) == len(batch) and all(map(operator.is_, events, batch))


def _error_line(err: StatusError) -> bytes:
    return encode_event(Event(EventType.ERROR, err.status))


@final
class _SendClock:
    """A stream's ``send``, timed: when the pending call began, and whether one stalled."""

    __slots__ = ("_send", "since", "stalled")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.since: float | None = None
        """``time.monotonic()`` when the pending ``send`` began (None: none pending)."""
        self.stalled = False
        """A ``send`` took too long; nothing more is sent."""

    async def __call__(self, message: Message) -> None:
        if self.stalled:
            return
        self.since = time.monotonic()
        try:
            await self._send(message)
        finally:
            self.since = None

    def stuck_for(self, seconds: float) -> bool:
        """Whether the pending ``send`` began *seconds* ago or earlier."""
        since = self.since
        return since is not None and time.monotonic() - since >= seconds


@final
class _Listener:
    """A stream's second task: it waits for the client to leave, and watches the sends.

    The client leaving (``http.disconnect``) cancels the stream's scope. With
    a *send_timeout*, it also wakes every quarter of it (plus up to a tenth
    of that at random, so streams stuck together are not all ended at once)
    to check the pending send (see `stream_watch`).
    """

    __slots__ = ("_clock", "_on_stalled", "_receive", "_scope", "_send_timeout", "_watch", "left")

    def __init__(
        self,
        receive: Receive,
        scope: anyio.CancelScope,
        clock: _SendClock,
        watch: Watch[Any],
        send_timeout: float | None,
        on_stalled: Callable[[], object],
    ) -> None:
        self._receive = receive
        self._scope = scope
        self._clock = clock
        self._watch = watch
        self._send_timeout = send_timeout
        self._on_stalled = on_stalled
        self.left = False
        """The client went away."""

    async def run(self) -> None:
        """Listen until the client leaves or a send stalls; then cancel the stream's scope."""
        try:
            if self._send_timeout is None:
                while (await self._receive())["type"] != "http.disconnect":
                    pass
            elif not await self._listen_timed(self._send_timeout):
                return
            self.left = True
        except Exception:
            logger.exception("listening for the client of a watch failed")
        self._scope.cancel()

    async def _listen_timed(self, send_timeout: float) -> bool:
        """Listen, checking the pending send; False when it stalled (the stream is ended)."""
        period = send_timeout / 4
        while True:
            message: Message | None = None
            # uvicorn's and hypercorn's receive() lose nothing when cancelled.
            with anyio.move_on_after(period * (1 + random.random() / 10)):
                message = await self._receive()
            if message is not None and message["type"] == "http.disconnect":
                return True
            if self._clock.stuck_for(send_timeout):
                _stalled(self._clock, send_timeout)
                self._watch.stop()  # the loop is in send(), not waiting on the watch
                self._on_stalled()
                self._scope.cancel()
                return False


@final
class _Listening:
    """``async with _Listening(listener):`` runs *listener* beside the block.

    On asyncio, as a bare task, cancelled when the block ends: it costs a
    few hundred bytes, where an anyio task group and its task cost
    kilobytes, for every idle watch. Elsewhere (trio), in an anyio task group.
    """

    __slots__ = ("_group", "_listener", "_task")

    def __init__(self, listener: _Listener) -> None:
        self._listener = listener
        self._task: asyncio.Task[None] | None = None
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio
            self._group = group = anyio.create_task_group()
            await group.__aenter__()
            group.start_soon(self._listener.run)
        else:
            self._task = loop.create_task(self._listener.run())

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if self._task is not None:
            self._task.cancel()
            return None
        assert self._group is not None
        self._group.cancel_scope.cancel()
        return await self._group.__aexit__(*exc_info)


async def stream_watch(
    watch: Watch[Any],
    *,
    receive: Receive,
    send: Send,
    encode: Callable[[Sequence[Event[Any]]], tuple[bytes, bool]],
    scope: anyio.CancelScope,
    timeout: float | None,
    headers: Sequence[tuple[bytes, bytes]] = (),
    send_timeout: float | None = None,
    on_stalled: Callable[[], object] = lambda: None,
    sent: Callable[[Sequence[Event[Any]]], object] | None = None,
    on_end: Callable[[], object] | None = None,
) -> None:
    """Serve *watch* as a chunked ``application/json`` watch response.

    The send loop: each ``watch.batches()`` step (every event available at
    one wake-up) becomes one ``http.response.body`` message, whose bytes
    *encode* returns (shared by every watcher that got the same batch), and
    an ``ERROR`` event ends the stream after it is sent, as kube-apiserver
    does; so does an error raised by the watch. `_send_chunk` is the one
    place body chunks are sent.

    The loop runs inside *scope*, a cancel scope the caller keeps to end the
    stream at shutdown (by cancelling it); its deadline is set to *timeout*
    seconds from now. A second task (`_Listener`) waits for the client to go
    away and then cancels it too: a bare asyncio task on asyncio, an anyio
    task group's elsewhere. No other task or wrapper exists per stream: the
    loop waits on the watch alone, the cheapest wait there is. Whatever ends
    the stream, the watch is stopped, and unless the client went away (or
    stopped taking data) the response is completed.

    *send_timeout* bounds every ``send`` of the stream: one that has not
    returned after that many seconds (the client takes no data; its TCP
    window and the server's buffers are full) ends the stream like a
    disconnect, and nothing more is sent, so the ASGI server closes the
    connection. The listener checks the pending send every quarter of
    *send_timeout*, plus up to a tenth of that at random (one timer per
    stream and period; a timer per send would cost more than the send), so a
    stuck stream ends between 1 and 1.3 times *send_timeout* after its send
    began. It then stops the watch and calls *on_stalled* at once, before the
    send is interrupted: some servers (hypercorn) shield their socket writes
    from cancellation, and the watch and its slot must not wait for the
    client. ``None`` leaves the bound to the server (``k8swatch serve``
    resets such connections itself), and saves every idle stream a timer.

    *sent*, when given, is called with each batch once its chunk has been
    sent (metrics); *on_end* once the watch is stopped.
    """
    clock = _SendClock(send)
    listener = _Listener(receive, scope, clock, watch, send_timeout, on_stalled)
    try:
        if timeout is not None:
            scope.deadline = min(scope.deadline, anyio.current_time() + timeout)
        with scope:
            async with _Listening(listener):
                await clock(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"cache-control", b"no-cache, private"),
                            *headers,
                        ],
                    }
                )
                await _send_chunk(clock, b"")
                # The send loop, here rather than in a function of its own:
                # every idle watch would hold that function's frame too.
                try:
                    batches = watch.batches()
                    try:
                        async for batch in batches:
                            chunk, error = encode(batch)
                            await _send_chunk(clock, chunk)
                            if sent is not None:
                                sent(batch)
                            if error:
                                break
                    finally:
                        closer = getattr(batches, "aclose", None)
                        if closer is not None:
                            await closer()
                except StatusError as err:
                    await _send_chunk(clock, _error_line(err))
                except Exception as exc:
                    logger.exception("watch stream failed")
                    await _send_chunk(clock, _error_line(internal_error(exc)))
    finally:
        # Stopped only now, when the loop no longer waits on the watch: a
        # watcher stopped while it waits would wake the others parked with it.
        watch.stop()
        if on_end is not None:
            on_end()
    if not listener.left and not clock.stalled:
        # The listener is gone: this last send gets a timer of its own.
        with anyio.move_on_after(send_timeout) as last:
            await clock({"type": "http.response.body", "body": b"", "more_body": False})
        if send_timeout is not None and last.cancelled_caught:
            _stalled(clock, send_timeout)


def _stalled(clock: _SendClock, send_timeout: float) -> None:
    clock.stalled = True
    logger.info("ending a watch stream: its client took no data for %gs", send_timeout)


async def _send_chunk(send: Send, body: bytes) -> None:
    """Send one chunk of the watch response."""
    await send({"type": "http.response.body", "body": body, "more_body": True})
