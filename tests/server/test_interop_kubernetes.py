"""The official ``kubernetes`` (sync) client: list, then ``watch.Watch().stream`` with
resume, selectors, timeouts, bookmarks and 410 handling."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from ._interop import GROUP, PLURAL, VERSION, WINDOW, Served, new_namespace


@pytest.fixture(scope="module")
def api(served: Served) -> Iterator[client.CustomObjectsApi]:
    configuration = client.Configuration()
    configuration.host = served.url
    with client.ApiClient(configuration) as api_client:
        yield client.CustomObjectsApi(api_client)


@pytest.fixture
def ns() -> str:
    return new_namespace()


def list_widgets(api: client.CustomObjectsApi, ns: str, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, **kwargs)
    return result


def stream(
    api: client.CustomObjectsApi, ns: str, **kwargs: Any
) -> tuple[watch.Watch, Iterator[Any]]:
    w = watch.Watch()
    events = w.stream(api.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, **kwargs)
    return w, events


def test_list_then_watch_from_the_list_resource_version(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    served.create(ns, "before")
    listing = list_widgets(api, ns)
    assert listing["kind"] == "WidgetList"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["before"]
    rv = listing["metadata"]["resourceVersion"]
    served.create(ns, "a")
    w, events = stream(api, ns, resource_version=rv, timeout_seconds=30)
    seen: list[tuple[str, str]] = []
    for event in events:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 1:
            served.patch(ns, "a", {"spec": {"size": 5}})
        elif len(seen) == 2:
            assert event["object"]["spec"]["size"] == 5
            served.delete(ns, "a")
        else:
            w.stop()
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    # The watch remembers the last resourceVersion for the next stream.
    assert int(w.resource_version) > int(rv)


def test_resume_from_an_older_resource_version(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    first = served.create(ns, "a")
    served.create(ns, "b")
    served.create(ns, "c")
    w, events = stream(
        api, ns, resource_version=first["metadata"]["resourceVersion"], timeout_seconds=30
    )
    names = []
    for event in events:
        names.append(event["object"]["metadata"]["name"])
        if len(names) == 2:
            w.stop()
    assert names == ["b", "c"]


def test_field_and_label_selectors(api: client.CustomObjectsApi, served: Served, ns: str) -> None:
    rv = list_widgets(api, ns)["metadata"]["resourceVersion"]
    served.create(ns, "a", app="x")
    served.create(ns, "b", app="y")
    served.create(ns, "c", app="x")
    w, events = stream(
        api, ns, resource_version=rv, field_selector="metadata.name=b", timeout_seconds=30
    )
    for event in events:
        assert event["object"]["metadata"]["name"] == "b"
        w.stop()
    w, events = stream(api, ns, resource_version=rv, label_selector="app=x", timeout_seconds=30)
    names = []
    for event in events:
        names.append(event["object"]["metadata"]["name"])
        if len(names) == 2:
            w.stop()
    assert names == ["a", "c"]
    selected = list_widgets(api, ns, label_selector="app!=x")
    assert [i["metadata"]["name"] for i in selected["items"]] == ["b"]


def test_timeout_seconds_ends_the_stream(api: client.CustomObjectsApi, ns: str) -> None:
    rv = list_widgets(api, ns)["metadata"]["resourceVersion"]
    started = time.monotonic()
    _, events = stream(api, ns, resource_version=rv, timeout_seconds=1)
    assert list(events) == []
    assert time.monotonic() - started < 30


def test_bookmarks(api: client.CustomObjectsApi, served: Served, ns: str) -> None:
    rv = list_widgets(api, ns)["metadata"]["resourceVersion"]
    served.create(ns, "a")
    w, events = stream(api, ns, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=30)
    types = []
    for event in events:
        types.append(event["type"])
        if event["type"] == "BOOKMARK":
            assert event["raw_object"]["kind"] == "Widget"
            assert int(event["raw_object"]["metadata"]["resourceVersion"]) >= int(rv) + 1
            w.stop()
    assert types[0] == "ADDED"
    assert types[-1] == "BOOKMARK"


def test_expired_resource_version_is_410_then_relist(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    first = served.create(ns, "a")
    for size in range(WINDOW + 5):
        served.patch(ns, "a", {"spec": {"size": size}})
    _, events = stream(
        api, ns, resource_version=first["metadata"]["resourceVersion"], timeout_seconds=30
    )
    with pytest.raises(ApiException) as info:
        next(events)
    assert info.value.status == 410
    assert "too old resource version" in str(info.value.reason)
    # Relist and watch again from the fresh resourceVersion.
    listing = list_widgets(api, ns)
    served.patch(ns, "a", {"spec": {"size": -1}})
    w, events = stream(
        api, ns, resource_version=listing["metadata"]["resourceVersion"], timeout_seconds=30
    )
    for event in events:
        assert event["type"] == "MODIFIED"
        assert event["object"]["spec"]["size"] == -1
        w.stop()


def test_watch_all_namespaces(api: client.CustomObjectsApi, served: Served, ns: str) -> None:
    w = watch.Watch()
    events = w.stream(
        api.list_cluster_custom_object,
        GROUP,
        VERSION,
        PLURAL,
        label_selector=f"ns={ns}",
        timeout_seconds=30,
    )
    served.create(ns, "a", ns=ns)
    for event in events:
        # No resourceVersion: the initial state arrives as ADDED events.
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["namespace"] == ns
        w.stop()


def test_paginated_list(api: client.CustomObjectsApi, served: Served, ns: str) -> None:
    for name in ("a", "b", "c"):
        served.create(ns, name)
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        page = list_widgets(api, ns, limit=2, _continue=token or None)
        pages += 1
        names += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert sorted(names) == ["a", "b", "c"]
    assert pages == 2


def test_delete_options_preconditions_and_finalizers(
    api: client.CustomObjectsApi, served: Served, ns: str
) -> None:
    created = served.create(ns, "w")
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="someone-else"))
    with pytest.raises(ApiException) as exc:
        api.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w", body=stale)
    assert exc.value.status == 409
    assert "the UID in the precondition (someone-else)" in str(exc.value.body)
    # Put a finalizer on, then delete with matching preconditions: marked, not gone.
    kept = api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "w", {"metadata": {"finalizers": ["example.com/keep"]}}
    )
    matching = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(
            uid=created["metadata"]["uid"], resource_version=kept["metadata"]["resourceVersion"]
        ),
        propagation_policy="Foreground",
    )
    marked = api.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w", body=matching)
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["example.com/keep"]
    with pytest.raises(ApiException) as added:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "w", {"metadata": {"finalizers": ["a", "example.com/keep"]}}
        )
    assert added.value.status == 422
    api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "w", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as gone:
        api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w")
    assert gone.value.status == 404
