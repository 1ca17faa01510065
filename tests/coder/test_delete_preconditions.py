"""DELETE with preconditions on the Coder storages, in every mode: checked against
the object the delete read, so Coder is read once (no second get)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8swatch import DeletePreconditions, MemoryEventLog, Status, StatusError
from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage
from k8swatch.coder._fake import FakeCoder

from .conftest import CODER_NAMESPACE

NS = CODER_NAMESPACE  # what the conftest's provider serves
WS = "acme.alice.dev-workspace"
WS_REF = "alice/dev-workspace"
TMPL = "acme.spare"
READ_WORKSPACE = ("GET", "users/{user}/workspace/{name}")
READ_TEMPLATE = ("GET", "organizations/{org}/templates/{name}")
READ_TEMPLATE_SOURCE = ("GET", "templateversions/{id}")

MODES = ["broadcast", "cache", "log"]


def _mode_kwargs(mode: str) -> dict[str, Any]:
    if mode == "log":
        return {"log": MemoryEventLog()}
    return {"watch_cache": mode == "cache"}


@pytest.fixture(params=MODES)
async def workspaces(
    request: pytest.FixtureRequest, provider: StaticClientProvider
) -> AsyncIterator[WorkspaceStorage]:
    storage = WorkspaceStorage(provider, **_mode_kwargs(request.param))
    yield storage
    await storage.aclose()


@pytest.fixture(params=MODES)
async def templates(
    request: pytest.FixtureRequest, provider: StaticClientProvider, fake: FakeCoder
) -> AsyncIterator[TemplateStorage]:
    fake.create_template_out_of_band("acme", "spare")  # used by no workspace: deletable
    storage = TemplateStorage(provider, **_mode_kwargs(request.param))
    yield storage
    await storage.aclose()


async def expect_conflict(call: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        await call
    assert info.value.status.code == 409, info.value.status
    assert info.value.status.reason == "Conflict"
    return info.value


def wrong_preconditions(current: dict[str, Any]) -> list[DeletePreconditions]:
    meta = current["metadata"]
    stale = str(int(meta["resourceVersion"]) + 1000)
    return [
        DeletePreconditions(uid=meta["uid"] + "-other"),
        DeletePreconditions(resource_version=stale),
        # one right, the other wrong: still a conflict
        DeletePreconditions(uid=meta["uid"], resource_version=stale),
    ]


def matching(current: dict[str, Any]) -> DeletePreconditions:
    meta = current["metadata"]
    return DeletePreconditions(uid=meta["uid"], resource_version=meta["resourceVersion"])


async def test_workspace_wrong_preconditions_conflict_and_delete_nothing(
    workspaces: WorkspaceStorage, fake: FakeCoder
) -> None:
    current = await workspaces.get(NS, WS)
    for wrong in wrong_preconditions(current):
        await expect_conflict(workspaces.delete(NS, WS, preconditions=wrong))
        await expect_conflict(workspaces.delete(NS, WS, preconditions=wrong, dry_run=True))
    assert fake.build_transitions(WS_REF) == []
    after = await workspaces.get(NS, WS)
    assert after["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]


async def test_workspace_matching_preconditions_delete_reading_coder_once(
    workspaces: WorkspaceStorage, fake: FakeCoder
) -> None:
    current = await workspaces.get(NS, WS)
    fake.reset_request_counts()
    answer = await workspaces.delete(NS, WS, preconditions=matching(current), dry_run=True)
    assert isinstance(answer, Status)
    assert fake.request_count(*READ_WORKSPACE) == 1
    assert fake.build_transitions(WS_REF) == []
    fake.reset_request_counts()
    answer = await workspaces.delete(NS, WS, preconditions=matching(current))
    assert isinstance(answer, Status)
    assert answer.status == "Success"
    assert fake.request_count(*READ_WORKSPACE) == 1  # the delete's own read, no second get
    assert fake.build_transitions(WS_REF) == ["delete"]


async def test_workspace_with_finalizers_held_with_matching_preconditions(
    workspaces: WorkspaceStorage, fake: FakeCoder
) -> None:
    current = await workspaces.get(NS, WS)
    held = await workspaces.update(
        NS, WS, {**current, "metadata": {**current["metadata"], "finalizers": ["example.com/k"]}}
    )
    fake.reset_request_counts()
    answer = await workspaces.delete(NS, WS, preconditions=matching(held))
    assert isinstance(answer, dict)
    assert answer["metadata"]["deletionTimestamp"]
    assert fake.request_count(*READ_WORKSPACE) == 1
    assert fake.build_transitions(WS_REF) == []


async def test_template_wrong_preconditions_conflict_and_delete_nothing(
    templates: TemplateStorage, fake: FakeCoder
) -> None:
    current = await templates.get(NS, TMPL)
    for wrong in wrong_preconditions(current):
        await expect_conflict(templates.delete(NS, TMPL, preconditions=wrong))
        await expect_conflict(templates.delete(NS, TMPL, preconditions=wrong, dry_run=True))
    assert fake.has_template("acme/spare")
    after = await templates.get(NS, TMPL)
    assert after["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]


async def test_template_matching_preconditions_delete_reading_coder_once(
    templates: TemplateStorage, fake: FakeCoder
) -> None:
    current = await templates.get(NS, TMPL)
    fake.reset_request_counts()
    answer = await templates.delete(NS, TMPL, preconditions=matching(current), dry_run=True)
    assert isinstance(answer, Status)
    assert fake.request_count(*READ_TEMPLATE) == 1
    assert fake.has_template("acme/spare")
    fake.reset_request_counts()
    answer = await templates.delete(NS, TMPL, preconditions=matching(current))
    assert isinstance(answer, Status)
    assert answer.status == "Success"
    assert fake.request_count(*READ_TEMPLATE) == 1  # the delete's own read, no second get
    assert fake.request_count(*READ_TEMPLATE_SOURCE) == 0  # its files were read by the get
    assert not fake.has_template("acme/spare")
    with pytest.raises(StatusError) as info:
        await templates.get(NS, TMPL)
    assert info.value.status.code == 404


async def test_template_with_unreadable_source_deletes_with_preconditions(
    templates: TemplateStorage, fake: FakeCoder
) -> None:
    fake.fail_next_request(
        "GET", "files/{id}", status=200, body=b"PK not a zip", content_type="application/zip"
    )
    with pytest.raises(StatusError) as info:
        await templates.get(NS, TMPL)  # a get reads the source: 500
    assert info.value.status.code == 500
    uid = str(fake.template_json("acme/spare")["id"])
    await expect_conflict(templates.delete(NS, TMPL, preconditions=DeletePreconditions(uid="x")))
    answer = await templates.delete(NS, TMPL, preconditions=DeletePreconditions(uid=uid))
    assert isinstance(answer, Status)  # the check does not read the source
    assert not fake.has_template("acme/spare")
