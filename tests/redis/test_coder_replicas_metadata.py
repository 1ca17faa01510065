"""Two Coder storage replicas on one Redis share the objects' metadata: a label written
through A is on B's get, list selection and watch; concurrent writes conflict, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from k8swatch import EventType, ListOptions, StatusError
from k8swatch.coder import StaticClientProvider, WorkspaceStorage
from k8swatch.redis import open_redis_backend
from tests.coder.conftest import FakeCoderServer

from .test_coder_replicas import GROUP, NS, SEED, coder, rv_of

pytestmark = pytest.mark.redis

__all__ = ["coder"]  # the fixture, imported for the tests below


@asynccontextmanager
async def replica(
    url: str, prefix: str, server: FakeCoderServer
) -> AsyncIterator[WorkspaceStorage]:
    """A replica whose log and metadata store are in Redis, following the log."""
    provider = StaticClientProvider(server.url, server.token, NS)
    try:
        async with open_redis_backend(url, prefix=prefix) as backend:
            storage = WorkspaceStorage(
                provider,
                log=backend.log_for("coderworkspaces", group=GROUP),
                metadata_store=backend.metadata_store_for("coderworkspaces", group=GROUP),
            )
            async with anyio.create_task_group() as tg:
                await tg.start(storage.follow)
                try:
                    yield storage
                finally:
                    await storage.aclose()
    finally:
        await provider.aclose()


async def test_metadata_is_shared_by_replicas(
    redis_url: str, prefix: str, coder: FakeCoderServer
) -> None:
    async with replica(redis_url, prefix, coder) as a, replica(redis_url, prefix, coder) as b:
        listed = await b.list(NS, ListOptions())
        async with await b.watch(
            NS, ListOptions(watch=True, resource_version=listed.resource_version)
        ) as watch:
            current = await a.get(NS, SEED)
            labelled = {**current, "metadata": {**current["metadata"], "labels": {"team": "a"}}}
            updated = await a.update(NS, SEED, labelled)
            with anyio.fail_after(10):
                event = await anext(aiter(watch))
            assert event.type is EventType.MODIFIED
            assert event.object["metadata"]["labels"] == {"team": "a"}
            assert rv_of(event.object) == rv_of(updated)
        got = await b.get(NS, SEED)
        assert got["metadata"]["labels"] == {"team": "a"}
        assert rv_of(got) == rv_of(updated)
        selected = await b.list(NS, ListOptions(label_selector="team=a"))
        assert [o["metadata"]["name"] for o in selected.items] == [SEED]
        # two replicas writing from the same state: one wins, the other is a Conflict
        on_b = {**got, "metadata": {**got["metadata"], "labels": {"team": "b"}}}
        on_a = {**got, "metadata": {**got["metadata"], "labels": {"team": "c"}}}
        await b.update(NS, SEED, on_b)
        with pytest.raises(StatusError) as info:
            await a.update(NS, SEED, on_a)
        assert info.value.status.code == 409
        assert (await a.get(NS, SEED))["metadata"]["labels"] == {"team": "b"}
