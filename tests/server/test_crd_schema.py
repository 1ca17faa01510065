"""CRD schemas as written: a kubebuilder-generated ``openAPIV3Schema`` works as given,
and ObjectMeta is never pruned or validated by it (except the name constraints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app, object_schema
from k8swatch.testing import ASGIClient

CRD = yaml.safe_load((Path(__file__).parent / "data" / "backups_crd.yaml").read_text())
SCHEMA: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
PATH = "/apis/example.com/v1/namespaces/default/backups"
MERGE = {"content-type": "application/merge-patch+json"}


def backup_spec(schema: dict[str, Any] = SCHEMA) -> ResourceSpec:
    return ResourceSpec(
        "example.com",
        "v1",
        "backups",
        "Backup",
        MemoryStorage("example.com/v1", "Backup"),
        schema=schema,
        status_subresource=True,
    )


@pytest.fixture
def app() -> App:
    return create_app([backup_spec()])


@pytest.fixture
def client(app: App) -> ASGIClient:
    return ASGIClient(app)


def backup(name: str = "nightly", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Backup",
        "metadata": {"name": name, **metadata},
        "spec": {
            "schedule": "0 3 * * *",
            "retention": "7d",
            "concurrencyPolicy": "Forbid",
            "targets": [{"name": "db", "paths": ["/var/lib/db"]}],
            "template": {"anything": {"goes": [1, 2]}},
        },
    }


async def test_kubebuilder_schema_keeps_object_meta(client: ASGIClient) -> None:
    metadata = {
        "labels": {"app": "db"},
        "annotations": {"note": "kept"},
        "finalizers": ["example.com/cleanup"],
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1"}
        ],
    }
    response = await client.request(
        "POST", f"{PATH}?fieldValidation=Strict", json=backup(**metadata)
    )
    assert response.status == 201, response
    assert response.header("warning") is None
    created = response.json()
    for key, value in metadata.items():
        assert created["metadata"][key] == value
    assert created["metadata"]["name"] == "nightly"
    assert created["metadata"]["uid"]
    assert created["spec"] == backup()["spec"]
    got = (await client.request("GET", f"{PATH}/nightly")).json()
    assert got == created


async def test_generate_name_works_with_kubebuilder_schema(client: ASGIClient) -> None:
    body = backup()
    body["metadata"] = {"generateName": "nightly-"}
    response = await client.request("POST", PATH, json=body)
    assert response.status == 201, response
    assert response.json()["metadata"]["name"].startswith("nightly-")


async def test_schema_still_prunes_and_checks_spec(client: ASGIClient) -> None:
    body = backup()
    body["spec"]["unknown"] = 1
    warned = await client.request("POST", PATH, json=body)
    assert warned.status == 201
    assert warned.header("warning") == '299 - "unknown field \\"spec.unknown\\""'
    assert "unknown" not in warned.json()["spec"]
    wrong = backup("wrong")
    wrong["spec"]["suspend"] = "yes"
    refused = await client.request("POST", PATH, json=wrong)
    assert refused.status == 422
    assert "spec.suspend in body must be of type boolean" in refused.json()["message"]


async def test_updates_and_status_with_kubebuilder_schema(client: ASGIClient) -> None:
    created = (await client.request("POST", PATH, json=backup(labels={"a": "1"}))).json()
    updated = {**created, "spec": {**created["spec"], "suspend": True}}
    put = await client.request("PUT", f"{PATH}/nightly?fieldValidation=Strict", json=updated)
    assert put.status == 200, put
    assert put.json()["metadata"]["labels"] == {"a": "1"}
    assert put.json()["metadata"]["generation"] == 2
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Scheduled",
        "message": "ok",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    status = await client.request(
        "PATCH",
        f"{PATH}/nightly/status",
        json={"status": {"conditions": [condition], "lastScheduleTime": None}},
        headers=MERGE,
    )
    assert status.status == 200, status
    assert status.json()["status"]["conditions"] == [condition]
    assert status.json()["metadata"]["generation"] == 2


async def test_name_constraints_of_the_schema_apply() -> None:
    schema = {
        **SCHEMA,
        "properties": {
            **SCHEMA["properties"],
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 10, "pattern": "^[a-z-]+$"}},
            },
        },
    }
    client = ASGIClient(create_app([backup_spec(schema)]))
    too_long = await client.request("POST", PATH, json=backup("much-too-long-a-name"))
    assert too_long.status == 422
    assert too_long.json()["message"] == (
        'Backup.example.com "much-too-long-a-name" is invalid: metadata.name: Too long: '
        "may not be more than 10 bytes"
    )
    wrong = await client.request("POST", PATH, json=backup("abc1"))
    assert wrong.status == 422
    assert wrong.json()["message"] == (
        'Backup.example.com "abc1" is invalid: metadata.name: Invalid value: "abc1": '
        "metadata.name in body should match '^[a-z-]+$'"
    )
    fine = await client.request("POST", PATH, json=backup("nightly", labels={"x": "y"}))
    assert fine.status == 201
    assert fine.json()["metadata"]["labels"] == {"x": "y"}


def test_object_schema_replaces_declared_metadata() -> None:
    schema = object_schema(backup_spec())
    meta = schema["properties"]["metadata"]
    assert {"name", "labels", "finalizers", "managedFields"} <= set(meta["properties"])
    assert schema["properties"]["spec"] == SCHEMA["properties"]["spec"]
    constrained = {
        **SCHEMA,
        "properties": {
            **SCHEMA["properties"],
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 5, "x-kubernetes-validations": []},
                    "labels": {"type": "string"},
                },
            },
        },
    }
    meta = object_schema(backup_spec(constrained))["properties"]["metadata"]
    assert meta["properties"]["name"]["maxLength"] == 5
    assert "x-kubernetes-validations" not in meta["properties"]["name"]
    assert meta["properties"]["labels"]["type"] == "object"  # only name constraints carry over


async def test_openapi_serves_object_meta_for_the_kind(client: ASGIClient) -> None:
    document = (await client.request("GET", "/openapi/v3/apis/example.com/v1")).json()
    backup_schema = document["components"]["schemas"]["com.example.v1.Backup"]
    assert backup_schema["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
