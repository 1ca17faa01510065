"""build_resource_specs: the Coder storages served by ``create_app`` (over a FakeCoder)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from k8swatch.coder import (
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
    build_resource_specs,
)
from k8swatch.server import App, create_app
from k8swatch.testing import ASGIClient

from .conftest import FakeCoderServer

NS = "coder"
GV = "/apis/aggregation.coder.com/v1alpha1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
async def app(fake_coder_server: FakeCoderServer) -> AsyncIterator[App]:
    provider = StaticClientProvider(fake_coder_server.url, fake_coder_server.token, NS)
    app = create_app(build_resource_specs(TemplateStorage(provider), WorkspaceStorage(provider)))
    try:
        yield app
    finally:
        await app.aclose()
        await provider.aclose()


def test_the_specs_describe_both_resources() -> None:
    provider = StaticClientProvider("", "", NS)
    templates, workspaces = TemplateStorage(provider), WorkspaceStorage(provider)
    specs = build_resource_specs(templates, workspaces)
    assert [(s.api_version, s.plural, s.singular, s.kind, s.list_kind) for s in specs] == [
        (
            "aggregation.coder.com/v1alpha1",
            "codertemplates",
            "codertemplate",
            "CoderTemplate",
            "CoderTemplateList",
        ),
        (
            "aggregation.coder.com/v1alpha1",
            "coderworkspaces",
            "coderworkspace",
            "CoderWorkspace",
            "CoderWorkspaceList",
        ),
    ]
    assert specs[0].storage is templates
    assert specs[1].storage is workspaces
    assert all(s.namespaced and s.schema for s in specs)


async def test_discovery_and_list_of_both_resources(app: App) -> None:
    client = ASGIClient(app)
    discovery = await client.request("GET", GV)
    assert discovery.status == 200
    resources = {r["name"]: r for r in discovery.json()["resources"]}
    assert sorted(resources) == ["codertemplates", "coderworkspaces"]
    assert resources["coderworkspaces"]["kind"] == "CoderWorkspace"
    assert resources["codertemplates"]["singularName"] == "codertemplate"
    assert "watch" in resources["coderworkspaces"]["verbs"]

    workspaces = await client.request("GET", f"{GV}/namespaces/{NS}/coderworkspaces")
    assert workspaces.status == 200, workspaces.json()
    assert workspaces.json()["kind"] == "CoderWorkspaceList"
    assert [o["metadata"]["name"] for o in workspaces.json()["items"]] == [
        "acme.alice.dev-workspace"
    ]
    templates = await client.request("GET", f"{GV}/namespaces/{NS}/codertemplates")
    assert templates.status == 200, templates.json()
    assert templates.json()["kind"] == "CoderTemplateList"
    assert [o["metadata"]["name"] for o in templates.json()["items"]] == ["acme.starter-template"]


async def test_tables_use_the_printer_columns(app: App) -> None:
    client = ASGIClient(app)
    table = await client.request(
        "GET", f"{GV}/namespaces/{NS}/coderworkspaces", headers={"Accept": TABLE}
    )
    assert table.status == 200, table.json()
    assert [c["name"] for c in table.json()["columnDefinitions"]] == [
        "Name",
        "Owner",
        "Template",
        "Running",
        "Status",
        "Age",
        "Organization",
        "Last-Used",
    ]
