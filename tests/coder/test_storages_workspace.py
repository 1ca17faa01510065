"""WorkspaceStorage against FakeCoder over HTTP (coder-adapters.md §2.1, §4.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8swatch import ListOptions, StatusError
from k8swatch.coder import StaticClientProvider, WorkspaceStorage
from k8swatch.coder._fake import FakeCoder

from .conftest import CODER_NAMESPACE

NS = CODER_NAMESPACE  # what the conftest's provider serves
SCHEDULE = "CRON_TZ=UTC 0 10 * * 1-5"


@pytest.fixture
async def storage(provider: StaticClientProvider) -> AsyncIterator[WorkspaceStorage]:
    storage = WorkspaceStorage(provider)
    yield storage
    await storage.aclose()


def workspace(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("organization", name.split(".")[0])
    spec.setdefault("templateName", "starter-template")
    return {
        "apiVersion": "aggregation.coder.com/v1alpha1",
        "kind": "CoderWorkspace",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


async def expect_status(code: int, call: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        await call
    assert info.value.status.code == code, info.value.status
    return info.value


async def test_list_and_get(storage: WorkspaceStorage) -> None:
    listed = await storage.list(NS, ListOptions())
    assert [o["metadata"]["name"] for o in listed.items] == ["acme.alice.dev-workspace"]
    got = await storage.get(NS, "acme.alice.dev-workspace")
    assert got["spec"]["running"] is True
    assert got == listed.items[0]
    err = await expect_status(404, storage.get(NS, "otherorg.alice.dev-workspace"))
    assert err.status.message == (
        'coderworkspaces.aggregation.coder.com "otherorg.alice.dev-workspace" not found'
    )
    err = await expect_status(400, storage.get(NS, "acme.alice"))
    assert err.status.message == (
        'invalid workspace name "acme.alice": invalid workspace name "acme.alice": '
        'expected 2 separators (".")'
    )
    err = await expect_status(400, storage.get("", "acme.alice.dev-workspace"))
    assert err.status.message == "namespace is required"


async def test_lifecycle(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    created = await storage.create(
        NS,
        workspace(
            "acme.alice.ops-workspace",
            running=False,
            ttlMillis=7200000,
            autostartSchedule=SCHEDULE,
        ),
    )
    assert created["spec"]["running"] is False
    assert created["spec"]["ttlMillis"] == 7200000
    assert created["spec"]["autostartSchedule"] == SCHEDULE
    assert fake.build_transitions("alice/ops-workspace") == ["stop"]
    created["spec"]["running"] = True
    updated = await storage.update(NS, "acme.alice.ops-workspace", created)
    assert updated["spec"]["running"] is True
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert fake.build_transitions("alice/ops-workspace") == ["stop", "start"]
    status = await storage.delete(NS, "acme.alice.ops-workspace")
    assert status.status == "Success"
    assert fake.build_transitions("alice/ops-workspace") == ["stop", "start", "delete"]


async def test_no_op_update_calls_nothing(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    current = await storage.get(NS, "acme.alice.dev-workspace")
    result = await storage.update(NS, "acme.alice.dev-workspace", current)
    assert result == current
    assert fake.build_transitions("alice/dev-workspace") == []


async def test_create_with_template_versions(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    other = fake.create_template_out_of_band("acme", "other-template")
    other_version = fake.template_active_version_id(other)
    err = await expect_status(
        400,
        storage.create(
            NS, workspace("acme.alice.pinned", running=True, templateVersionID=other_version)
        ),
    )
    assert err.status.message == (
        f'spec.templateVersionID "{other_version}" does not belong to template "starter-template"'
    )
    assert not fake.has_workspace("alice/pinned")
    version = fake.template_active_version_id("acme/starter-template")
    created = await storage.create(
        NS, workspace("acme.alice.pinned", running=True, templateVersionID=version)
    )
    assert created["spec"]["templateVersionID"] == version
    assert fake.build_transitions("alice/pinned") == []
    err = await expect_status(
        400, storage.create(NS, workspace("acme.alice.x", running=True, templateVersionID="x"))
    )
    assert err.status.message == (
        'invalid workspace spec: invalid templateVersionID "x": invalid UUID length: 1'
    )


async def test_create_errors(storage: WorkspaceStorage) -> None:
    err = await expect_status(
        404, storage.create(NS, workspace("acme.alice.x", templateName="nope"))
    )
    assert err.status.message == 'codertemplates.aggregation.coder.com "acme.nope" not found'
    err = await expect_status(
        409, storage.create(NS, workspace("acme.alice.dev-workspace", running=True))
    )
    assert err.status.reason == "AlreadyExists"
    err = await expect_status(400, storage.create(NS, workspace("acme.alice.x", templateName="")))
    assert err.status.message == "spec.templateName must not be empty"
    err = await expect_status(400, storage.create(NS, {"metadata": {}}))
    assert err.status.message == "metadata.name must not be empty"
    bad = workspace("acme.alice.x")
    bad["spec"]["organization"] = ""
    err = await expect_status(400, storage.create(NS, bad))
    assert err.status.message == (
        'spec.organization "" must match organization "acme" parsed from metadata.name'
    )
    err = await expect_status(400, storage.create(NS, workspace("acme.alice.Bad_Name")))
    assert err.status.message == "Validation failed."
    assert err.status.details is not None
    assert err.status.details.causes[0].field == "name"


async def test_force_allow_create(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    result, created = await storage.update_or_create(
        NS,
        "acme.alice.ssa-workspace",
        workspace("", running=False, organization="acme"),
        force_allow_create=True,
    )
    assert created is True
    assert result["metadata"]["name"] == "acme.alice.ssa-workspace"
    assert fake.build_transitions("alice/ssa-workspace") == ["stop"]
    err = await expect_status(
        400,
        storage.update_or_create(
            NS, "acme.alice.ssa-2", workspace("acme.alice.other"), force_allow_create=True
        ),
    )
    assert "must match request name" in err.status.message
    await expect_status(404, storage.update(NS, "acme.alice.missing", workspace("")))


async def test_immutable_fields(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    name = "acme.alice.dev-workspace"
    current = await storage.get(NS, name)
    changed = {**current, "spec": {**current["spec"], "templateName": "other", "running": False}}
    err = await expect_status(400, storage.update(NS, name, changed))
    assert "spec.running" in err.status.message
    for spec in (
        {"ttlMillis": 1},
        {"templateVersionID": "9d2e4f60-1a3b-4c5d-8e7f-000000000000"},
        {"autostartSchedule": "CRON_TZ=UTC 0 1 * * *"},
    ):
        changed = {**current, "spec": {**current["spec"], **spec, "running": False}}
        await expect_status(400, storage.update(NS, name, changed))
    assert fake.build_transitions("alice/dev-workspace") == []
    # pinning the current version and clearing optional fields is fine
    relaxed = {
        **current,
        "spec": {
            "organization": "acme",
            "templateName": "starter-template",
            "templateVersionID": current["spec"]["templateVersionID"],
            "running": False,
        },
    }
    result = await storage.update(NS, name, relaxed)
    assert result["spec"]["running"] is False
    assert result["spec"]["ttlMillis"] == current["spec"]["ttlMillis"]
    assert fake.build_transitions("alice/dev-workspace") == ["stop"]
    relaxed = {**result, "spec": {**result["spec"], "running": True}}
    del relaxed["spec"]["templateVersionID"]
    del relaxed["spec"]["ttlMillis"]
    del relaxed["spec"]["autostartSchedule"]
    result = await storage.update(NS, name, relaxed)
    assert result["spec"]["autostartSchedule"] == current["spec"]["autostartSchedule"]
    assert fake.build_transitions("alice/dev-workspace") == ["stop", "start"]


async def test_update_preconditions(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    name = "acme.alice.dev-workspace"
    current = await storage.get(NS, name)
    current["spec"]["running"] = False
    no_rv = {**current, "metadata": {"name": name}}
    err = await expect_status(400, storage.update(NS, name, no_rv))
    assert err.status.message == "metadata.resourceVersion is required for update"
    rv = current["metadata"]["resourceVersion"]
    stale = {**current, "metadata": {**current["metadata"], "resourceVersion": rv + "-stale"}}
    err = await expect_status(409, storage.update(NS, name, stale))
    assert err.status.message == (
        "Operation cannot be fulfilled on coderworkspaces.aggregation.coder.com "
        f'"{name}": resource version mismatch: got "{rv}-stale", current is "{rv}"'
    )
    moved = {**current, "metadata": {**current["metadata"], "namespace": "elsewhere"}}
    err = await expect_status(400, storage.update(NS, name, moved))
    assert err.status.message == (
        'metadata.namespace "elsewhere" does not match request namespace "control-plane"'
    )
    assert fake.build_transitions("alice/dev-workspace") == []


async def test_failed_stop_build_on_create_is_ignored(
    storage: WorkspaceStorage, fake: FakeCoder
) -> None:
    fake.fail_next_build("stop", status=400, message="nope")
    created = await storage.create(NS, workspace("acme.alice.stubborn", running=False))
    assert created["spec"]["running"] is True
    assert fake.has_workspace("alice/stubborn")


async def test_active_build_conflict(storage: WorkspaceStorage, fake: FakeCoder) -> None:
    fake.fail_next_build("stop", status=409, message="A workspace build is already active.")
    current = await storage.get(NS, "acme.alice.dev-workspace")
    current["spec"]["running"] = False
    err = await expect_status(409, storage.update(NS, "acme.alice.dev-workspace", current))
    assert err.status.reason == "Conflict"


async def test_coder_outage_is_503(provider: StaticClientProvider, serve_fake_coder: Any) -> None:
    async with serve_fake_coder(FakeCoder(token="t")) as server:
        url = server.url
    gone = StaticClientProvider(url, "t", NS, timeout=5)
    storage = WorkspaceStorage(gone)
    err = await expect_status(503, storage.list(NS, ListOptions()))
    assert err.status.reason == "ServiceUnavailable"
    assert "t" not in err.status.message.split()  # the token is not in the message
    await storage.aclose()
    await gone.aclose()
