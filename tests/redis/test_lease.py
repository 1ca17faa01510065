"""RedisLease: one holder at a time, renewal, release, lapse, Redis down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import coredis
import pytest

from k8swatch.redis import RedisLease
from k8swatch.redis._client import create_client

from .conftest import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    async with coredis.Redis.from_url(redis_url) as c:
        yield c


def held(lease: RedisLease) -> bool:
    return lease.held  # (a call, so type checkers do not narrow the property)


async def test_one_holder_at_a_time(client: coredis.Redis[bytes], prefix: str) -> None:
    a = RedisLease(client, f"{prefix}:lease", ttl=30)
    b = RedisLease(client, f"{prefix}:lease", ttl=30)
    assert not held(a)
    assert await a.acquire()
    assert held(a)
    assert not await b.acquire()
    assert not held(b)
    assert await a.acquire()  # renewal
    await a.release()
    assert not held(a)
    assert await b.acquire()
    assert not await a.acquire()
    await a.release()  # not ours: leaves b's lease alone
    assert await b.acquire()
    await b.release()
    await b.release()  # idempotent


async def test_lapses_when_the_holder_stops_renewing(
    client: coredis.Redis[bytes], prefix: str
) -> None:
    a = RedisLease(client, f"{prefix}:lease", ttl=0.2)
    b = RedisLease(client, f"{prefix}:lease", ttl=30)
    assert await a.acquire()
    for _ in range(400):  # the lease lapses after its ttl: poll for it
        if await b.acquire():
            break
        await anyio.sleep(0.025)
    else:
        pytest.fail("the lease never lapsed")
    assert not held(a)
    assert not await a.acquire()


async def test_ttl_must_be_positive(client: coredis.Redis[bytes]) -> None:
    with pytest.raises(ValueError, match="ttl must be > 0"):
        RedisLease(client, "x", ttl=0)


async def test_unreachable_redis_means_not_held(own_redis_server: RedisServer) -> None:
    async with create_client(own_redis_server.url) as client:
        lease = RedisLease(client, "lease", ttl=30)
        assert await lease.acquire()
        own_redis_server.stop()
        assert not await lease.acquire()
        assert not held(lease)
        await lease.release()  # does not raise
        own_redis_server.start()
        assert await lease.acquire()  # our token survived the restart (AOF)
