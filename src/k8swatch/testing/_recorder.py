"""Record the events of a watch in the background and wait for them in tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from typing_extensions import Self, final

from k8swatch._events import Event, EventType
from k8swatch._watch import Watch

__all__ = ["EventRecorder"]

T = TypeVar("T")


def _metadata(obj: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get("metadata") or {}  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return getattr(obj, "metadata", None)


def _field(obj: Any, name: str) -> Any:
    metadata = _metadata(obj)
    if isinstance(metadata, dict):
        return metadata.get(name)  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return getattr(metadata, name, None)


@final
class EventRecorder(Generic[T]):
    """Collect every event of a [`Watch`][k8swatch.Watch] from a background task.

    Use it as ``async with EventRecorder(watch) as recorder:``; the block runs
    a task (asyncio or trio) that appends each event to
    [`events`][k8swatch.testing.EventRecorder.events] until the watch ends.
    Leaving the block stops the watch and waits for the task, so nothing
    outlives the test.

    ```python
    async with EventRecorder(await storage.watch("default", options)) as rec:
        await storage.create("default", widget("a"))
        await rec.wait_for(1)
        assert rec.types() == ["ADDED"]
    ```

    Args:
        watch: The watch to record. The recorder owns it: it is stopped when
            the block exits.
    """

    def __init__(self, watch: Watch[T]) -> None:
        self.watch = watch
        self.events: list[Event[T]] = []
        """Every event received so far, in order."""
        self._changed: anyio.Event | None = None  # created in __aenter__ (needs a loop)
        self._ended = False
        self._failure: BaseException | None = None
        self._task_group: TaskGroup | None = None
        self._type_cursor = 0

    @property
    def ended(self) -> bool:
        """True once the watch stopped delivering events (it ended or was stopped)."""
        return self._ended

    def __len__(self) -> int:
        return len(self.events)

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("an EventRecorder can be entered only once")
        self._changed = anyio.Event()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.watch.stop()
        assert self._task_group is not None
        return await self._task_group.__aexit__(exc_type, exc, tb)

    async def _run(self) -> None:
        try:
            async for event in self.watch:
                self.events.append(event)
                self._notify()
        except Exception as exc:  # reported by wait_for / wait_ended
            self._failure = exc
        finally:
            self._ended = True
            self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        if changed is not None:
            changed.set()

    async def _wait_changed(self) -> None:
        if self._changed is None:
            raise RuntimeError("use the EventRecorder as `async with EventRecorder(watch):`")
        await self._changed.wait()

    def stop(self) -> None:
        """Stop the watch (idempotent); the recorder keeps what it received."""
        self.watch.stop()

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the watch failed: {self._failure!r}") from self._failure

    async def wait_for(
        self,
        condition: int | Callable[[Sequence[Event[T]]], bool],
        *,
        timeout: float = 10.0,
    ) -> list[Event[T]]:
        """Wait until *condition* holds and return a copy of the events so far.

        Args:
            condition: A number of events to wait for (at least that many
                recorded), or a predicate called with the recorded events.
            timeout: Seconds to wait before raising ``TimeoutError``.

        Raises:
            TimeoutError: The condition did not hold in time (the message lists
                what was recorded).
            RuntimeError: The watch ended (or failed) before the condition held.
        """
        check: Callable[[Sequence[Event[T]]], bool]
        if isinstance(condition, int):
            count = condition
            check = lambda events: len(events) >= count  # noqa: E731
        else:
            check = condition
        try:
            with anyio.fail_after(timeout):
                while not check(self.events):
                    self._check_failure()
                    if self._ended:
                        raise RuntimeError(
                            f"the watch ended before the condition held; got {self.describe()}"
                        )
                    await self._wait_changed()
        except TimeoutError:
            raise TimeoutError(
                f"timed out after {timeout} s waiting for events; got {self.describe()}"
            ) from None
        return list(self.events)

    async def wait_for_type(self, type: EventType | str, *, timeout: float = 10.0) -> Event[T]:
        """Wait for the next event of *type* not yet returned by this method and return it."""
        wanted = EventType(type)
        start = self._type_cursor

        def check(events: Sequence[Event[T]]) -> bool:
            return any(e.type is wanted for e in events[start:])

        events = await self.wait_for(check, timeout=timeout)
        index = next(i for i in range(start, len(events)) if events[i].type is wanted)
        self._type_cursor = index + 1
        return events[index]

    async def wait_ended(self, *, timeout: float = 10.0) -> list[Event[T]]:
        """Wait until the watch ends by itself; return every event it delivered.

        Raises:
            TimeoutError: The watch was still open after *timeout* seconds.
        """
        try:
            with anyio.fail_after(timeout):
                while not self._ended:
                    await self._wait_changed()
        except TimeoutError:
            raise TimeoutError(
                f"the watch did not end within {timeout} s; got {self.describe()}"
            ) from None
        self._check_failure()
        return list(self.events)

    async def settle(self, *, timeout: float = 1.0) -> list[Event[T]]:
        """Let every runnable task run, then return the events.

        Returns once every other task is blocked (``wait_all_tasks_blocked``),
        or after *timeout* seconds when that never happens: on asyncio, anyio
        checks every 0.1 s, and a task that ticks at the same period (uvicorn's
        server loop does) can stay in step with the check and look busy at
        every one of them.
        """
        await anyio.lowlevel.checkpoint()
        with anyio.move_on_after(timeout):
            await anyio.wait_all_tasks_blocked()
        return list(self.events)

    def types(self, *, bookmarks: bool = True) -> list[str]:
        """The event types recorded so far (``"ADDED"``, ...), optionally without bookmarks."""
        return [e.type.value for e in self.events if bookmarks or e.type is not EventType.BOOKMARK]

    def names(self, *, bookmarks: bool = False) -> list[str]:
        """``metadata.name`` of each recorded event (bookmarks left out unless asked)."""
        return [
            str(_field(e.object, "name"))
            for e in self.events
            if bookmarks or e.type is not EventType.BOOKMARK
        ]

    def pairs(self) -> list[tuple[str, str]]:
        """``(type, name)`` for each recorded non-bookmark event."""
        return [
            (e.type.value, str(_field(e.object, "name")))
            for e in self.events
            if e.type is not EventType.BOOKMARK
        ]

    def resource_versions(self, *, bookmarks: bool = False) -> list[str]:
        """``metadata.resourceVersion`` of each recorded event (bookmarks left out unless asked)."""
        return [
            str(_field(e.object, "resourceVersion"))
            for e in self.events
            if bookmarks or e.type is not EventType.BOOKMARK
        ]

    def of_type(self, type: EventType | str) -> list[Event[T]]:
        """The recorded events of one *type*."""
        wanted = EventType(type)
        return [e for e in self.events if e.type is wanted]

    def describe(self) -> str:
        """A short text listing the recorded events, for assertion messages."""
        parts = [
            f"{e.type.value} {_field(e.object, 'name') or ''}@{_field(e.object, 'resourceVersion')}"
            for e in self.events
        ]
        state = "ended" if self._ended else "open"
        return f"[{', '.join(parts)}] ({state})"
