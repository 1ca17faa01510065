"""Watch events: the (type, object) pairs every watch yields."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

T_co = TypeVar("T_co", covariant=True)


class EventType(str, enum.Enum):
    """The type of a watch event, exactly as it appears on the wire."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Event(Generic[T_co]):
    """One watch event.

    Events are shared between every watcher that receives them: treat the
    object as read-only.

    Attributes:
        type: What happened.
        object: The object after the change (the last state for ``DELETED``,
            a bookmark object for ``BOOKMARK``, a Status dict or
            [`Status`][k8swatch.Status] for ``ERROR``).
    """

    type: EventType
    object: T_co


FilterFunc = Callable[[Event[Any]], "Event[Any] | None"]
"""A watch filter: return the event (possibly transformed) to keep it, or None to drop it."""
