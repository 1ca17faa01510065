"""/metrics over real HTTP: kubectl and kubernetes-client traffic, scraped and parsed
with prometheus_client's own parser."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client, watch
from prometheus_client.parser import text_string_to_metric_families

from k8swatch import MemoryStorage
from k8swatch.metrics import REQUEST_DURATION_BUCKETS, PrometheusMetrics
from k8swatch.server import App, ResourceSpec, create_app, request_labels
from k8swatch.server._routes import ResourceRoute, match_path
from k8swatch.testing import serve_app

from ._interop import write_kubeconfig
from .test_interop_kubectl import Kubectl

GROUP, VERSION, PLURAL, KIND = "example.com", "v1", "widgets", "Widget"
WINDOW = 5


@attrs.define
class Metered:
    url: str
    app: App
    http: httpx.Client
    kubectl: Kubectl

    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every sample of /metrics by sample name, parsed by prometheus_client."""
        response = self.http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
        return samples

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of *name* whose labels include *labels*."""
        return sum(
            value
            for got, value in self.scrape().get(name, [])
            if all(got.get(k) == v for k, v in labels.items())
        )


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn-trio"])
def metered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    storage = MemoryStorage(f"{GROUP}/{VERSION}", KIND, window=WINDOW, bookmark_interval=1.0)
    app = create_app(
        [ResourceSpec(GROUP, VERSION, PLURAL, KIND, storage)], metrics=PrometheusMetrics()
    )
    with serve_app(app, server=request.param) as url, httpx.Client(base_url=url) as http:
        tmp = tmp_path_factory.mktemp("metrics")
        kubeconfig = write_kubeconfig(tmp, url, namespace="ns1")
        (tmp / "home").mkdir()
        yield Metered(url, app, http, Kubectl(tmp / "home", kubeconfig))


def widget(name: str) -> str:
    return json.dumps(
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}}
    )


def base(ns: str = "ns1") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"


def test_kubectl_traffic_is_counted_with_the_apiserver_labels(metered: Metered) -> None:
    m = metered
    m.kubectl.run("create", "-f", "-", stdin=widget("a"))
    m.kubectl.run("get", "widgets")
    m.kubectl.run("get", "widgets", "a")
    m.kubectl.run("get", "widgets", "-A")
    m.kubectl.run("label", "widgets", "a", "x=y")
    m.kubectl.run("delete", "widgets", "a")
    samples = m.scrape()

    def count(**labels: str) -> float:
        return sum(
            v
            for got, v in samples["apiserver_request_total"]
            if all(got.get(k) == val for k, val in labels.items())
        )

    common = {"group": GROUP, "version": VERSION, "resource": PLURAL, "component": "apiserver"}
    assert count(verb="POST", scope="resource", code="201", **common) >= 1
    assert count(verb="LIST", scope="namespace", code="200", **common) >= 1
    assert count(verb="LIST", scope="cluster", code="200", **common) >= 1
    assert count(verb="GET", scope="resource", code="200", **common) >= 1
    assert count(verb="PATCH", scope="resource", code="200", **common) >= 1
    assert count(verb="DELETE", scope="resource", code="200", **common) >= 1
    # discovery: non-resource requests, the path as the subresource, empty scope
    assert count(verb="GET", subresource="/apis", scope="", resource="") >= 1
    # every label the apiserver has, and only those
    labels, _ = samples["apiserver_request_total"][0]
    assert set(labels) == {
        "verb",
        "dry_run",
        "group",
        "version",
        "resource",
        "subresource",
        "scope",
        "component",
        "code",
    }
    # the duration histogram, with the apiserver's buckets
    buckets = {
        got["le"]
        for got, _ in samples["apiserver_request_duration_seconds_bucket"]
        if got["verb"] == "LIST"
    }
    assert buckets == {repr(b) for b in REQUEST_DURATION_BUCKETS} | {"+Inf"}


def test_verbs_apply_deletecollection_dry_run_and_unknown_paths(metered: Metered) -> None:
    m = metered
    before = m.value("apiserver_request_total", verb="APPLY")
    m.http.patch(
        base() + "/b",
        content=b"{}",
        headers={"content-type": "application/apply-patch+yaml"},
    )
    assert m.value("apiserver_request_total", verb="APPLY") == before + 1
    m.http.delete(base())
    assert m.value("apiserver_request_total", verb="DELETECOLLECTION", scope="namespace") >= 1
    m.http.post(base() + "?dryRun=All", content=widget("dry"))
    assert m.value("apiserver_request_total", verb="POST", dry_run="All") >= 1
    m.http.post(base() + "?dryRun=Some", content=widget("dry"))
    assert m.value("apiserver_request_total", verb="POST", dry_run="invalid") >= 1
    # an unknown path is not a label value (unbounded), a 404 object is counted
    m.http.get("/no/such/path/xyzzy")
    m.http.get(base() + "/missing")
    paths = {got["subresource"] for got, _ in m.scrape()["apiserver_request_total"]}
    assert "/no/such/path/xyzzy" not in paths
    assert m.value("apiserver_request_total", verb="GET", code="404", resource=PLURAL) >= 1


def test_watches_are_long_running_and_not_timed(metered: Metered) -> None:
    m = metered
    m.kubectl.run("create", "-f", "-", stdin=widget("w1"))
    watching = {"verb": "WATCH", "resource": PLURAL, "scope": "namespace"}
    before = m.value("apiserver_request_total", code="200", **watching)
    sent_before = m.value("apiserver_watch_events_total", resource=PLURAL)
    configuration = client.Configuration()
    configuration.host = m.url
    opened = threading.Event()
    received: list[str] = []
    with client.ApiClient(configuration) as api_client:
        api = client.CustomObjectsApi(api_client)

        def consume() -> None:
            stream = watch.Watch().stream(
                api.list_namespaced_custom_object, GROUP, VERSION, "ns1", PLURAL, timeout_seconds=2
            )
            for event in stream:
                received.append(event["type"])
                opened.set()

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        assert opened.wait(30)  # the initial ADDED of w1: the stream is open
        assert m.value("apiserver_longrunning_requests", **watching) == 1
        reader.join(30)
        assert not reader.is_alive()
    assert "ADDED" in received
    deadline = time.monotonic() + 30
    while m.app.active_watches:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    samples = m.scrape()
    assert m.value("apiserver_longrunning_requests", **watching) == 0
    assert m.value("apiserver_request_total", code="200", **watching) == before + 1
    assert m.value("apiserver_watch_events_total", resource=PLURAL) >= sent_before + 1
    timed = [
        got
        for got, _ in samples["apiserver_request_duration_seconds_count"]
        if got["verb"] == "WATCH"
    ]
    assert timed == []


def test_a_watch_from_an_expired_resource_version_counts_a_410(metered: Metered) -> None:
    m = metered
    before = m.value("k8swatch_watch_expired_total", resource=PLURAL)
    first = m.http.post(base("old"), content=widget("o0")).json()["metadata"]["resourceVersion"]
    for i in range(WINDOW + 3):
        assert m.http.post(base("old"), content=widget(f"o{i + 1}")).status_code == 201
    response = m.http.get(
        base("old"), params={"watch": "1", "resourceVersion": first, "timeoutSeconds": "5"}
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[-1]["type"] == "ERROR"
    assert lines[-1]["object"]["code"] == 410
    assert m.value("k8swatch_watch_expired_total", resource=PLURAL) == before + 1


def test_watch_cache_gauges(metered: Metered) -> None:
    m = metered
    m.http.post(base("cache"), content=widget("c1"))
    samples = m.scrape()
    capacity = {
        (got["group"], got["resource"]): v for got, v in samples["apiserver_watch_cache_capacity"]
    }
    assert capacity == {(GROUP, PLURAL): float(WINDOW)}
    (objects,) = [
        v
        for got, v in samples["apiserver_storage_objects"]
        if got["resource"] == "widgets.example.com"
    ]
    assert objects >= 1
    assert "process_cpu_seconds_total" in samples


def test_health_and_metrics_requests_are_non_resource(metered: Metered) -> None:
    m = metered
    m.http.get("/readyz")
    assert m.value("apiserver_request_total", verb="GET", subresource="/readyz", scope="") >= 1
    assert m.value("apiserver_request_total", subresource="/metrics") >= 1
    assert m.http.post("/metrics").status_code == 405


def test_without_a_recorder_metrics_is_404(tmp_path: Path) -> None:
    with serve_app(create_app([])) as url, httpx.Client(base_url=url) as http:
        response = http.get("/metrics")
        assert response.status_code == 404
        assert response.json()["reason"] == "NotFound"


@pytest.mark.parametrize(
    ("method", "path", "query", "content_type", "verb", "scope"),
    [
        ("GET", "/apis/g/v1/namespaces/n/ws", {}, "", "LIST", "namespace"),
        ("GET", "/apis/g/v1/ws", {}, "", "LIST", "cluster"),
        ("GET", "/apis/g/v1/namespaces/n/ws/x", {}, "", "GET", "resource"),
        ("HEAD", "/apis/g/v1/namespaces/n/ws/x", {}, "", "GET", "resource"),
        ("GET", "/apis/g/v1/namespaces/n/ws", {"watch": ["true"]}, "", "WATCH", "namespace"),
        ("GET", "/apis/g/v1/namespaces/n/ws", {"watch": ["false"]}, "", "LIST", "namespace"),
        ("GET", "/apis/g/v1/namespaces/n/ws", {"watch": ["0"]}, "", "LIST", "namespace"),
        ("GET", "/apis/g/v1/watch/namespaces/n/ws", {}, "", "WATCH", "namespace"),
        ("GET", "/apis/g/v1/watch/namespaces/n/ws/x", {}, "", "WATCH", "resource"),
        ("POST", "/apis/g/v1/namespaces/n/ws", {}, "", "POST", "resource"),
        ("PUT", "/apis/g/v1/namespaces/n/ws/x", {}, "", "PUT", "resource"),
        (
            "PATCH",
            "/apis/g/v1/namespaces/n/ws/x",
            {},
            "application/json-patch+json",
            "PATCH",
            "resource",
        ),
        (
            "PATCH",
            "/apis/g/v1/namespaces/n/ws/x",
            {},
            "application/apply-patch+yaml; charset=utf-8",
            "APPLY",
            "resource",
        ),
        ("DELETE", "/apis/g/v1/namespaces/n/ws/x", {}, "", "DELETE", "resource"),
        ("DELETE", "/apis/g/v1/namespaces/n/ws", {}, "", "DELETECOLLECTION", "namespace"),
        ("GET", "/api/v1/namespaces", {}, "", "LIST", "cluster"),
        ("GET", "/apis/g/v1/namespaces/n/ws/x/status", {}, "", "GET", "resource"),
        ("PUT", "/apis/g/v1/namespaces/n/ws/x/status", {}, "", "PUT", "resource"),
        ("GET", "/api/v1/namespaces/n", {}, "", "GET", "resource"),
    ],
)
def test_request_labels(
    method: str, path: str, query: dict[str, list[str]], content_type: str, verb: str, scope: str
) -> None:
    res = ResourceSpec("g", "v1", "ws", "W", object(), status_subresource=True)
    route = match_path(path, {("g", "v1", "ws"): res})
    assert route is not None
    assert not isinstance(route, type(None))
    labels = request_labels(method, path, route, query, content_type)  # type: ignore[arg-type]
    assert (labels.verb, labels.scope) == (verb, scope)
    if "namespaces" in path and path.startswith("/api/"):
        assert (labels.group, labels.version, labels.resource) == ("", "v1", "namespaces")
    else:
        assert (labels.group, labels.version, labels.resource) == ("g", "v1", "ws")
    assert labels.subresource == ("status" if path.endswith("/status") else "")
    assert labels.is_resource_request


def test_request_labels_of_a_non_resource_path() -> None:
    labels = request_labels("GET", "/apis", None, {"dryRun": ["All", "All"]})
    assert labels.values() == ("GET", "All", "", "", "", "/apis", "", "apiserver")
    assert not labels.is_resource_request


def test_registries_do_not_collide() -> None:
    # two apps in one process, each with its own registry
    one, two = PrometheusMetrics(process=False), PrometheusMetrics(process=False)
    create_app([], metrics=one)
    create_app([], metrics=two)
    body, _ = one.exposition()
    assert b"apiserver_request_total" in body
    assert b"process_cpu_seconds_total" not in body


VERBS = {"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}


@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    namespace=st.sampled_from(["", "n"]),
    name=st.sampled_from(["", "x"]),
    watch_path=st.booleans(),
    query=st.dictionaries(
        st.sampled_from(["watch", "dryRun", "limit"]),
        st.lists(st.text(max_size=5), min_size=1, max_size=2),
    ),
    content_type=st.text(max_size=40),
)
def test_request_labels_stay_in_the_apiservers_vocabulary(
    method: str,
    namespace: str,
    name: str,
    watch_path: bool,
    query: dict[str, list[str]],
    content_type: str,
) -> None:
    res = ResourceSpec("g", "v1", "ws", "W", object())
    route = ResourceRoute(res, namespace, name, watch_path)
    labels = request_labels(method, "/ignored", route, query, content_type)
    assert labels.verb in VERBS | {method}
    assert labels.scope in {"resource", "namespace", "cluster"}
    assert labels.dry_run in {"", "All", "invalid"}
    assert (labels.group, labels.version, labels.resource, labels.subresource) == (
        "g",
        "v1",
        "ws",
        "",
    )
    if method in ("GET", "HEAD"):
        watching = watch_path or (
            "watch" in query and query["watch"][0].lower() not in ("0", "false")
        )
        assert labels.verb == ("WATCH" if watching else "GET" if name else "LIST")
    if name or method == "POST":
        assert labels.scope == "resource"


def test_the_core_and_the_server_do_not_import_prometheus_client() -> None:
    code = (
        "import sys, k8swatch, k8swatch.server, k8swatch.coder, k8swatch.redis\n"
        "from k8swatch.server import create_app\n"
        "create_app([])\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
        "import k8swatch.metrics\n"
        "assert 'prometheus_client' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
