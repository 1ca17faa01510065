"""Watch wire format: one JSON object per line, encoded once per event."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._events import Event, EventType
from ._status import Status, StatusError

__all__ = ["encode_event", "encode_json", "event_to_dict"]


def _encode_std(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _select_encoder() -> Callable[[Any], bytes]:
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        return _encode_std

    def _encode_orjson(value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except TypeError:  # e.g. int beyond 64 bits: the stdlib copes
            return _encode_std(value)

    return _encode_orjson


encode_json: Callable[[Any], bytes] = _select_encoder()
"""Compact JSON encoding (orjson when installed, else the standard library)."""


def _object_json(obj: Any) -> Any:
    if isinstance(obj, Status):
        return obj.to_dict()
    if isinstance(obj, StatusError):
        return obj.status.to_dict()
    return obj


def event_to_dict(event: Event[Any]) -> dict[str, Any]:
    """Return the WatchEvent JSON object ``{"type": ..., "object": ...}`` for *event*."""
    kind = event.type.value if isinstance(event.type, EventType) else str(event.type)
    return {"type": kind, "object": _object_json(event.object)}


def encode_event(event: Event[Any]) -> bytes:
    """Encode *event* as one line of a JSON watch stream (ending in ``\\n``).

    The object must be JSON-serialisable (a dict) or a
    [`Status`][k8swatch.Status]. Encode an event once and share the bytes with
    every watcher that receives it.
    """
    return encode_json(event_to_dict(event)) + b"\n"
