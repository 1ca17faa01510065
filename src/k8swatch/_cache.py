"""WatchCache (STUB: filled by the watch cache issue)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class WatchCache(Generic[T]):
    """Current objects plus a window of recent events."""
