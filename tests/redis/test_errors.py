"""Redis failures become Statuses that name no host, port or exception text."""

from __future__ import annotations

import logging

import pytest
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import ResponseError

from k8swatch.redis._errors import status_error_for


def test_unreachable_redis_is_a_503_without_its_address(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="k8swatch.redis"):
        err = status_error_for(RedisConnectionError("Error 111 connecting to 10.1.2.3:6379"))
    assert err.status.code == 503
    assert err.status.message == "the Redis event log is unavailable; try again later"
    assert "10.1.2.3:6379" in caplog.text


def test_other_redis_errors_are_a_500_with_an_error_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="k8swatch.errors"):
        err = status_error_for(ResponseError("WRONGTYPE secret-key-name"))
    assert err.status.code == 500
    assert "secret-key-name" not in err.status.message
    assert "error id" in err.status.message
    assert "secret-key-name" in caplog.text
