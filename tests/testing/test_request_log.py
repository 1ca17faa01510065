"""RequestLog and RecordedRequest through InstrumentedApp (asyncio and trio)."""

from __future__ import annotations

import re

import anyio
import httpx
import pytest

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import (
    ASGIClient,
    Fault,
    InstrumentedApp,
    RecordedRequest,
    RequestLog,
    serve_app,
)

GROUP_PATH = "/apis/example.com/v1"
NS = f"{GROUP_PATH}/namespaces/default/widgets"


def build_app() -> App:
    storage = MemoryStorage("example.com/v1", "Widget")
    return create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])


@pytest.fixture
def app() -> InstrumentedApp:
    return InstrumentedApp(build_app())


@pytest.fixture
def client(app: InstrumentedApp) -> ASGIClient:
    return ASGIClient(app, headers={"User-Agent": "widget-operator/1.0"})


async def test_records_each_request_with_its_status(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    created = await client.request("POST", NS, json={"metadata": {"name": "a"}})
    assert created.status == 201
    await client.request("GET", f"{NS}?labelSelector=app%3Dx&limit=5&limit=6&empty=")
    missing = await client.request("GET", f"{NS}/nope")
    assert missing.status == 404
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        assert (await stream.receive_json())["type"] == "ADDED"
    async with client.stream("GET", f"{GROUP_PATH}/watch/namespaces/default/widgets") as stream:
        assert (await stream.receive_json())["type"] == "ADDED"

    post, listing, get, watch, legacy_watch = app.log
    assert (post.method, post.path, post.status, post.watch) == ("POST", NS, 201, False)
    assert post.json() == {"metadata": {"name": "a"}}
    assert post.body == b'{"metadata": {"name": "a"}}'
    assert post.header("Content-Type") == "application/json"
    assert post.user_agent == "widget-operator/1.0"
    assert ("user-agent", "widget-operator/1.0") in post.headers
    assert post.fault is None
    assert listing.query_string == "labelSelector=app%3Dx&limit=5&limit=6&empty="
    assert listing.query == {"labelSelector": ["app=x"], "limit": ["5", "6"], "empty": [""]}
    assert listing.param("labelSelector") == "app=x"
    assert listing.param("limit") == "5"
    assert listing.param("watch") is None
    assert (listing.status, listing.watch, listing.body) == (200, False, b"")
    assert get.status == 404
    assert watch.watch
    assert watch.status == 200
    assert watch.describe() == f"GET {NS}?watch=1&resourceVersion=0 -> 200"
    assert legacy_watch.watch
    assert app.log[0] is post
    assert app.log[-1] is legacy_watch


def test_watch_is_told_as_kube_apiserver_does() -> None:
    def is_watch(target: str) -> bool:
        path, _, query = target.partition("?")
        scope = {"method": "get", "path": path, "query_string": query.encode()}
        return RecordedRequest.from_scope(scope).watch

    assert is_watch(f"{NS}?watch=true")
    assert is_watch(f"{NS}?watch=1")
    assert is_watch(f"{NS}?watch=")  # present and not false: a watch
    assert not is_watch(f"{NS}?watch=false")
    assert not is_watch(f"{NS}?watch=0")
    assert not is_watch(NS)
    assert is_watch("/api/v1/watch/namespaces/default/pods")
    assert is_watch(f"{GROUP_PATH}/watch/widgets")
    assert not is_watch("/api/v1/namespaces/watch/pods")  # a namespace named "watch"
    assert not is_watch("/apis/watch/v1/widgets")  # a group named "watch"
    assert RecordedRequest.from_scope({"method": "get", "path": "/"}).method == "GET"


async def test_find_and_assert_by_method_path_watch_and_predicate(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    await client.request("POST", NS, json={"metadata": {"name": "a"}})
    await client.request("GET", NS)
    await client.request("GET", "/api/v1/namespaces/default")
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        await stream.receive_json()
    log = app.log

    assert len(log) == 4
    assert [r.method for r in log.find("get")] == ["GET", "GET", "GET"]
    assert len(log.find(path=NS)) == 3
    assert len(log.find(path="/apis/*/widgets")) == 3
    assert len(log.find(path=re.compile(r"/namespaces/default$"))) == 1
    assert [r.watch for r in log.find("GET", NS)] == [False, True]
    (watch,) = log.find(watch=True)
    assert watch.param("resourceVersion") == "0"
    assert log.find(where=lambda r: r.body != b"") == log.find("POST")
    assert log.assert_requested("GET", NS, watch=True) == [watch]
    assert len(log.assert_requested("GET", NS, times=2)) == 2
    log.assert_not_requested("DELETE")
    log.assert_not_requested("GET", "/apis/*/gadgets")

    with pytest.raises(AssertionError) as missing:
        log.assert_requested("DELETE", NS)
    message = str(missing.value)
    assert message.startswith(f"expected a request matching DELETE {NS}, found 0; got 4 requests:")
    assert f"\n  POST {NS} -> 201\n" in message
    assert f"\n  GET {NS}?watch=1&resourceVersion=0 -> 200" in message
    with pytest.raises(AssertionError, match=r"expected 1 request\(s\) matching GET any path"):
        log.assert_requested("GET", times=1)
    with pytest.raises(AssertionError, match=r"matching POST any path \(not a watch\), found 1"):
        log.assert_not_requested("POST", watch=False)

    log.clear()
    assert len(log) == 0
    assert log.describe() == "no requests"
    with pytest.raises(AssertionError, match="got no requests"):
        log.assert_requested(watch=True)


async def test_wait_for_a_request_from_another_task(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    async with anyio.create_task_group() as tg:

        async def operator() -> None:
            await anyio.wait_all_tasks_blocked()
            await client.request("GET", NS)
            await client.request("GET", f"{NS}?limit=1")

        tg.start_soon(operator)
        with anyio.fail_after(10):
            found = await app.log.wait_for("GET", NS, count=2)
    assert [r.param("limit") for r in found] == [None, "1"]
    with pytest.raises(TimeoutError, match=r"waited 0.05s for 1 request\(s\) matching DELETE"):
        await app.log.wait_for("DELETE", timeout=0.05)


async def test_wait_for_a_request_made_in_another_thread(app: InstrumentedApp) -> None:
    # serve_app runs the app in its own thread and event loop; so does the client here.
    with serve_app(app) as url:

        def list_widgets() -> int:
            return httpx.get(f"{url}{NS}?limit=7", timeout=30).status_code

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, list_widgets)
            with anyio.fail_after(30):
                (request,) = await app.log.wait_for(where=lambda r: r.param("limit") == "7")
    assert request.path == NS
    assert request.user_agent.startswith("python-httpx/")
    assert request.status == 200


async def test_faulted_requests_are_logged_and_marked(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    app.faults.add(Fault.status(503), "GET")
    await client.request("GET", NS)
    await client.request("GET", NS)
    faulted, served = app.log
    assert faulted.fault == Fault.status(503)
    assert faulted.status == 503
    assert faulted.describe() == f"GET {NS} -> 503 [fault: 503 ServiceUnavailable]"
    assert (served.fault, served.status) == (None, 200)


async def test_lifespan_passes_through_unrecorded(app: InstrumentedApp) -> None:
    async with ASGIClient(app).lifespan():
        pass
    assert len(app.log) == 0


def test_a_log_can_be_shared_by_several_apps() -> None:
    log = RequestLog()
    first = InstrumentedApp(build_app(), log=log)
    second = InstrumentedApp(build_app(), log=log)
    assert first.log is second.log is log
    assert first.faults is not second.faults


# --- the pytest plugin's fixtures --------------------------------------------------


@pytest.fixture
def asgi_app() -> App:
    return build_app()


async def test_request_log_fixture_records_the_asgi_client(
    asgi_client: ASGIClient, request_log: RequestLog, instrumented_app: InstrumentedApp
) -> None:
    assert asgi_client.app is instrumented_app
    assert instrumented_app.log is request_log
    await asgi_client.request("GET", NS)
    request_log.assert_requested("GET", NS, times=1)


def test_request_log_fixture_records_the_live_server(
    live_server: str, request_log: RequestLog
) -> None:
    assert httpx.get(f"{live_server}{NS}", timeout=30).status_code == 200
    (request,) = request_log.assert_requested("GET", NS)
    assert request.status == 200
