"""Every class of Coder error, forced in the fake Coder, answered by the served API as a
Status without the Coder URL, host, port, token, proxy page or client internals, and
logged with the details (never the token).

Both servers run on 127.0.0.1 (ephemeral ports) and are talked to over HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import anyio
import anyio.abc
import httpx
import pytest

from k8swatch.coder import (
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
    build_resource_specs,
)
from k8swatch.coder._client import Scrubber
from k8swatch.server import create_app

from .conftest import FakeCoderServer, serve_asgi

NS = "coder"
GV = "/apis/aggregation.coder.com/v1alpha1"
TEMPLATE = f"{GV}/namespaces/{NS}/codertemplates/acme.starter-template"
TEMPLATES = f"{GV}/namespaces/{NS}/codertemplates"
WORKSPACE = f"{GV}/namespaces/{NS}/coderworkspaces/acme.alice.dev-workspace"
INTERNALS = ("http://", "/api/v2", "httpx", "CoderError", "Traceback", "<h1>", "nginx")


class Served(NamedTuple):
    api: httpx.AsyncClient
    coder: FakeCoderServer
    host: str
    port: str


@pytest.fixture
async def served(
    fake_coder_server: FakeCoderServer, anyio_backend_name: str
) -> AsyncIterator[Served]:
    provider = StaticClientProvider(fake_coder_server.url, fake_coder_server.token, NS)
    app = create_app(build_resource_specs(TemplateStorage(provider), WorkspaceStorage(provider)))
    try:
        async with (
            serve_asgi(app, anyio_backend_name) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as api,
        ):
            host, _, port = fake_coder_server.url.removeprefix("http://").rpartition(":")
            yield Served(api, fake_coder_server, host, port)
    finally:
        await app.aclose()
        await provider.aclose()


class Case(NamedTuple):
    route: tuple[str, str]  # the fake's route that fails
    answer: dict[str, Any]  # fail_next_request's arguments
    request: tuple[str, str]  # what the Kubernetes client does
    code: int
    reason: str
    message: str  # the Status message, exactly ({url} stands for the fake's URL)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


CASES = {
    "404": Case(
        ("GET", "organizations/{org}"),
        {"status": 404, "message": "Resource not found or you do not have access to this resource"},
        ("GET", TEMPLATE),
        404,
        "NotFound",
        'codertemplates.aggregation.coder.com "acme.starter-template" not found',
    ),
    "409-exists": Case(
        ("POST", "organizations/{org}/templates"),
        {"status": 409, "message": 'Template with name "copy" already exists.'},
        ("POST", TEMPLATES),
        409,
        "AlreadyExists",
        'codertemplates.aggregation.coder.com "acme.copy" already exists',
    ),
    "409-conflict": Case(
        ("POST", "workspaces/{id}/builds"),
        {
            "status": 409,
            "message": "A workspace build is already active.",
            "detail": "see {url}/builds/1 on {host}",
        },
        ("PUT", WORKSPACE),
        409,
        "Conflict",
        "Operation cannot be fulfilled on coderworkspaces.aggregation.coder.com "
        '"acme.alice.dev-workspace": Coder refused the change: A workspace build is already '
        "active.: see <coder>/builds/1 on <coder>",
    ),
    "403-proxy-page": Case(
        ("GET", "organizations/{org}/templates/{name}"),
        {
            "status": 403,
            "body": b"<h1>403 Forbidden</h1><hr>nginx at {host} port {port}",
            "content_type": "text/html; charset=utf-8",
        },
        ("GET", TEMPLATE),
        403,
        "Forbidden",
        'codertemplates.aggregation.coder.com "acme.starter-template" is forbidden: '
        'unexpected non-JSON response "text/html"',
    ),
    "400-validations": Case(
        ("POST", "organizations/{org}/templates"),
        {
            "status": 400,
            "body": _json(
                {
                    "message": "Validation failed.",
                    "validations": [{"field": "name", "detail": "taken on {url}"}],
                }
            ),
        },
        ("POST", TEMPLATES),
        400,
        "BadRequest",
        "Validation failed.",
    ),
    "401-token-echo": Case(
        ("GET", "organizations/{org}"),
        {"status": 401, "message": "unexpected session token {token!r}"},
        ("GET", TEMPLATE),
        401,
        "Unauthorized",
        "the Coder deployment refused this server's session token: "
        "unexpected session token '[redacted]'",
    ),
    "429": Case(
        ("GET", "templates"),
        {"status": 429, "message": "You've been rate limited."},
        ("GET", TEMPLATES),
        429,
        "TooManyRequests",
        "You've been rate limited.",
    ),
    "410-other-4xx": Case(
        ("GET", "organizations/{org}/templates/{name}"),
        {"status": 410, "message": "Gone."},
        ("GET", TEMPLATE),
        400,
        "BadRequest",
        "Gone.",
    ),
    "500-naming-the-host": Case(
        ("GET", "templates"),
        {"status": 500, "message": "Internal error: dial {host}:{port} failed."},
        ("GET", TEMPLATES),
        503,
        "ServiceUnavailable",
        "the Coder deployment failed: Internal error: dial <coder> failed.",
    ),
    "502-proxy-page": Case(
        ("GET", "templates"),
        {"status": 502, "body": b"<h1>502 Bad Gateway</h1>nginx", "content_type": "text/html"},
        ("GET", TEMPLATES),
        503,
        "ServiceUnavailable",
        'the Coder deployment failed: unexpected non-JSON response "text/html"',
    ),
    "files-503": Case(
        ("GET", "files/{id}"),
        {"status": 503, "message": "Coder is starting."},
        ("GET", TEMPLATE),
        503,
        "ServiceUnavailable",
        "the Coder deployment failed: Coder is starting.",
    ),
    "version-gone": Case(
        ("GET", "templateversions/{id}"),
        {"status": 404, "message": "Template version not found."},
        ("GET", TEMPLATE),
        500,
        "InternalError",
        "Internal error occurred: cannot read the source of template version "
        '"9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30" of acme.starter-template: '
        "its source is gone from Coder",
    ),
    "not-a-zip": Case(
        ("GET", "files/{id}"),
        {"status": 200, "body": b"PK\x03\x04 broken", "content_type": "application/zip"},
        ("GET", TEMPLATE),
        500,
        "InternalError",
        "Internal error occurred: cannot read the source of template version "
        '"9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30" of acme.starter-template: '
        "its source archive cannot be read: not a valid zip archive",
    ),
}


def _fill(value: Any, served: Served) -> Any:
    coder = served.coder
    if isinstance(value, bytes):
        return (
            value.replace(b"{host}", served.host.encode())
            .replace(b"{port}", served.port.encode())
            .replace(b"{url}", coder.url.encode())
        )
    if isinstance(value, str):
        return value.format(url=coder.url, host=served.host, port=served.port, token=coder.token)
    return value


async def _request(served: Served, method: str, path: str) -> httpx.Response:
    if method == "POST":
        body = {
            "apiVersion": "aggregation.coder.com/v1alpha1",
            "kind": "CoderTemplate",
            "metadata": {"name": "acme.copy"},
            "spec": {"organization": "acme", "versionID": "9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30"},
        }
        return await served.api.post(path, json=body)
    if method == "PUT":
        current = (await served.api.get(path)).json()
        current["spec"]["running"] = False
        return await served.api.put(path, json=current)
    return await served.api.get(path)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_each_coder_error_is_a_clean_status_and_a_log_record(
    served: Served, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    fake = served.coder.fake
    answer = {k: _fill(v, served) for k, v in case.answer.items()}
    with caplog.at_level(logging.DEBUG):
        if case.request[0] == "PUT":  # the update reads the object first: fail the write
            current = await served.api.get(case.request[1])
            assert current.status_code == 200
        fake.fail_next_request(*case.route, **answer)
        response = await _request(served, *case.request)
    body = response.json()
    assert response.status_code == case.code, body
    assert (body["kind"], body["code"], body["reason"]) == ("Status", case.code, case.reason)
    assert body["message"] == case.message
    text = response.text
    for leak in (*INTERNALS, served.coder.url, served.host, served.port, served.coder.token):
        assert leak not in text, f"{leak!r} in {text}"
    if case.reason == "BadRequest" and "validations" in str(case.answer):
        causes = body["details"]["causes"]
        assert causes == [
            {"reason": "FieldValueInvalid", "message": "taken on <coder>", "field": "name"}
        ]
    # the details are in the server log, with the request Coder failed; the token never
    route_path = "/api/v2/" + case.route[1].split("{", 1)[0]
    records = [
        r for r in caplog.records if r.name == "k8swatch.coder" and route_path in r.getMessage()
    ]
    assert records, caplog.text
    logged = records[-1].getMessage()
    assert served.coder.url in logged
    if case.answer["status"] != 200:
        assert str(case.answer["status"]) in logged
    assert served.coder.token not in caplog.text


async def test_a_malformed_success_answer_is_a_500_with_an_error_id_in_body_and_log(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.coder.fake.fail_next_request("GET", "templates", status=200, body=b"[{]")
    with caplog.at_level(logging.DEBUG):
        response = await served.api.get(TEMPLATES)
    body = response.json()
    assert (response.status_code, body["reason"]) == (500, "InternalError")
    error_id = body["message"].rsplit(" ", 1)[1]
    assert body["message"] == (
        "Internal error occurred: an unexpected error; the server log has the details "
        f"under error id {error_id}"
    )
    for leak in (*INTERNALS, served.coder.url, served.host, served.port, "JSON", "Protocol"):
        assert leak not in response.text
    (record,) = [r for r in caplog.records if r.name == "k8swatch.errors"]
    assert error_id in record.getMessage()
    assert record.exc_info is not None
    assert served.coder.url in str(record.exc_info[1])  # the request, for the operator
    assert served.coder.token not in caplog.text


async def test_a_failed_import_names_the_provisioners_words_but_not_the_deployment(
    served: Served,
) -> None:
    url = served.coder.url
    served.coder.fake.set_next_template_version(
        "failed", error=f"error downloading module {url}/modules/x: 404"
    )
    current = (await served.api.get(TEMPLATE)).json()
    current["spec"]["files"] = {"main.tf": "# broken\n"}
    response = await served.api.put(TEMPLATE, json=current)
    body = response.json()
    assert (response.status_code, body["reason"]) == (400, "BadRequest")
    assert body["message"].endswith(
        'build ended with status "failed": error downloading module <coder>/modules/x: 404'
    )
    assert served.host not in response.text


async def test_a_coder_that_accepts_but_never_answers_is_a_503_and_a_logged_timeout(
    anyio_backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = "silent-session-token"
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:  # read nothing, answer nothing
            await anyio.sleep_forever()

    provider = StaticClientProvider(f"http://127.0.0.1:{port}", token, NS, timeout=0.5)
    app = create_app(build_resource_specs(TemplateStorage(provider), WorkspaceStorage(provider)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hold)
        try:
            async with (
                serve_asgi(app, anyio_backend_name) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as api,
            ):
                with caplog.at_level(logging.DEBUG):
                    response = await api.get(TEMPLATE)
        finally:
            await app.aclose()
            await provider.aclose()
            tg.cancel_scope.cancel()
    await listener.aclose()
    body = response.json()
    assert (response.status_code, body["reason"]) == (503, "ServiceUnavailable")
    assert body["message"] == "the Coder deployment is unreachable; try again later"
    for leak in (*INTERNALS, str(port), "Timeout", token):
        assert leak not in response.text
    (record,) = [r for r in caplog.records if r.name == "k8swatch.coder"]
    assert f"127.0.0.1:{port}/api/v2/organizations/acme" in record.getMessage()
    assert "ReadTimeout" in record.getMessage()
    assert token not in caplog.text


@pytest.mark.parametrize(
    ("url", "text", "scrubbed"),
    [
        (
            "http://127.0.0.1:37401",
            "dial 127.0.0.1:37401: see http://127.0.0.1:37401/x on 127.0.0.1, not 127.0.0.10",
            "dial <coder>: see <coder>/x on <coder>, not 127.0.0.10",
        ),
        (
            "https://coder.example.com",
            "https://coder.example.com/x and coder.example.com, not coder.example.community",
            "<coder>/x and <coder>, not coder.example.community",
        ),
        # a one-label Service name is left in Coder's words (it would mangle them)
        (
            "http://coder",
            'Cookie "coder_session_token" on http://coder/x; the coder deployment',
            'Cookie "coder_session_token" on <coder>/x; the coder deployment',
        ),
    ],
)
def test_the_scrubber_replaces_the_deployments_address(url: str, text: str, scrubbed: str) -> None:
    assert Scrubber(url)(text) == scrubbed
