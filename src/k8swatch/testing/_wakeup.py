"""Wait for state that another thread (and event loop) may change.

[`serve_app`][k8swatch.testing.serve_app] runs the app in its own thread and
event loop while the test waits in another, and an anyio ``Event`` belongs to
one loop: it cannot be set from a foreign thread. So a waiter is woken at once
by a change made in its own thread (the in-process
[`ASGIClient`][k8swatch.testing.ASGIClient] case) and checks again every few
milliseconds for changes made elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio

__all__ = ["Wakeup"]

_POLL_INTERVAL = 0.01


class Wakeup:
    """Wakes tasks of any thread that wait for a condition to hold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, anyio.Event]] = []

    def notify(self) -> None:
        """Wake the waiters of the calling thread; the others see the change on their next poll."""
        me = threading.get_ident()
        with self._lock:
            for thread, event in self._waiters:
                if thread == me:
                    event.set()

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` is true (checked after each wake-up)."""
        while not ready():
            entry = (threading.get_ident(), anyio.Event())
            with self._lock:
                self._waiters.append(entry)
            try:
                if ready():
                    return
                with anyio.move_on_after(_POLL_INTERVAL):
                    await entry[1].wait()
            finally:
                with self._lock:
                    self._waiters.remove(entry)
