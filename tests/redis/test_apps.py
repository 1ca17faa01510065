"""Two ASGI apps (two replicas) on one real Redis, over the Kubernetes HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from k8swatch import MemoryStorage
from k8swatch.redis import open_redis_backend
from k8swatch.server import ResourceSpec, create_app
from k8swatch.testing import ASGIClient

pytestmark = pytest.mark.redis

PATH = "/apis/example.com/v1/namespaces/default/widgets"


@asynccontextmanager
async def app_replica(url: str, prefix: str) -> AsyncIterator[ASGIClient]:
    async with open_redis_backend(url, prefix=prefix) as backend:
        log = backend.log_for("widgets", group="example.com")
        async with MemoryStorage("example.com/v1", "Widget", log=log) as storage:
            app = create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
            yield ASGIClient(app)


def widget(name: str) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}}


async def test_watch_on_b_streams_writes_made_through_a_and_b(redis_url: str, prefix: str) -> None:
    async with app_replica(redis_url, prefix) as a, app_replica(redis_url, prefix) as b:
        first = await a.request("POST", PATH, json=widget("w0"))
        assert first.status == 201, first.json()
        rv = first.json()["metadata"]["resourceVersion"]
        # A client got `rv` from replica A and watches on replica B from it.
        async with b.stream("GET", f"{PATH}?watch=true&resourceVersion={rv}") as stream:
            assert stream.status == 200
            created = []
            for i in range(1, 7):
                client = a if i % 2 else b
                response = await client.request("POST", PATH, json=widget(f"w{i}"))
                assert response.status == 201, response.json()
                created.append(response.json())
            deleted = await a.request("DELETE", f"{PATH}/w0")
            assert deleted.status == 200
            events: list[Any] = []
            with anyio.fail_after(30):
                while len(events) < 7:
                    events.append(await stream.receive_json())
        assert [e["type"] for e in events] == ["ADDED"] * 6 + ["DELETED"]
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs)
        assert rvs[:6] == [int(o["metadata"]["resourceVersion"]) for o in created]
        assert events[6]["object"]["metadata"]["name"] == "w0"
        # Both replicas list the same objects at the same RV.
        list_a = (await a.request("GET", PATH)).json()
        list_b = (await b.request("GET", PATH)).json()
        assert list_a["metadata"]["resourceVersion"] == list_b["metadata"]["resourceVersion"]
        assert list_a["items"] == list_b["items"]
        assert len(list_a["items"]) == 6
        # Conflicts are decided in Redis, whichever replica is asked.
        stale = {**created[0], "spec": {"x": 1}}
        assert (await b.request("PUT", f"{PATH}/w1", json=stale)).status == 200
        again = await a.request("PUT", f"{PATH}/w1", json=stale)
        assert again.status == 409
        assert again.json()["reason"] == "Conflict"
        exists = await b.request("POST", PATH, json=widget("w1"))
        assert exists.status == 409
        assert exists.json()["reason"] == "AlreadyExists"
