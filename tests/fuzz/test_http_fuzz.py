"""Hostile HTTP requests: no response >= 500, no hang, no traceback, a healthy server after.

Hypothesis generates requests (see ``_requests``) against a ``create_app``
over ``MemoryStorage`` (in-process, on asyncio and trio) and against a live
``k8swatch serve`` (subprocess, embedded fake Coder, over 127.0.0.1). Every
request is bounded by a timeout; a watch is read briefly and then closed.
Every error must be a ``Status``; no body may show Python internals or the
Coder backend's URLs. After the run, list, get and watch must still answer
and encode. ``nox -s fuzz`` runs the same tests with a bigger budget.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, Phase, given, settings

from k8swatch import MemoryStorage
from k8swatch.server import ResourceSpec, create_app
from k8swatch.testing import ASGIClient
from tests.coder.test_cli import Served, serve

from ._checks import check_response, recording
from ._requests import Request, Target, known_attacks, requests
from .conftest import SCALE

REQUEST_TIMEOUT = 10.0  # generous on a busy 2-core machine; a hang or a blow-up takes longer
WATCH_READ = 0.3  # how long a fuzzed watch is read before the fuzzer closes it

MEMORY = Target(
    group="fuzz.example.com",
    version="v1",
    namespaced=("widgets",),
    cluster=("gadgets",),
    namespaces=("default", "other"),
    names=("a", "b"),
)
SERVE = Target(
    group="aggregation.coder.com",
    version="v1alpha1",
    namespaced=("coderworkspaces", "codertemplates"),
    namespaces=("coder",),
    names=("acme.alice.dev-workspace", "acme.starter-template", "acme.bob.x"),
)


def _settings(examples: int) -> settings:
    # The servers keep state between examples, so a shrunk example may show only
    # the aftermath; the summary prints the first failure as generated. Only the
    # long run (nox -s fuzz) spends time shrinking.
    phases = (Phase.generate, Phase.shrink) if SCALE > 1 else (Phase.generate,)
    return settings(
        max_examples=examples * SCALE,
        phases=phases,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


def _check_watch_lines(name: str, request: Request, body: bytes) -> None:
    """Every complete watch event decodes, and none is an ERROR of a server fault."""
    for line in body.split(b"\n")[:-1]:
        if not line.strip():
            continue
        event = json.loads(line)
        if event.get("type") == "ERROR":
            code = event["object"].get("code", 0)
            assert code < 500, f"{name}: a watch ended by a server fault:\n{request}\n{line!r}"


# -- in-process: create_app over MemoryStorage ---------------------------------------


def _memory_app() -> Any:
    gv = f"{MEMORY.group}/{MEMORY.version}"
    return create_app(
        [
            ResourceSpec(
                MEMORY.group, MEMORY.version, "widgets", "Widget", MemoryStorage(gv, "Widget")
            ),
            ResourceSpec(
                MEMORY.group,
                MEMORY.version,
                "gadgets",
                "Gadget",
                MemoryStorage(gv, "Gadget", namespaced=False),
                namespaced=False,
            ),
        ],
        max_body_bytes=1024 * 1024,
    )


async def _asgi_send(client: ASGIClient, request: Request) -> tuple[int, str, bytes]:
    with anyio.fail_after(REQUEST_TIMEOUT):
        async with client.stream(
            request.method, request.target, headers=request.headers, body=request.body
        ) as response:
            content_type = response.header("content-type") or ""
            if request.is_watch and response.status == 200:
                chunks: list[bytes] = []
                with anyio.move_on_after(WATCH_READ):
                    while (chunk := await response.receive_chunk()) is not None:
                        chunks.append(chunk)
                return response.status, content_type, b"".join(chunks)
            return response.status, content_type, await response.read()


async def _asgi_exchange(client: ASGIClient, request: Request) -> None:
    with recording("memory"):
        try:
            status, content_type, body = await _asgi_send(client, request)
        except TimeoutError:
            raise AssertionError(f"no answer in {REQUEST_TIMEOUT} s:\n{request}") from None
        except Exception as exc:  # the app raised instead of answering
            raise AssertionError(f"the app raised {exc!r}:\n{request}") from exc
        check_response("memory", request, status, content_type, body)
        if request.is_watch and status == 200:
            _check_watch_lines("memory", request, body)


async def _asgi_healthy(client: ASGIClient, base: str) -> None:
    """A list, a create, a get and a watch with initial events all answer and encode."""
    with anyio.fail_after(REQUEST_TIMEOUT):
        listed = await client.request("GET", f"{base}/widgets")
        assert listed.status == 200, listed
        assert listed.json()["kind"] == "WidgetList"
        created = await client.request(
            "POST",
            f"{base}/namespaces/default/widgets",
            json={"metadata": {"generateName": "after-"}, "spec": {"ok": True}},
        )
        assert created.status == 201, created
        name = created.json()["metadata"]["name"]
        got = await client.request("GET", f"{base}/namespaces/default/widgets/{name}")
        assert got.status == 200, got
        query = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        query += "&allowWatchBookmarks=true&timeoutSeconds=1"
        async with client.stream("GET", f"{base}/widgets?{query}") as watch:
            assert watch.status == 200
            types = [event["type"] async for event in watch]
        assert "ERROR" not in types, types
        assert "BOOKMARK" in types, types


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_memory_app(backend: str) -> None:
    client = ASGIClient(_memory_app())
    base = f"/apis/{MEMORY.group}/{MEMORY.version}"
    with start_blocking_portal(backend) as portal:
        for name in MEMORY.names:
            for namespace in MEMORY.namespaces:
                created = portal.call(
                    functools.partial(
                        client.request,
                        "POST",
                        f"{base}/namespaces/{namespace}/widgets",
                        json={"metadata": {"name": name}, "spec": {"n": 1}},
                    )
                )
                assert created.status == 201, created

        @_settings(100)
        @given(request=requests(MEMORY))
        def run(request: Request) -> None:
            portal.call(_asgi_exchange, client, request)

        # the known attacks first, while the objects they aim at still exist
        for request in known_attacks(MEMORY):
            portal.call(_asgi_exchange, client, request)
        run()
        portal.call(_asgi_healthy, client, base)


# -- live: k8swatch serve over 127.0.0.1 ---------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("home")
    env = dict(os.environ, HOME=str(home))
    env.pop("KUBECONFIG", None)
    env.pop("CODER_SESSION_TOKEN", None)
    with serve(env, home / "kubeconfig") as running:
        yield running


def _http_send(client: httpx.Client, request: Request) -> tuple[int, str, bytes]:
    # An idle watch sends nothing: its reads time out sooner, and that closes it.
    timeout = httpx.Timeout(REQUEST_TIMEOUT, read=2.0 if request.is_watch else REQUEST_TIMEOUT)
    with client.stream(
        request.method,
        request.target,
        headers=request.headers,
        content=request.body,
        timeout=timeout,
    ) as response:
        content_type = response.headers.get("content-type", "")
        if request.is_watch and response.status_code == 200:
            chunks: list[bytes] = []
            deadline = time.monotonic() + WATCH_READ
            try:
                for chunk in response.iter_raw():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        break
            except httpx.ReadTimeout:
                pass  # an idle watch: the fuzzer closes it
            return response.status_code, content_type, b"".join(chunks)
        return response.status_code, content_type, response.read()


def _http_exchange(client: httpx.Client, request: Request) -> None:
    with recording("serve"):
        try:
            status, content_type, body = _http_send(client, request)
        except httpx.TimeoutException as exc:
            raise AssertionError(f"no answer in time ({type(exc).__name__}):\n{request}") from None
        check_response("serve", request, status, content_type, body)
        if request.is_watch and status == 200:
            _check_watch_lines("serve", request, body)


def _http_healthy(client: httpx.Client) -> None:
    base = f"/apis/{SERVE.group}/{SERVE.version}"
    for plural in SERVE.namespaced:
        listed = client.get(f"{base}/{plural}")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        for item in items:  # the fuzz may have deleted some, but what is listed reads
            meta = item["metadata"]
            got = client.get(f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}")
            assert got.status_code == 200, got.text
        query = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        query += "&allowWatchBookmarks=true&timeoutSeconds=1"
        with client.stream("GET", f"{base}/{plural}?{query}") as watch:
            assert watch.status_code == 200
            events = [json.loads(line) for line in watch.iter_lines() if line.strip()]
        types = [event["type"] for event in events]
        assert "ERROR" not in types, events
        assert types.count("ADDED") >= len(items), types


def test_serve(served: Served) -> None:
    url = served.value("URL: ")
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:

        @_settings(100)
        @given(request=requests(SERVE))
        def run(request: Request) -> None:
            _http_exchange(client, request)

        # the known attacks first, while the objects they aim at still exist
        for request in known_attacks(SERVE):
            _http_exchange(client, request)
        run()
        _http_healthy(client)
    assert served.proc.poll() is None, "".join(served.lines)


# -- schemathesis: the served OpenAPI v3 document, against the same live server ------


def test_serve_openapi(served: Served) -> None:
    """Requests schemathesis derives from the served OpenAPI v3 document."""
    import schemathesis

    url = served.value("URL: ")
    schema = schemathesis.openapi.from_url(
        f"{url}/openapi/v3/apis/{SERVE.group}/{SERVE.version}", timeout=REQUEST_TIMEOUT
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:

        @_settings(10)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            query = dict(case.query or {})
            if "watch" in query:
                query["timeoutSeconds"] = 1  # a watch must end
                case.query = query
            response = case.call(base_url=url, timeout=REQUEST_TIMEOUT)
            target = response.request.path_url
            request = Request(case.method.upper(), target, dict(case.headers or {}), b"")
            with recording("openapi"):
                check_response(
                    "openapi",
                    request,
                    response.status_code,
                    response.headers.get("content-type", ""),
                    response.content,
                )

        run()
