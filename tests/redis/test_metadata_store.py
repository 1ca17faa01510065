"""RedisMetadataStore against a real redis-server: conditional writes, reads, removal,
and a 503 when Redis cannot be reached."""

from __future__ import annotations

import socket

import pytest

from k8swatch import StatusError
from k8swatch.coder import MetadataStore
from k8swatch.redis import RedisMetadataStore, open_redis_backend

pytestmark = pytest.mark.redis

BODY = {"resource": "coderworkspaces", "namespace": "ns", "name": "a.b.c", "metadata": {}}


async def test_conditional_writes_reads_and_removal(redis_url: str, prefix: str) -> None:
    async with open_redis_backend(redis_url, prefix=prefix) as backend:
        store = backend.metadata_store_for("coderworkspaces", group="aggregation.coder.com")
        assert isinstance(store, RedisMetadataStore)
        assert isinstance(store, MetadataStore)
        assert store.key == "{" + prefix + "}:meta:coderworkspaces.aggregation.coder.com"
        labelled = {**BODY, "metadata": {"labels": {"team": "a"}}}
        big = 1_796_000_000_000_000_123  # nanoseconds: beyond a double's exact integers
        assert await store.write("id-1", labelled, big, expected=0)
        assert not await store.write("id-1", BODY, big + 1, expected=0)  # it exists now
        assert not await store.write("id-1", BODY, big + 1, expected=big - 1)
        assert await store.read(["id-1", "id-2"]) == {"id-1": (big, labelled)}
        assert await store.write("id-2", BODY, 5, expected=0)
        assert set(await store.read_all()) == {"id-1", "id-2"}
        assert await store.write("id-1", None, 0, expected=big)  # removed
        assert await store.read(["id-1"]) == {}
        await store.remove(["id-2", "id-3"])
        assert await store.read_all() == {}
        assert await store.read([]) == {}
        # another resource's store is another hash
        other = backend.metadata_store_for("codertemplates", group="aggregation.coder.com")
        assert await other.write("id-1", BODY, 1, expected=0)
        assert await store.read(["id-1"]) == {}


async def test_unreachable_redis_is_503() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    async with open_redis_backend(f"redis://127.0.0.1:{port}/0", prefix="x") as backend:
        store = backend.metadata_store_for("coderworkspaces")
        for call in (
            store.read(["a"]),
            store.read_all(),
            store.write("a", BODY, 1, expected=0),
            store.remove(["a"]),
        ):
            with pytest.raises(StatusError) as info:
                await call
            assert info.value.status.code == 503
            assert str(port) not in info.value.status.message
