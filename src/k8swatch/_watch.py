"""The Watch protocol and the base class watch implementations share."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

from typing_extensions import Self

from ._events import Event

T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class Watch(Protocol[T_co]):
    """A stream of [`Event`][k8swatch.Event]s that can be stopped.

    * ``async for event in watch`` yields events until the watch is stopped or
      its source ends (then iteration raises ``StopAsyncIteration``).
    * ``stop()`` is synchronous, idempotent and safe from any task, also before
      the first event was read; a stopped watch releases what it held.
    * ``async with watch:`` stops it on exit.
    * ``batches()`` yields every event available at each wake-up as one list,
      so a consumer (such as the HTTP layer) can handle many events per step.
    """

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> Event[T_co]: ...

    def stop(self) -> None:
        """Stop the watch; iteration ends. Idempotent."""
        ...

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` was called or the source ended the watch."""
        ...

    def batches(self) -> AsyncIterator[Sequence[Event[T_co]]]:
        """Iterate over lists of events: everything available at each wake-up."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class WatchBase(abc.ABC, Watch[T_co]):
    """Convenience base for [`Watch`][k8swatch.Watch] implementations.

    Subclasses implement ``__anext__``, ``stop`` and ``stopped``; this class
    adds ``__aiter__``, ``async with`` and a default ``batches()`` that yields
    one event per batch (override it where a batch can be taken in one step).
    """

    __slots__ = ()

    def __aiter__(self) -> Self:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> Event[T_co]: ...

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the watch; iteration ends. Idempotent."""

    @property
    @abc.abstractmethod
    def stopped(self) -> bool:
        """True once ``stop()`` was called or the source ended the watch."""

    async def batches(self) -> AsyncIterator[Sequence[Event[T_co]]]:
        """Yield events in lists; this default yields one event per list."""
        while True:
            try:
                event = await self.__anext__()
            except StopAsyncIteration:
                return
            yield [event]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# STUB: filled by the foundation issue.
class StopAwareWatch(WatchBase[T_co]):
    """A watch stopped by a timeout, a done signal or its own stop()."""


def filter_watch(watch: Watch[T_co], f: object) -> Watch[T_co]:
    raise NotImplementedError


def stop_aware_watch(
    watch: Watch[T_co], *, timeout: float | None = None, done: object = None
) -> StopAwareWatch[T_co]:
    raise NotImplementedError
