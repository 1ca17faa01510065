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


@pytest.mark.redis
async def test_appends_that_succeed_log_no_error(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    from k8swatch import MemoryStorage
    from k8swatch.redis import open_redis_backend

    with caplog.at_level(logging.WARNING):
        async with open_redis_backend(redis_url, prefix=prefix) as backend:
            log = backend.log_for("widgets", group="example.com")
            async with MemoryStorage("example.com/v1", "Widget", log=log) as storage:
                for i in range(5):
                    await storage.create(
                        "default",
                        {
                            "apiVersion": "example.com/v1",
                            "kind": "Widget",
                            "metadata": {"name": f"w{i}"},
                        },
                    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
