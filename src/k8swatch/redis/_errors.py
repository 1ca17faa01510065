"""Which Redis failures mean "Redis is unavailable" (503), and the conversion."""

from __future__ import annotations

from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import ReadOnlyError, RedisError

from k8swatch._status import StatusError, internal_error, service_unavailable

__all__ = ["REDIS_ERRORS", "UNAVAILABLE_ERRORS", "status_error_for"]

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,  # refused, reset, lost mid-reply, still loading the dataset
    ReadOnlyError,  # talking to a replica (e.g. during a failover)
    TimeoutError,
    OSError,
)
"""Failures that mean Redis cannot be reached right now: retrying later may work."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, RedisError)
"""Every failure a Redis call may raise."""


def status_error_for(exc: BaseException) -> StatusError:
    """Return the Status error a storage reports for the Redis failure *exc*.

    Unreachable Redis is 503 ServiceUnavailable (the client may retry); any
    other Redis error is a 500 InternalError.
    """
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return service_unavailable(f"the Redis event log is unavailable: {exc}")
    return internal_error(f"Redis: {exc}")
