"""Broadcaster (STUB: filled by the foundation issue)."""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

T = TypeVar("T")


class FullChannelBehavior(enum.Enum):
    """What the broadcaster does when a watcher is ``queue_length`` events behind."""

    WAIT_IF_FULL = "WaitIfChannelFull"
    DROP_IF_FULL = "DropIfChannelFull"
    TERMINATE_IF_FULL = "TerminateIfChannelFull"


class Broadcaster(Generic[T]):
    """Fan events out to watchers."""
