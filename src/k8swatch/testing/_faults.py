"""Which requests get which fault: rules with criteria and a count of uses."""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs
from typing_extensions import final

from ._fault import Fault
from ._requestlog import PathPattern, RecordedRequest, RequestCriteria
from ._wakeup import Wakeup

__all__ = ["FaultRule", "Faults"]


@final
@attrs.define(eq=False)
class FaultRule:
    """A fault and the requests it applies to, from [`Faults.add()`][k8swatch.testing.Faults.add].

    Attributes:
        fault: The fault injected.
        method: The HTTP method matched (None: any).
        path: The path matched (None: any); see [`PathPattern`][k8swatch.testing.PathPattern].
        watch: True for watches only, False for the other requests, None for both.
        where: A predicate a request must satisfy, or None.
        times: How many requests get the fault; None for every matching request.
        hits: How many requests got it so far.
    """

    fault: Fault
    method: str | None = None
    path: PathPattern | None = None
    watch: bool | None = None
    where: Callable[[RecordedRequest], bool] | None = None
    times: int | None = 1
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        """True once the rule was used *times* times."""
        return self.times is not None and self.hits >= self.times

    def matches(self, request: RecordedRequest) -> bool:
        """Whether *request* meets the rule's criteria (uses left or not)."""
        return RequestCriteria(self.method, self.path, self.watch, self.where).matches(request)


@final
class Faults:
    """The faults to inject, tried in the order they were added.

    Each request gets the fault of the first rule that matches it and has uses
    left, or none. Safe to change from any thread while the app runs in
    another (as under [`serve_app`][k8swatch.testing.serve_app]).

    ```python
    faults.add(Fault.status(503), "GET", "/apis/example.com/v1/widgets", times=2)
    faults.add(Fault.expired(), watch=True)  # the next watch, whatever its path
    ```
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._held: list[RecordedRequest] = []
        self._wakeup = Wakeup()

    def add(
        self,
        fault: Fault,
        method: str | None = None,
        path: PathPattern | None = None,
        *,
        watch: bool | None = None,
        where: Callable[[RecordedRequest], bool] | None = None,
        times: int | None = 1,
    ) -> FaultRule:
        """Inject *fault* into the next *times* requests that match.

        Args:
            fault: The fault.
            method: The HTTP method, any case (None: any).
            path: The path: exact, a glob or a compiled regular expression (None: any).
            watch: True for watches only, False for the other requests (None: both).
            where: A predicate on the [`RecordedRequest`][k8swatch.testing.RecordedRequest].
            times: How many requests get the fault: 1 (the default) for the next
                one only, None for every matching request from now on.

        Returns:
            The rule; its ``hits`` count the requests that got the fault.

        Raises:
            ValueError: *times* is less than 1.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None (every request), not {times}")
        rule = FaultRule(
            fault,
            None if method is None else method.upper(),
            path,
            watch,
            where,
            times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    @property
    def rules(self) -> list[FaultRule]:
        """The rules, in order (used-up rules included)."""
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        """Remove every rule and release every held request."""
        with self._lock:
            self._rules.clear()
        self.release()

    def take(self, request: RecordedRequest) -> Fault | None:
        """The fault for *request*, counting one use of its rule (the app calls this).

        A stall holds *request* until [`release()`][k8swatch.testing.Faults.release].

        Args:
            request: The request just received.

        Returns:
            The fault to inject, or None to let the app answer.
        """
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(request):
                    rule.hits += 1
                    if rule.fault.kind == "stall":
                        self._held.append(request)
                    return rule.fault
        return None

    @property
    def held(self) -> int:
        """How many stalled requests wait for [`release()`][k8swatch.testing.Faults.release]."""
        with self._lock:
            return len(self._held)

    def release(self) -> None:
        """Let every request stalled so far go on (later stalls still hold)."""
        with self._lock:
            self._held.clear()
        self._wakeup.notify()

    def is_held(self, request: RecordedRequest) -> bool:
        """Whether *request* is stalled and not released yet."""
        with self._lock:
            return any(held is request for held in self._held)

    async def wait_released(self, request: RecordedRequest) -> None:
        """Return once *request* is no longer held (the app calls this for a stall)."""
        await self._wakeup.wait_until(lambda: not self.is_held(request))

    def forget(self, request: RecordedRequest) -> None:
        """Stop holding *request*, e.g. because its client went away."""
        with self._lock:
            self._held = [held for held in self._held if held is not request]
