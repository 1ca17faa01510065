"""Kubernetes metadata on Coder objects: kept in the metadata store, selectable,
finalizers holding deletions, nothing silently dropped (issue 17, items 1-3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from k8swatch import EventType, ListOptions, Status, StatusError, collect_warnings
from k8swatch.coder import (
    MemoryMetadataStore,
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
)
from k8swatch.coder._fake import FakeCoder

from .conftest import CODER_NAMESPACE

NS = CODER_NAMESPACE  # what the conftest's provider serves
WS = "acme.alice.dev-workspace"
TMPL = "acme.starter-template"


@pytest.fixture
def store() -> MemoryMetadataStore:
    return MemoryMetadataStore()


@pytest.fixture(params=["broadcast", "cache"])
async def workspaces(
    request: pytest.FixtureRequest, provider: StaticClientProvider, store: MemoryMetadataStore
) -> AsyncIterator[WorkspaceStorage]:
    storage = WorkspaceStorage(provider, watch_cache=request.param == "cache", metadata_store=store)
    yield storage
    await storage.aclose()


@pytest.fixture
async def templates(
    provider: StaticClientProvider, store: MemoryMetadataStore
) -> AsyncIterator[TemplateStorage]:
    storage = TemplateStorage(provider, watch_cache=True, metadata_store=store)
    yield storage
    await storage.aclose()


def from_now(obj: dict[str, Any]) -> ListOptions:
    """A watch from *obj*'s resourceVersion (broadcast mode: from now)."""
    return ListOptions(resource_version=obj["metadata"]["resourceVersion"])


def with_meta(obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], **fields}}


async def expect_status(code: int, call: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        await call
    assert info.value.status.code == code, info.value.status
    return info.value


def causes(err: StatusError) -> list[str]:
    assert err.status.details is not None
    return [c.field for c in err.status.details.causes]


async def test_labels_and_annotations_are_kept(
    workspaces: WorkspaceStorage, fake: FakeCoder, store: MemoryMetadataStore
) -> None:
    current = await workspaces.get(NS, WS)
    watch = await workspaces.watch(NS, from_now(current))
    async with watch:
        labelled = with_meta(current, labels={"team": "a"}, annotations={"note": "hi"})
        updated = await workspaces.update(NS, WS, labelled)
        assert updated["metadata"]["labels"] == {"team": "a"}
        assert updated["metadata"]["annotations"] == {"note": "hi"}
        assert updated["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
        assert fake.build_transitions("alice/dev-workspace") == []  # Coder untouched
        with anyio.fail_after(5):
            event = await anext(aiter(watch))
        assert event.type is EventType.MODIFIED
        assert event.object["metadata"]["labels"] == {"team": "a"}
        assert event.object["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]
    got = await workspaces.get(NS, WS)
    assert got["metadata"]["labels"] == {"team": "a"}
    assert got["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]
    assert len(store) == 1
    # an update that changes nothing is still a no-op
    assert await workspaces.update(NS, WS, got) == got
    # removing every label removes the record
    cleared = with_meta(got, labels=None, annotations=None)
    cleared = await workspaces.update(NS, WS, cleared)
    assert "labels" not in cleared["metadata"]
    assert len(store) == 0


async def test_label_selectors_on_list_and_watch(
    workspaces: WorkspaceStorage, fake: FakeCoder
) -> None:
    fake.create_workspace_out_of_band("alice", "other")
    await workspaces.resync(NS)
    current = await workspaces.get(NS, WS)
    await workspaces.update(NS, WS, with_meta(current, labels={"team": "a"}))
    selected = await workspaces.list(NS, ListOptions(label_selector="team=a"))
    assert [o["metadata"]["name"] for o in selected.items] == [WS]
    others = await workspaces.list(NS, ListOptions(label_selector="team!=a"))
    assert [o["metadata"]["name"] for o in others.items] == ["acme.alice.other"]
    by_name = await workspaces.list(
        NS, ListOptions(field_selector="metadata.name=acme.alice.other")
    )
    assert [o["metadata"]["name"] for o in by_name.items] == ["acme.alice.other"]
    listed = await workspaces.list(NS, ListOptions())
    watch = await workspaces.watch(
        NS, ListOptions(label_selector="team=b", resource_version=listed.resource_version)
    )
    async with watch:
        other = await workspaces.get(NS, "acme.alice.other")
        await workspaces.update(NS, "acme.alice.other", with_meta(other, labels={"team": "b"}))
        with anyio.fail_after(5):
            event = await anext(aiter(watch))
        assert event.object["metadata"]["name"] == "acme.alice.other"
        assert event.object["metadata"]["labels"] == {"team": "b"}


async def test_create_keeps_metadata(workspaces: WorkspaceStorage) -> None:
    obj = {
        "apiVersion": "aggregation.coder.com/v1alpha1",
        "kind": "CoderWorkspace",
        "metadata": {
            "name": "acme.alice.labelled",
            "labels": {"app": "x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"organization": "acme", "templateName": "starter-template", "running": True},
    }
    created = await workspaces.create(NS, obj)
    assert created["metadata"]["labels"] == {"app": "x"}
    assert "deletionTimestamp" not in created["metadata"]  # a create never starts deleting
    listed = await workspaces.list(NS, ListOptions(label_selector="app=x"))
    assert [o["metadata"]["name"] for o in listed.items] == ["acme.alice.labelled"]


async def test_invalid_metadata_and_unkeepable_fields_are_422(
    workspaces: WorkspaceStorage, templates: TemplateStorage, fake: FakeCoder
) -> None:
    current = await workspaces.get(NS, WS)
    err = await expect_status(
        422, workspaces.update(NS, WS, with_meta(current, labels={"bad key!": "v"}))
    )
    assert causes(err) == ["metadata.labels"]
    assert err.status.message.startswith('CoderWorkspace.aggregation.coder.com "')
    err = await expect_status(
        422, workspaces.update(NS, WS, with_meta(current, finalizers=["not ok/x/y"]))
    )
    assert causes(err) == ["metadata.finalizers[0]"]
    changed_status = {**current, "status": {**current["status"], "ownerName": "mallory"}}
    with collect_warnings() as warnings:
        assert await workspaces.update(NS, WS, changed_status) == current
    assert warnings == [
        f'status: CoderWorkspace "{WS}": the status is read from Coder; the change was not kept'
    ]
    template = await templates.get(NS, TMPL)
    template["spec"]["running"] = True
    err = await expect_status(422, templates.update(NS, TMPL, template))
    assert causes(err) == ["spec.running"]
    assert fake.build_transitions("alice/dev-workspace") == []


async def test_concurrent_metadata_writes_conflict(
    workspaces: WorkspaceStorage, store: MemoryMetadataStore
) -> None:
    current = await workspaces.get(NS, WS)
    await workspaces.update(NS, WS, with_meta(current, labels={"a": "1"}))
    # the same base written again: its resourceVersion is stale now
    err = await expect_status(409, workspaces.update(NS, WS, with_meta(current, labels={"b": "2"})))
    assert err.status.reason == "Conflict"
    # the store refuses a write whose expected revision is not the record's
    ((uid, (revision, body)),) = (await store.read_all()).items()
    assert not await store.write(uid, body, revision + 1, expected=revision - 1)
    assert await store.write(uid, body, revision + 1, expected=revision)


async def test_finalizer_holds_workspace_deletion(
    workspaces: WorkspaceStorage, fake: FakeCoder
) -> None:
    current = await workspaces.get(NS, WS)
    held = await workspaces.update(NS, WS, with_meta(current, finalizers=["example.com/keep"]))
    watch = await workspaces.watch(NS, from_now(held))
    async with watch:
        answer = await workspaces.delete(NS, WS)
        assert isinstance(answer, dict)
        assert answer["metadata"]["deletionTimestamp"]
        assert answer["metadata"]["deletionGracePeriodSeconds"] == 0
        assert answer["metadata"]["finalizers"] == ["example.com/keep"]
        assert fake.build_transitions("alice/dev-workspace") == []  # Coder untouched
        with anyio.fail_after(5):
            event = await anext(aiter(watch))
        assert event.type is EventType.MODIFIED
        assert (
            event.object["metadata"]["deletionTimestamp"] == answer["metadata"]["deletionTimestamp"]
        )
        # a second delete changes nothing
        again = await workspaces.delete(NS, WS)
        assert isinstance(again, dict)
        assert again["metadata"]["deletionTimestamp"] == answer["metadata"]["deletionTimestamp"]
        # no new finalizers once deleting
        deleting = await workspaces.get(NS, WS)
        err = await expect_status(
            422,
            workspaces.update(
                NS, WS, with_meta(deleting, finalizers=["example.com/keep", "example.com/new"])
            ),
        )
        assert causes(err) == ["metadata.finalizers"]
        # a labels change keeps the deletion pending
        deleting = await workspaces.update(NS, WS, with_meta(deleting, labels={"x": "y"}))
        assert fake.build_transitions("alice/dev-workspace") == []
        # removing the last finalizer starts the delete build
        released = await workspaces.update(NS, WS, with_meta(deleting, finalizers=[]))
        assert fake.build_transitions("alice/dev-workspace") == ["delete"]
        assert "finalizers" not in released["metadata"]
        assert released["metadata"]["deletionTimestamp"] == answer["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["example.com/keep"]


async def test_template_finalizer_then_deleted_with_its_metadata(
    templates: TemplateStorage, fake: FakeCoder, store: MemoryMetadataStore
) -> None:
    fake.create_template_out_of_band("acme", "spare")
    await templates.resync(NS)
    name = "acme.spare"
    current = await templates.get(NS, name)
    await templates.update(NS, name, with_meta(current, finalizers=["example.com/keep"]))
    answer = await templates.delete(NS, name)
    assert isinstance(answer, dict)
    assert answer["metadata"]["deletionTimestamp"]
    assert (await templates.get(NS, name))["metadata"]["finalizers"] == ["example.com/keep"]
    deleting = await templates.get(NS, name)
    watch = await templates.watch(NS, from_now(deleting))
    async with watch:
        await templates.update(NS, name, with_meta(deleting, finalizers=None))
        with anyio.fail_after(5):
            event = await anext(aiter(watch))
        assert event.type is EventType.DELETED
    await expect_status(404, templates.get(NS, name))
    assert len(store) == 0
    # without finalizers a delete is immediate and removes the metadata too
    fake.create_template_out_of_band("acme", "spare2")
    spare = await templates.get(NS, "acme.spare2")
    await templates.update(NS, "acme.spare2", with_meta(spare, labels={"a": "b"}))
    assert len(store) == 1
    assert isinstance(await templates.delete(NS, "acme.spare2"), Status)
    assert len(store) == 0


async def test_out_of_band_deletes_clean_up(
    workspaces: WorkspaceStorage,
    templates: TemplateStorage,
    fake: FakeCoder,
    store: MemoryMetadataStore,
) -> None:
    await workspaces.resync(NS)
    current = await workspaces.get(NS, WS)
    await workspaces.update(NS, WS, with_meta(current, labels={"team": "a"}))
    fake.create_template_out_of_band("acme", "spare")
    spare = await templates.get(NS, "acme.spare")
    await templates.update(NS, "acme.spare", with_meta(spare, annotations={"a": "b"}))
    assert len(store) == 2
    fake.delete_workspace_out_of_band("alice/dev-workspace")
    fake.delete_template_out_of_band("acme/spare")
    await workspaces.resync(NS)
    await templates.resync(NS)
    assert len(store) == 0
    # a record whose object vanished while nobody watched is swept too
    await store.write(
        "0b7c1d2e-0000-4000-8000-000000000000",
        {
            "resource": "coderworkspaces",
            "namespace": NS,
            "name": "x",
            "metadata": {"labels": {"a": "b"}},
        },
        1,
        expected=0,
    )
    await templates.resync(NS)
    assert len(store) == 1  # the templates' listing leaves the workspaces' records alone
    await workspaces.resync(NS)
    assert len(store) == 0


async def test_dry_runs_answer_what_the_write_stores(
    workspaces: WorkspaceStorage,
    templates: TemplateStorage,
    fake: FakeCoder,
    store: MemoryMetadataStore,
) -> None:
    current = await workspaces.get(NS, WS)
    wanted = with_meta(current, labels={"team": "a"}, finalizers=["example.com/keep"])
    wanted["spec"] = {**current["spec"], "running": False}
    dry = await workspaces.update(NS, WS, wanted, dry_run=True)
    assert len(store) == 0
    assert fake.build_transitions("alice/dev-workspace") == []
    assert dry["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    real = await workspaces.update(NS, WS, wanted)
    for field in ("labels", "finalizers"):
        assert dry["metadata"][field] == real["metadata"][field]
    assert dry["spec"] == real["spec"]
    # the checks run in the dry run too
    err = await expect_status(
        422, workspaces.update(NS, WS, with_meta(real, labels={"-": "x"}), dry_run=True)
    )
    assert causes(err) == ["metadata.labels"]
    # a dry-run delete of an object with finalizers: marked, not stored
    marked = await workspaces.delete(NS, WS, dry_run=True)
    assert isinstance(marked, dict)
    assert marked["metadata"]["deletionTimestamp"]
    assert "deletionTimestamp" not in (await workspaces.get(NS, WS))["metadata"]
    # a dry-run create of an existing name is refused as the create would be
    obj = {
        "apiVersion": "aggregation.coder.com/v1alpha1",
        "kind": "CoderWorkspace",
        "metadata": {"name": WS, "labels": {"a": "b"}},
        "spec": {"organization": "acme", "templateName": "starter-template", "running": True},
    }
    err = await expect_status(409, workspaces.create(NS, obj, dry_run=True))
    assert err.status.reason == "AlreadyExists"
    obj["metadata"]["name"] = "acme.alice.fresh"
    made = await workspaces.create(NS, obj, dry_run=True)
    assert made["metadata"]["labels"] == {"a": "b"}
    await expect_status(404, workspaces.get(NS, "acme.alice.fresh"))
    template = await templates.get(NS, TMPL)
    dry_template = await templates.update(
        NS,
        TMPL,
        {
            **with_meta(template, annotations={"x": "y"}),
            "spec": {**template["spec"], "description": "new"},
        },
        dry_run=True,
    )
    assert dry_template["spec"]["description"] == "new"
    assert dry_template["metadata"]["annotations"] == {"x": "y"}
    assert (await templates.get(NS, TMPL))["spec"]["description"] != "new"


async def test_delete_preconditions(workspaces: WorkspaceStorage, fake: FakeCoder) -> None:
    from k8swatch._finalizers import DeletePreconditions

    current = await workspaces.get(NS, WS)
    err = await expect_status(
        409, workspaces.delete(NS, WS, preconditions=DeletePreconditions(uid="nope"))
    )
    assert "the UID in the precondition (nope)" in err.status.message
    await expect_status(
        409, workspaces.delete(NS, WS, preconditions=DeletePreconditions(resource_version="1"))
    )
    assert fake.build_transitions("alice/dev-workspace") == []
    uid = current["metadata"]["uid"]
    assert isinstance(
        await workspaces.delete(NS, WS, preconditions=DeletePreconditions(uid=uid)), Status
    )
    assert fake.build_transitions("alice/dev-workspace") == ["delete"]


async def test_owner_references_and_managed_fields_are_kept_as_written(
    workspaces: WorkspaceStorage,
) -> None:
    current = await workspaces.get(NS, WS)
    managed = [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "aggregation.coder.com/v1alpha1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:running": {}}},
        }
    ]
    owner = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1"}]
    updated = await workspaces.update(
        NS, WS, with_meta(current, managedFields=managed, ownerReferences=owner)
    )
    again = await workspaces.get(NS, WS)
    for obj in (updated, again):
        assert obj["metadata"]["managedFields"] == managed
        assert obj["metadata"]["ownerReferences"] == owner
    err = await expect_status(
        422, workspaces.update(NS, WS, with_meta(again, ownerReferences=[{"kind": "X"}]))
    )
    assert causes(err) == [
        "metadata.ownerReferences[0].apiVersion",
        "metadata.ownerReferences[0].name",
        "metadata.ownerReferences[0].uid",
    ]
