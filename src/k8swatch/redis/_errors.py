"""Which Redis failures mean "Redis is unavailable" (503), and the conversion."""

from __future__ import annotations

import logging

from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import ReadOnlyError, RedisError

from k8swatch._status import StatusError, internal_error, service_unavailable

__all__ = ["REDIS_ERRORS", "UNAVAILABLE_ERRORS", "status_error_for"]

_logger = logging.getLogger("k8swatch.redis")

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
    other Redis error is a 500 InternalError. Neither answer carries the
    exception's text (it can name hosts and ports): the 503 is logged to the
    ``k8swatch.redis`` logger, the 500 under its error id to ``k8swatch.errors``.
    """
    if isinstance(exc, UNAVAILABLE_ERRORS):
        _logger.warning("the Redis event log is unavailable: %s", exc)
        return service_unavailable("the Redis event log is unavailable; try again later")
    return internal_error(exc, context="a Redis event log call")
