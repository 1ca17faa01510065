"""Watch streaming: encode-once event bytes and the chunked JSON-lines response."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from typing_extensions import final

from k8swatch._events import Event, EventType
from k8swatch._status import Status, StatusError, internal_error
from k8swatch._watch import Watch, stop_aware_watch
from k8swatch._wire import encode_event, encode_json

from ._resource import ResourceSpec
from ._table import build_table
from ._types import Receive, Send, as_object, metadata_of

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
    """

    __slots__ = ("_entries", "_maxsize", "encode_count")

    def __init__(self, maxsize: int = 4096) -> None:
        self._entries: dict[tuple[str, int, str], tuple[object, bytes, float]] = {}
        self._maxsize = maxsize
        self.encode_count: int = 0
        """How many events were actually encoded (cache misses)."""

    def encode(self, event: Event[Any], resource: ResourceSpec, fmt: str = FORMAT_JSON) -> bytes:
        """Return the JSON line for *event* in *fmt* (``json`` or a table format)."""
        obj = event.object
        key = (str(event.type), id(obj), fmt)
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


def _error_line(err: StatusError) -> bytes:
    return encode_event(Event(EventType.ERROR, err.status))


async def stream_watch(
    watch: Watch[Any],
    *,
    receive: Receive,
    send: Send,
    encode: Callable[[Event[Any]], bytes],
    timeout: float | None,
    done: anyio.Event,
    headers: Sequence[tuple[bytes, bytes]] = (),
    sent: Callable[[Sequence[Event[Any]]], None] | None = None,
) -> None:
    """Serve *watch* as a chunked ``application/json`` watch response.

    The body pump, a disconnect listener and a shutdown listener run in one
    task group: the watch stops at once when the client goes away (which also
    sets *done*) or when the app sets *done* (shutdown). They call ``stop()``
    rather than handing *done* to ``stop_aware_watch``, so the pump waits on
    the watch alone, the cheapest wait there is. Each batch from
    ``watch.batches()`` goes out in one ``send``.
    Errors raised while streaming become one ``ERROR`` event, then the stream
    ends, as kube-apiserver does. *sent*, when given, is called with each
    batch once it has been sent (metrics).
    """
    disconnected = False
    aware = stop_aware_watch(watch, timeout=timeout)
    await send(
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
    await send({"type": "http.response.body", "body": b"", "more_body": True})

    async def listen_for_disconnect() -> None:
        nonlocal disconnected
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        disconnected = True
        done.set()
        aware.stop()
        tg.cancel_scope.cancel()

    async def stop_on_shutdown() -> None:
        await done.wait()
        aware.stop()

    async def pump() -> None:
        try:
            batches = aware.batches()
            try:
                async for batch in batches:
                    chunk = b"".join([encode(event) for event in batch])
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    if sent is not None:
                        sent(batch)
                    if any(event.type is EventType.ERROR for event in batch):
                        break
            finally:
                closer = getattr(batches, "aclose", None)
                if closer is not None:
                    await closer()
        except StatusError as err:
            await send({"type": "http.response.body", "body": _error_line(err), "more_body": True})
        except Exception as exc:
            logger.exception("watch stream failed")
            await send(
                {
                    "type": "http.response.body",
                    "body": _error_line(internal_error(exc)),
                    "more_body": True,
                }
            )

    async with aware, anyio.create_task_group() as tg:
        tg.start_soon(listen_for_disconnect)
        tg.start_soon(stop_on_shutdown)
        await pump()
        tg.cancel_scope.cancel()
    if not disconnected:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
