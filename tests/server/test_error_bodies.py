"""Every error the app answers is a Status, and no Status carries Python internals."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import pytest

from k8swatch import ListOptions, MemoryStorage, ObjectList
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import ASGIClient

NS = "/apis/example.com/v1/namespaces/default/widgets"
SECRET = "secret internals"


class Exploding(MemoryStorage):
    """A MemoryStorage whose reads and creates raise an unexpected exception."""

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        raise RuntimeError(SECRET)

    async def list(self, namespace: str, options: ListOptions | None = None) -> ObjectList:
        raise RuntimeError(SECRET)

    async def create(self, namespace: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        raise RuntimeError(SECRET)


def exploding_app() -> App:
    storage = Exploding("example.com/v1", "Widget")
    return create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])


def assert_status(body: Any, code: int) -> None:
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == code


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", f"{NS}/a", None),
        ("GET", NS, None),
        ("POST", NS, {"metadata": {"name": "a"}}),
    ],
)
async def test_a_storage_bug_is_a_500_status_without_its_text(
    method: str, path: str, json: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = ASGIClient(exploding_app())
    with caplog.at_level(logging.ERROR, logger="k8swatch"):
        response = await client.request(method, path, json=json)
    assert response.status == 500
    body = response.json()
    assert_status(body, 500)
    assert body["reason"] == "InternalError"
    text = response.body.decode()
    assert SECRET not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text
    found = re.search(r"error id ([0-9a-f]+)", body["message"])
    assert found is not None
    records = [r for r in caplog.records if r.name == "k8swatch.errors"]
    assert len(records) == 1
    record = records[0]
    assert found.group(1) in record.getMessage()
    assert method in record.getMessage()
    assert path in record.getMessage()
    assert record.exc_info is not None
    assert SECRET in str(record.exc_info[1])
    assert "Traceback" in caplog.text


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/nope", 404),
        ("GET", "/apis/unknown.group/v1/x", 404),
        ("POST", "/apis/unknown.group/v1/namespaces/default/x", 404),
        ("TRACE", "/nope", 404),
        ("TRACE", NS, 405),
        ("BREW", f"{NS}/a", 405),
        ("POST", "/version", 405),
        ("GET", "/apis/%zz/%ff%fe", 404),
        ("GET", "/api/v1/namespaces/%", 404),
    ],
)
async def test_unknown_paths_and_methods_are_statuses(method: str, path: str, code: int) -> None:
    storage = MemoryStorage("example.com/v1", "Widget")
    app = create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
    response = await ASGIClient(app).request(method, path)
    assert response.status == code
    assert_status(response.json(), code)
    assert response.header("content-type") == "application/json"


async def test_an_undecodable_scope_is_a_500_status_not_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app([])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # No "headers" key: decoding the request itself fails.
    with caplog.at_level(logging.ERROR, logger="k8swatch"):
        await app({"type": "http", "method": "GET", "path": "/version"}, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 500
    assert b'"kind":"Status"' in sent[1]["body"]
    assert any(r.name == "k8swatch.errors" for r in caplog.records)


async def test_a_failure_after_the_response_started_ends_the_response_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = MemoryStorage("example.com/v1", "Widget")
    await storage.create("default", {"metadata": {"name": "a"}})
    app = create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            raise OSError("the client went away")

    scope = {"type": "http", "method": "GET", "path": f"{NS}/a", "headers": []}
    with caplog.at_level(logging.ERROR, logger="k8swatch.server"):
        await app(scope, receive, send)  # does not raise
    assert [m["type"] for m in sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]
    assert sent[-1]["body"] == b""
    assert not sent[-1].get("more_body", False)
    assert any(
        r.name == "k8swatch.server" and r.exc_info and "went away" in str(r.exc_info[1])
        for r in caplog.records
    )
