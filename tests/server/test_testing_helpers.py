"""k8swatch.testing: the pytest plugin's fixtures, ASGIClient and serve_app."""

from __future__ import annotations

import httpx
import pytest

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import ASGIClient, serve_app

NS = "/apis/example.com/v1/namespaces/default/widgets"


@pytest.fixture
def asgi_app() -> App:
    storage = MemoryStorage("example.com/v1", "Widget")
    return create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])


async def test_asgi_client_fixture(asgi_client: ASGIClient) -> None:
    created = await asgi_client.request("POST", NS, json={"metadata": {"name": "a"}})
    assert created.status == 201
    assert created.header("Content-Type") == "application/json"
    assert "a" in repr(await asgi_client.request("GET", f"{NS}/a"))
    async with asgi_client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        events = []
        async for event in stream:
            events.append(event)
            break
    assert events[0]["object"]["metadata"]["name"] == "a"


async def test_stream_read_and_lines(asgi_client: ASGIClient) -> None:
    async with asgi_client.stream("GET", "/apis") as stream:
        assert stream.status == 200
        body = await stream.read()
        assert await stream.receive_chunk() is None
    assert body.startswith(b"{")
    async with asgi_client.stream("GET", "/version") as stream:
        line = await stream.receive_line()
        assert line is not None
        assert await stream.receive_line() is None
        assert await stream.receive_json() is None


async def test_lifespan_failure_is_reported() -> None:
    async def failing(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "lifespan.startup.failed", "message": "nope"})  # type: ignore[operator]

    with pytest.raises(RuntimeError, match="startup failed"):
        async with ASGIClient(failing).lifespan():
            pass


def test_live_server_fixture(live_server: str) -> None:
    response = httpx.get(f"{live_server}/apis/example.com/v1", timeout=30)
    assert response.json()["resources"][0]["name"] == "widgets"


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn-trio"])
def test_serve_app_ends_open_watches(asgi_app: App, server: str) -> None:
    with httpx.Client(timeout=30) as http:
        with serve_app(asgi_app, server=server) as url:
            response = http.send(http.build_request("GET", f"{url}{NS}?watch=1"), stream=True)
            assert response.status_code == 200
            assert asgi_app.active_watches == 1
        # Leaving serve_app closed the app first: the stream ended cleanly.
        assert response.read() == b""
        response.close()
    assert asgi_app.active_watches == 0


def test_serve_app_rejects_unknown_servers(asgi_app: App) -> None:
    with pytest.raises(ValueError, match="unknown server"), serve_app(asgi_app, server="gunicorn"):  # type: ignore[arg-type]
        pass
