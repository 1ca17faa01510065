"""Warnings for the client: what a storage accepted but wants the client to know.

kube-apiserver answers some writes with ``Warning`` headers instead of failing
them (a deprecated field, a finalizer name that is not domain-qualified). A
storage does the same with `add_warning`: the serving layer collects the
warnings of each request (`collect_warnings`) and sends them as ``Warning:
299 - "<text>"`` headers, which kubectl and the client libraries print.
Outside a request nothing is collected and `add_warning` does nothing.

The collector lives in a `contextvars.ContextVar`, so it follows the request
through every ``await`` (and into tasks started from it) on asyncio and trio.
"""

from __future__ import annotations

import contextvars
from contextlib import AbstractContextManager

from typing_extensions import final

__all__ = ["add_warning", "collect_warnings"]

_collector: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "k8swatch_warnings", default=None
)


def add_warning(text: str) -> None:
    """Tell the client of the current request *text* (a ``Warning`` header).

    Repeated texts are sent once. Does nothing outside `collect_warnings`.
    """
    collected = _collector.get()
    if collected is not None and text not in collected:
        collected.append(text)


def collect_warnings() -> AbstractContextManager[list[str]]:
    """Collect the warnings `add_warning` adds inside the block, in order.

    ```python
    with collect_warnings() as warnings:
        obj = await storage.update(namespace, name, obj)
    headers = [("warning", f'299 - "{text}"') for text in warnings]
    ```
    """
    return _Collecting()


@final
class _Collecting:
    """`collect_warnings`'s context manager (a class: every request, idle watches too, has one)."""

    __slots__ = ("_collected", "_token")

    def __enter__(self) -> list[str]:
        self._collected: list[str] = []
        self._token = _collector.set(self._collected)
        return self._collected

    def __exit__(self, *exc_info: object) -> None:
        _collector.reset(self._token)
