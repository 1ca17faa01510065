"""Two Coder storage replicas on one Redis share the objects' metadata: a label written
through A is on B's get, list selection and watch; concurrent writes conflict, once."""

from __future__ import annotations

import anyio
import pytest

from k8swatch import EventType, ListOptions, StatusError
from tests.coder.conftest import FakeCoderServer
from tests.coder.test_log_mode import rv_of

from ._coder_replicas import NS, SEED, two_workspace_replicas

pytestmark = pytest.mark.redis


async def test_metadata_is_shared_by_replicas(
    redis_url: str, prefix: str, coder: FakeCoderServer
) -> None:
    async with two_workspace_replicas(redis_url, prefix, coder, shared_metadata=True) as (a, b):
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
