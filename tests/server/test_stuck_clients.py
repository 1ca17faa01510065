"""Watch streams whose client takes no data: bounded by ``send_timeout``, then freed.

In-process: the ASGI ``send`` below blocks once "the client's buffers are
full", as uvicorn's does while its transport is paused, and never returns.
The real-socket versions (uvicorn, hypercorn's trio worker, ``k8swatch
serve``) are in ``test_stuck_sockets.py``.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import anyio
import pytest

from k8swatch import ListOptions, MemoryStorage
from k8swatch.server import App, create_app
from k8swatch.server import ResourceSpec as Spec

NS = "/apis/example.com/v1/namespaces/default/widgets"


class StuckClient:
    """An HTTP exchange whose client stops taking data after *accepts* messages."""

    def __init__(self, path: str, accepts: int) -> None:
        self.path, _, self.query = path.partition("?")
        self.accepts = accepts
        self.sent: list[dict[str, Any]] = []
        self.attempts = 0
        self.stuck = anyio.Event()
        self.gone = anyio.Event()  # set to make receive() answer http.disconnect

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "method": "GET",
            "path": self.path,
            "query_string": self.query.encode(),
            "headers": [(b"host", b"test")],
        }

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.attempts += 1
        if len(self.sent) >= self.accepts:
            self.stuck.set()
            await anyio.sleep(math.inf)  # a full transport: never drains
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def make_app(storage: MemoryStorage, send_timeout: float | None) -> App:
    return create_app(
        [Spec("example.com", "v1", "widgets", "Widget", storage)], send_timeout=send_timeout
    )


async def add(storage: MemoryStorage, name: str) -> None:
    await storage.create("default", {"metadata": {"name": name}, "spec": {"n": 1}})


async def test_a_stuck_watch_is_ended_after_send_timeout(caplog: pytest.LogCaptureFixture) -> None:
    storage = MemoryStorage("example.com/v1", "Widget")
    app = make_app(storage, send_timeout=0.2)
    # Takes the response head and the first (empty) chunk, then nothing more.
    client = StuckClient(f"{NS}?watch=1", accepts=2)
    caplog.set_level(logging.INFO, "k8swatch.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, client.scope(), client.receive, client.send)
            while app.active_watches != 1:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            await add(storage, "a")
            await client.stuck.wait()
            started = anyio.current_time()
        # The app returned by itself: the slot, the watch and its tasks are gone.
        waited = anyio.current_time() - started
    assert 0.2 <= waited < 2
    assert app.active_watches == 0
    # Nothing more was tried after the stuck send, not even the end of the body.
    assert client.attempts == 3
    assert [m.get("more_body") for m in client.sent[1:]] == [True]
    assert "took no data for 0.2s" in caplog.text


async def test_the_410_of_an_expired_watch_is_bounded_too() -> None:
    # The window holds 2 events: a watch from the first RV is too old after 5 writes,
    # and its 410 ERROR event is the send that never completes.
    storage = MemoryStorage("example.com/v1", "Widget", window=2)
    await add(storage, "first")
    rv = (await storage.list("default", _options())).resource_version
    for i in range(5):
        await add(storage, f"w{i}")
    app = make_app(storage, send_timeout=0.2)
    client = StuckClient(f"{NS}?watch=1&resourceVersion={rv}", accepts=2)
    with anyio.fail_after(10):
        await app(client.scope(), client.receive, client.send)
    assert app.active_watches == 0
    assert client.stuck.is_set()
    assert client.attempts == 3  # the head, the first chunk, the 410 that never went out


async def test_the_end_of_a_finished_watch_is_bounded_too() -> None:
    # timeoutSeconds=1 ends the watch; the client takes the 2 first messages only,
    # so the last (empty) chunk is the send that never completes.
    storage = MemoryStorage("example.com/v1", "Widget")
    app = make_app(storage, send_timeout=0.2)
    client = StuckClient(f"{NS}?watch=1&timeoutSeconds=1", accepts=2)
    with anyio.fail_after(10):
        await app(client.scope(), client.receive, client.send)
    assert client.stuck.is_set()
    assert app.active_watches == 0


async def test_a_watch_that_keeps_up_is_not_ended() -> None:
    storage = MemoryStorage("example.com/v1", "Widget")
    app = make_app(storage, send_timeout=0.2)
    client = StuckClient(f"{NS}?watch=1", accepts=10_000)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, client.scope(), client.receive, client.send)
            while app.active_watches != 1:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            for i in range(5):
                await add(storage, f"w{i}")
                await anyio.sleep(0.1)  # 0.5 s in all: longer than the bound
            assert app.active_watches == 1
            client.gone.set()
    assert app.active_watches == 0
    names = [json.loads(line)["object"]["metadata"]["name"] for line in client.body().splitlines()]
    assert names == [f"w{i}" for i in range(5)]


async def test_without_a_bound_a_stuck_watch_stays_until_the_client_leaves() -> None:
    storage = MemoryStorage("example.com/v1", "Widget")
    app = make_app(storage, send_timeout=None)
    client = StuckClient(f"{NS}?watch=1", accepts=2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, client.scope(), client.receive, client.send)
            while app.active_watches != 1:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            await add(storage, "a")
            await client.stuck.wait()
            await anyio.sleep(0.5)
            assert app.active_watches == 1
            client.gone.set()  # the server noticed the client left
    assert app.active_watches == 0


@pytest.mark.parametrize("bad", [0, -1.0, math.nan])
def test_send_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="send_timeout must be > 0 or None"):
        make_app(MemoryStorage("example.com/v1", "Widget"), send_timeout=bad)


def test_the_default_send_timeout_is_30_seconds() -> None:
    assert create_app([]).send_timeout == 30.0


def _options() -> ListOptions:
    return ListOptions()
