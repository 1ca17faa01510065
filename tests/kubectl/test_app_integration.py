"""The app's OpenAPI routes, fieldValidation, JSON Patch, 415 and printer-column Tables.

In-process (``ASGIClient``), on asyncio and trio.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8swatch.server import App, create_app
from k8swatch.testing import ASGIClient

from .conftest import widget_resources

GV = "/apis/example.com/v1"
NS = f"{GV}/namespaces/default/widgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
def app() -> App:
    return create_app(widget_resources())


@pytest.fixture
def client(app: App) -> ASGIClient:
    return ASGIClient(app)


def _widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec or {"size": 3},
    }


async def test_openapi_documents_and_caching(client: ASGIClient) -> None:
    index = await client.request("GET", "/openapi/v3")
    assert index.status == 200
    url = index.json()["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    doc = await client.request("GET", url)
    assert doc.status == 200
    assert doc.header("cache-control") == "public, immutable"
    etag = doc.header("etag")
    assert etag is not None
    schemas = doc.json()["components"]["schemas"]
    assert schemas["com.example.v1.Widget"]["properties"]["spec"]["properties"]["size"] == {
        "type": "integer",
        "description": "Size of the widget, in cm.",
    }
    cached = await client.request("GET", url, headers={"If-None-Match": etag})
    assert cached.status == 304
    assert cached.body == b""
    v2 = await client.request("GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert v2.json()["swagger"] == "2.0"
    proto = await client.request(
        "GET",
        "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )
    assert proto.status == 200
    assert proto.header("content-type") == "application/octet-stream"
    assert (await client.request("GET", "/openapi/v3/apis/nope/v1")).status == 404


async def test_field_validation_directives(client: ASGIClient) -> None:
    bad = _widget(size=1, shape="round")
    strict = await client.request("POST", f"{NS}?fieldValidation=Strict", json=bad)
    assert strict.status == 400
    assert strict.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.shape"'
    )
    unsupported = await client.request("POST", f"{NS}?fieldValidation=strict", json=bad)
    assert unsupported.status == 422
    warned = await client.request("POST", NS, json=bad)
    assert warned.status == 201
    assert warned.header("warning") == '299 - "unknown field \\"spec.shape\\""'
    assert warned.json()["spec"] == {"size": 1}  # pruned, as kube-apiserver does
    ignored = await client.request(
        "PUT", f"{NS}/w1?fieldValidation=Ignore", json={**bad, "metadata": {"name": "w1"}}
    )
    assert ignored.status == 200
    assert ignored.header("warning") is None
    typed = await client.request("PUT", f"{NS}/w1", json=_widget(size="big"))
    assert typed.status == 422
    assert typed.json()["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": (
                'Invalid value: "string": spec.size in body must be of type integer: "string"'
            ),
            "field": "spec.size",
        }
    ]


async def test_json_patch_and_unsupported_patch_types(client: ASGIClient) -> None:
    assert (await client.request("POST", NS, json=_widget())).status == 201
    patched = await client.request(
        "PATCH",
        f"{NS}/w1",
        headers={"Content-Type": "application/json-patch+json"},
        body=json.dumps([{"op": "replace", "path": "/spec/size", "value": 4}]),
    )
    assert patched.status == 200
    assert patched.json()["spec"] == {"size": 4}
    failed = await client.request(
        "PATCH",
        f"{NS}/w1",
        headers={"Content-Type": "application/json-patch+json"},
        body=json.dumps([{"op": "test", "path": "/spec/size", "value": 5}]),
    )
    assert failed.status == 422
    assert failed.json()["reason"] == "Invalid"
    not_a_list = await client.request(
        "PATCH",
        f"{NS}/w1",
        headers={"Content-Type": "application/json-patch+json"},
        body="{}",
    )
    assert not_a_list.status == 400
    for content_type in ("application/apply-patch+cbor", "application/strategic-merge-patch+json"):
        refused = await client.request(
            "PATCH", f"{NS}/missing", headers={"Content-Type": content_type}, body="{}"
        )
        assert refused.status == 415, content_type
        assert refused.json()["reason"] == "UnsupportedMediaType"
    ssa = await client.request(
        "PATCH", f"{NS}/w1", headers={"Content-Type": "application/apply-patch+yaml"}, body="{}"
    )
    assert ssa.status == 422  # server-side apply, without the fieldManager it requires
    assert "fieldManager: Required value" in ssa.json()["message"]


async def test_tables_use_printer_columns(client: ASGIClient) -> None:
    await client.request("POST", NS, json=_widget(size=2, color="red"))
    table = (await client.request("GET", NS, headers={"Accept": TABLE})).json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Size",
        "Phase",
        "Age",
        "Color",
    ]
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 1]
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["w1", 2, None]
    assert cells[4] == "red"
    one = (await client.request("GET", f"{NS}/w1", headers={"Accept": TABLE})).json()
    assert one["rows"][0]["cells"][1] == 2
    gadgets = (await client.request("GET", f"{GV}/gadgets", headers={"Accept": TABLE})).json()
    assert [c["name"] for c in gadgets["columnDefinitions"]] == ["Name", "Age"]


async def test_dry_run_persists_nothing(client: ASGIClient) -> None:
    dry = await client.request("POST", f"{NS}?dryRun=All", json=_widget())
    assert dry.status == 201
    assert dry.json()["spec"] == {"size": 3}
    assert (await client.request("GET", f"{NS}/w1")).status == 404
    assert (await client.request("POST", NS, json=_widget())).status == 201
    patched = await client.request(
        "PATCH",
        f"{NS}/w1?dryRun=All",
        headers={"Content-Type": "application/merge-patch+json"},
        body='{"spec": {"size": 9}}',
    )
    assert patched.json()["spec"] == {"size": 9}
    replaced = await client.request("PUT", f"{NS}/w1?dryRun=All", json=_widget(size=8))
    assert replaced.json()["spec"] == {"size": 8}
    deleted = await client.request("DELETE", f"{NS}/w1?dryRun=All")
    assert deleted.status == 200
    stored = await client.request("GET", f"{NS}/w1")
    assert stored.json()["spec"] == {"size": 3}
    bad = await client.request("DELETE", f"{NS}/w1?dryRun=Some")
    assert bad.status == 422
    assert bad.json()["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: "Some": '
        'supported values: "All"'
    )
    missing = await client.request("PUT", f"{NS}/nope?dryRun=All", json=_widget("nope"))
    assert missing.status == 404
