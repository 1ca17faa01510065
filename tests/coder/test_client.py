"""CoderClient, names, converters and the error mapping (coder-adapters.md §1, §2.5, §3)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch import StatusError
from k8swatch.coder import (
    CoderClient,
    CoderError,
    CoderTemplate,
    CoderUnavailableError,
    CoderWorkspace,
    StaticClientProvider,
    build_template_name,
    build_workspace_name,
    map_coder_error,
    parse_template_name,
    parse_workspace_name,
)
from k8swatch.coder._convert import format_metav1_time, parse_rfc3339_ns, parse_uuid

FIXTURES = Path(__file__).parent / "fixtures"  # a copy of the spec's coder-fixtures/
TOKEN = "super-secret-session-token"
NIL = "00000000-0000-0000-0000-000000000000"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# --- names -------------------------------------------------------------------------


def test_parse_names() -> None:
    assert parse_workspace_name("acme.alice.dev") == ("acme", "alice", "dev")
    assert parse_template_name("acme.starter-template") == ("acme", "starter-template")
    assert build_workspace_name("acme", "alice", "dev") == "acme.alice.dev"
    assert build_template_name("acme", "t") == "acme.t"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "invalid workspace name: name must not be empty"),
        ("acme.alice", 'invalid workspace name "acme.alice": expected 2 separators (".")'),
        ("a.b.c.d", 'invalid workspace name "a.b.c.d": expected 2 separators (".")'),
        ("acme..dev", 'invalid workspace name "acme..dev": segment 1 must not be empty'),
        # Go's %q: control characters as \x escapes, printable non-ASCII as is
        ("a\x01b", 'invalid workspace name "a\\x01b": expected 2 separators (".")'),
        ("é\u2028", 'invalid workspace name "é\\u2028": expected 2 separators (".")'),
    ],
)
def test_workspace_name_errors(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_workspace_name(name)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "invalid template name: name must not be empty"),
        ("acme", 'invalid template name "acme": expected 1 separators (".")'),
        (".x", 'invalid template name ".x": segment 0 must not be empty'),
    ],
)
def test_template_name_errors(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_template_name(name)
    assert str(info.value) == message


segment = st.from_regex(r"[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*", fullmatch=True)


@given(segment, segment, segment)
def test_workspace_names_round_trip(org: str, owner: str, ws: str) -> None:
    assert parse_workspace_name(build_workspace_name(org, owner, ws)) == (org, owner, ws)


# --- times and UUIDs ---------------------------------------------------------------


def test_resource_versions_from_fixture_readme() -> None:
    assert parse_rfc3339_ns("2026-01-01T11:30:00Z") == 1767267000000000000
    assert parse_rfc3339_ns("2026-01-01T10:00:00Z") == 1767261600000000000
    assert parse_rfc3339_ns("2026-01-01T11:58:30.123456Z") == 1767268710123456000
    assert parse_rfc3339_ns("2026-01-01T11:58:30.123456789Z") == 1767268710123456789
    assert parse_rfc3339_ns("2026-01-01T12:58:30+01:00") == parse_rfc3339_ns("2026-01-01T11:58:30Z")


@given(st.integers(min_value=0, max_value=4_102_444_800), st.integers(0, 999_999_999))
def test_rfc3339_parse_is_exact(seconds: int, nanos: int) -> None:
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"
    assert parse_rfc3339_ns(text) == seconds * 1_000_000_000 + nanos
    assert format_metav1_time(text) == text[:19] + "Z"


def test_parse_uuid_messages() -> None:
    assert (
        parse_uuid("9D2E4F60-1A3B-4C5D-8E7F-6A8B0C2D4E30") == "9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30"
    )
    with pytest.raises(ValueError, match="invalid UUID length: 3"):
        parse_uuid("abc")
    with pytest.raises(ValueError, match="invalid UUID format"):
        parse_uuid("zzzzzzzz-1a3b-4c5d-8e7f-6a8b0c2d4e30")


# --- converters --------------------------------------------------------------------


def test_workspace_conversion_matches_fixture() -> None:
    converted = CoderWorkspace.from_coder("control-plane", load("workspace.json")).to_dict()
    expected = load("k8s/coderworkspace.json")
    assert json.dumps(converted) == json.dumps(expected)  # same keys, same order


def test_workspace_after_stop_matches_fixture() -> None:
    workspace = load("workspace.json")
    build = load("workspace-build.json")
    workspace["latest_build"] = build
    workspace["updated_at"] = build["updated_at"]
    converted = CoderWorkspace.from_coder("control-plane", workspace).to_dict()
    assert converted == load("k8s/coderworkspace-after-stop.json")
    assert converted["spec"]["running"] is False


def test_stopped_workspace_has_no_ttl_or_schedule() -> None:
    scratch = load("workspaces.json")["workspaces"][1]
    converted = CoderWorkspace.from_coder("ns", scratch).to_dict()
    assert converted["metadata"]["name"] == "acme.alice.scratch"
    assert converted["spec"] == {
        "organization": "acme",
        "templateName": "starter-template",
        "templateVersionID": "9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30",
        "running": False,
    }
    assert "autoShutdown" not in converted["status"]


def test_template_conversion_matches_fixture() -> None:
    expected = load("k8s/codertemplate.json")
    converted = CoderTemplate.from_coder(
        "control-plane", load("template.json"), files=expected["spec"]["files"]
    ).to_dict()
    assert json.dumps(converted) == json.dumps(expected)
    listed = CoderTemplate.from_coder("control-plane", load("template.json")).to_dict()
    assert "files" not in listed["spec"]
    gpu = CoderTemplate.from_coder("x", load("templates.json")[1]).to_dict()
    assert gpu["metadata"]["name"] == "ops.gpu-template"
    assert gpu["status"]["deprecated"] is True


def test_from_dict_round_trips_and_checks_types() -> None:
    expected = load("k8s/coderworkspace.json")
    assert CoderWorkspace.from_dict(expected).to_dict() == expected
    template = load("k8s/codertemplate.json")
    assert CoderTemplate.from_dict(template).to_dict() == template
    assert CoderTemplate.from_dict({"spec": {"files": {}}}).spec.files == {}
    assert CoderTemplate.from_dict({"spec": {}}).spec.files is None
    with pytest.raises(StatusError) as info:
        CoderWorkspace.from_dict({"metadata": {"name": "a.b.c"}, "spec": {"running": "yes"}})
    assert info.value.status.code == 400
    assert "spec.running" in info.value.status.message


# --- the client over a mock transport ----------------------------------------------


class Recorder:
    def __init__(self, responses: dict[tuple[str, str], httpx.Response]) -> None:
        self.responses = responses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses[(request.method, request.url.path)]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def client_for(recorder: Recorder) -> CoderClient:
    return CoderClient("http://coder.test/", TOKEN, transport=httpx.MockTransport(recorder))


async def test_requests_carry_the_token_and_the_go_bodies() -> None:
    ws = load("workspace.json")
    recorder = Recorder(
        {
            ("POST", "/api/v2/users/alice/workspaces"): httpx.Response(201, json=ws),
            ("POST", f"/api/v2/workspaces/{ws['id']}/builds"): httpx.Response(
                201, json=load("workspace-build.json")
            ),
            ("POST", "/api/v2/organizations/o/templates"): httpx.Response(
                201, json=load("template.json")
            ),
            ("PATCH", "/api/v2/templates/t"): httpx.Response(200, json=load("template.json")),
            ("POST", "/api/v2/organizations/o/templateversions"): httpx.Response(
                201, json=load("template-version-pending.json")
            ),
            ("POST", "/api/v2/files"): httpx.Response(201, json=load("upload-response.json")),
            ("GET", "/api/v2/workspaces"): httpx.Response(200, json=load("workspaces.json")),
        }
    )
    async with client_for(recorder) as client:
        await client.create_user_workspace("alice", name="dev", template_id="tid", ttl_ms=5)
        assert recorder.body() == {
            "template_id": "tid",
            "template_version_id": NIL,
            "name": "dev",
            "ttl_ms": 5,
            "template_version_preset_id": NIL,
        }
        build = await client.create_workspace_build(ws["id"], "stop")
        assert build["status"] == "pending"
        assert recorder.body() == {
            "template_version_id": NIL,
            "transition": "stop",
            "template_version_preset_id": NIL,
        }
        await client.create_template("o", name="t", version_id="v", display_name="T")
        assert recorder.body() == {
            "name": "t",
            "display_name": "T",
            "template_version_id": "v",
            "allow_user_cancel_workspace_jobs": None,
            "disable_everyone_group_access": False,
            "require_active_version": False,
            "max_port_share_level": None,
        }
        await client.update_template_meta("t", display_name="", description="d", icon="")
        assert recorder.body() == {
            "display_name": "",
            "description": "d",
            "icon": "",
            "update_workspace_last_used_at": False,
            "update_workspace_dormant_at": False,
            "disable_everyone_group_access": False,
        }
        await client.create_template_version("o", file_id="f")
        assert recorder.body() == {
            "template_id": NIL,
            "storage_method": "file",
            "file_id": "f",
            "provisioner": "terraform",
            "tags": None,
        }
        assert await client.upload(b"PK") == "f11e0001-4d6e-4f80-8b2c-3d4e5f6a7b51"
        assert recorder.requests[-1].headers["content-type"] == "application/zip"
        listed = await client.workspaces()
        assert [w["name"] for w in listed] == ["dev-workspace", "scratch"]
        assert recorder.requests[-1].url.params["q"] == ""
    assert all(r.headers["Coder-Session-Token"] == TOKEN for r in recorder.requests)
    assert TOKEN not in repr(client)


def _error(status: int, body: Any = None, *, content: bytes | None = None, **kw: Any) -> Any:
    if content is not None:
        return httpx.Response(status, content=content, **kw)
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("response", "code", "reason", "message"),
    [
        (
            _error(404, load("errors.json")["not_found"]["body"]),
            404,
            "NotFound",
            'coderworkspaces.aggregation.coder.com "acme.alice.dev" not found',
        ),
        (
            _error(409, load("errors.json")["workspace_exists"]["body"]),
            409,
            "AlreadyExists",
            'coderworkspaces.aggregation.coder.com "acme.alice.dev" already exists',
        ),
        (
            _error(400, load("errors.json")["unknown_user"]["body"]),
            400,
            "BadRequest",
            '"user" must be an existing uuid or username.',
        ),
        (_error(410, {"message": "gone"}), 400, "BadRequest", "gone"),
        (
            _error(401, {"message": "no token"}),
            401,
            "Unauthorized",
            "the Coder deployment refused this server's session token: no token",
        ),
        (_error(429, {"message": "slow down"}), 429, "TooManyRequests", "slow down"),
        (
            _error(500, load("errors.json")["internal"]["body"]),
            503,
            "ServiceUnavailable",
            "the Coder deployment failed: An internal server error occurred.",
        ),
        (
            _error(400, content=b"", headers={}),
            400,
            "BadRequest",
            "empty response body",
        ),
        (
            _error(400, content=b"<html>", headers={"content-type": "text/html"}),
            400,
            "BadRequest",
            'unexpected non-JSON response "text/html"',
        ),
        (
            _error(418, {"detail": "x"}),
            400,
            "BadRequest",
            "unexpected status code 418, response has no message",
        ),
    ],
)
async def test_error_mapping(
    response: httpx.Response, code: int, reason: str, message: str
) -> None:
    recorder = Recorder({("GET", "/api/v2/users/alice/workspace/dev"): response})
    async with client_for(recorder) as client:
        with pytest.raises(CoderError) as info:
            await client.workspace_by_owner_and_name("alice", "dev")
    status = map_coder_error(
        info.value, "coderworkspaces", "acme.alice.dev", group="aggregation.coder.com"
    ).status
    assert (status.code, status.reason, status.message) == (code, reason, message)
    assert TOKEN not in str(info.value)


async def test_validations_become_causes_and_conflicts_keep_coders_message() -> None:
    body = load("errors.json")["validation_failed"]["body"]
    err = CoderError(400, body["message"], validations=[("name", "bad")], method="POST", url="u")
    status = map_coder_error(err, "coderworkspaces", "a.b.c").status
    assert status.message == "Validation failed."
    assert status.details is not None
    assert [(c.field, c.message) for c in status.details.causes] == [("name", "bad")]
    active = CoderError(409, "A workspace build is already active.", method="POST", url="http://x")
    mapped = map_coder_error(active, "coderworkspaces", "a.b.c", group="aggregation.coder.com")
    assert mapped.status.reason == "Conflict"
    assert mapped.status.message == (
        'Operation cannot be fulfilled on coderworkspaces.aggregation.coder.com "a.b.c": '
        "Coder refused the change: A workspace build is already active."
    )
    assert "http://x" not in mapped.status.message
    forbidden = map_coder_error(CoderError(403, "no", method="GET", url="u"), "r", "n")
    assert forbidden.status.code == 403
    assert map_coder_error(ValueError("boom"), "r", "n").status.code == 500


async def test_unreachable_coder_is_503_without_the_token() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = CoderClient("http://coder.test", TOKEN, transport=httpx.MockTransport(refuse))
    with pytest.raises(CoderUnavailableError) as info:
        await client.templates()
    await client.aclose()
    await client.aclose()  # idempotent
    status = map_coder_error(info.value, "codertemplates", "<list>").status
    assert (status.code, status.reason) == (503, "ServiceUnavailable")
    assert TOKEN not in status.message
    assert status.message == "the Coder deployment is unreachable; try again later"
    assert "connection refused" in str(info.value)


async def test_timeouts_are_503() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = CoderClient("http://coder.test", TOKEN, transport=httpx.MockTransport(slow))
    with pytest.raises(CoderUnavailableError):
        await client.organization("acme")
    await client.aclose()


@contextlib.asynccontextmanager
async def raw_http_server(response: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A one-answer HTTP server on 127.0.0.1: sends *response* verbatim, then closes."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    requests: list[bytes] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            requests.append(data)
            await stream.send(response)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}", requests
        tg.cancel_scope.cancel()


async def test_workspace_watch_stream_parses_the_fixture() -> None:
    sse = (FIXTURES / "workspace-watch.sse").read_bytes()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    ws_id = "3b5d7f90-4c6e-4a8b-9c0d-1e2f3a4b5c50"
    async with raw_http_server(head + sse) as (url, requests):
        client = CoderClient(url, TOKEN)
        async with client, client.watch_workspace(ws_id) as updates:
            seen = [w["latest_build"]["status"] async for w in updates]
    assert seen == ["running", "pending"]
    request = requests[0].decode()
    assert request.startswith(f"GET /api/v2/workspaces/{ws_id}/watch HTTP/1.1\r\n")
    assert f"coder-session-token: {TOKEN}" in request.lower()


async def test_workspace_watch_stream_can_be_left_early() -> None:
    sse = (FIXTURES / "workspace-watch.sse").read_bytes()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    async with raw_http_server(head + sse) as (url, _):
        client = CoderClient(url, TOKEN)
        async with client, client.watch_workspace("x") as updates:
            async for workspace in updates:
                assert workspace["name"] == "dev-workspace"
                break


async def test_workspace_watch_error_frame_raises() -> None:
    body = b'event: error\ndata: {"message":"boom","detail":"d"}\n\n'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    async with raw_http_server(head + body) as (url, _):
        client = CoderClient(url, TOKEN)
        async with client, client.watch_workspace("x") as updates:
            with pytest.raises(CoderError, match="boom"):
                await updates.__anext__()


async def test_watch_of_unknown_workspace_raises_before_streaming() -> None:
    body = b'{"message":"Resource not found"}'
    answer = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    async with raw_http_server(answer) as (url, _):
        client = CoderClient(url, TOKEN)
        async with client:
            with pytest.raises(CoderError) as info:
                async with client.watch_workspace("x"):
                    pass  # pragma: no cover
    assert info.value.status_code == 404
    assert TOKEN not in str(info.value)


async def test_watch_of_unreachable_coder_is_unavailable() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    client = CoderClient(f"http://127.0.0.1:{port}", TOKEN)
    async with client:
        with pytest.raises(CoderUnavailableError):
            async with client.watch_workspace("x"):
                pass  # pragma: no cover


# --- static provider ---------------------------------------------------------------


async def test_static_provider_messages() -> None:
    provider = StaticClientProvider("http://coder.test", TOKEN, "control-plane")
    assert await provider.client_for_namespace("") is provider.client
    assert await provider.client_for_namespace("control-plane") is provider.client
    assert await provider.eligible_namespaces() == ["control-plane"]
    assert await provider.default_namespace() == "control-plane"
    with pytest.raises(StatusError) as info:
        await provider.client_for_namespace("other-namespace")
    assert info.value.status.code == 400
    assert info.value.status.message == (
        'namespace "other-namespace" is not served by this aggregated API server '
        '(configured for "control-plane")'
    )
    assert TOKEN not in repr(provider)
    await provider.aclose()

    unconfigured = StaticClientProvider("", "", "ns")
    with pytest.raises(StatusError) as info:
        await unconfigured.client_for_namespace("ns")
    assert info.value.status.code == 503
    assert info.value.status.message == (
        "coder client provider is not configured: missing coder URL and coder session "
        "token; configure --coder-url and --coder-session-token"
    )
    unpinned = StaticClientProvider("http://x", "t", "")
    with pytest.raises(StatusError) as info:
        await unpinned.client_for_namespace("")
    assert info.value.status.code == 503
    with pytest.raises(StatusError):
        await unpinned.eligible_namespaces()
    await unpinned.aclose()
    with pytest.raises(ValueError, match="token must not be empty"):
        StaticClientProvider("http://x", "", "ns")


def test_models_build_the_go_request_bodies() -> None:
    ws = CoderWorkspace.from_dict(
        {
            "metadata": {"name": "acme.alice.dev"},
            "spec": {"templateName": "t", "ttlMillis": 5, "running": True},
        }
    )
    assert ws.to_coder_create_request(template_id="tid") == {
        "template_id": "tid",
        "template_version_id": NIL,
        "name": "dev",
        "ttl_ms": 5,
        "template_version_preset_id": NIL,
    }
    tmpl = CoderTemplate.from_dict(
        {"metadata": {"name": "acme.t"}, "spec": {"displayName": "T", "icon": "/i.png"}}
    )
    assert tmpl.to_coder_create_request(version_id="v") == {
        "name": "t",
        "display_name": "T",
        "icon": "/i.png",
        "template_version_id": "v",
        "allow_user_cancel_workspace_jobs": None,
        "disable_everyone_group_access": False,
        "require_active_version": False,
        "max_port_share_level": None,
    }
    assert tmpl.to_coder_meta_update() == {
        "display_name": "T",
        "description": "",
        "icon": "/i.png",
        "update_workspace_last_used_at": False,
        "update_workspace_dormant_at": False,
        "disable_everyone_group_access": False,
    }
    with pytest.raises(ValueError, match="expected 2 separators"):
        CoderWorkspace(name="acme.dev").to_coder_create_request(template_id="t")
