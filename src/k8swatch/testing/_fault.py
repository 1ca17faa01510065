"""What goes wrong: one injected fault, as an immutable value."""

from __future__ import annotations

from typing import Literal

import attrs
from typing_extensions import Self, final

from k8swatch._status import Status, StatusDetails, expired

__all__ = ["Fault", "FaultKind"]

FaultKind = Literal["status", "expired", "drop", "stall", "latency"]

# The reason kube-apiserver gives each code, and a generic message in the
# manner of client-go's (what a client shows when the server says nothing more).
_REASONS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: (
        "NotAcceptable",
        "the server was unable to respond with a content type that the client supports",
    ),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Gone", "the requested resource is no longer available"),
    413: ("RequestEntityTooLarge", "the server has rejected the request because it is too large"),
    415: ("UnsupportedMediaType", "the server does not support the content type of the request"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, "
        "but may still be processing the request",
    ),
}


def _status_for(code: int, message: str | None, retry_after: int | None) -> Status:
    reason, default_message = _REASONS.get(
        code, ("InternalError" if code >= 500 else "", f"injected fault: HTTP {code}")
    )
    details = StatusDetails(retry_after_seconds=retry_after) if retry_after else None
    return Status(
        code=code,
        reason=reason,
        message=default_message if message is None else message,
        details=details,
    )


@final
@attrs.frozen
class Fault:
    """One misbehaviour of the server, injected in place of (or around) the app's answer.

    Build faults with the classmethods ([`status`][k8swatch.testing.Fault.status],
    [`expired`][k8swatch.testing.Fault.expired], [`drop`][k8swatch.testing.Fault.drop],
    [`stall`][k8swatch.testing.Fault.stall], [`latency`][k8swatch.testing.Fault.latency])
    and add them to [`Faults`][k8swatch.testing.Faults] with the requests they apply to.

    Attributes:
        kind: What happens: ``status``, ``expired``, ``drop``, ``stall`` or ``latency``.
        error: The Status answered (``status`` and ``expired``), else None.
        after: Watch events let through before a ``drop``.
        cut: A ``drop`` cuts the connection instead of ending the body cleanly.
        seconds: The delay of a ``latency`` fault.
    """

    kind: FaultKind
    error: Status | None = None
    after: int = 0
    cut: bool = False
    seconds: float = 0.0

    @classmethod
    def status(
        cls, code: int, message: str | None = None, *, retry_after: int | None = None
    ) -> Self:
        """Answer with HTTP *code* and a Kubernetes ``Status`` body, without calling the app.

        The reason is the one kube-apiserver gives *code* (500 ``InternalError``,
        503 ``ServiceUnavailable``, 429 ``TooManyRequests``...). A watch request
        gets the error before its stream starts, as from a real apiserver.

        Args:
            code: The HTTP status code, 400 to 599.
            message: The Status message; defaults to client-go's wording for *code*.
            retry_after: Seconds sent as ``Retry-After`` and
                ``details.retryAfterSeconds``; 429 defaults to 1.

        Returns:
            The fault.

        Raises:
            ValueError: *code* is not an error code.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"code must be an HTTP error code (400 to 599), not {code}")
        if retry_after is None and code == 429:
            retry_after = 1
        return cls("status", error=_status_for(code, message, retry_after))

    @classmethod
    def expired(cls, message: str | None = None) -> Self:
        """Answer 410 ``Expired``, as when the requested resourceVersion is too old.

        A watch gets a 200 stream whose only event is an ``ERROR`` carrying the
        410 Status, then the stream ends: exactly how kube-apiserver ends a
        watch it cannot resume, so clients relist. Any other request gets an
        HTTP 410 with the Status.

        Args:
            message: The Status message; defaults to
                ``too old resource version: <requested> (<requested + 1>)``.

        Returns:
            The fault.
        """
        error = None if message is None else expired(message).status
        return cls("expired", error=error)

    @classmethod
    def drop(cls, after: int = 0, *, cut: bool = False) -> Self:
        """Let the app answer, then end its body after *after* watch events.

        Events are the lines of the body: a watch is ended early, as when a
        load balancer or the apiserver closes it. By default the body ends
        cleanly (the client sees a normal end of stream); with *cut* the
        connection is cut without finishing the chunked body (the client sees
        a broken response).

        Args:
            after: Events let through before the end (0 ends right after the headers).
            cut: Cut the connection instead of ending the body.

        Returns:
            The fault.

        Raises:
            ValueError: *after* is negative.
        """
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        return cls("drop", after=after, cut=cut)

    @classmethod
    def stall(cls) -> Self:
        """Hold the request until the client gives up or the test releases it.

        A watch gets its 200 headers and then nothing; on
        [`Faults.release()`][k8swatch.testing.Faults.release] its body ends
        (as a watch that timed out with no events). Any other request gets no
        answer at all until released, then the app answers it.

        Returns:
            The fault.
        """
        return cls("stall")

    @classmethod
    def latency(cls, seconds: float) -> Self:
        """Wait *seconds* before the app sees the request, then let it answer.

        Args:
            seconds: The delay.

        Returns:
            The fault.

        Raises:
            ValueError: *seconds* is negative.
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, not {seconds}")
        return cls("latency", seconds=seconds)

    def describe(self) -> str:
        """A short description, e.g. ``503 ServiceUnavailable`` or ``drop after 2 events``."""
        if self.kind == "status" and self.error is not None:
            return f"{self.error.code} {self.error.reason}".rstrip()
        if self.kind == "expired":
            return "410 Expired"
        if self.kind == "drop":
            verb = "cut" if self.cut else "drop"
            return f"{verb} after {self.after} event{'' if self.after == 1 else 's'}"
        if self.kind == "latency":
            return f"latency {self.seconds:g}s"
        return self.kind
