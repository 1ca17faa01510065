"""FakeCoder: every endpoint, error bodies, builds, the change feed and the SSE watch.

Quick request/response checks use the in-process ``httpx.ASGITransport``; everything
that streams (SSE) or needs a real server goes over HTTP through the
``fake_coder_server`` fixture (uvicorn on asyncio, hypercorn on trio).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import tarfile
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from k8swatch.coder._fake import FakeCoder, FakeCoderChange, FakeCoderError
from k8swatch.coder._fake_model import format_time, parse_search_query, parse_time

from .conftest import TEST_TOKEN, FakeCoderServer, ServeFakeCoder

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NIL = "00000000-0000-0000-0000-000000000000"
ACME_ID = "5f1c2b7e-8d3a-4c6f-9b21-0a7e4d3c2b10"
ALICE_ID = "a11ce000-4b7e-4c1d-8e2f-3a4b5c6d7e01"
TEMPLATE_ID = "7e3a9c10-2b4d-4f6a-8c1e-5d7f9a0b1c20"
VERSION_ID = "9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30"
FILE_ID = "f11e0000-3c5d-4e7f-9a1b-2c3d4e5f6a40"
WORKSPACE_ID = "3b5d7f90-4c6e-4a8b-9c0d-1e2f3a4b5c50"
MAIN_TF = 'resource "null_resource" "example" {}'


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def error_fixture(name: str) -> Any:
    return fixture("errors.json")[name]


class ManualClock:
    """A clock the test moves by hand (POSIX seconds)."""

    def __init__(self, start: str = "2026-01-01T12:00:01Z") -> None:
        self.now = parse_time(start) / 1_000_000

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_for(fake: FakeCoder, *, token: str | None = TEST_TOKEN) -> httpx.AsyncClient:
    headers = {} if token is None else {"Coder-Session-Token": token}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake), base_url="http://fake", headers=headers
    )


@pytest.fixture
async def client(fake_coder: FakeCoder) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(fake_coder) as c:
        yield c


def assert_same_shape(actual: Any, expected: Any, path: str = "$") -> None:
    """Same keys at every level (values may differ), as codersdk would serialise."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), (path, set(actual) ^ set(expected))
        for key in expected:
            if expected[key] is not None and actual[key] is not None:
                assert_same_shape(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected and actual:
        assert_same_shape(actual[0], expected[0], f"{path}[0]")


async def upload_zip(client: httpx.AsyncClient, files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    response = await client.post(
        "/api/v2/files", content=buffer.getvalue(), headers={"Content-Type": "application/zip"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["hash"])


async def create_version(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    if "file_id" not in body:
        body["file_id"] = await upload_zip(client, {"main.tf": uuid.uuid4().bytes})
    body.setdefault("storage_method", "file")
    body.setdefault("provisioner", "terraform")
    body.setdefault("template_id", NIL)
    response = await client.post(f"/api/v2/organizations/{ACME_ID}/templateversions", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def create_template(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    version = await create_version(client)
    body = {"name": name, "template_version_id": version["id"], **extra}
    response = await client.post(f"/api/v2/organizations/{ACME_ID}/templates", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def create_workspace(
    client: httpx.AsyncClient, name: str, *, user: str = "alice", **extra: Any
) -> httpx.Response:
    body = {"name": name, "template_id": TEMPLATE_ID, "template_version_preset_id": NIL}
    body.update(extra)
    return await client.post(f"/api/v2/users/{user}/workspaces", json=body)


# --------------------------------------------------------------------------- seed


async def test_seed_matches_the_fixtures(client: httpx.AsyncClient) -> None:
    expectations = {
        "/api/v2/organizations/acme": fixture("organization.json"),
        f"/api/v2/organizations/{ACME_ID}": fixture("organization.json"),
        "/api/v2/users/alice": fixture("user.json"),
        f"/api/v2/templates/{TEMPLATE_ID}": fixture("template.json"),
        "/api/v2/organizations/acme/templates/starter-template": fixture("template.json"),
        f"/api/v2/templateversions/{VERSION_ID}": fixture("template-version.json"),
        "/api/v2/users/alice/workspace/dev-workspace": fixture("workspace.json"),
        f"/api/v2/workspaces/{WORKSPACE_ID}": fixture("workspace.json"),
        "/api/v2/workspacebuilds/b0110001-5d7f-4b9c-8d1e-2f3a4b5c6d60": fixture("workspace.json")[
            "latest_build"
        ],
    }
    for path, expected in expectations.items():
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == expected, path
        # Key order too, as codersdk's struct order (json.loads keeps it).
        assert json.dumps(response.json()) == json.dumps(expected), path


async def test_seeded_lists(client: httpx.AsyncClient) -> None:
    workspaces = (await client.get("/api/v2/workspaces", params={"q": ""})).json()
    assert workspaces == {"workspaces": [fixture("workspace.json")], "count": 1}
    templates = (await client.get("/api/v2/templates", params={"q": ""})).json()
    assert templates == [fixture("template.json")]
    organizations = (await client.get("/api/v2/organizations")).json()
    assert organizations == [fixture("organization.json")]


async def test_seeded_source_archive(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v2/files/{FILE_ID}", params={"format": "zip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.read("main.tf").decode() == MAIN_TF
        assert archive.read("binary.dat") == bytes([0x80, 0x81, 0x82])
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert (info.external_attr >> 16) & 0o777 == 0o755


def test_unseeded_fake_has_only_the_token_user() -> None:
    fake = FakeCoder(seed=False)
    assert not fake.has_template("acme/starter-template")
    assert not fake.has_workspace("alice/dev-workspace")
    assert fake.file_count() == 0
    assert fake.template_version_count() == 0
    fake.seed_demo_data()
    fake.seed_demo_data()  # idempotent
    assert fake.has_workspace("acme.alice.dev-workspace")
    assert fake.template_version_count() == 1


def test_seeded_constructor_and_token() -> None:
    fake = FakeCoder.seeded(token="t0k")
    assert fake.token == "t0k"
    assert fake.has_template("acme.starter-template")
    random_token = FakeCoder().token
    key_id, _, secret = random_token.partition("-")
    assert len(key_id) == 10
    assert len(secret) == 22
    assert FakeCoder().token != random_token


def test_repr_does_not_show_the_token() -> None:
    fake = FakeCoder(token="s3cret")
    assert repr(fake) == "<FakeCoder instant builds, 1 template(s), 1 workspace(s)>"
    fake.close()
    assert "s3cret" not in repr(fake)
    assert repr(fake).endswith(", closed>")


@given(st.integers(min_value=0, max_value=parse_time("9999-12-31T23:59:59.999999Z")))
def test_time_format_round_trips(us: int) -> None:
    text = format_time(us)
    assert parse_time(text) == us
    assert text.endswith("Z")
    fraction = text[len("2026-01-01T00:00:00") : -1]
    assert not fraction.endswith("0")  # Go's RFC3339Nano trims trailing zeros


def test_time_format_examples() -> None:
    # The resourceVersion examples of the fixtures' README.
    assert parse_time("2026-01-01T11:30:00Z") * 1000 == 1767267000000000000
    assert parse_time("2026-01-01T11:58:30.123456Z") * 1000 == 1767268710123456000
    assert format_time(1767268710120000) == "2026-01-01T11:58:30.12Z"
    with pytest.raises(ValueError, match="UTC"):
        parse_time("2026-01-01T11:30:00+01:00")


def test_search_query_parsing() -> None:
    allowed = ("name", "owner")
    parse = functools.partial(parse_search_query, allowed=allowed, default_key="name", what="x")
    assert parse("") == {}
    assert parse('owner:me name:"two words"') == {"owner": "me", "name": "two words"}
    assert parse("  dev  ") == {"name": "dev"}
    assert parse("OWNER:alice") == {"owner": "alice"}
    with pytest.raises(FakeCoderError) as excinfo:
        parse("owner: size:big")
    assert excinfo.value.status == 400
    assert excinfo.value.message == "Invalid x search query."
    assert [field for field, _ in excinfo.value.validations] == ["owner", "size"]
    assert excinfo.value.to_body()["validations"][1] == {
        "field": "size",
        "detail": 'Query param "size" is not a valid query param',
    }


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="build_mode"):
        FakeCoder(build_mode="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="build_step_seconds"):
        FakeCoder(build_step_seconds=-1)
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        FakeCoder(heartbeat_seconds=0)


# --------------------------------------------------------------------------- transport


async def test_authentication(fake_coder: FakeCoder) -> None:
    async with client_for(fake_coder, token=None) as anonymous:
        response = await anonymous.get("/api/v2/workspaces")
        assert response.status_code == 401
        assert response.json() == error_fixture("unauthorized_missing_token")["body"]
        bad = await anonymous.get("/api/v2/workspaces", headers={"Coder-Session-Token": "nope"})
        assert bad.status_code == 401
        assert bad.json() == {
            "message": (
                "You are signed out or your session has expired. Please sign in again to continue."
            ),
            "detail": "API key is invalid.",
        }
        assert "nope" not in bad.text
        wrong_secret = fake_coder.token.partition("-")[0] + "-wrong"
        bad = await anonymous.get(
            "/api/v2/workspaces", headers={"Coder-Session-Token": wrong_secret}
        )
        assert bad.json()["detail"] == "API key secret is invalid."
        by_query = await anonymous.get(
            "/api/v2/workspaces", params={"coder_session_token": TEST_TOKEN}
        )
        assert by_query.status_code == 200
        by_cookie = await anonymous.get(
            "/api/v2/workspaces", headers={"Cookie": f"coder_session_token={TEST_TOKEN}"}
        )
        assert by_cookie.status_code == 200
        info = await anonymous.get("/api/v2/buildinfo")  # unauthenticated in Coder too
        assert info.status_code == 200
        assert info.json()["version"] == "v2.30.0"
        unknown = await anonymous.get("/api/v2/nonsense")
        assert unknown.status_code == 404
        assert unknown.json() == error_fixture("route_not_found")["body"]


async def test_routing_errors(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v2/nonsense")).json() == {"message": "Route not found."}
    assert (await client.get("/healthz")).status_code == 404
    wrong_method = await client.put(f"/api/v2/templates/{TEMPLATE_ID}")
    assert wrong_method.status_code == 405
    bad_uuid = await client.get("/api/v2/templates/not-a-uuid")
    assert bad_uuid.status_code == 400
    assert bad_uuid.json()["message"] == 'Invalid UUID "not-a-uuid".'
    bad_json = await client.post(
        "/api/v2/users/alice/workspaces",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["message"] == "Request body must be valid JSON."
    not_object = await client.post("/api/v2/users/alice/workspaces", json=[1, 2])
    assert not_object.json()["message"] == "Request body must be valid JSON."
    wrong_type = await client.post(
        "/api/v2/users/alice/workspaces",
        json={"name": "x", "template_id": TEMPLATE_ID, "ttl_ms": "long"},
    )
    assert wrong_type.json()["message"] == "Request body must be valid JSON."


async def test_not_found_bodies(client: httpx.AsyncClient) -> None:
    expected = error_fixture("not_found")
    response = await client.get("/api/v2/organizations/acme/templates/nope")
    assert response.status_code == expected["status"]
    assert response.json() == expected["body"]
    for path in (
        "/api/v2/organizations/nope",
        f"/api/v2/templates/{uuid.uuid4()}",
        f"/api/v2/templateversions/{uuid.uuid4()}",
        f"/api/v2/workspaces/{uuid.uuid4()}",
        f"/api/v2/workspacebuilds/{uuid.uuid4()}",
        f"/api/v2/files/{uuid.uuid4()}",
        "/api/v2/users/alice/workspace/nope",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == expected["body"], path
    unknown_user = error_fixture("unknown_user")
    response = await client.get("/api/v2/users/bob/workspace/dev")
    assert response.status_code == unknown_user["status"]
    assert response.json() == unknown_user["body"]


async def test_users(client: httpx.AsyncClient) -> None:
    me = (await client.get("/api/v2/users/me")).json()
    assert me["username"] == "admin"
    by_id = (await client.get(f"/api/v2/users/{ALICE_ID}")).json()
    assert by_id == fixture("user.json")
    assert (await client.get("/api/v2/users/bob")).status_code == 400


# --------------------------------------------------------------------------- files


async def test_file_upload_and_download(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    before = fake_coder.file_count()
    archive = b"PK\x05\x06" + b"\x00" * 18  # an empty zip
    first = await client.post(
        "/api/v2/files", content=archive, headers={"Content-Type": "application/zip"}
    )
    assert first.status_code == 201
    assert set(first.json()) == set(fixture("upload-response.json"))
    again = await client.post(
        "/api/v2/files", content=archive, headers={"Content-Type": "application/zip"}
    )
    assert again.status_code == 200
    assert again.json() == first.json()
    assert fake_coder.file_count() == before + 1
    download = await client.get(f"/api/v2/files/{first.json()['hash']}")
    assert download.content == archive
    assert (
        await client.get(f"/api/v2/files/{FILE_ID}", params={"format": "tar"})
    ).status_code == 400
    wrong_type = await client.post(
        "/api/v2/files", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 400
    empty = await client.post(
        "/api/v2/files", content=b"", headers={"Content-Type": "application/zip"}
    )
    assert empty.status_code == 400


async def test_tar_upload_is_served_as_zip(client: httpx.AsyncClient) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("main.tf")
        info.size = len(MAIN_TF)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(MAIN_TF.encode()))
    response = await client.post(
        "/api/v2/files", content=buffer.getvalue(), headers={"Content-Type": "application/x-tar"}
    )
    file_id = response.json()["hash"]
    raw = await client.get(f"/api/v2/files/{file_id}")
    assert raw.headers["content-type"] == "application/x-tar"
    as_zip = await client.get(f"/api/v2/files/{file_id}", params={"format": "zip"})
    assert as_zip.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(as_zip.content)) as archive:
        assert archive.read("main.tf").decode() == MAIN_TF


# --------------------------------------------------------------------------- templates


async def test_template_create_from_files(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    files, versions = fake_coder.file_count(), fake_coder.template_version_count()
    file_id = await upload_zip(client, {"main.tf": b"# ops"})
    version = await create_version(client, file_id=file_id)
    assert "template_id" not in version
    assert version["job"]["status"] == "succeeded"
    assert version["name"] == f"template-version-{versions + 1}"
    body = {
        "name": "ops-template",
        "template_version_id": version["id"],
        "display_name": "Ops Template",
        "description": "Operations tooling",
        "icon": "/icons/ops.png",
        "allow_user_cancel_workspace_jobs": None,
        "disable_everyone_group_access": False,
        "require_active_version": False,
        "max_port_share_level": None,
    }
    response = await client.post(f"/api/v2/organizations/{ACME_ID}/templates", json=body)
    assert response.status_code == 201
    template = response.json()
    assert_same_shape(template, fixture("template.json"))
    assert template["active_version_id"] == version["id"]
    assert template["organization_name"] == "acme"
    assert template["display_name"] == "Ops Template"
    assert template["created_at"] == template["updated_at"]
    assert fake_coder.file_count() == files + 1
    assert fake_coder.template_version_count() == versions + 1
    assert fake_coder.has_template("acme/ops-template")
    attached = (await client.get(f"/api/v2/templateversions/{version['id']}")).json()
    assert attached["template_id"] == template["id"]
    by_name = await client.get("/api/v2/organizations/acme/templates/ops-template")
    assert by_name.json()["id"] == template["id"]
    duplicate = await client.post(
        f"/api/v2/organizations/{ACME_ID}/templates",
        json={"name": "starter-template", "template_version_id": str(uuid.uuid4())},
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == error_fixture("template_exists")["body"]
    reused = await client.post(
        f"/api/v2/organizations/{ACME_ID}/templates",
        json={"name": "other", "template_version_id": version["id"]},
    )
    assert reused.status_code == 400
    invalid = await client.post(
        f"/api/v2/organizations/{ACME_ID}/templates",
        json={"name": "Bad_Name", "template_version_id": version["id"]},
    )
    assert invalid.status_code == 400
    assert invalid.json()["message"] == "Validation failed."
    missing_version = await client.post(
        f"/api/v2/organizations/{ACME_ID}/templates",
        json={"name": "no-version", "template_version_id": NIL},
    )
    assert missing_version.status_code == 400
    assert missing_version.json()["validations"][0]["field"] == "template_version_id"


async def test_template_with_unknown_version(
    fake_coder: FakeCoder, client: httpx.AsyncClient
) -> None:
    version_id = str(uuid.uuid4())
    response = await client.post(
        f"/api/v2/organizations/{ACME_ID}/templates",
        json={"name": "watch-template", "template_version_id": version_id, "display_name": "W"},
    )
    assert response.status_code == 201
    assert response.json()["active_version_id"] == version_id
    version = (await client.get(f"/api/v2/templateversions/{version_id}")).json()
    assert version["job"]["status"] == "succeeded"
    source = await client.get(
        f"/api/v2/files/{version['job']['file_id']}", params={"format": "zip"}
    )
    assert zipfile.ZipFile(io.BytesIO(source.content)).namelist() == []
    strict = FakeCoder(token=TEST_TOKEN, accept_unknown_template_versions=False)
    async with client_for(strict) as strict_client:
        missing = "00000000-0000-0000-0000-000000000001"
        refused = await strict_client.post(
            f"/api/v2/organizations/{ACME_ID}/templates",
            json={"name": "x", "template_version_id": missing},
        )
    expected = error_fixture("template_version_missing")
    assert refused.status_code == expected["status"]
    assert refused.json() == expected["body"]


async def test_template_patch(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    before = (await client.get(f"/api/v2/templates/{TEMPLATE_ID}")).json()
    body = {
        "display_name": "Renamed",
        "description": "",
        "icon": "/icons/starter.png",
        "update_workspace_last_used_at": False,
        "update_workspace_dormant_at": False,
        "disable_everyone_group_access": False,
    }
    response = await client.patch(f"/api/v2/templates/{TEMPLATE_ID}", json=body)
    assert response.status_code == 200
    after = response.json()
    assert after["display_name"] == "Renamed"
    assert after["description"] == ""
    assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
    unchanged = await client.patch(f"/api/v2/templates/{TEMPLATE_ID}", json=body)
    assert unchanged.status_code == 304
    assert fake_coder.template_meta_update_count("acme/starter-template") == 2
    deprecate = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}", json={"deprecation_message": "Use another."}
    )
    assert deprecate.json()["deprecated"] is True
    refused = await create_workspace(client, "new-one")
    assert refused.status_code == 400
    assert "deprecated" in refused.json()["message"]
    assert (await client.patch(f"/api/v2/templates/{uuid.uuid4()}", json={})).status_code == 404


async def test_template_promotion(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    old = (await client.get(f"/api/v2/templates/{TEMPLATE_ID}")).json()
    version = await create_version(client, template_id=TEMPLATE_ID)
    assert version["template_id"] == TEMPLATE_ID
    response = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": version["id"]}
    )
    assert response.status_code == 200
    assert response.json() == {"message": "Updated the active template version!"}
    assert fake_coder.template_active_version_id(TEMPLATE_ID) == version["id"]
    new = (await client.get(f"/api/v2/templates/{TEMPLATE_ID}")).json()
    assert parse_time(new["updated_at"]) > parse_time(old["updated_at"])
    workspace = (await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}")).json()
    assert workspace["outdated"] is True
    assert workspace["template_active_version_id"] == version["id"]

    # An unattached version is attached by the promotion (as the coder-k8s mock does).
    loose = await create_version(client)
    assert (
        await client.patch(f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": loose["id"]})
    ).status_code == 200

    # A version of another template.
    other = await create_template(client, "other-template")
    foreign = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": other["active_version_id"]}
    )
    assert foreign.status_code == 400
    assert foreign.json()["message"] == (
        "The provided template version doesn't belong to the specified template."
    )

    # Only succeeded imports can be promoted.
    fake_coder.set_next_template_version("running")
    running = await create_version(client, template_id=TEMPLATE_ID)
    refused = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": running["id"]}
    )
    expected = error_fixture("promote_unbuilt_version")
    assert refused.status_code == expected["status"]
    assert refused.json() == expected["body"]

    # The silent-failure knob: 200, updated_at moves, active version does not.
    current = fake_coder.template_active_version_id(TEMPLATE_ID)
    fake_coder.ignore_next_promotion()
    target = await create_version(client, template_id=TEMPLATE_ID)
    ignored = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": target["id"]}
    )
    assert ignored.status_code == 200
    assert fake_coder.template_active_version_id(TEMPLATE_ID) == current
    again = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": target["id"]}
    )
    assert again.status_code == 200
    assert fake_coder.template_active_version_id(TEMPLATE_ID) == target["id"]
    unknown = await client.patch(
        f"/api/v2/templates/{TEMPLATE_ID}/versions", json={"id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404


async def test_template_version_knobs(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    fake_coder.set_next_template_version("pending", pending_polls=2)
    version = await create_version(client, template_id=TEMPLATE_ID)
    assert_same_shape(version, fixture("template-version-pending.json"))
    assert version["job"]["status"] == "pending"
    path = f"/api/v2/templateversions/{version['id']}"
    statuses = [(await client.get(path)).json()["job"]["status"] for _ in range(4)]
    assert statuses == ["pending", "pending", "succeeded", "succeeded"]
    done = (await client.get(path)).json()
    assert_same_shape(done, fixture("template-version.json"))
    assert "completed_at" in done["job"]

    fake_coder.set_next_template_version("failed", error="boom")
    failed = await create_version(client, template_id=TEMPLATE_ID)
    assert failed["job"]["status"] == "failed"
    assert failed["job"]["error"] == "boom"
    # The knob is one-shot.
    assert (await create_version(client))["job"]["status"] == "succeeded"
    # A version whose import failed cannot be built.
    refused = await client.post(
        "/api/v2/users/alice/workspaces",
        json={"name": "on-failed", "template_version_id": failed["id"]},
    )
    assert refused.status_code == 400
    assert "has failed to import" in refused.json()["message"]


async def test_template_version_errors(client: httpx.AsyncClient) -> None:
    url = f"/api/v2/organizations/{ACME_ID}/templateversions"
    no_file = await client.post(url, json={"storage_method": "file", "file_id": NIL})
    assert no_file.status_code == 400
    assert no_file.json()["validations"][0]["field"] == "file_id"
    unknown_file = await client.post(url, json={"file_id": str(uuid.uuid4())})
    assert unknown_file.status_code == 404
    file_id = await upload_zip(client, {"main.tf": b""})
    unknown_template = await client.post(
        url, json={"file_id": file_id, "template_id": str(uuid.uuid4())}
    )
    assert unknown_template.status_code == 404
    wrong_method = await client.post(url, json={"file_id": file_id, "storage_method": "git"})
    assert wrong_method.status_code == 400
    unknown_org = await client.post(
        "/api/v2/organizations/nope/templateversions", json={"file_id": file_id}
    )
    assert unknown_org.status_code == 404


async def test_template_delete(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    in_use = await client.delete(f"/api/v2/templates/{TEMPLATE_ID}")
    expected = error_fixture("template_has_workspaces")
    assert in_use.status_code == expected["status"]
    assert in_use.json() == expected["body"]
    template = await create_template(client, "short-lived")
    deleted = await client.delete(f"/api/v2/templates/{template['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Template has been deleted!"}
    assert not fake_coder.has_template("acme/short-lived")
    assert (await client.get(f"/api/v2/templates/{template['id']}")).status_code == 404
    by_name = await client.get("/api/v2/organizations/acme/templates/short-lived")
    assert by_name.status_code == 404
    names = [t["name"] for t in (await client.get("/api/v2/templates")).json()]
    assert names == ["starter-template"]
    again = await create_template(client, "short-lived")  # the name is reusable
    assert again["id"] != template["id"]
    assert (await client.delete(f"/api/v2/templates/{template['id']}")).status_code == 404


async def test_template_search(client: httpx.AsyncClient) -> None:
    await create_template(client, "alpha")
    await create_template(client, "beta-tools")

    async def names(q: str) -> list[str]:
        response = await client.get("/api/v2/templates", params={"q": q})
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()]

    assert await names("") == ["alpha", "beta-tools", "starter-template"]
    assert await names("exact_name:alpha") == ["alpha"]
    assert await names(f"organization:{ACME_ID} exact_name:beta-tools") == ["beta-tools"]
    assert await names("organization:acme name:TOOLS") == ["beta-tools"]
    assert await names('name:"beta"') == ["beta-tools"]
    assert await names("star") == ["starter-template"]
    assert await names("deprecated:true") == []
    bad = await client.get("/api/v2/templates", params={"q": "author:me color:red"})
    assert bad.status_code == 400
    assert bad.json()["message"] == "Invalid template search query."
    assert [v["field"] for v in bad.json()["validations"]] == ["author", "color"]


# --------------------------------------------------------------------------- workspaces


async def test_workspace_create(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    response = await create_workspace(
        client,
        "ops-workspace",
        template_version_id=NIL,
        ttl_ms=7_200_000,
        autostart_schedule="CRON_TZ=UTC 0 10 * * 1-5",
    )
    assert response.status_code == 201, response.text
    workspace = response.json()
    assert_same_shape(workspace, fixture("workspace.json"))
    assert workspace["owner_name"] == "alice"
    assert workspace["organization_name"] == "acme"
    assert workspace["template_name"] == "starter-template"
    assert workspace["ttl_ms"] == 7_200_000
    build = workspace["latest_build"]
    assert build["transition"] == "start"
    assert build["status"] == "running"
    assert build["build_number"] == 1
    assert build["template_version_id"] == VERSION_ID
    assert parse_time(build["deadline"]) == parse_time(build["job"]["completed_at"]) + 7_200_000_000
    assert workspace["updated_at"] == build["updated_at"]
    assert fake_coder.has_workspace("alice/ops-workspace")
    assert fake_coder.build_transitions("alice/ops-workspace") == []
    fetched = await client.get("/api/v2/users/alice/workspace/ops-workspace")
    assert fetched.json() == workspace
    listed = (await client.get("/api/v2/workspaces", params={"q": ""})).json()
    assert [w["name"] for w in listed["workspaces"]] == ["dev-workspace", "ops-workspace"]
    assert listed["count"] == 2


async def test_workspace_create_errors(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    duplicate = await create_workspace(client, "dev-workspace")
    assert duplicate.status_code == 409
    assert duplicate.json() == error_fixture("workspace_exists")["body"]
    bad_name = await create_workspace(client, "Bad_Name")
    assert bad_name.status_code == 400
    assert bad_name.json() == error_fixture("validation_failed")["body"]
    missing = "00000000-0000-0000-0000-000000000002"
    no_template = await create_workspace(client, "x", template_id=missing)
    assert no_template.status_code == 400
    assert no_template.json() == error_fixture("template_for_workspace_missing")["body"]
    no_version = await create_workspace(
        client, "x", template_id=NIL, template_version_id=str(uuid.uuid4())
    )
    assert no_version.status_code == 400
    assert "doesn't exist" in no_version.json()["message"]
    both = await create_workspace(client, "x", template_version_id=VERSION_ID)
    assert both.status_code == 400
    neither = await create_workspace(client, "x", template_id=NIL)
    assert neither.status_code == 400
    short_ttl = await create_workspace(client, "x", ttl_ms=1000)
    assert short_ttl.status_code == 400
    bad_schedule = await create_workspace(client, "x", autostart_schedule="whenever")
    assert bad_schedule.status_code == 400
    unknown_user = await create_workspace(client, "x", user="bob")
    assert unknown_user.status_code == 400
    assert not fake_coder.has_workspace("alice/x")


async def test_workspace_without_ttl(client: httpx.AsyncClient) -> None:
    response = await create_workspace(client, "no-ttl", ttl_ms=0, autostart_schedule="")
    assert response.status_code == 201
    workspace = response.json()
    assert "ttl_ms" not in workspace
    assert "autostart_schedule" not in workspace
    assert workspace["latest_build"]["deadline"] is None
    assert workspace["next_start_at"] is None


async def test_workspace_create_pinned_version_and_org_route(client: httpx.AsyncClient) -> None:
    pinned = await create_workspace(
        client, "pinned", template_id=NIL, template_version_id=VERSION_ID
    )
    assert pinned.status_code == 201
    assert pinned.json()["latest_build"]["template_version_id"] == VERSION_ID
    via_org = await client.post(
        f"/api/v2/organizations/{ACME_ID}/members/me/workspaces",
        json={"name": "mine", "template_id": TEMPLATE_ID},
    )
    assert via_org.status_code == 201
    assert via_org.json()["owner_name"] == "admin"
    by_me = await client.get("/api/v2/users/me/workspace/mine")
    assert by_me.json()["id"] == via_org.json()["id"]


async def test_builds_in_instant_mode(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    before = (await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}")).json()
    response = await client.post(
        f"/api/v2/workspaces/{WORKSPACE_ID}/builds",
        json={"transition": "stop", "template_version_id": NIL, "template_version_preset_id": NIL},
    )
    assert response.status_code == 201
    build = response.json()
    assert_same_shape(build, fixture("workspace.json")["latest_build"])
    assert build["status"] == "stopped"
    assert build["job"]["status"] == "succeeded"
    assert build["build_number"] == 4
    assert build["deadline"] is None
    assert build["template_version_id"] == VERSION_ID
    after = (await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}")).json()
    assert after["latest_build"] == build
    assert after["updated_at"] == build["updated_at"]
    assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
    fetched = await client.get(f"/api/v2/workspacebuilds/{build['id']}")
    assert fetched.json() == build
    start = await client.post(
        f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "start"}
    )
    assert start.json()["status"] == "running"
    bad = await client.post(f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "go"})
    assert bad.status_code == 400
    assert bad.json()["message"] == "Validation failed."
    assert fake_coder.build_transitions("alice/dev-workspace") == ["stop", "start"]
    unknown = await client.post(
        f"/api/v2/workspaces/{uuid.uuid4()}/builds", json={"transition": "stop"}
    )
    assert unknown.status_code == 404


async def test_workspace_delete_lifecycle(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "delete"}
    )
    assert response.status_code == 201
    assert response.json()["status"] == "deleted"
    assert not fake_coder.has_workspace("alice/dev-workspace")
    gone = await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}")
    expected = error_fixture("workspace_gone")
    assert gone.status_code == expected["status"]
    assert gone.json() == expected["body"]
    visible = await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}", params={"deleted": "true"})
    assert visible.json()["latest_build"]["status"] == "deleted"
    assert (await client.get("/api/v2/users/alice/workspace/dev-workspace")).status_code == 404
    with_deleted = await client.get(
        "/api/v2/users/alice/workspace/dev-workspace", params={"include_deleted": "true"}
    )
    assert with_deleted.json()["id"] == WORKSPACE_ID
    assert (await client.get("/api/v2/workspaces")).json() == {"workspaces": [], "count": 0}
    again = await client.post(
        f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "start"}
    )
    assert again.status_code == 410
    # The template can go now, and the name is reusable.
    recreated = await create_workspace(client, "dev-workspace")
    assert recreated.status_code == 201
    assert recreated.json()["id"] != WORKSPACE_ID
    assert fake_coder.has_workspace("alice/dev-workspace")


async def test_fail_next_build(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    fake_coder.fail_next_build("stop", status=400, message="no stopping today")
    url = f"/api/v2/workspaces/{WORKSPACE_ID}/builds"
    failed = await client.post(url, json={"transition": "stop"})
    assert failed.status_code == 400
    assert failed.json() == {"message": "no stopping today"}
    assert fake_coder.workspace_status(WORKSPACE_ID) == "running"
    assert fake_coder.build_transitions(WORKSPACE_ID) == []
    assert (await client.post(url, json={"transition": "stop"})).status_code == 201
    fake_coder.fail_next_build("start")
    assert (await client.post(url, json={"transition": "start"})).status_code == 500


async def test_workspace_search(fake_coder: FakeCoder, client: httpx.AsyncClient) -> None:
    await create_workspace(client, "scratch")
    other = await create_template(client, "other-template")
    await create_workspace(client, "tools", template_id=other["id"])
    await client.post(
        f"/api/v2/organizations/{ACME_ID}/members/admin/workspaces",
        json={"name": "admin-box", "template_id": TEMPLATE_ID},
    )
    fake_coder.set_workspace_status("alice/scratch", "stopped")

    async def names(q: str, **params: str) -> list[str]:
        response = await client.get("/api/v2/workspaces", params={"q": q, **params})
        assert response.status_code == 200, response.text
        return [w["name"] for w in response.json()["workspaces"]]

    assert await names("") == ["admin-box", "dev-workspace", "scratch", "tools"]
    assert await names("owner:alice") == ["dev-workspace", "scratch", "tools"]
    assert await names("owner:me") == ["admin-box"]
    assert await names("template:other-template") == ["tools"]
    assert await names("status:stopped") == ["scratch"]
    assert await names("owner:alice status:running") == ["dev-workspace", "tools"]
    assert await names("name:SCR") == ["scratch"]
    assert await names("organization:acme name:tools") == ["tools"]
    assert await names("", limit="2", offset="1") == ["dev-workspace", "scratch"]
    page = (await client.get("/api/v2/workspaces", params={"limit": "1"})).json()
    assert page["count"] == 4
    assert len(page["workspaces"]) == 1
    bad = await client.get("/api/v2/workspaces", params={"q": "colour:blue"})
    assert bad.status_code == 400
    assert bad.json()["message"] == "Invalid workspace search query."
    assert bad.json()["validations"][0]["field"] == "colour"
    bad_status = await client.get("/api/v2/workspaces", params={"q": "status:sleepy"})
    assert bad_status.status_code == 400
    bad_limit = await client.get("/api/v2/workspaces", params={"limit": "-3"})
    assert bad_limit.status_code == 400


# --------------------------------------------------------------------------- async builds


async def test_async_build_lifecycle() -> None:
    clock = ManualClock()
    fake = FakeCoder(token=TEST_TOKEN, build_mode="async", build_step_seconds=10, clock=clock)
    async with client_for(fake) as client:
        url = f"/api/v2/workspaces/{WORKSPACE_ID}/builds"
        response = await client.post(url, json={"transition": "stop"})
        assert response.status_code == 201
        build = response.json()
        assert_same_shape(build, fixture("workspace-build.json"))
        assert build["status"] == "pending"
        assert build["job"]["status"] == "pending"
        busy = await client.post(url, json={"transition": "start"})
        assert busy.status_code == 409
        assert busy.json() == error_fixture("build_already_active")["body"]
        assert fake.seconds_until_next_step() == pytest.approx(10)

        clock.advance(10)
        stopping = (await client.get(f"/api/v2/workspacebuilds/{build['id']}")).json()
        assert stopping["status"] == "stopping"
        assert stopping["job"]["started_at"] == format_time(parse_time(build["created_at"]) + 10**7)
        assert (await client.post(url, json={"transition": "start"})).status_code == 409

        clock.advance(10)
        workspace = (await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}")).json()
        assert workspace["latest_build"]["status"] == "stopped"
        assert workspace["updated_at"] == workspace["latest_build"]["updated_at"]
        assert fake.seconds_until_next_step() is None

        # Both steps due at once: applied in order by the next request.
        await client.post(url, json={"transition": "delete"})
        clock.advance(60)
        assert (await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}")).status_code == 410
        assert fake.build_transitions(WORKSPACE_ID) == ["stop", "delete"]


async def test_async_start_of_new_workspace_and_complete_builds() -> None:
    clock = ManualClock()
    fake = FakeCoder(token=TEST_TOKEN, build_mode="async", build_step_seconds=5, clock=clock)
    async with client_for(fake) as client:
        created = await create_workspace(client, "fresh")
        assert created.json()["latest_build"]["status"] == "pending"
        # coder-k8s's create-then-stop gets 409 against real Coder; the fake too.
        stop = await client.post(
            f"/api/v2/workspaces/{created.json()['id']}/builds", json={"transition": "stop"}
        )
        assert stop.status_code == 409
    assert fake.complete_builds() == 1
    assert fake.complete_builds() == 0
    assert fake.workspace_status("alice/fresh") == "running"
    deadline = fake.workspace_json("alice/fresh")["latest_build"]["deadline"]
    assert deadline is None  # no ttl


def test_timestamps_strictly_increase_with_a_frozen_clock() -> None:
    fake = FakeCoder(clock=lambda: 1_767_268_800.0)  # 2026-01-01T12:00:00Z, frozen
    stamps = []
    for _ in range(3):
        fake.start_build_out_of_band("alice/dev-workspace", "stop")
        stamps.append(parse_time(fake.workspace_json("alice/dev-workspace")["updated_at"]))
    assert stamps == sorted(set(stamps))
    assert stamps[0] == parse_time("2026-01-01T12:00:00.000001Z")
    assert fake.workspace_json("alice/dev-workspace")["updated_at"] == (
        "2026-01-01T12:00:00.000003Z"
    )


# --------------------------------------------------------------------------- change feed


async def test_change_feed_sees_http_and_out_of_band_changes() -> None:
    fake = FakeCoder(token=TEST_TOKEN)
    with fake.subscribe() as changes:
        async with client_for(fake) as client:
            await client.post(
                f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "stop"}
            )
        fake.edit_template("acme.starter-template", display_name="Edited")
        template_id = fake.create_template_out_of_band("acme", "extra")
        workspace_id = fake.create_workspace_out_of_band("alice", "oob", template="acme/extra")
        fake.delete_workspace_out_of_band("alice/oob")
        fake.delete_template_out_of_band("acme.extra")
        received = []
        while (change := changes.receive_nowait()) is not None:
            received.append(change)
    interesting = [c for c in received if c.kind in ("workspace", "template")]
    assert interesting == [
        FakeCoderChange("workspace", WORKSPACE_ID, "updated"),
        FakeCoderChange("template", TEMPLATE_ID, "updated"),
        FakeCoderChange("workspace", WORKSPACE_ID, "updated"),  # template change
        FakeCoderChange("template", template_id, "created"),
        FakeCoderChange("workspace", workspace_id, "created"),
        FakeCoderChange("workspace", workspace_id, "deleted"),
        FakeCoderChange("template", template_id, "deleted"),
    ]
    assert fake.template_json("acme/starter-template")["display_name"] == "Edited"
    assert not fake.has_template("acme/extra")


async def test_change_feed_drives_async_builds() -> None:
    fake = FakeCoder(build_mode="async", build_step_seconds=0.05)
    with fake.subscribe() as changes:
        fake.start_build_out_of_band("alice/dev-workspace", "stop")
        statuses = []
        with anyio.fail_after(30):
            # One change per step: the build's creation, its start, its completion.
            for _ in range(3):
                change = await anext(changes)
                assert change == FakeCoderChange("workspace", WORKSPACE_ID, "updated")
                statuses.append(fake.workspace_status(WORKSPACE_ID))
    # A slow reader may see a later state than the one that caused the change.
    assert_progresses(statuses, ["pending", "stopping", "stopped"])
    assert changes.receive_nowait() is None


def assert_progresses(seen: list[str], steps: list[str]) -> None:
    """*seen* moves forward through *steps* (repeats allowed) and ends with the last."""
    ranks = [steps.index(status) for status in seen]
    assert ranks == sorted(ranks), seen
    assert seen[-1] == steps[-1], seen


async def test_change_feed_ends_on_close() -> None:
    fake = FakeCoder()
    changes = fake.subscribe()

    async def consume() -> list[FakeCoderChange]:
        return [change async for change in changes]

    result: list[list[FakeCoderChange]] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            result.append(await consume())

        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        fake.touch_workspace("alice/dev-workspace")
        fake.close()
    assert result == [[FakeCoderChange("workspace", WORKSPACE_ID, "updated")]]
    late = fake.subscribe()
    assert [c async for c in late] == []


def test_out_of_band_helpers() -> None:
    fake = FakeCoder()
    fake.set_workspace_status("alice/dev-workspace", "failed", error="provider crashed")
    failed = fake.workspace_json("alice/dev-workspace")["latest_build"]
    assert failed["status"] == "failed"
    assert failed["job"]["error"] == "provider crashed"
    fake.set_workspace_status("acme.alice.dev-workspace", "starting")
    assert fake.workspace_status(WORKSPACE_ID) == "starting"
    assert fake.workspace_json(WORKSPACE_ID)["latest_build"]["transition"] == "start"
    fake.set_workspace_status(WORKSPACE_ID, "deleted")
    assert not fake.has_workspace(WORKSPACE_ID)
    fake.set_workspace_status(WORKSPACE_ID, "stopped")  # resurrects, as a DB edit would
    assert fake.has_workspace(WORKSPACE_ID)
    with pytest.raises(ValueError, match="unknown workspace status"):
        fake.set_workspace_status(WORKSPACE_ID, "sleeping")
    with pytest.raises(KeyError):
        fake.workspace_status("alice/nope")
    with pytest.raises(KeyError):
        fake.template_active_version_id("nope")
    assert not fake.has_workspace("nope")
    assert not fake.has_template("acme/nope")
    with pytest.raises(FakeCoderError) as excinfo:
        fake.create_workspace_out_of_band("alice", "dev-workspace")
    assert excinfo.value.status == 409
    with pytest.raises(FakeCoderError) as excinfo:
        fake.delete_template_out_of_band("acme/starter-template")
    assert excinfo.value.status == 400
    assert fake.workspace_latest_build_template_version_id("alice/dev-workspace") == VERSION_ID
    source = fake.template_active_source_zip("acme/starter-template")
    assert zipfile.ZipFile(io.BytesIO(source)).read("main.tf").decode() == MAIN_TF
    assert fake.template_version_json(VERSION_ID) == fixture("template-version.json")
    build_id = fake.start_build_out_of_band("alice/dev-workspace", "start", complete=True)
    assert fake.workspace_json("alice/dev-workspace")["latest_build"]["id"] == build_id
    before = fake.workspace_json("alice/dev-workspace")["last_used_at"]
    fake.touch_workspace("alice/dev-workspace")
    assert parse_time(fake.workspace_json("alice/dev-workspace")["last_used_at"]) > parse_time(
        before
    )


# --------------------------------------------------------------------------- over HTTP


class SSEStream:
    """A minimal SSE client over a raw socket (HTTP/1.1, chunked), parsing frames as
    the Go SDK does: an ``event:`` line, then an optional ``data:`` line."""

    def __init__(self, reader: BufferedByteReceiveStream) -> None:
        self._reader = reader
        self._buffer = b""
        self.raw = b""

    async def _fill(self) -> bool:
        size_line = await self._reader.receive_until(b"\r\n", 1024)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return False
        chunk = await self._reader.receive_exactly(size)
        await self._reader.receive_exactly(2)
        self._buffer += chunk
        self.raw += chunk
        return True

    async def read_at_least(self, size: int) -> bytes:
        while len(self.raw) < size:
            if not await self._fill():
                break
        return self.raw

    def __aiter__(self) -> SSEStream:
        return self

    async def __anext__(self) -> tuple[str, str | None]:
        while b"\n\n" not in self._buffer:
            try:
                more = await self._fill()
            except (anyio.EndOfStream, anyio.IncompleteRead):
                more = False
            if not more:
                raise StopAsyncIteration
        frame, _, self._buffer = self._buffer.partition(b"\n\n")
        event, data = "", None
        for line in frame.decode().split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        return event, data


@contextlib.asynccontextmanager
async def open_watch(
    url: str, token: str, workspace_id: str
) -> AsyncIterator[tuple[int, dict[str, str], SSEStream]]:
    """``GET /api/v2/workspaces/{id}/watch``: yields (status, headers, frames)."""
    parsed = httpx.URL(url)
    assert parsed.port is not None
    async with await anyio.connect_tcp(parsed.host, parsed.port) as stream:
        request = (
            f"GET /api/v2/workspaces/{workspace_id}/watch HTTP/1.1\r\n"
            f"Host: {parsed.host}:{parsed.port}\r\n"
            f"Coder-Session-Token: {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        await stream.send(request.encode())
        reader = BufferedByteReceiveStream(stream)
        head = (await reader.receive_until(b"\r\n\r\n", 65536)).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        headers = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        assert headers.get("transfer-encoding") == "chunked", headers
        yield int(status_line.split()[1]), headers, SSEStream(reader)


async def test_real_http_round_trip(fake_coder_server: FakeCoderServer) -> None:
    url, token, fake = fake_coder_server
    async with httpx.AsyncClient(base_url=url, headers={"Coder-Session-Token": token}) as client:
        workspace = (await client.get("/api/v2/users/alice/workspace/dev-workspace")).json()
        assert workspace == fixture("workspace.json")
        created = await create_workspace(client, "over-http", ttl_ms=3_600_000)
        assert created.status_code == 201
        assert fake.has_workspace("alice/over-http")
        stop = await client.post(
            f"/api/v2/workspaces/{created.json()['id']}/builds", json={"transition": "stop"}
        )
        assert stop.json()["status"] == "stopped"
        assert fake.build_transitions("alice/over-http") == ["stop"]
        meta = {"display_name": "Starter Template"}
        not_modified = await client.patch(f"/api/v2/templates/{TEMPLATE_ID}", json=meta)
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        source = await client.get(f"/api/v2/files/{FILE_ID}", params={"format": "zip"})
        assert source.content == fake.template_active_source_zip("acme/starter-template")
        unauthenticated = await client.get(
            "/api/v2/workspaces", headers={"Coder-Session-Token": ""}
        )
        assert unauthenticated.status_code == 401


async def test_every_endpoint_over_http(fake_coder_server: FakeCoderServer) -> None:
    url, token, fake = fake_coder_server
    async with httpx.AsyncClient(base_url=url, headers={"Coder-Session-Token": token}) as client:
        calls: list[tuple[str, str, int]] = []

        async def call(method: str, path: str, expected: int, **kwargs: Any) -> Any:
            response = await client.request(method, f"/api/v2{path}", **kwargs)
            assert response.status_code == expected, (method, path, response.text)
            calls.append((method, path, expected))
            return response.json() if response.content and expected != 304 else None

        assert (await call("GET", "/buildinfo", 200))["version"] == "v2.30.0"
        assert len(await call("GET", "/organizations", 200)) == 1
        org = await call("GET", "/organizations/acme", 200)
        assert (await call("GET", "/users/alice", 200))["id"] == ALICE_ID
        assert len(await call("GET", "/templates", 200, params={"q": ""})) == 1
        await call("GET", f"/templates/{TEMPLATE_ID}", 200)
        await call("GET", "/organizations/acme/templates/starter-template", 200)
        archive = fake.template_active_source_zip("acme/starter-template") + b"\x00"
        upload = {"content": archive, "headers": {"Content-Type": "application/zip"}}
        file_id = (await call("POST", "/files", 201, **upload))["hash"]
        assert (await call("POST", "/files", 200, **upload))["hash"] == file_id
        raw = await client.get(f"/api/v2/files/{file_id}", params={"format": "zip"})
        assert raw.content == archive
        calls.append(("GET", f"/files/{file_id}", 200))
        version = await call(
            "POST",
            f"/organizations/{org['id']}/templateversions",
            201,
            json={"template_id": NIL, "storage_method": "file", "file_id": file_id},
        )
        await call("GET", f"/templateversions/{version['id']}", 200)
        template = await call(
            "POST",
            f"/organizations/{org['id']}/templates",
            201,
            json={"name": "http-template", "template_version_id": version["id"]},
        )
        await call("PATCH", f"/templates/{template['id']}", 200, json={"icon": "/i.png"})
        await call("PATCH", f"/templates/{template['id']}", 304, json={"icon": "/i.png"})
        second = await call(
            "POST",
            f"/organizations/{org['id']}/templateversions",
            201,
            json={"template_id": template["id"], "file_id": file_id},
        )
        await call("PATCH", f"/templates/{template['id']}/versions", 200, json={"id": second["id"]})
        workspace = await call(
            "POST",
            "/users/alice/workspaces",
            201,
            json={"name": "http-ws", "template_id": template["id"]},
        )
        await call(
            "POST",
            f"/organizations/{org['id']}/members/alice/workspaces",
            201,
            json={"name": "http-ws-2", "template_version_id": second["id"]},
        )
        assert (await call("GET", "/workspaces", 200, params={"q": "owner:alice"}))["count"] == 3
        await call(
            "GET", "/users/alice/workspace/http-ws", 200, params={"include_deleted": "false"}
        )
        await call("GET", f"/workspaces/{workspace['id']}", 200)
        build = await call(
            "POST", f"/workspaces/{workspace['id']}/builds", 201, json={"transition": "stop"}
        )
        await call("GET", f"/workspacebuilds/{build['id']}", 200)
        await call(
            "POST", f"/workspaces/{workspace['id']}/builds", 201, json={"transition": "delete"}
        )
        await call("GET", f"/workspaces/{workspace['id']}", 410)
        await call("GET", "/users/alice/workspace/http-ws", 404)
        await call("DELETE", f"/templates/{template['id']}", 400)  # http-ws-2 still uses it
        fake.delete_workspace_out_of_band("alice/http-ws-2")
        await call("DELETE", f"/templates/{template['id']}", 200)
        await call("GET", f"/templates/{template['id']}", 404)
    # Every route except the watch streams (tested below) was exercised.
    used = set()
    for method, path, _ in calls:
        matched = fake._app.match(method, f"/api/v2{path}")
        assert not isinstance(matched, FakeCoderError)
        used.add(matched[0].__name__)
    routes = {handler.__name__ for _, _, handler, _ in fake._app.routes}
    assert routes - used == {"_h_watch_workspace"}, routes - used


async def test_watch_stream_matches_the_fixture(fake_coder_server: FakeCoderServer) -> None:
    url, token, _ = fake_coder_server
    expected = (FIXTURES / "workspace-watch.sse").read_bytes()
    ping, current, _ = expected.split(b"\n\n", 2)
    prefix = ping + b"\n\n" + current + b"\n\n"
    with anyio.fail_after(30):
        async with open_watch(url, token, WORKSPACE_ID) as (status, headers, frames):
            assert status == 200
            assert headers["content-type"] == "text/event-stream"
            assert headers["cache-control"] == "no-cache"
            assert headers["connection"] == "keep-alive"
            assert headers["x-accel-buffering"] == "no"
            assert (await frames.read_at_least(len(prefix)))[: len(prefix)] == prefix


async def test_watch_stream_follows_changes(fake_coder_server: FakeCoderServer) -> None:
    url, token, fake = fake_coder_server
    async with httpx.AsyncClient(base_url=url, headers={"Coder-Session-Token": token}) as client:
        with anyio.fail_after(30):
            async with open_watch(url, token, WORKSPACE_ID) as (status, _, frames):
                assert status == 200
                assert await anext(frames) == ("ping", None)
                event, data = await anext(frames)
                assert event == "data"
                assert data is not None
                assert json.loads(data)["latest_build"]["status"] == "running"
                stop = await client.post(
                    f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "stop"}
                )
                event, data = await anext(frames)
                assert event == "data"
                assert data is not None
                assert json.loads(data)["latest_build"] == stop.json()
                fake.edit_template(TEMPLATE_ID, display_name="Renamed")
                event, data = await anext(frames)
                assert data is not None
                assert json.loads(data)["template_display_name"] == "Renamed"
                fake.delete_workspace_out_of_band(WORKSPACE_ID)
                event, data = await anext(frames)
                assert data is not None
                assert json.loads(data)["latest_build"]["status"] == "deleted"
        after = await client.get(f"/api/v2/workspaces/{WORKSPACE_ID}/watch")
        assert after.status_code == 410


async def test_watch_stream_errors_and_heartbeat(serve_fake_coder: ServeFakeCoder) -> None:
    fake = FakeCoder(token=TEST_TOKEN, heartbeat_seconds=0.05)
    async with (
        serve_fake_coder(fake) as (url, token, _),
        httpx.AsyncClient(base_url=url, headers={"Coder-Session-Token": token}) as client,
    ):
        unknown = await client.get(f"/api/v2/workspaces/{uuid.uuid4()}/watch")
        assert unknown.status_code == 404
        assert unknown.json() == error_fixture("not_found")["body"]
        anonymous = await client.get(
            f"/api/v2/workspaces/{WORKSPACE_ID}/watch", headers={"Coder-Session-Token": ""}
        )
        assert anonymous.status_code == 401
        with anyio.fail_after(30):
            async with open_watch(url, token, WORKSPACE_ID) as (_, _, frames):
                events = [(await anext(frames))[0] for _ in range(4)]
                assert events == ["ping", "data", "ping", "ping"]
                fake.close()  # ends the stream
                rest = [event async for event, _ in frames]
                assert "data" not in rest


async def test_async_builds_over_http_with_watch(serve_fake_coder: ServeFakeCoder) -> None:
    fake = FakeCoder(token=TEST_TOKEN, build_mode="async", build_step_seconds=0.05)
    async with (
        serve_fake_coder(fake) as (url, token, _),
        httpx.AsyncClient(base_url=url, headers={"Coder-Session-Token": token}) as client,
    ):
        with anyio.fail_after(30):
            async with open_watch(url, token, WORKSPACE_ID) as (_, _, frames):
                await anext(frames)  # ping
                await anext(frames)  # current state
                created = await client.post(
                    f"/api/v2/workspaces/{WORKSPACE_ID}/builds", json={"transition": "stop"}
                )
                assert created.json()["status"] == "pending"
                statuses: list[str] = []
                while len(statuses) < 3:  # one frame per change (created, started, done)
                    event, data = await anext(frames)
                    if event == "data" and data is not None:
                        statuses.append(json.loads(data)["latest_build"]["status"])
                assert_progresses(statuses, ["pending", "stopping", "stopped"])
        listed = (await client.get("/api/v2/workspaces", params={"q": "status:stopped"})).json()
        assert listed["count"] == 1


class WSClient:
    """A minimal WebSocket client (wsproto over an anyio socket)."""

    def __init__(self, stream: anyio.abc.SocketStream, connection: WSConnection) -> None:
        self._stream = stream
        self._connection = connection
        self._events: list[Any] = []
        self._text = ""

    async def _next_event(self) -> Any:
        while not self._events:
            try:
                data: bytes | None = await self._stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = None
            self._connection.receive_data(data)
            for event in self._connection.events():
                if isinstance(event, Ping):
                    await self._stream.send(self._connection.send(event.response()))
                else:
                    self._events.append(event)
            if data is None and not self._events:
                raise anyio.EndOfStream
        return self._events.pop(0)

    async def handshake(self) -> tuple[int, bytes]:
        event = await self._next_event()
        if isinstance(event, AcceptConnection):
            return 101, b""
        assert isinstance(event, RejectConnection), event
        status, body = event.status_code, b""
        more = event.has_body
        while more:
            data = await self._next_event()
            assert isinstance(data, RejectData)
            body += data.data
            more = not data.body_finished
        return status, body

    async def message(self) -> dict[str, Any]:
        while True:
            event = await self._next_event()
            assert isinstance(event, TextMessage), event
            self._text += event.data
            if event.message_finished:
                text, self._text = self._text, ""
                result: dict[str, Any] = json.loads(text)
                return result

    async def send_text(self, text: str) -> None:
        await self._stream.send(self._connection.send(Message(data=text)))

    async def close_code(self) -> int:
        event = await self._next_event()
        assert isinstance(event, CloseConnection), event
        return int(event.code)


@contextlib.asynccontextmanager
async def open_watch_ws(
    url: str, token: str, path: str = f"/api/v2/workspaces/{WORKSPACE_ID}/watch-ws"
) -> AsyncIterator[WSClient]:
    parsed = httpx.URL(url)
    assert parsed.port is not None
    async with await anyio.connect_tcp(parsed.host, parsed.port) as stream:
        connection = WSConnection(ConnectionType.CLIENT)
        request = Request(
            host=f"{parsed.host}:{parsed.port}",
            target=path,
            extra_headers=[(b"coder-session-token", token.encode())],
        )
        await stream.send(connection.send(request))
        yield WSClient(stream, connection)


async def test_watch_ws(fake_coder_server: FakeCoderServer) -> None:
    url, token, fake = fake_coder_server
    with anyio.fail_after(30):
        async with open_watch_ws(url, token) as ws:
            assert await ws.handshake() == (101, b"")
            assert await ws.message() == {"type": "ping", "data": None}
            assert await ws.message() == {"type": "data", "data": fixture("workspace.json")}
            fake.start_build_out_of_band("alice/dev-workspace", "stop")
            message = await ws.message()
            assert message["type"] == "data"
            assert message["data"]["latest_build"]["status"] == "stopped"
            await ws.send_text("hello")  # one-way stream: protocol error
            assert await ws.close_code() == 1002
        async with open_watch_ws(url, token) as ws:
            assert (await ws.handshake())[0] == 101
            await ws.message()
            await ws.message()
            fake.close()
            assert await ws.close_code() == 1000


async def test_watch_ws_errors(fake_coder_server: FakeCoderServer) -> None:
    url, token, fake = fake_coder_server
    with anyio.fail_after(30):
        async with open_watch_ws(url, token, f"/api/v2/workspaces/{uuid.uuid4()}/watch-ws") as ws:
            status, body = await ws.handshake()
            assert status == 404
            assert json.loads(body) == error_fixture("not_found")["body"]
        async with open_watch_ws(url, "wrong") as ws:
            assert (await ws.handshake())[0] == 401
        async with open_watch_ws(url, token, "/api/v2/nonsense") as ws:
            assert (await ws.handshake())[0] == 404
        fake.delete_workspace_out_of_band(WORKSPACE_ID)
        async with open_watch_ws(url, token) as ws:
            assert (await ws.handshake())[0] == 410


async def test_lifespan_shutdown_closes_the_fake() -> None:
    fake = FakeCoder()
    changes = fake.subscribe()
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await fake({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert [c async for c in changes] == []
    with pytest.raises(RuntimeError, match="webtransport"):
        await fake({"type": "webtransport"}, receive, send)
