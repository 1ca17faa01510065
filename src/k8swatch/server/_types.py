"""ASGI type aliases (the subset of the ASGI 3 spec the server uses)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias, cast

from k8swatch._json import JSONObject

Scope: TypeAlias = MutableMapping[str, Any]
"""The ASGI connection scope."""

Message: TypeAlias = MutableMapping[str, Any]
"""One ASGI event, sent or received."""

Receive: TypeAlias = Callable[[], Awaitable[Message]]
"""The ASGI ``receive`` callable."""

Send: TypeAlias = Callable[[Message], Awaitable[None]]
"""The ASGI ``send`` callable."""

ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application."""


def as_object(value: object) -> JSONObject | None:
    """*value* as a JSON object if it is a dict, else None."""
    return cast(JSONObject, value) if isinstance(value, dict) else None


def metadata_of(obj: object) -> JSONObject:
    """The ``metadata`` dict of *obj* ({} when missing or not a dict)."""
    found = as_object(obj)
    return (as_object(found.get("metadata")) or {}) if found is not None else {}


__all__ = [
    "ASGIApp",
    "JSONObject",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "as_object",
    "metadata_of",
]
