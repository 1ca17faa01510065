"""What every response to a hostile request must satisfy, and the run's tally."""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._requests import Request

# Python internals that must never reach a client: a traceback, a frame, an
# exception class name. Kubernetes' own reasons (InternalError, ...) are fine.
_LEAKS = re.compile(
    rb"Traceback|File \"|\b(?:Key|Value|Type|Attribute|Recursion|Unicode(?:En|De)code|Index"
    rb"|Assertion|Runtime|JSONDecode|Overflow|ZeroDivision|NotImplemented|Lookup|OS|Connect"
    rb"|Read|Name|Import|Memory)Error\b|\bExceptionGroup\b|/api/v2/"
)


@dataclass
class Tally:
    """Requests sent and statuses seen per target, printed at the end of the run."""

    requests: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    # The first failure per target as generated, before hypothesis shrinks it:
    # on a stateful server the shrunk example may only show the aftermath.
    first_failure: dict[str, str] = field(default_factory=dict)

    def line(self, target: str) -> str:
        return (
            f"fuzz {target}: {self.requests[target]} requests, "
            f"{self.server_errors[target]} responses >= 500 "
            f"(statuses: {dict(sorted(self.statuses.get(target, Counter()).items()))})"
        )


TALLY = Tally()


@contextlib.contextmanager
def recording(target: str) -> Iterator[None]:
    """Note the first failure seen on *target* for the run's summary."""
    try:
        yield
    except AssertionError as exc:
        TALLY.first_failure.setdefault(target, str(exc))
        raise


def check_response(
    target: str, request: Request, status: int, content_type: str, body: bytes
) -> None:
    """Fail with the request and the response unless the response is sound."""
    TALLY.requests[target] += 1
    TALLY.statuses.setdefault(target, Counter())[status] += 1
    if status >= 500:
        TALLY.server_errors[target] += 1
    shown = f"{request!r}\n-> {status} {content_type} {body[:600]!r}"
    assert status < 500, f"server error:\n{shown}"
    if request.expected:
        assert status in request.expected, f"expected {request.expected}:\n{shown}"
    assert _LEAKS.search(body) is None, f"internals in the body:\n{shown}"
    if status >= 400 and request.method != "HEAD":
        try:
            status_object = json.loads(body)
        except ValueError:
            raise AssertionError(f"an error that is not a Status:\n{shown}") from None
        assert isinstance(status_object, dict), f"an error that is not a Status:\n{shown}"
        assert status_object.get("kind") == "Status", f"an error that is not a Status:\n{shown}"
        assert status_object.get("code") == status, f"Status code differs:\n{shown}"
