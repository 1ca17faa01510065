"""``request_info``: the verb and resource of every request, as kube's RequestInfoFactory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch.server import RequestInfo, request_info

G = "aggregation.coder.com"
BASE = f"/apis/{G}/v1alpha1"


@pytest.mark.parametrize(
    ("method", "path", "query", "verb", "namespace", "resource", "subresource", "name"),
    [
        (
            "GET",
            f"{BASE}/namespaces/default/coderworkspaces",
            {},
            "list",
            "default",
            "coderworkspaces",
            "",
            "",
        ),
        ("GET", f"{BASE}/coderworkspaces", {}, "list", "", "coderworkspaces", "", ""),
        (
            "GET",
            f"{BASE}/coderworkspaces",
            {"watch": ["true"]},
            "watch",
            "",
            "coderworkspaces",
            "",
            "",
        ),
        (
            "GET",
            f"{BASE}/coderworkspaces",
            {"watch": ["1"]},
            "watch",
            "",
            "coderworkspaces",
            "",
            "",
        ),
        (
            "GET",
            f"{BASE}/coderworkspaces",
            {"watch": ["false"]},
            "list",
            "",
            "coderworkspaces",
            "",
            "",
        ),
        ("GET", f"{BASE}/coderworkspaces", {"watch": ["0"]}, "list", "", "coderworkspaces", "", ""),
        (
            "GET",
            f"{BASE}/watch/namespaces/ns/coderworkspaces",
            {},
            "watch",
            "ns",
            "coderworkspaces",
            "",
            "",
        ),
        (
            "GET",
            f"{BASE}/watch/namespaces/ns/coderworkspaces/w",
            {},
            "watch",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        (
            "GET",
            f"{BASE}/namespaces/ns/coderworkspaces/w",
            {},
            "get",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        (
            "HEAD",
            f"{BASE}/namespaces/ns/coderworkspaces/w",
            {},
            "get",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        (
            "POST",
            f"{BASE}/namespaces/ns/coderworkspaces",
            {},
            "create",
            "ns",
            "coderworkspaces",
            "",
            "",
        ),
        (
            "PUT",
            f"{BASE}/namespaces/ns/coderworkspaces/w",
            {},
            "update",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        (
            "PATCH",
            f"{BASE}/namespaces/ns/coderworkspaces/w",
            {},
            "patch",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        (
            "DELETE",
            f"{BASE}/namespaces/ns/coderworkspaces/w",
            {},
            "delete",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        (
            "DELETE",
            f"{BASE}/namespaces/ns/coderworkspaces",
            {},
            "deletecollection",
            "ns",
            "coderworkspaces",
            "",
            "",
        ),
        (
            "PUT",
            f"{BASE}/namespaces/ns/coderworkspaces/w/status",
            {},
            "update",
            "ns",
            "coderworkspaces",
            "status",
            "w",
        ),
        (
            "GET",
            f"{BASE}/namespaces/ns/coderworkspaces/w/log",
            {},
            "get",
            "ns",
            "coderworkspaces",
            "log",
            "w",
        ),
        # a list narrowed to one name carries the name, as kube's
        (
            "GET",
            f"{BASE}/namespaces/ns/coderworkspaces",
            {"fieldSelector": ["metadata.name=w"], "watch": ["1"]},
            "watch",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        ("GET", "/api/v1/namespaces", {}, "list", "", "namespaces", "", ""),
        ("GET", "/api/v1/namespaces/ns", {}, "get", "ns", "namespaces", "", "ns"),
        (
            "PUT",
            "/api/v1/namespaces/ns/finalize",
            {},
            "update",
            "ns",
            "namespaces",
            "finalize",
            "ns",
        ),
        ("GET", "/api/v1/namespaces/ns/pods", {}, "list", "ns", "pods", "", ""),
        (
            "GET",
            f"{BASE}/proxy/namespaces/ns/coderworkspaces/w",
            {},
            "proxy",
            "ns",
            "coderworkspaces",
            "",
            "w",
        ),
        ("OPTIONS", f"{BASE}/coderworkspaces", {}, "", "", "coderworkspaces", "", ""),
    ],
)
def test_resource_requests(
    method: str,
    path: str,
    query: dict[str, list[str]],
    verb: str,
    namespace: str,
    resource: str,
    subresource: str,
    name: str,
) -> None:
    info = request_info(method, path, query)
    assert info.resource_request
    assert (info.verb, info.namespace, info.resource, info.subresource, info.name) == (
        verb,
        namespace,
        resource,
        subresource,
        name,
    )


def test_group_and_version() -> None:
    info = request_info("GET", f"{BASE}/coderworkspaces")
    assert (info.api_prefix, info.api_group, info.api_version) == ("apis", G, "v1alpha1")
    core = request_info("GET", "/api/v1/namespaces")
    assert (core.api_prefix, core.api_group, core.api_version) == ("api", "", "v1")


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/", "get"),
        ("GET", "/apis", "get"),
        ("GET", f"/apis/{G}", "get"),
        ("GET", f"/apis/{G}/v1alpha1", "get"),
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/version", "get"),
        ("GET", "/healthz", "get"),
        ("GET", "/metrics", "get"),
        ("POST", "/openapi/v3", "post"),
        ("GET", f"{BASE}/watch", "get"),  # /watch/ needs something after it
    ],
)
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    assert request_info(method, path) == RequestInfo(resource_request=False, path=path, verb=verb)


@given(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "BREW"]),
    st.lists(
        st.sampled_from(["api", "apis", "v1", "g", "namespaces", "watch", "x", "", "%"]), max_size=8
    ),
    st.dictionaries(
        st.sampled_from(["watch", "fieldSelector"]), st.lists(st.text(max_size=12), max_size=2)
    ),
)
def test_never_raises_and_resource_requests_sit_under_api_prefixes(
    method: str, parts: list[str], query: dict[str, list[str]]
) -> None:
    path = "/" + "/".join(parts)
    info = request_info(method, path, query)
    assert info.path == path
    if info.resource_request:
        assert path.strip("/").split("/")[0] in ("api", "apis")
        # an empty segment is an empty resource, as Go's strings.Split gives
        assert "/" not in info.resource
        assert info.resource in path.split("/")
    else:
        assert info.verb == method.lower()
