"""ASGI type aliases (the subset of the ASGI 3 spec the server uses)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

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

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
