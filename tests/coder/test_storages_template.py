"""TemplateStorage against FakeCoder over HTTP (coder-adapters.md §2.2, §4.3)."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest

from k8swatch import ListOptions, StatusError
from k8swatch.coder import CoderClient, StaticClientProvider, TemplateStorage
from k8swatch.coder._fake import FakeCoder

from .conftest import CODER_NAMESPACE

NS = CODER_NAMESPACE  # what the conftest's provider serves
MAIN_TF = 'resource "null_resource" "example" {}'


@pytest.fixture
async def storage(provider: StaticClientProvider) -> AsyncIterator[TemplateStorage]:
    storage = TemplateStorage(provider, build_poll_interval=0.01)
    yield storage
    await storage.aclose()


def template(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aggregation.coder.com/v1alpha1",
        "kind": "CoderTemplate",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"organization": name.split(".")[0], **spec},
    }


async def expect_status(code: int, call: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        await call
    assert info.value.status.code == code, info.value.status
    return info.value


async def test_list_and_get(storage: TemplateStorage) -> None:
    listed = await storage.list(NS, ListOptions())
    assert [o["metadata"]["name"] for o in listed.items] == ["acme.starter-template"]
    assert listed.items[0]["spec"]["files"] == {"main.tf": MAIN_TF}  # lists carry the source
    assert listed.resource_version.isdigit()  # a watch from it starts "now"
    got = await storage.get(NS, "acme.starter-template")
    assert got["spec"]["organization"] == "acme"
    assert got["spec"]["files"] == {"main.tf": MAIN_TF}  # binary.dat left out
    assert got["metadata"]["namespace"] == NS
    assert got["metadata"]["resourceVersion"] == listed.items[0]["metadata"]["resourceVersion"]


async def test_create_and_delete(storage: TemplateStorage, fake: FakeCoder) -> None:
    created = await storage.create(
        NS,
        template(
            "acme.ops-template",
            versionID=str(uuid.uuid4()),
            displayName="Ops Template",
            description="Operations tooling",
            icon="/icons/ops.png",
        ),
    )
    assert created["metadata"]["name"] == "acme.ops-template"
    assert created["spec"]["displayName"] == "Ops Template"
    assert "files" not in created["spec"]  # the fake's synthetic version has an empty source
    assert fake.has_template("acme/ops-template")
    status = await storage.delete(NS, "acme.ops-template")
    assert status.to_dict() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    assert not fake.has_template("acme/ops-template")
    err = await expect_status(404, storage.get(NS, "acme.ops-template"))
    assert err.status.message == (
        'codertemplates.aggregation.coder.com "acme.ops-template" not found'
    )


async def test_create_errors(storage: TemplateStorage) -> None:
    err = await expect_status(400, storage.create(NS, template("acme.x", versionID="nope")))
    assert err.status.message == 'parse template spec.versionID "nope": invalid UUID length: 4'
    err = await expect_status(400, storage.create(NS, template("acme.x.y", versionID="")))
    assert err.status.message.startswith('invalid template name "acme.x.y": ')
    bad_org = template("acme.x", versionID=str(uuid.uuid4()))
    bad_org["spec"]["organization"] = "other"
    err = await expect_status(400, storage.create(NS, bad_org))
    assert err.status.message == (
        'spec.organization "other" must match organization "acme" parsed from metadata.name'
    )
    other_ns = template("acme.x", versionID=str(uuid.uuid4()))
    other_ns["metadata"]["namespace"] = "elsewhere"
    err = await expect_status(400, storage.create(NS, other_ns))
    assert err.status.message == (
        'metadata.namespace "elsewhere" must match request namespace "control-plane"'
    )
    await expect_status(400, storage.create("", template("acme.x", versionID="")))
    err = await expect_status(
        409, storage.create(NS, template("acme.starter-template", versionID=str(uuid.uuid4())))
    )
    assert err.status.reason == "AlreadyExists"
    err = await expect_status(400, storage.create(NS, template("acme.bad", files={"../x": "y"})))
    assert err.status.message.startswith("invalid template spec.files: ")


async def test_create_with_files(storage: TemplateStorage, fake: FakeCoder) -> None:
    files, versions = fake.file_count(), fake.template_version_count()
    created = await storage.create(
        NS, template("acme.files-template", displayName="Files", files={"main.tf": "# v1"})
    )
    assert fake.file_count() == files + 1
    assert fake.template_version_count() == versions + 1
    assert created["status"]["activeVersionID"] == fake.template_active_version_id(
        "acme/files-template"
    )
    assert created["spec"]["files"] == {"main.tf": "# v1"}
    got = await storage.get(NS, "acme.files-template")
    assert got["spec"]["files"] == {"main.tf": "# v1"}


async def test_update_files_creates_and_promotes_a_version(
    storage: TemplateStorage, fake: FakeCoder
) -> None:
    current = await storage.get(NS, "acme.starter-template")
    before = fake.template_active_version_id("acme/starter-template")
    files, versions = fake.file_count(), fake.template_version_count()
    current["spec"]["files"] = {"main.tf": "# new", "extra.tf": "# extra"}
    updated = await storage.update(NS, "acme.starter-template", current)
    assert fake.file_count() == files + 1
    assert fake.template_version_count() == versions + 1
    after = fake.template_active_version_id("acme/starter-template")
    assert after != before
    assert updated["spec"]["files"] == {"main.tf": "# new", "extra.tf": "# extra"}
    assert updated["status"]["activeVersionID"] == after
    got = await storage.get(NS, "acme.starter-template")
    assert got["spec"]["files"] == updated["spec"]["files"]
    # binary.dat survives with its bytes and mode; main.tf keeps its mode
    with zipfile.ZipFile(io.BytesIO(fake.template_active_source_zip("acme/starter-template"))) as z:
        assert z.read("binary.dat") == b"\x80\x81\x82"
        assert (z.getinfo("binary.dat").external_attr >> 16) & 0o777 == 0o755
        assert (z.getinfo("main.tf").external_attr >> 16) & 0o777 == 0o755


async def test_update_waits_for_a_pending_version(
    storage: TemplateStorage, fake: FakeCoder
) -> None:
    fake.set_next_template_version("pending", pending_polls=2)
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["files"] = {"main.tf": "# waited"}
    updated = await storage.update(NS, "acme.starter-template", current)
    assert updated["spec"]["files"] == {"main.tf": "# waited"}


async def test_failed_version_build(storage: TemplateStorage, fake: FakeCoder) -> None:
    before = fake.template_active_version_id("acme/starter-template")
    fake.set_next_template_version("failed", error="terraform exploded")
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["files"] = {"main.tf": "# broken"}
    err = await expect_status(400, storage.update(NS, "acme.starter-template", current))
    assert "build ended with status" in err.status.message
    assert "terraform exploded" in err.status.message
    assert fake.template_active_version_id("acme/starter-template") == before


async def test_version_wait_timeout_and_request_deadline(
    provider: StaticClientProvider, fake: FakeCoder
) -> None:
    storage = TemplateStorage(provider, build_wait_timeout=0.12, build_poll_interval=0.015)
    fake.set_next_template_version("pending")
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["files"] = {"main.tf": "# slow"}
    err = await expect_status(400, storage.update(NS, "acme.starter-template", current))
    assert "did not succeed within 120ms" in err.status.message

    slow = TemplateStorage(provider, build_poll_interval=0.015)
    fake.set_next_template_version("pending")
    with anyio.fail_after(15):  # the outer test guard
        with anyio.CancelScope(deadline=anyio.current_time() + 2.5):
            err = await expect_status(504, slow.update(NS, "acme.starter-template", current))
    assert err.status.reason == "Timeout", err.status
    await storage.aclose()
    await slow.aclose()


async def test_promotion_that_does_not_take_effect(
    storage: TemplateStorage, fake: FakeCoder
) -> None:
    before = fake.template_active_version_id("acme/starter-template")
    files, versions = fake.file_count(), fake.template_version_count()
    fake.ignore_next_promotion()
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["files"] = {"main.tf": "# not promoted"}
    err = await expect_status(500, storage.update(NS, "acme.starter-template", current))
    assert "active version promotion did not take effect" in err.status.message
    assert fake.file_count() == files + 1
    assert fake.template_version_count() == versions + 1
    assert fake.template_active_version_id("acme/starter-template") == before


@pytest.mark.parametrize("files", [{"main.tf": MAIN_TF}, {"./main.tf": MAIN_TF}])
async def test_identical_files_change_nothing(
    storage: TemplateStorage, fake: FakeCoder, files: dict[str, str]
) -> None:
    counts = fake.file_count(), fake.template_version_count()
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["files"] = files
    await storage.update(NS, "acme.starter-template", current)
    assert (fake.file_count(), fake.template_version_count()) == counts


async def test_metadata_update_is_one_patch(storage: TemplateStorage, fake: FakeCoder) -> None:
    files = fake.file_count()
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["displayName"] = "Renamed"
    current["spec"]["description"] = ""  # clearing is a change, sent as ""
    updated = await storage.update(NS, "acme.starter-template", current)
    assert fake.template_meta_update_count("acme/starter-template") == 1
    assert fake.file_count() == files
    assert updated["spec"]["displayName"] == "Renamed"
    assert "description" not in updated["spec"]


async def test_legacy_running_and_version_id(storage: TemplateStorage) -> None:
    current = await storage.get(NS, "acme.starter-template")
    current["spec"]["running"] = True
    err = await expect_status(422, storage.update(NS, "acme.starter-template", current))
    assert err.status.details is not None
    assert [c.field for c in err.status.details.causes] == ["spec.running"]
    current["spec"]["running"] = False
    updated = await storage.update(NS, "acme.starter-template", current)
    assert "running" not in updated["spec"]
    updated["spec"]["versionID"] = ""
    updated = await storage.update(NS, "acme.starter-template", updated)
    updated["spec"]["versionID"] = str(uuid.uuid4())
    err = await expect_status(400, storage.update(NS, "acme.starter-template", updated))
    assert err.status.message.startswith("spec.versionID is read-only; to change the active")


async def test_update_preconditions(storage: TemplateStorage) -> None:
    current = await storage.get(NS, "acme.starter-template")
    no_rv = {
        **current,
        "metadata": {k: v for k, v in current["metadata"].items() if k != "resourceVersion"},
    }
    err = await expect_status(400, storage.update(NS, "acme.starter-template", no_rv))
    assert err.status.message == "metadata.resourceVersion is required for update"
    stale = {
        **current,
        "metadata": {
            **current["metadata"],
            "resourceVersion": current["metadata"]["resourceVersion"] + "-stale",
        },
    }
    err = await expect_status(409, storage.update(NS, "acme.starter-template", stale))
    assert err.status.reason == "Conflict"
    assert "resource version mismatch" in err.status.message
    renamed = {**current, "metadata": {**current["metadata"], "name": "acme.other"}}
    err = await expect_status(400, storage.update(NS, "acme.starter-template", renamed))
    assert err.status.message == (
        'updated object metadata.name "acme.other" must match request name "acme.starter-template"'
    )
    moved = {**current, "metadata": {**current["metadata"], "namespace": "elsewhere"}}
    await expect_status(400, storage.update(NS, "acme.starter-template", moved))
    await expect_status(404, storage.update(NS, "acme.missing", current))


async def test_force_allow_create(storage: TemplateStorage, fake: FakeCoder) -> None:
    obj = template("acme.ssa-template", files={"main.tf": "# ssa"})
    result, created = await storage.update_or_create(
        NS, "acme.ssa-template", obj, force_allow_create=True
    )
    assert created is True
    assert result["metadata"]["name"] == "acme.ssa-template"
    assert fake.has_template("acme/ssa-template")


class TwoDeployments:
    """Namespaces ns-a and ns-b, each its own Coder deployment."""

    def __init__(self, urls: dict[str, tuple[str, str]]) -> None:
        self.clients = {ns: CoderClient(url, token) for ns, (url, token) in urls.items()}
        self.asked: list[str] = []

    async def client_for_namespace(self, namespace: str) -> CoderClient:
        self.asked.append(namespace)
        return self.clients[namespace]

    async def eligible_namespaces(self) -> Sequence[str]:
        return sorted(self.clients)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


async def test_all_namespaces_lists(storage: TemplateStorage, serve_fake_coder: Any) -> None:
    listed = await storage.list("", ListOptions())
    assert [o["metadata"]["namespace"] for o in listed.items] == [NS]
    err = await expect_status(400, storage.list("other-namespace", ListOptions()))
    assert "is not served by this aggregated API server" in err.status.message
    async with (
        serve_fake_coder(FakeCoder(token="a")) as a,
        serve_fake_coder(FakeCoder(token="b")) as b,
    ):
        provider = TwoDeployments({"ns-b": (b.url, b.token), "ns-a": (a.url, a.token)})
        two = TemplateStorage(provider)
        listed = await two.list("", ListOptions())
        assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in listed.items] == [
            ("ns-a", "acme.starter-template"),
            ("ns-b", "acme.starter-template"),
        ]
        provider.asked.clear()
        await two.list("ns-b", ListOptions())
        assert set(provider.asked) == {"ns-b"}  # the list, then its files
        await two.aclose()
        await provider.aclose()
