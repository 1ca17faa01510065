from __future__ import annotations

import anyio
import anyio.lowlevel

from k8swatch.server import ResourceSpec, create_app
from k8swatch.testing import ASGIClient

from ._dictstorage import DictStorage


async def test_smoke() -> None:
    storage = DictStorage("example.com/v1", "Widget")
    app = create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
    client = ASGIClient(app)
    r = await client.request(
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        json={"metadata": {"name": "a"}, "spec": {"x": 1}},
    )
    assert r.status == 201, r
    async with client.stream("GET", "/apis/example.com/v1/widgets?watch=1") as s:
        assert s.status == 200
        if True:
            print(await s.receive_json())
            await client.request(
                "POST",
                "/apis/example.com/v1/namespaces/default/widgets",
                json={"metadata": {"name": "b"}},
            )
            print(await s.receive_json())
    await anyio.lowlevel.checkpoint()
    assert storage.watch_stops == 1
