"""Watermark: what one replica knows of its Redis data, to notice when Redis lost some."""

from __future__ import annotations

from collections.abc import Callable

import attrs

__all__ = ["Watermark"]


@attrs.define(eq=False)
class Watermark:
    """The data's identity and the highest RV this replica saw, shared by its logs on one prefix.

    The resourceVersion counter is shared by every resource of a prefix, so
    a loss found by one log concerns them all: `lost()` tells every log that
    subscribed.

    Attributes:
        epoch: The epoch (see `_scripts.CHECK`) this replica knows; ``""``
            before its first check.
        seen: The highest RV this replica saw written, read or handed out.
    """

    epoch: str = ""
    seen: int = 0
    _listeners: list[Callable[[int], None]] = attrs.field(
        init=False, factory=lambda: list[Callable[[int], None]]()
    )

    def observe(self, rv: int) -> None:
        """Remember *rv* if it is the highest seen so far."""
        if rv > self.seen:
            self.seen = rv

    def subscribe(self, on_lost: Callable[[int], None]) -> None:
        """Call *on_lost* with the re-seeded counter whenever a loss is found."""
        self._listeners.append(on_lost)

    def unsubscribe(self, on_lost: Callable[[int], None]) -> None:
        """Stop calling *on_lost* (no error when it was not subscribed)."""
        if on_lost in self._listeners:
            self._listeners.remove(on_lost)

    def lost(self, seed: int) -> None:
        """Record that Redis lost data and its counter now stands at *seed*; tell the logs."""
        self.observe(seed)
        for on_lost in list(self._listeners):
            on_lost(seed)
