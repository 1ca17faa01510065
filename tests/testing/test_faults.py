"""Fault injection through InstrumentedApp: in-process (asyncio and trio), from markers,
and with real clients against serve_app (uvicorn and hypercorn's trio worker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import ASGIClient, Fault, Faults, InstrumentedApp, RequestLog, serve_app
from k8swatch.testing._plugin import _fault_from_keywords

NS = "/apis/example.com/v1/namespaces/default/widgets"
SERVERS = ["uvicorn", "hypercorn-trio"]


def build_app() -> App:
    storage = MemoryStorage("example.com/v1", "Widget")
    return create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])


@pytest.fixture
def app() -> InstrumentedApp:
    return InstrumentedApp(build_app())


@pytest.fixture
def client(app: InstrumentedApp) -> ASGIClient:
    return ASGIClient(app)


async def create(client: ASGIClient, *names: str) -> str:
    """Create widgets; return the resourceVersion of the last one."""
    rv = ""
    for name in names:
        created = await client.request("POST", NS, json={"metadata": {"name": name}})
        assert created.status == 201, created
        rv = created.json()["metadata"]["resourceVersion"]
    return rv


# --- status -----------------------------------------------------------------------


async def test_status_fault_answers_a_kubernetes_status(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    rule = app.faults.add(Fault.status(503), "get", NS)
    unavailable = await client.request("GET", NS)
    assert unavailable.status == 503
    assert unavailable.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server is currently unable to handle the request",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
    assert unavailable.header("retry-after") is None
    assert rule.hits == 1
    assert rule.exhausted
    assert (await client.request("GET", NS)).status == 200  # times=1: the next one only


async def test_status_fault_reasons_and_retry_after(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    app.faults.add(Fault.status(429), path="/apis/*")
    app.faults.add(Fault.status(500, "boom"), "POST")
    app.faults.add(Fault.status(504, retry_after=3), "DELETE")
    app.faults.add(Fault.status(599), "PUT")
    throttled = await client.request("GET", NS)
    assert (throttled.status, throttled.header("retry-after")) == (429, "1")
    assert throttled.json()["reason"] == "TooManyRequests"
    assert throttled.json()["details"] == {"retryAfterSeconds": 1}
    failed = await client.request("POST", NS, json={"metadata": {"name": "a"}})
    assert (failed.status, failed.json()["reason"], failed.json()["message"]) == (
        500,
        "InternalError",
        "boom",
    )
    timed_out = await client.request("DELETE", f"{NS}/a")
    assert (timed_out.json()["reason"], timed_out.header("retry-after")) == ("Timeout", "3")
    odd = (await client.request("PUT", f"{NS}/a", json={})).json()
    assert (odd["code"], odd["reason"], odd["message"]) == (
        599,
        "InternalError",
        "injected fault: HTTP 599",
    )
    with pytest.raises(ValueError, match="400 to 599"):
        Fault.status(200)


async def test_rules_match_in_order_with_times(app: InstrumentedApp, client: ASGIClient) -> None:
    every = app.faults.add(Fault.status(500), "GET", "/api/v1/*", times=None)
    twice = app.faults.add(Fault.status(503), "GET", watch=False, times=2)
    statuses = [(await client.request("GET", NS)).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [(await client.request("GET", "/api/v1/namespaces")).status for _ in range(3)] == [
        500
    ] * 3
    assert (every.hits, twice.hits) == (3, 2)
    assert app.faults.rules == [every, twice]
    app.faults.clear()
    assert app.faults.rules == []
    assert (await client.request("GET", "/api/v1/namespaces")).status == 200
    with pytest.raises(ValueError, match="times must be >= 1"):
        app.faults.add(Fault.stall(), times=0)


# --- 410 on the next watch ---------------------------------------------------------


async def test_expired_ends_the_next_watch_with_a_410_error_event(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    rv = await create(client, "a", "b")
    app.faults.add(Fault.expired(), watch=True)
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion={rv}") as stream:
        assert stream.status == 200
        events = [event async for event in stream]
        assert stream.complete
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {rv} ({int(rv) + 1})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    # The list is untouched; the watch after the relist works.
    assert (await client.request("GET", NS)).status == 200
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        assert (await stream.receive_json())["type"] == "ADDED"
    assert [r.fault for r in app.log.find(watch=True)] == [Fault.expired(), None]


async def test_expired_on_a_list_is_an_http_410(app: InstrumentedApp, client: ASGIClient) -> None:
    app.faults.add(Fault.expired("The provided continue parameter is too old"), watch=False)
    gone = await client.request("GET", f"{NS}?limit=1&continue=abc")
    assert gone.status == 410
    assert (gone.json()["reason"], gone.json()["message"]) == (
        "Expired",
        "The provided continue parameter is too old",
    )


# --- dropped streams ---------------------------------------------------------------


async def test_drop_ends_a_watch_after_n_events(app: InstrumentedApp, client: ASGIClient) -> None:
    await create(client, "a", "b", "c")
    app.faults.add(Fault.drop(2), watch=True)
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        names = [event["object"]["metadata"]["name"] async for event in stream]
        assert stream.complete
    assert names == ["a", "b"]
    app.faults.add(Fault.drop(), watch=True)
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        assert stream.status == 200
        assert await stream.read() == b""
        assert stream.complete
    assert app.app.active_watches == 0


async def test_drop_with_cut_leaves_the_body_unfinished(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    await create(client, "a", "b")
    app.faults.add(Fault.drop(1, cut=True), watch=True)
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        names = [event["object"]["metadata"]["name"] async for event in stream]
        assert not stream.complete
    assert names == ["a"]
    assert app.log[-1].describe().endswith("[fault: cut after 1 event]")
    with pytest.raises(ValueError, match="after must be >= 0"):
        Fault.drop(-1)


# --- stalled streams ---------------------------------------------------------------


async def test_stall_holds_a_watch_until_released(app: InstrumentedApp, client: ASGIClient) -> None:
    await create(client, "a")
    app.faults.add(Fault.stall(), watch=True)
    with anyio.fail_after(10):
        async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
            assert stream.status == 200
            await anyio.wait_all_tasks_blocked()
            assert app.faults.held == 1
            assert app.app.active_watches == 0  # the app never saw the watch
            app.faults.release()
            assert await stream.read() == b""  # no ADDED: the app never saw the watch
            assert stream.complete
    assert app.faults.held == 0


async def test_stall_ends_when_the_client_gives_up(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    app.faults.add(Fault.stall(), watch=True)
    with anyio.fail_after(10):
        async with client.stream("GET", f"{NS}?watch=1") as stream:
            await anyio.wait_all_tasks_blocked()
            assert app.faults.held == 1
            assert stream.status == 200
    assert app.faults.held == 0


async def test_stall_holds_a_request_without_an_answer_until_released(
    app: InstrumentedApp, client: ASGIClient
) -> None:
    app.faults.add(Fault.stall(), "GET", NS)
    statuses: list[int] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def get() -> None:
                statuses.append((await client.request("GET", NS)).status)

            tg.start_soon(get)
            await app.log.wait_for("GET", NS)
            await anyio.wait_all_tasks_blocked()
            assert statuses == []
            assert app.log[0].status is None  # not answered yet
            app.faults.release()
    assert statuses == [200]  # then the app answered


# --- latency -----------------------------------------------------------------------


async def test_latency_delays_the_answer(app: InstrumentedApp, client: ASGIClient) -> None:
    app.faults.add(Fault.latency(0.3), "GET")
    started = anyio.current_time()
    response = await client.request("GET", NS)
    assert anyio.current_time() - started >= 0.3
    assert response.status == 200
    assert (await client.request("GET", NS)).status == 200
    assert [r.fault for r in app.log] == [Fault.latency(0.3), None]
    assert Fault.latency(0.3).describe() == "latency 0.3s"
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        Fault.latency(-1)


# --- from pytest markers -----------------------------------------------------------


@pytest.fixture
def asgi_app() -> App:
    return build_app()


@pytest.mark.k8swatch_fault(status=503, method="GET", path=NS, times=2)
async def test_marker_adds_a_status_fault(asgi_client: ASGIClient, request_log: RequestLog) -> None:
    assert [(await asgi_client.request("GET", NS)).status for _ in range(3)] == [503, 503, 200]
    assert (await asgi_client.request("GET", "/api/v1/namespaces")).status == 200
    assert [r.status for r in request_log.find(path=NS)] == [503, 503, 200]


@pytest.mark.k8swatch_fault(Fault.expired(), watch=True)
@pytest.mark.k8swatch_fault(drop=True, watch=True)
async def test_markers_take_a_fault_and_stack(asgi_client: ASGIClient, faults: Faults) -> None:
    assert [rule.fault for rule in faults.rules] == [Fault.drop(0), Fault.expired()]
    async with asgi_client.stream("GET", f"{NS}?watch=1") as stream:
        assert await stream.read() == b""  # ended right after the headers
        assert stream.complete
    async with asgi_client.stream("GET", f"{NS}?watch=1&resourceVersion=3") as stream:
        assert (await stream.receive_json())["object"]["code"] == 410


def test_marker_keywords_build_each_fault() -> None:
    assert _fault_from_keywords({"status": 429, "retry_after": 5}) == Fault.status(
        429, retry_after=5
    )
    assert _fault_from_keywords({"expired": True, "message": "m"}) == Fault.expired("m")
    assert _fault_from_keywords({"drop": True}) == Fault.drop(0)
    assert _fault_from_keywords({"drop": 0}) == Fault.drop(0)
    assert _fault_from_keywords({"drop": 3, "cut": True}) == Fault.drop(3, cut=True)
    assert _fault_from_keywords({"stall": True}) == Fault.stall()
    assert _fault_from_keywords({"latency": 0.5}) == Fault.latency(0.5)
    with pytest.raises(TypeError, match="exactly one of"):
        _fault_from_keywords({"status": 503, "stall": True})
    with pytest.raises(TypeError, match="exactly one of"):
        _fault_from_keywords({})
    with pytest.raises(TypeError, match="cut does not apply to a status fault"):
        _fault_from_keywords({"status": 503, "cut": True})


# --- real clients against serve_app ------------------------------------------------


@pytest.fixture(params=SERVERS)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, InstrumentedApp]]:
    app = InstrumentedApp(build_app())
    with serve_app(app, server=request.param) as url:
        yield url, app


def wait_until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kubernetes_client_relists_after_a_forced_410(
    served: tuple[str, InstrumentedApp],
) -> None:
    url, app = served
    httpx.post(f"{url}{NS}", json={"metadata": {"name": "a"}}, timeout=30).raise_for_status()
    app.faults.add(Fault.expired(), watch=True)
    configuration = k8s.Configuration()
    configuration.host = url

    def create_b_once_watching_again() -> None:
        wait_until(lambda: app.app.active_watches == 1)
        httpx.post(f"{url}{NS}", json={"metadata": {"name": "b"}}, timeout=30)

    with k8s.ApiClient(configuration) as api_client:
        api = k8s.CustomObjectsApi(api_client)
        args = ("example.com", "v1", "default", "widgets")

        def watch(rv: str) -> tuple[k8s_watch.Watch, Iterator[Any]]:
            w = k8s_watch.Watch()
            stream = w.stream(
                api.list_namespaced_custom_object, *args, resource_version=rv, timeout_seconds=30
            )
            return w, stream

        # What every informer does: list, watch from the list, and on 410 list again.
        listing = api.list_namespaced_custom_object(*args)
        _, events = watch(listing["metadata"]["resourceVersion"])
        with pytest.raises(ApiException) as info:
            next(events)
        assert info.value.status == 410
        assert "too old resource version" in str(info.value.reason)
        listing = api.list_namespaced_custom_object(*args)
        creator = threading.Thread(target=create_b_once_watching_again)
        creator.start()
        w, events = watch(listing["metadata"]["resourceVersion"])
        seen = []
        for event in events:
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            w.stop()
        creator.join()
    assert seen == [("ADDED", "b")]
    requests = app.log.find("GET", NS)
    assert [(r.watch, r.status) for r in requests] == [
        (False, 200),
        (True, 200),
        (False, 200),
        (True, 200),
    ]
    assert requests[1].fault == Fault.expired()
    assert requests[3].fault is None
    assert requests[0].user_agent.startswith("OpenAPI-Generator/")


def test_cut_breaks_a_real_clients_stream(served: tuple[str, InstrumentedApp]) -> None:
    url, app = served
    for name in ("a", "b"):
        httpx.post(f"{url}{NS}", json={"metadata": {"name": name}}, timeout=30).raise_for_status()
    app.faults.add(Fault.drop(1, cut=True), watch=True)
    app.faults.add(Fault.drop(1), watch=True)
    with httpx.Client(timeout=30) as http:
        lines: list[str] = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            http.stream("GET", f"{url}{NS}?watch=1&resourceVersion=0") as response,
        ):
            lines.extend(response.iter_lines())
        assert len([line for line in lines if line]) == 1
        with http.stream("GET", f"{url}{NS}?watch=1&resourceVersion=0") as response:
            assert len([line for line in response.iter_lines() if line]) == 1  # a clean end
    wait_until(lambda: app.app.active_watches == 0)


def test_stall_holds_a_real_client_until_it_gives_up(served: tuple[str, InstrumentedApp]) -> None:
    url, app = served
    app.faults.add(Fault.stall(), watch=True)
    with httpx.Client(timeout=httpx.Timeout(30, read=0.5)) as http:
        response = http.send(http.build_request("GET", f"{url}{NS}?watch=1"), stream=True)
        assert response.status_code == 200
        assert app.faults.held == 1
        with pytest.raises(httpx.ReadTimeout):
            response.read()
        response.close()
    wait_until(lambda: app.faults.held == 0)


@pytest.mark.parametrize("server", SERVERS)
def test_stopping_the_server_releases_stalled_watches(server: Any) -> None:
    app = InstrumentedApp(build_app())
    app.faults.add(Fault.stall(), watch=True)
    with httpx.Client(timeout=30) as http:
        with serve_app(app, server=server) as url:
            response = http.send(http.build_request("GET", f"{url}{NS}?watch=1"), stream=True)
            assert response.status_code == 200
            assert app.faults.held == 1
        assert response.read() == b""
        response.close()
    assert app.faults.held == 0
