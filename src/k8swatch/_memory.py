"""MemoryStorage (STUB: filled by the watch cache issue)."""

from __future__ import annotations


class MemoryStorage:
    """A generic in-memory storage on WatchCache."""
