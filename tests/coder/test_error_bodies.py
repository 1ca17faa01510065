"""Coder storage errors say what failed in user terms: no URL, host, client class or token."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from k8swatch.coder import (
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
    build_resource_specs,
)
from k8swatch.server import App, create_app
from k8swatch.testing import ASGIClient

from . import test_cli
from .conftest import FakeCoderServer

NS = "coder"
GV = "/apis/aggregation.coder.com/v1alpha1"
TOKEN = "very-secret-session-token"
LEAKS = ("http://", "127.0.0.1", "/api/v2", "ConnectError", "httpx", "Traceback", TOKEN)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def coder_app(provider: StaticClientProvider) -> AsyncIterator[App]:
    app = create_app(build_resource_specs(TemplateStorage(provider), WorkspaceStorage(provider)))
    try:
        yield app
    finally:
        await app.aclose()
        await provider.aclose()


def assert_clean(body: bytes, *extra: str) -> None:
    text = body.decode()
    for leak in (*LEAKS, *extra):
        assert leak not in text, f"{leak!r} in {text}"


async def test_an_unreachable_coder_is_a_503_status_without_url_or_client_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    provider = StaticClientProvider(f"http://127.0.0.1:{port}", TOKEN, NS, timeout=5)
    with caplog.at_level(logging.DEBUG):
        async with coder_app(provider) as app:
            client = ASGIClient(app)
            for path in (f"{GV}/namespaces/{NS}/codertemplates", f"{GV}/coderworkspaces"):
                response = await client.request("GET", path)
                assert response.status == 503
                body = response.json()
                assert body["kind"] == "Status"
                assert body["reason"] == "ServiceUnavailable"
                assert body["message"] == "the Coder deployment is unreachable; try again later"
                assert_clean(response.body, str(port))
    # The details are in the log, the token is not.
    assert f"127.0.0.1:{port}" in caplog.text
    assert "ConnectError" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_coder_conflict_is_a_409_with_coders_message_and_no_url(
    fake_coder_server: FakeCoderServer, caplog: pytest.LogCaptureFixture
) -> None:
    url, token, fake = fake_coder_server
    fake.fail_next_build("stop", status=409, message="A workspace build is already active.")
    provider = StaticClientProvider(url, token, NS)
    with caplog.at_level(logging.DEBUG):
        async with coder_app(provider) as app:
            client = ASGIClient(app)
            path = f"{GV}/namespaces/{NS}/coderworkspaces/acme.alice.dev-workspace"
            current = (await client.request("GET", path)).json()
            current["spec"]["running"] = False
            response = await client.request("PUT", path, json=current)
    assert response.status == 409
    body = response.json()
    assert body["reason"] == "Conflict"
    assert body["message"].endswith(
        "Coder refused the change: A workspace build is already active."
    )
    assert_clean(response.body, url.rsplit(":", 1)[1], "unexpected status code")
    assert token not in caplog.text


async def test_a_malformed_coder_answer_is_a_500_with_an_error_id_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>not json</html>")

    provider = StaticClientProvider(
        "http://coder.internal:7080", TOKEN, NS, transport=httpx.MockTransport(garbage)
    )
    with caplog.at_level(logging.DEBUG):
        async with coder_app(provider) as app:
            response = await ASGIClient(app).request("GET", f"{GV}/namespaces/{NS}/codertemplates")
    assert response.status == 500
    body = response.json()
    assert body["reason"] == "InternalError"
    assert "error id" in body["message"]
    assert_clean(response.body, "coder.internal", "CoderProtocolError", "JSON")
    records = [r for r in caplog.records if r.name == "k8swatch.errors"]
    assert records
    assert records[0].exc_info is not None
    assert "coder.internal" in caplog.text
    assert TOKEN not in caplog.text


@pytest.fixture
def served_without_coder(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = closed_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "CODER_SESSION_TOKEN": TOKEN}
    env.pop("KUBECONFIG", None)
    with test_cli.serve(
        env, tmp_path / "kubeconfig", "--coder-url", f"http://127.0.0.1:{port}"
    ) as served:
        yield served.value("URL: "), port
        assert TOKEN not in "".join(served.lines)


def test_serve_answers_statuses_for_a_down_coder_and_unknown_paths(
    served_without_coder: tuple[str, int],
) -> None:
    base, port = served_without_coder
    cases: list[tuple[str, str, int]] = [
        ("GET", f"{GV}/namespaces/{NS}/codertemplates", 503),
        ("GET", "/nope", 404),
        ("TRACE", f"{GV}/namespaces/{NS}/coderworkspaces", 405),
        ("GET", "/apis/%zz/%ff", 404),
    ]
    for method, path, code in cases:
        response = httpx.request(method, base + path, timeout=30)
        assert response.status_code == code, (method, path, response.text)
        assert response.headers["content-type"] == "application/json"
        body: Any = response.json()
        assert body["kind"] == "Status"
        assert body["code"] == code
        assert_clean(response.content, str(port))
