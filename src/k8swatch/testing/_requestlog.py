"""The requests a client sent: recorded values, the log, and what to look for in it."""

from __future__ import annotations

import fnmatch
import json as _json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias
from urllib.parse import parse_qs

import anyio
import attrs
from typing_extensions import final

from ._fault import Fault
from ._wakeup import Wakeup

__all__ = ["PathPattern", "RecordedRequest", "RequestCriteria", "RequestLog", "is_watch"]

PathPattern: TypeAlias = str | re.Pattern[str]
"""An exact path, a glob (``*``, ``?``, ``[...]``; ``*`` also matches ``/``) or a
compiled regular expression (searched, so anchor it with ``^``/``$`` as needed)."""

_GLOB_CHARS = frozenset("*?[")


def _parse_bool(value: str) -> bool:
    # The apiserver's query boolean: only "0" and "false" are false.
    return not (value == "0" or value.lower() == "false")


def is_watch(path: str, query: Mapping[str, list[str]]) -> bool:
    """Whether kube-apiserver would serve *path* with *query* as a watch."""
    values = query.get("watch")
    if values and _parse_bool(values[0]):
        return True
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        return parts[2:3] == ["watch"]
    return parts[:1] == ["apis"] and parts[3:4] == ["watch"]


@final
@attrs.define(eq=False)
class RecordedRequest:
    """One request as the app received it, and how it was answered.

    Attributes:
        method: The HTTP method, upper case.
        path: The URL path, without the query.
        query_string: The raw query string (no leading ``?``).
        query: The query parsed into lists of values (blank values kept).
        headers: The headers, names lower case, in the order sent.
        body: The request body.
        watch: Whether the request is a watch (``?watch=true`` or a ``/watch/`` path).
        status: The response status once the response started, else None.
        fault: The [`Fault`][k8swatch.testing.Fault] injected into this
            request, or None if the app answered it untouched.
    """

    method: str
    path: str
    query_string: str = ""
    query: dict[str, list[str]] = attrs.field(factory=dict[str, list[str]])
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    watch: bool = False
    status: int | None = None
    fault: Fault | None = None

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any], body: bytes = b"") -> RecordedRequest:
        """Record an ASGI ``http`` request *scope* with its *body*.

        Args:
            scope: The ASGI connection scope.
            body: The whole request body.

        Returns:
            The recorded request (no status yet).
        """
        query_string = bytes(scope.get("query_string", b"")).decode("latin-1")
        query = parse_qs(query_string, keep_blank_values=True)
        path = str(scope["path"])
        return cls(
            method=str(scope["method"]).upper(),
            path=path,
            query_string=query_string,
            query=query,
            headers=tuple(
                (bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                for k, v in scope.get("headers", ())
            ),
            body=body,
            watch=is_watch(path, query),
        )

    def header(self, name: str) -> str | None:
        """The first value of header *name* (any case), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key == lowered), None)

    def param(self, name: str) -> str | None:
        """The first value of query parameter *name*, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def user_agent(self) -> str:
        """The ``User-Agent`` header, or ``""``."""
        return self.header("user-agent") or ""

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            ValueError: The body is not JSON.
        """
        return _json.loads(self.body)

    def describe(self) -> str:
        """One line: method, path and query, status and fault, e.g. ``GET /api?watch=1 -> 200``."""
        target = f"{self.path}?{self.query_string}" if self.query_string else self.path
        status = "..." if self.status is None else str(self.status)
        fault = f" [fault: {self.fault.describe()}]" if self.fault is not None else ""
        return f"{self.method} {target} -> {status}{fault}"


def _path_matches(pattern: PathPattern, path: str) -> bool:
    if isinstance(pattern, re.Pattern):
        return pattern.search(path) is not None
    if _GLOB_CHARS.intersection(pattern):
        return fnmatch.fnmatchcase(path, pattern)
    return path == pattern


def _upper_or_none(method: str | None) -> str | None:
    return None if method is None else method.upper()


@attrs.frozen
class RequestCriteria:
    """What a request must look like to match; None matches anything."""

    method: str | None = attrs.field(default=None, converter=_upper_or_none)
    path: PathPattern | None = None
    watch: bool | None = None
    where: Callable[[RecordedRequest], bool] | None = None

    def matches(self, request: RecordedRequest) -> bool:
        """Whether *request* meets every criterion."""
        return (
            (self.method is None or request.method == self.method)
            and (self.path is None or _path_matches(self.path, request.path))
            and (self.watch is None or request.watch == self.watch)
            and (self.where is None or bool(self.where(request)))
        )

    def describe(self) -> str:
        """The criteria in words, e.g. ``GET /api/v1/pods (watch)``."""
        path = self.path.pattern if isinstance(self.path, re.Pattern) else self.path
        words = [self.method or "any method", path or "any path"]
        if self.watch is not None:
            words.append("(watch)" if self.watch else "(not a watch)")
        if self.where is not None:
            words.append(f"where {getattr(self.where, '__name__', 'a predicate')}")
        return " ".join(words)


@final
class RequestLog:
    """Every request an [`InstrumentedApp`][k8swatch.testing.InstrumentedApp] received, in order.

    Safe to read from any thread while the app records from another (as under
    [`serve_app`][k8swatch.testing.serve_app]). Each request is recorded when
    its body has arrived, before the app answers it; its ``status`` is filled
    in when the response starts.

    Every query method takes the same criteria, all optional: *method* (any
    case), *path* (a [`PathPattern`][k8swatch.testing.PathPattern]), *watch*
    (True or False to tell watches from the rest) and *where* (a predicate on
    the [`RecordedRequest`][k8swatch.testing.RecordedRequest]).

    ```python
    log.assert_requested("GET", "/apis/example.com/v1/namespaces/*/widgets", watch=True)
    (relist,) = log.find("GET", watch=False, where=lambda r: r.param("limit") == "500")
    ```
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._wakeup = Wakeup()

    def append(self, request: RecordedRequest) -> None:
        """Record *request* (the app calls this) and wake the waiting tasks."""
        with self._lock:
            self._requests.append(request)
        self._wakeup.notify()

    def clear(self) -> None:
        """Forget every request recorded so far."""
        with self._lock:
            self._requests.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)

    def __iter__(self) -> Iterator[RecordedRequest]:
        with self._lock:
            return iter(list(self._requests))

    def __getitem__(self, index: int) -> RecordedRequest:
        with self._lock:
            return self._requests[index]

    def find(
        self,
        method: str | None = None,
        path: PathPattern | None = None,
        *,
        watch: bool | None = None,
        where: Callable[[RecordedRequest], bool] | None = None,
    ) -> list[RecordedRequest]:
        """The recorded requests that match, in order.

        Args:
            method: The HTTP method, any case.
            path: The path: exact, a glob or a compiled regular expression.
            watch: True for watches only, False for the other requests.
            where: A predicate the request must satisfy.

        Returns:
            The matching requests (maybe none).
        """
        criteria = RequestCriteria(method, path, watch, where)
        return [request for request in self if criteria.matches(request)]

    def describe(self) -> str:
        """Every recorded request, one line each (see
        [`RecordedRequest.describe()`][k8swatch.testing.RecordedRequest.describe])."""
        requests = list(self)
        if not requests:
            return "no requests"
        lines = [f"{len(requests)} request{'' if len(requests) == 1 else 's'}:"]
        lines += [f"  {request.describe()}" for request in requests]
        return "\n".join(lines)

    def assert_requested(
        self,
        method: str | None = None,
        path: PathPattern | None = None,
        *,
        watch: bool | None = None,
        where: Callable[[RecordedRequest], bool] | None = None,
        times: int | None = None,
    ) -> list[RecordedRequest]:
        """Check that matching requests were made: at least one, or exactly *times*.

        Args:
            method: The HTTP method, any case.
            path: The path: exact, a glob or a compiled regular expression.
            watch: True for watches only, False for the other requests.
            where: A predicate the request must satisfy.
            times: The exact number of matching requests expected.

        Returns:
            The matching requests.

        Raises:
            AssertionError: Too few or too many matched; the message lists
                every request that was made.
        """
        criteria = RequestCriteria(method, path, watch, where)
        found = [request for request in self if criteria.matches(request)]
        if (not found) if times is None else len(found) != times:
            wanted = "a request" if times is None else f"{times} request(s)"
            raise AssertionError(
                f"expected {wanted} matching {criteria.describe()}, found {len(found)}; "
                f"got {self.describe()}"
            )
        return found

    def assert_not_requested(
        self,
        method: str | None = None,
        path: PathPattern | None = None,
        *,
        watch: bool | None = None,
        where: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        """Check that no recorded request matches.

        Args:
            method: The HTTP method, any case.
            path: The path: exact, a glob or a compiled regular expression.
            watch: True for watches only, False for the other requests.
            where: A predicate the request must satisfy.

        Raises:
            AssertionError: A request matched; the message lists every request.
        """
        self.assert_requested(method, path, watch=watch, where=where, times=0)

    async def wait_for(
        self,
        method: str | None = None,
        path: PathPattern | None = None,
        *,
        watch: bool | None = None,
        where: Callable[[RecordedRequest], bool] | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[RecordedRequest]:
        """Wait until *count* requests match, e.g. made by a client in another task or thread.

        Args:
            method: The HTTP method, any case.
            path: The path: exact, a glob or a compiled regular expression.
            watch: True for watches only, False for the other requests.
            where: A predicate the request must satisfy.
            count: How many matching requests to wait for.
            timeout: Seconds to wait.

        Returns:
            The matching requests (at least *count*).

        Raises:
            TimeoutError: Fewer matched within *timeout*; the message lists every request.
        """
        criteria = RequestCriteria(method, path, watch, where)
        found: list[RecordedRequest] = []

        def enough() -> bool:
            found[:] = [request for request in self if criteria.matches(request)]
            return len(found) >= count

        with anyio.move_on_after(timeout):
            await self._wakeup.wait_until(enough)
            return found
        raise TimeoutError(
            f"waited {timeout:g}s for {count} request(s) matching {criteria.describe()}, "
            f"found {len(found)}; got {self.describe()}"
        )
