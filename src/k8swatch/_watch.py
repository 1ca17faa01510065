"""The Watch protocol, its base class, filter_watch and stop_aware_watch.

Besides the public protocol, this module defines a private fast path shared by
the watches k8swatch implements (`_PollableWatch`): a non-blocking ``_poll()``
/ ``_poll_batch()``, a ``_wait_readable(deadline)`` that waits for the
source's shared wake-up (or a deadline), and ``_park(scope)`` which asks the
source to cancel a cancel scope as soon as something can be read.
``StopAwareWatch`` waits for "new events *or* timeout *or* stop" with
``_wait_readable`` and, when it has a *done* signal, for "... *or* done" with
``_park``, in the iterating task itself, with no helper task. Watches without
the fast path still work: they are driven through their public
``__anext__``/``batches()``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import anyio
from anyio.lowlevel import checkpoint_if_cancelled
from typing_extensions import Self, final

from ._events import Event, FilterFunc

__all__ = ["StopAwareWatch", "Watch", "WatchBase", "filter_watch", "stop_aware_watch"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Buffered events handed out before ``async for`` checks for cancellation
#: again; every wait is a full checkpoint.
CHECK_EVERY = 64


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

    __slots__ = ()

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

    def batches(self) -> AsyncIterator[Sequence[Event[T_co]]]:
        """Yield events in lists; this default yields one event per list.

        The iterator is a plain object (not an async generator), so abandoning
        it needs no ``aclose()``.
        """
        return _OneByOne(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@final
class _OneByOne(Generic[T_co]):
    """``WatchBase.batches()``: each event of the watch as a one-item list."""

    __slots__ = ("_watch",)

    def __init__(self, watch: Watch[T_co]) -> None:
        self._watch = watch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Sequence[Event[T_co]]:
        return [await self._watch.__anext__()]

    async def aclose(self) -> None:
        """Nothing to release; stop the watch itself with ``stop()``."""


class _PollableWatch(WatchBase[T_co]):
    """A watch with the private non-blocking fast path (see the module docstring)."""

    __slots__ = ()

    @abc.abstractmethod
    def _poll(self) -> Event[T_co] | None:
        """Return the next event, or None when one has to wait.

        Raises:
            StopAsyncIteration: the watch has ended.
        """

    @abc.abstractmethod
    def _poll_batch(self) -> Sequence[Event[T_co]] | None:
        """Return every available event (never empty), or None when one has to wait.

        Raises:
            StopAsyncIteration: the watch has ended.
        """

    @abc.abstractmethod
    async def _wait_readable(self, deadline: float = math.inf) -> None:
        """Wait until ``_poll`` may return something or raise, or until *deadline*.

        A checkpoint; *deadline* is on anyio's clock (``anyio.current_time()``).
        """

    @abc.abstractmethod
    def _park(self, scope: anyio.CancelScope) -> None:
        """Cancel *scope* once ``_poll`` may return something (at once if it can now)."""

    @abc.abstractmethod
    def _unpark(self, scope: anyio.CancelScope) -> None:
        """Forget a scope given to ``_park`` (it was cancelled or is no longer needed)."""

    def _can_poll(self) -> bool:
        """Whether the fast path may be used (a wrapper may decline)."""
        return True

    async def _poll_or_wait(self) -> Event[T_co]:
        """Poll until there is an event, waiting for the wake-up in between.

        Raises:
            StopAsyncIteration: the watch has ended.
        """
        while True:
            event = self._poll()
            if event is not None:
                return event
            await self._wait_readable()

    def _ready(self) -> bool:
        """Whether ``_poll`` would return without waiting (True when unsure)."""
        return True

    def batches(self) -> AsyncIterator[Sequence[Event[T_co]]]:
        """Iterate over every event available at each wake-up, as one list."""
        return _PollBatches(self)


@final
class _PollBatches(Generic[T_co]):
    """``batches()`` of a pollable watch; each step is a cancellation point."""

    __slots__ = ("_watch",)

    def __init__(self, watch: _PollableWatch[T_co]) -> None:
        self._watch = watch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Sequence[Event[T_co]]:
        watch = self._watch
        if watch._ready():
            await checkpoint_if_cancelled()
        else:  # nothing to poll yet: wait first (the wait is the checkpoint)
            await watch._wait_readable()
        while True:
            batch = watch._poll_batch()
            if batch is not None:
                return batch
            await watch._wait_readable()

    async def aclose(self) -> None:
        """Nothing to release; stop the watch itself with ``stop()``."""


# --- filter_watch ----------------------------------------------------------------


def filter_watch(watch: Watch[T], f: FilterFunc) -> Watch[T]:
    """Return a watch yielding ``f(event)`` for each event of *watch*, skipping None.

    *f* may drop an event (return None) or transform it (return another
    [`Event`][k8swatch.Event]). ``stop()`` stops *watch*; the filtered watch
    ends when *watch* ends. ``batches()`` is filtered too (batches that
    filter down to nothing are skipped). Exceptions raised by *f* propagate
    to the consumer.
    """
    if isinstance(watch, _PollableWatch) and _is_fast(watch):
        return _PollableFilterWatch(watch, f)
    return _FilterWatch(watch, f)


class _FilterWatch(WatchBase[T]):
    """``filter_watch`` over any watch, driven through its public API."""

    __slots__ = ("_filter", "_upstream")

    def __init__(self, upstream: Watch[T], f: FilterFunc) -> None:
        self._upstream = upstream
        self._filter = f

    def __repr__(self) -> str:
        return f"<filter_watch of {self._upstream!r}>"

    async def __anext__(self) -> Event[T]:
        """Return the next event *f* keeps.

        Raises:
            StopAsyncIteration: when the upstream watch ends.
        """
        f = self._filter
        while True:
            result: Event[T] | None = f(await self._upstream.__anext__())
            if result is not None:
                return result

    def stop(self) -> None:
        """Stop the upstream watch. Idempotent."""
        self._upstream.stop()

    @property
    def stopped(self) -> bool:
        """True once the upstream watch is stopped or has ended."""
        return self._upstream.stopped

    def batches(self) -> AsyncIterator[Sequence[Event[T]]]:
        """The upstream batches, filtered; empty batches are skipped."""
        return _FilteredBatches(self._upstream.batches(), self._filter)


@final
class _FilteredBatches(Generic[T]):
    __slots__ = ("_filter", "_it")

    def __init__(self, it: AsyncIterator[Sequence[Event[T]]], f: FilterFunc) -> None:
        self._it = it
        self._filter = f

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Sequence[Event[T]]:
        f = self._filter
        while True:
            batch = await self._it.__anext__()
            out: list[Event[T]] = [r for r in map(f, batch) if r is not None]
            if out:
                return out

    async def aclose(self) -> None:
        """Close the upstream batch iterator, if it can be closed."""
        closer: Callable[[], Awaitable[object]] | None = getattr(self._it, "aclose", None)
        if closer is not None:
            await closer()


class _PollableFilterWatch(_PollableWatch[T]):
    """``filter_watch`` over a pollable watch: keeps the fast path."""

    __slots__ = ("_budget", "_filter", "_upstream")

    def __init__(self, upstream: _PollableWatch[T], f: FilterFunc) -> None:
        self._upstream = upstream
        self._filter = f
        self._budget = CHECK_EVERY

    def __repr__(self) -> str:
        return f"<filter_watch of {self._upstream!r}>"

    async def __anext__(self) -> Event[T]:
        """Return the next event *f* keeps.

        Checks for cancellation whenever it waits and at least every 64
        buffered events.

        Raises:
            StopAsyncIteration: when the upstream watch ends.
        """
        self._budget -= 1
        if not self._budget:
            self._budget = CHECK_EVERY
            await checkpoint_if_cancelled()
        return await self._poll_or_wait()

    def stop(self) -> None:
        """Stop the upstream watch. Idempotent."""
        self._upstream.stop()

    @property
    def stopped(self) -> bool:
        """True once the upstream watch is stopped or has ended."""
        return self._upstream.stopped

    def _poll(self) -> Event[T] | None:
        upstream = self._upstream
        f = self._filter
        while True:
            event = upstream._poll()
            if event is None:
                return None
            result: Event[T] | None = f(event)
            if result is not None:
                return result

    def _poll_batch(self) -> Sequence[Event[T]] | None:
        upstream = self._upstream
        f = self._filter
        while True:
            batch = upstream._poll_batch()
            if batch is None:
                return None
            out: list[Event[T]] = [r for r in map(f, batch) if r is not None]
            if out:
                return out

    def _ready(self) -> bool:
        return self._upstream._ready()

    async def _wait_readable(self, deadline: float = math.inf) -> None:
        await self._upstream._wait_readable(deadline)

    def _park(self, scope: anyio.CancelScope) -> None:
        self._upstream._park(scope)

    def _unpark(self, scope: anyio.CancelScope) -> None:
        self._upstream._unpark(scope)


# --- stop_aware_watch ------------------------------------------------------------


class _Done(Protocol):
    """What *done* must offer: an awaitable ``wait()`` (``is_set()`` is optional)."""

    def wait(self) -> Awaitable[Any]:
        """Wait until the signal fires."""
        ...


@final
class StopAwareWatch(_PollableWatch[T_co]):
    """A watch that stops its inner watch on a timeout, a done signal or ``stop()``.

    The Python counterpart of the original ``stopAwareWatch``: the inner watch
    is stopped, and iteration ends, when

    * *timeout* seconds have passed since the wrapper was created,
    * *done* fires (e.g. the HTTP client disconnected): an ``anyio.Event`` or
      anything with an awaitable ``wait()``,
    * or ``stop()`` is called on this wrapper,

    and also when the inner watch ends by itself.

    No helper task watches these conditions, so nothing can outlive the watch.
    For k8swatch's own watches, without *done* the iterating task waits on
    the inner watch's wake-up with the deadline merged into the inner watch's
    timers (the cheapest wait: prefer calling ``stop()`` from wherever you
    would set *done*); with *done*, it awaits *done* in a cancel scope that
    the inner watch cancels as soon as it has events. Any other watch is
    raced against *done* with a short-lived task group around each wait.
    While events are buffered, *done* (when it has an ``is_set()``) is
    checked before every event and the clock at least every 64 events.

    Args:
        watch: The inner watch.
        timeout: Seconds until the watch ends; None for no timeout. The clock
            starts when the wrapper is created (or at its first use when it
            was created outside an event loop).
        done: A signal that ends the watch when it fires.
    """

    __slots__ = (
        "_batches",
        "_budget",
        "_deadline",
        "_done",
        "_done_fired",
        "_fast",
        "_inner",
        "_is_set",
        "_parked",
        "_scope",
        "_stopped",
        "_timeout",
    )

    def __init__(
        self, watch: Watch[T_co], *, timeout: float | None = None, done: _Done | None = None
    ) -> None:
        self._inner = watch
        self._timeout = timeout
        self._deadline = math.inf
        if timeout is not None:
            try:
                self._deadline = anyio.current_time() + timeout
            except RuntimeError:  # no event loop yet: start the clock on first use
                self._deadline = -math.inf
        self._done = done
        is_set: object = getattr(done, "is_set", None)
        self._is_set: Callable[[], object] | None = is_set if callable(is_set) else None
        self._done_fired = False
        self._fast = _is_fast(watch)
        self._scope: anyio.CancelScope | None = None  # our own wait
        self._parked: anyio.CancelScope | None = None  # an outer watch's wait
        self._stopped = False
        self._budget = CHECK_EVERY
        self._batches: AsyncIterator[Sequence[Event[T_co]]] | None = None

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "live"
        return f"<StopAwareWatch {state} of {self._inner!r}>"

    @property
    def inner(self) -> Watch[T_co]:
        """The wrapped watch."""
        return self._inner

    @property
    def stopped(self) -> bool:
        """True once this watch or its inner watch was stopped or ended."""
        return self._stopped or self._inner.stopped

    def stop(self) -> None:
        """Stop the inner watch and wake a pending iteration. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._done = None
        self._is_set = None
        self._inner.stop()
        for scope in (self._scope, self._parked):
            if scope is not None:
                scope.cancel()

    # --- the conditions ---------------------------------------------------------

    def _start_clock(self) -> None:
        """Start the timeout of a wrapper created outside an event loop."""
        if self._deadline == -math.inf:
            assert self._timeout is not None
            self._deadline = anyio.current_time() + self._timeout

    def _check(self, clock: bool) -> None:
        """Stop and raise StopAsyncIteration if a condition has been met."""
        if self._stopped:
            raise StopAsyncIteration
        if self._deadline == -math.inf:
            self._start_clock()
        if self._done_fired or (self._is_set is not None and self._is_set()):
            self.stop()
            raise StopAsyncIteration
        if clock and self._deadline != math.inf and anyio.current_time() >= self._deadline:
            self.stop()
            raise StopAsyncIteration

    def _tick(self) -> bool:
        """Count one event; True when the clock and cancellation are due."""
        self._budget -= 1
        if self._budget:
            return False
        self._budget = CHECK_EVERY
        return True

    async def _wait_fast(self, inner: _PollableWatch[T_co], deadline: float = math.inf) -> None:
        """Wait for events, *done*, the deadline or ``stop()``, in this task."""
        done = self._done
        if done is None:
            # Only the inner watch can wake us (``stop()`` stops it too): wait on
            # it directly, with our deadline merged into its own timers. Much
            # cheaper than a cancel scope of our own, let alone a cancellation.
            await inner._wait_readable(min(self._deadline, deadline))
            return
        with anyio.CancelScope(deadline=min(self._deadline, deadline)) as scope:
            self._scope = scope
            try:
                inner._park(scope)
                await done.wait()
                self._done_fired = True
            finally:
                inner._unpark(scope)
                self._scope = None

    async def _race(self, step: Callable[[], Awaitable[T]]) -> T | None:
        """Await *step* unless a condition ends the watch first (generic inner watch)."""
        done = self._done
        result: T | None = None
        with anyio.CancelScope(deadline=self._deadline) as scope:
            self._scope = scope
            try:
                if done is None:
                    result = await step()
                else:
                    error: Exception | None = None

                    async def watch_done() -> None:
                        await done.wait()
                        self._done_fired = True
                        scope.cancel()

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(watch_done)
                        try:
                            result = await step()
                        except Exception as exc:  # re-raised as is, not in a group
                            error = exc
                        tg.cancel_scope.cancel()
                    if error is not None:
                        raise error
            finally:
                self._scope = None
        return result

    # --- the fast path, for an outer watch (e.g. another StopAwareWatch) ------

    def _can_poll(self) -> bool:
        return self._fast and self._done is None

    def _poll(self) -> Event[T_co] | None:
        self._check(self._tick())
        assert isinstance(self._inner, _PollableWatch)
        try:
            return self._inner._poll()
        except StopAsyncIteration:
            self.stop()
            raise

    def _poll_batch(self) -> Sequence[Event[T_co]] | None:
        self._check(True)
        assert isinstance(self._inner, _PollableWatch)
        try:
            return self._inner._poll_batch()
        except StopAsyncIteration:
            self.stop()
            raise

    async def _wait_readable(self, deadline: float = math.inf) -> None:
        assert isinstance(self._inner, _PollableWatch)
        await self._wait_fast(self._inner, deadline)

    def _park(self, scope: anyio.CancelScope) -> None:
        self._start_clock()
        if self._stopped or self._deadline <= anyio.current_time():
            scope.cancel()
            return
        scope.deadline = min(scope.deadline, self._deadline)
        self._parked = scope
        assert isinstance(self._inner, _PollableWatch)
        self._inner._park(scope)

    def _unpark(self, scope: anyio.CancelScope) -> None:
        if self._parked is scope:
            self._parked = None
        assert isinstance(self._inner, _PollableWatch)
        self._inner._unpark(scope)

    # --- iteration --------------------------------------------------------------

    async def __anext__(self) -> Event[T_co]:
        """Return the next event of the inner watch.

        Raises:
            StopAsyncIteration: when the timeout passed, *done* fired, this
                watch was stopped, or the inner watch ended; the inner watch
                is stopped in every case.
        """
        clock = self._tick()
        if clock:
            await checkpoint_if_cancelled()
        inner = self._inner
        if self._fast:
            assert isinstance(inner, _PollableWatch)
            while True:
                self._check(clock)
                try:
                    event = inner._poll()
                except StopAsyncIteration:
                    self.stop()
                    raise
                if event is not None:
                    return event
                await self._wait_fast(inner)
                clock = True
        while True:
            self._check(True)
            try:
                result = await self._race(inner.__anext__)
            except StopAsyncIteration:
                self.stop()
                raise
            if result is not None:
                return result

    def batches(self) -> AsyncIterator[Sequence[Event[T_co]]]:
        """Iterate over every event available at each wake-up, as one list.

        Ends under the same conditions as ``async for``; each step is a
        cancellation point and checks the clock.
        """
        return _AwareBatches(self)

    async def _next_batch(self) -> Sequence[Event[T_co]]:
        await checkpoint_if_cancelled()
        inner = self._inner
        if self._fast:
            assert isinstance(inner, _PollableWatch)
            while True:
                self._check(True)
                try:
                    batch = inner._poll_batch()
                except StopAsyncIteration:
                    self.stop()
                    raise
                if batch is not None:
                    return batch
                await self._wait_fast(inner)
        if self._batches is None:
            self._batches = inner.batches()
        it = self._batches
        while True:
            self._check(True)
            try:
                result = await self._race(it.__anext__)
            except StopAsyncIteration:
                self.stop()
                raise
            if result is not None:
                return result


def _is_fast(watch: object) -> bool:
    """Whether *watch* offers the private fast path right now."""
    return isinstance(watch, _PollableWatch) and watch._can_poll()


@final
class _AwareBatches(Generic[T_co]):
    __slots__ = ("_watch",)

    def __init__(self, watch: StopAwareWatch[T_co]) -> None:
        self._watch = watch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Sequence[Event[T_co]]:
        return await self._watch._next_batch()

    async def aclose(self) -> None:
        """Close the inner watch's batch iterator, if one was opened."""
        it = self._watch._batches
        closer: Callable[[], Awaitable[object]] | None = getattr(it, "aclose", None)
        if closer is not None:
            await closer()


def stop_aware_watch(
    watch: Watch[T_co], *, timeout: float | None = None, done: _Done | None = None
) -> StopAwareWatch[T_co]:
    """Wrap *watch* so that it stops on a *timeout*, when *done* fires, or on ``stop()``.

    See [`StopAwareWatch`][k8swatch.StopAwareWatch]; the HTTP layer passes
    the request's ``timeoutSeconds`` and a disconnect event.

    Example:
        ```python
        disconnected = anyio.Event()
        async with stop_aware_watch(broadcaster.watch(), timeout=30, done=disconnected) as w:
            async for batch in w.batches():
                await send(b"".join(map(encode_event, batch)))
        ```
    """
    return StopAwareWatch(watch, timeout=timeout, done=done)
