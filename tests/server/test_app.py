"""The ASGI app in-process: discovery, REST verbs, errors, tables and watch streams."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest

from k8swatch import Event, EventType, ListOptions, ObjectList, Status
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import ASGIClient

from ._dictstorage import DictStorage

GV = "/apis/example.com/v1"
NS = f"{GV}/namespaces/default/widgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


@pytest.fixture
def storage() -> DictStorage:
    return DictStorage("example.com/v1", "Widget")


@pytest.fixture
def app(storage: DictStorage) -> App:
    return create_app(
        [
            ResourceSpec("example.com", "v1", "widgets", "Widget", storage, short_names=("wd",)),
            ResourceSpec(
                "example.com",
                "v1",
                "gadgets",
                "Gadget",
                DictStorage("example.com/v1", "Gadget"),
                namespaced=False,
            ),
        ],
        max_watches=3,
        max_body_bytes=10_000,
    )


@pytest.fixture
def client(app: App) -> ASGIClient:
    return ASGIClient(app)


async def create(client: ASGIClient, name: str, ns: str = "default", **labels: str) -> Any:
    response = await client.request(
        "POST",
        f"{GV}/namespaces/{ns}/widgets",
        json={"metadata": {"name": name, "labels": labels}, "spec": {"size": 1}},
    )
    assert response.status == 201, response
    return response.json()


# -- discovery -----------------------------------------------------------------


async def test_version_and_legacy_discovery(client: ASGIClient) -> None:
    version = (await client.request("GET", "/version")).json()
    assert version["major"] == "1"
    api = (await client.request("GET", "/api")).json()
    assert api["kind"] == "APIVersions"
    assert api["versions"] == ["v1"]
    core = (await client.request("GET", "/api/v1")).json()
    namespaces = core["resources"][0]
    assert namespaces["name"] == "namespaces"
    assert namespaces["singularName"] == "namespace"
    assert namespaces["namespaced"] is False
    groups = (await client.request("GET", "/apis")).json()
    assert groups["kind"] == "APIGroupList"
    assert groups["groups"][0]["preferredVersion"]["groupVersion"] == "example.com/v1"
    group = (await client.request("GET", "/apis/example.com")).json()
    assert group["kind"] == "APIGroup"
    assert group["name"] == "example.com"
    resources = (await client.request("GET", GV)).json()
    assert resources["groupVersion"] == "example.com/v1"
    widgets, gadgets = resources["resources"]
    assert widgets == {
        "name": "widgets",
        "singularName": "widget",
        "namespaced": True,
        "kind": "Widget",
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        "shortNames": ["wd"],
    }
    assert gadgets["namespaced"] is False


@pytest.mark.parametrize("path", ["/version/", "/api/", "/api/v1/", "/apis/", f"{GV}/"])
async def test_trailing_slash_is_tolerated(client: ASGIClient, path: str) -> None:
    response = await client.request("GET", path)
    assert response.status == 200
    assert response.header("content-type") == "application/json"


async def test_aggregated_discovery(client: ASGIClient) -> None:
    response = await client.request("GET", "/apis", headers={"accept": AGGREGATED})
    assert response.header("content-type") == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    document = response.json()
    assert document["kind"] == "APIGroupDiscoveryList"
    (item,) = document["items"]
    assert item["metadata"]["name"] == "example.com"
    widgets = item["versions"][0]["resources"][0]
    assert widgets["resource"] == "widgets"
    assert widgets["scope"] == "Namespaced"
    assert widgets["singularResource"] == "widget"
    assert widgets["responseKind"] == {"group": "example.com", "version": "v1", "kind": "Widget"}
    core = (await client.request("GET", "/api", headers={"accept": AGGREGATED})).json()
    assert core["items"][0]["versions"][0]["resources"][0]["resource"] == "namespaces"


async def test_plain_json_preferred_over_aggregated(client: ASGIClient) -> None:
    accept = "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    response = await client.request("GET", "/apis", headers={"accept": accept})
    assert response.json()["kind"] == "APIGroupList"


@pytest.mark.parametrize(
    "path",
    [
        "/apis/nope.io",
        "/apis/example.com/v2",
        "/apis/example.com/v1/sprockets",
        "/apis/example.com/v1/namespaces/default/sprockets",
        "/apis/example.com/v1/widgets/by-name-without-namespace",
        "/apis/example.com/v1/namespaces/default/gadgets",
        "/apis/example.com/v1/namespaces/default/widgets/a/status",
        "/apis/example.com/v1//widgets",
        "/api/v2",
        "/nothing",
    ],
)
async def test_unknown_paths_are_404_status(client: ASGIClient, path: str) -> None:
    response = await client.request("GET", path)
    assert response.status == 404
    body = response.json()
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["code"] == 404


async def test_root_and_health(client: ASGIClient) -> None:
    paths = (await client.request("GET", "/")).json()["paths"]
    assert "/apis/example.com/v1" in paths
    health = await client.request("GET", "/healthz")
    assert health.body == b"ok"


# -- namespaces ------------------------------------------------------------------


async def test_namespaces_seen_in_storages(client: ASGIClient) -> None:
    await create(client, "a", ns="team-b")
    listing = (await client.request("GET", "/api/v1/namespaces")).json()
    assert listing["kind"] == "NamespaceList"
    assert [n["metadata"]["name"] for n in listing["items"]] == ["default", "team-b"]
    one = await client.request("GET", "/api/v1/namespaces/team-b/")
    assert one.json()["kind"] == "Namespace"
    implicit = await client.request("GET", "/api/v1/namespaces/never-used")
    assert implicit.json()["metadata"]["name"] == "never-used"
    invalid = await client.request("GET", "/api/v1/namespaces/Not_A_Name")
    assert invalid.status == 404
    assert invalid.json()["message"] == 'namespaces "Not_A_Name" not found'
    table = await client.request("GET", "/api/v1/namespaces", headers={"accept": TABLE})
    assert [row["cells"][0] for row in table.json()["rows"]] == ["default", "team-b"]
    assert [row["cells"][1] for row in table.json()["rows"]] == ["Active", "Active"]
    assert [c["name"] for c in table.json()["columnDefinitions"]] == ["Name", "Status", "Age"]


# -- REST verbs ------------------------------------------------------------------


async def test_create_get_list(client: ASGIClient) -> None:
    created = await create(client, "a", app="x")
    assert created["apiVersion"] == "example.com/v1"
    assert created["kind"] == "Widget"
    assert created["metadata"]["namespace"] == "default"
    got = (await client.request("GET", f"{NS}/a")).json()
    assert got == created
    listing = (await client.request("GET", NS)).json()
    assert listing["kind"] == "WidgetList"
    assert listing["apiVersion"] == "example.com/v1"
    assert listing["metadata"]["resourceVersion"] == "1"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a"]
    everywhere = (await client.request("GET", f"{GV}/widgets/")).json()
    assert len(everywhere["items"]) == 1


async def test_list_selectors(client: ASGIClient) -> None:
    await create(client, "a", app="x")
    await create(client, "b", app="y")
    await create(client, "c", ns="other", app="x")
    by_label = (await client.request("GET", f"{GV}/widgets?labelSelector=app%3Dx")).json()
    assert sorted(i["metadata"]["name"] for i in by_label["items"]) == ["a", "c"]
    by_field = (await client.request("GET", f"{NS}?fieldSelector=metadata.name%3Db")).json()
    assert [i["metadata"]["name"] for i in by_field["items"]] == ["b"]


async def test_create_checks(client: ASGIClient) -> None:
    no_name = await client.request("POST", NS, json={"metadata": {}})
    assert no_name.status == 422
    assert no_name.json()["message"] == (
        'Widget.example.com "" is invalid: metadata.name: Required value: '
        "name or generateName is required"
    )
    wrong_ns = await client.request(
        "POST", NS, json={"metadata": {"name": "a", "namespace": "other"}}
    )
    assert wrong_ns.status == 400
    assert "does not match the namespace" in wrong_ns.json()["message"]
    wrong_kind = await client.request(
        "POST", NS, json={"kind": "Gadget", "metadata": {"name": "a"}}
    )
    assert wrong_kind.status == 400
    wrong_version = await client.request(
        "POST", NS, json={"apiVersion": "example.com/v2", "metadata": {"name": "a"}}
    )
    assert wrong_version.status == 400
    await create(client, "a")
    again = await client.request("POST", NS, json={"metadata": {"name": "a"}})
    assert again.status == 409
    assert again.json()["reason"] == "AlreadyExists"


async def test_bad_json_and_too_large(client: ASGIClient) -> None:
    bad = await client.request(
        "POST", NS, body=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad.status == 400
    assert bad.json()["reason"] == "BadRequest"
    not_object = await client.request("POST", NS, json=[1, 2])
    assert not_object.status == 400
    big = {"metadata": {"name": "a"}, "spec": {"blob": "x" * 20_000}}
    too_large = await client.request("POST", NS, json=big)
    assert too_large.status == 413
    assert too_large.json()["reason"] == "RequestEntityTooLarge"
    assert too_large.json()["message"] == "Request entity too large: limit is 10000"


async def test_body_too_large_without_content_length(app: App) -> None:
    """A chunked body is counted while it is read."""
    received: list[dict[str, Any]] = []
    chunks = [b'{"metadata": {"name": "a"}, "x": "', b"y" * 6000, b"y" * 6000, b'"}']

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        received.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": NS,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    await app(scope, receive, send)
    assert received[0]["status"] == 413


async def test_update(client: ASGIClient) -> None:
    created = await create(client, "a")
    created["spec"]["size"] = 2
    updated = await client.request("PUT", f"{NS}/a", json=created)
    assert updated.status == 200
    assert updated.json()["spec"]["size"] == 2
    stale = await client.request("PUT", f"{NS}/a", json=created)
    assert stale.status == 409
    assert stale.json()["reason"] == "Conflict"
    renamed = await client.request("PUT", f"{NS}/a", json={"metadata": {"name": "b"}})
    assert renamed.status == 400
    assert renamed.json()["message"] == (
        "the name of the object (b) does not match the name on the URL (a)"
    )
    missing = await client.request("PUT", f"{NS}/zz", json={"metadata": {}})
    assert missing.status == 404


async def test_merge_patch(client: ASGIClient) -> None:
    await create(client, "a", app="x")
    patch = {"metadata": {"labels": {"app": None, "tier": "web"}}, "spec": {"color": "red"}}
    response = await client.request(
        "PATCH",
        f"{NS}/a",
        body=json.dumps(patch),
        headers={"content-type": "application/merge-patch+json; charset=utf-8"},
    )
    assert response.status == 200, response
    patched = response.json()
    assert patched["metadata"]["labels"] == {"tier": "web"}
    assert patched["spec"] == {"size": 1, "color": "red"}
    assert patched["metadata"]["resourceVersion"] == "2"


async def test_merge_patch_with_stale_resource_version_conflicts(client: ASGIClient) -> None:
    await create(client, "a")
    await client.request(
        "PATCH",
        f"{NS}/a",
        body=b'{"spec": {"size": 2}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    stale = await client.request(
        "PATCH",
        f"{NS}/a",
        body=b'{"metadata": {"resourceVersion": "1"}, "spec": {"size": 3}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert stale.status == 409


async def test_patch_retries_on_conflict_without_resource_version(
    client: ASGIClient, storage: DictStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(client, "a")
    real_update = storage.update
    calls = 0

    async def racing_update(namespace: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone else writes first
            current = await storage.get(namespace, name)
            await real_update(namespace, name, {**current, "spec": {"size": 9}})
        return await real_update(namespace, name, obj)

    monkeypatch.setattr(storage, "update", racing_update)
    response = await client.request(
        "PATCH",
        f"{NS}/a",
        body=b'{"spec": {"color": "blue"}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status == 200
    assert response.json()["spec"] == {"size": 9, "color": "blue"}
    assert calls == 2


@pytest.mark.parametrize(
    "content_type",
    [
        "application/strategic-merge-patch+json",
        "application/apply-patch+cbor",
        "text/plain",
    ],
)
async def test_other_patch_types_are_415(client: ASGIClient, content_type: str) -> None:
    await create(client, "a")
    response = await client.request(
        "PATCH", f"{NS}/a", body=b"{}", headers={"content-type": content_type}
    )
    assert response.status == 415
    body = response.json()
    assert body["reason"] == "UnsupportedMediaType"
    assert content_type in body["message"]
    assert "application/merge-patch+json" in body["message"]
    assert "application/apply-patch+yaml" in body["message"]


async def test_extra_patch_type(storage: DictStorage) -> None:
    def replace_spec(current: dict[str, Any], body: bytes) -> dict[str, Any]:
        return {**current, "spec": json.loads(body)}

    app = create_app(
        [ResourceSpec("example.com", "v1", "widgets", "Widget", storage)],
        patch_types={"application/x-spec+json": replace_spec},
    )
    client = ASGIClient(app)
    await create(client, "a")
    response = await client.request(
        "PATCH",
        f"{NS}/a",
        body=b'{"only": true}',
        headers={"content-type": "application/x-spec+json"},
    )
    assert response.json()["spec"] == {"only": True}


async def test_bad_merge_patch_body(client: ASGIClient) -> None:
    await create(client, "a")
    for body in (b"{nope", b"[1]"):
        response = await client.request(
            "PATCH", f"{NS}/a", body=body, headers={"content-type": "application/merge-patch+json"}
        )
        assert response.status == 400


async def test_delete(client: ASGIClient) -> None:
    await create(client, "a")
    deleted = await client.request("DELETE", f"{NS}/a")
    assert deleted.status == 200
    assert deleted.json()["metadata"]["name"] == "a"
    assert deleted.json()["kind"] == "Widget"
    gone = await client.request("GET", f"{NS}/a")
    assert gone.status == 404
    assert gone.json()["message"] == 'widgets.example.com "a" not found'


async def test_delete_returning_status(storage: DictStorage) -> None:
    class StatusDeleting(DictStorage):
        async def delete(self, namespace: str, name: str) -> Any:
            return Status.success()

    app = create_app(
        [
            ResourceSpec(
                "example.com", "v1", "widgets", "Widget", StatusDeleting("example.com/v1", "Widget")
            )
        ]
    )
    response = await ASGIClient(app).request("DELETE", f"{NS}/a")
    assert response.status == 200
    assert response.json()["status"] == "Success"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{NS}/a"),
        ("PUT", NS),
        ("PATCH", NS),
        ("DELETE", NS),
        ("POST", f"{GV}/widgets"),
        ("OPTIONS", NS),
        ("POST", f"{GV}/watch/namespaces/default/widgets"),
        ("POST", "/apis"),
        ("DELETE", "/api/v1/namespaces/default"),
    ],
)
async def test_method_not_allowed(client: ASGIClient, method: str, path: str) -> None:
    response = await client.request(method, path, json={"metadata": {"name": "a"}})
    assert response.status == 405
    assert response.json()["reason"] == "MethodNotAllowed"


async def test_verbs_follow_the_storage() -> None:
    class ReadOnly:
        async def get(self, namespace: str, name: str) -> dict[str, Any]:
            return {"metadata": {"name": name, "namespace": namespace}}

        async def list(self, namespace: str, options: ListOptions) -> ObjectList:
            return ObjectList([], resource_version="7")

    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", ReadOnly())
    assert spec.verbs == ("get", "list")
    client = ASGIClient(create_app([spec]))
    assert (await client.request("GET", f"{NS}/a")).json()["kind"] == "Widget"
    created = await client.request("POST", NS, json={"metadata": {"name": "a"}})
    assert created.status == 405
    assert created.json()["message"] == (
        'create is not supported on resources of kind "widgets.example.com"'
    )
    watch = await client.request("GET", f"{NS}?watch=1")
    assert watch.status == 405
    assert watch.json()["message"] == (
        'watch is not supported on resources of kind "widgets.example.com"'
    )


async def test_verbs_can_be_restricted(storage: DictStorage) -> None:
    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", storage, verbs=("get", "list"))
    client = ASGIClient(create_app([spec]))
    assert (await client.request("DELETE", f"{NS}/a")).status == 405


async def test_duplicate_resource_rejected(storage: DictStorage) -> None:
    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", storage)
    with pytest.raises(ValueError, match="served twice"):
        create_app([spec, spec])


async def test_unexpected_exception_is_500_without_traceback(
    storage: DictStorage, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(DictStorage):
        async def get(self, namespace: str, name: str) -> dict[str, Any]:
            raise RuntimeError("secret detail")

    client = ASGIClient(
        create_app(
            [
                ResourceSpec(
                    "example.com", "v1", "widgets", "Widget", Broken("example.com/v1", "Widget")
                )
            ]
        )
    )
    with caplog.at_level(logging.ERROR, logger="k8swatch.server"):
        response = await client.request("GET", f"{NS}/a")
    assert response.status == 500
    body = response.json()
    assert body["reason"] == "InternalError"
    assert body["message"].startswith("Internal error occurred: ")
    assert "secret detail" not in response.body.decode()
    assert any(
        "secret detail" in str(record.exc_info[1]) for record in caplog.records if record.exc_info
    )
    assert "Traceback" not in response.body.decode()
    assert any(record.exc_info for record in caplog.records)


# -- query handling -------------------------------------------------------------


async def test_bad_queries(client: ASGIClient) -> None:
    bad_label = await client.request("GET", f"{NS}?labelSelector=a%20in%20(")
    assert bad_label.status == 400
    assert bad_label.json()["reason"] == "BadRequest"
    bad_field = await client.request("GET", f"{NS}?fieldSelector=spec.x%3D1")
    assert bad_field.status == 400
    assert bad_field.json()["message"] == "field label not supported: spec.x"
    bad_timeout = await client.request("GET", f"{NS}?timeoutSeconds=abc")
    assert bad_timeout.status == 400
    assert bad_timeout.json()["message"] == 'strconv.ParseInt: parsing "abc": invalid syntax'
    invalid = await client.request("GET", f"{NS}?resourceVersionMatch=Exact")
    assert invalid.status == 422
    assert invalid.json()["reason"] == "Invalid"
    assert invalid.json()["details"]["kind"] == "ListOptions"
    watch_invalid = await client.request(
        "GET", f"{NS}?watch=1&resourceVersion=5&resourceVersionMatch=Exact"
    )
    assert watch_invalid.status == 422


async def test_unknown_query_parameters_are_ignored(client: ASGIClient) -> None:
    await create(client, "a")
    response = await client.request("GET", f"{NS}?frobnicate=1&limit=500&timeout=32s")
    assert response.status == 200


async def test_named_path_and_field_selector(client: ASGIClient, storage: DictStorage) -> None:
    await create(client, "a")
    mismatch = await client.request("GET", f"{NS}/a?watch=1&fieldSelector=metadata.name%3Db")
    assert mismatch.status == 400
    assert mismatch.json()["message"] == "fieldSelector metadata.name doesn't match requested name"
    other_field = await client.request(
        "GET", f"{NS}/a?watch=1&fieldSelector=metadata.namespace%3Ddefault"
    )
    assert other_field.status == 400
    async with client.stream("GET", f"{NS}/a?watch=1&timeoutSeconds=1") as stream:
        assert stream.status == 200
        event = await stream.receive_json()
        assert event["object"]["metadata"]["name"] == "a"
    assert storage.watch_calls[-1].field_selector == "metadata.name=a"


# -- tables --------------------------------------------------------------------


async def test_table_list_and_get(client: ASGIClient) -> None:
    await create(client, "a")
    table = (await client.request("GET", NS, headers={"accept": TABLE})).json()
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    (row,) = table["rows"]
    assert row["cells"][0] == "a"
    assert row["cells"][1].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == "default"
    single = (await client.request("GET", f"{NS}/a", headers={"accept": TABLE})).json()
    assert single["kind"] == "Table"
    whole = (
        await client.request("GET", f"{NS}?includeObject=Object", headers={"accept": TABLE})
    ).json()
    assert whole["rows"][0]["object"]["kind"] == "Widget"
    bare = (
        await client.request("GET", f"{NS}?includeObject=None", headers={"accept": TABLE})
    ).json()
    assert "object" not in bare["rows"][0]
    bad = await client.request("GET", f"{NS}?includeObject=All", headers={"accept": TABLE})
    assert bad.status == 400


async def test_table_not_requested_falls_back_to_json(client: ASGIClient) -> None:
    await create(client, "a")
    for accept in (
        "application/json",
        "*/*",
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        "",
    ):
        listing = (await client.request("GET", NS, headers={"accept": accept})).json()
        assert listing["kind"] == "WidgetList"


# -- watch -------------------------------------------------------------------------


async def test_watch_streams_json_lines(client: ASGIClient, storage: DictStorage) -> None:
    await create(client, "a")
    async with client.stream("GET", f"{NS}?watch=True") as stream:
        assert stream.status == 200
        assert stream.header("content-type") == "application/json"
        assert stream.header("content-length") is None
        initial = await stream.receive_json()
        assert initial["type"] == "ADDED"
        assert initial["object"]["metadata"]["name"] == "a"
        await create(client, "b")
        added = await stream.receive_json()
        assert added == {
            "type": "ADDED",
            "object": await storage.get("default", "b")
            | {"apiVersion": "example.com/v1", "kind": "Widget"},
        }
        await client.request("DELETE", f"{NS}/a")
        deleted = await stream.receive_json()
        assert deleted["type"] == "DELETED"
        assert deleted["object"]["metadata"]["resourceVersion"] == "3"
    # Leaving the block disconnected the client and waited for the app.
    assert storage.watch_stops == 1


async def test_watch_object_without_type_meta_gets_it(storage: DictStorage) -> None:
    class Bare(DictStorage):
        async def create(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
            obj = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            return await super().create(namespace, obj)

    bare = Bare("example.com/v1", "Widget")
    client = ASGIClient(create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", bare)]))
    await create(client, "a")
    assert "kind" not in bare.objects[("default", "a")]
    async with client.stream("GET", f"{NS}?watch=1") as stream:
        event = await stream.receive_json()
    assert event["object"]["apiVersion"] == "example.com/v1"
    assert event["object"]["kind"] == "Widget"
    listing = (await client.request("GET", NS)).json()
    assert listing["items"][0]["kind"] == "Widget"


async def test_legacy_watch_path(client: ASGIClient) -> None:
    await create(client, "a")
    async with client.stream("GET", f"{GV}/watch/namespaces/default/widgets/a") as stream:
        event = await stream.receive_json()
        assert event["type"] == "ADDED"
    async with client.stream("GET", f"{GV}/watch/widgets?watch=false") as stream:
        event = await stream.receive_json()
        assert event["object"]["metadata"]["name"] == "a"


async def test_watch_options_reach_the_storage_defaulted(
    client: ASGIClient, storage: DictStorage
) -> None:
    async with client.stream("GET", f"{NS}?watch=1&allowWatchBookmarks=1") as stream:
        bookmark = await stream.receive_json()
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    options = storage.watch_calls[-1]
    assert options.watch is True
    assert options.send_initial_events is True
    assert options.resource_version_match == "NotOlderThan"


async def test_watch_resume_and_410(client: ASGIClient, storage: DictStorage) -> None:
    storage.window = 2
    for name in "abcd":
        await create(client, name)
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=2") as stream:
        names = [(await stream.receive_json())["object"]["metadata"]["name"] for _ in range(2)]
    assert names == ["c", "d"]
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=1") as stream:
        assert stream.status == 200
        error = await stream.receive_json()
        assert await stream.receive_json() is None
    assert error == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "too old resource version: 1 (2)",
            "reason": "Expired",
            "code": 410,
        },
    }


async def test_watch_timeout_seconds_ends_stream(client: ASGIClient, storage: DictStorage) -> None:
    with anyio.fail_after(30):
        async with client.stream("GET", f"{NS}?watch=1&timeoutSeconds=1") as stream:
            assert await stream.read() == b""
    assert storage.watch_stops == 1


async def test_disconnect_stops_the_storage_watch(
    client: ASGIClient, app: App, storage: DictStorage
) -> None:
    async with client.stream("GET", f"{NS}?watch=1") as stream:
        assert stream.status == 200
        assert app.active_watches == 1
    assert app.active_watches == 0
    assert storage.watch_stops == 1


async def test_watch_setup_errors_are_http_errors(storage: DictStorage) -> None:
    class Refusing(DictStorage):
        async def watch(self, namespace: str, options: ListOptions) -> Any:
            from k8swatch import StatusCause, invalid

            raise invalid(
                "ListOptions",
                "",
                [StatusCause("FieldValueForbidden", "Forbidden: no", "sendInitialEvents")],
                group="meta.k8s.io",
            )

    client = ASGIClient(
        create_app(
            [
                ResourceSpec(
                    "example.com", "v1", "widgets", "Widget", Refusing("example.com/v1", "Widget")
                )
            ]
        )
    )
    response = await client.request("GET", f"{NS}?watch=1")
    assert response.status == 422
    assert response.json()["reason"] == "Invalid"


async def test_errors_while_streaming_become_error_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FailingWatch:
        stopped = False

        def __aiter__(self) -> FailingWatch:
            return self

        async def __anext__(self) -> Event[Any]:
            raise RuntimeError("boom")

        async def batches(self) -> Any:
            yield [Event(EventType.ADDED, {"metadata": {"name": "a"}})]
            raise RuntimeError("boom")

        def stop(self) -> None:
            self.stopped = True

        async def __aenter__(self) -> FailingWatch:
            return self

        async def __aexit__(self, *args: object) -> None:
            self.stop()

    watch = FailingWatch()

    class Failing(DictStorage):
        async def watch(self, namespace: str, options: ListOptions) -> Any:
            return watch

    client = ASGIClient(
        create_app(
            [
                ResourceSpec(
                    "example.com", "v1", "widgets", "Widget", Failing("example.com/v1", "Widget")
                )
            ]
        )
    )
    with caplog.at_level(logging.ERROR, logger="k8swatch.server"):
        async with client.stream("GET", f"{NS}?watch=1") as stream:
            assert stream.status == 200
            events = [event async for event in stream]
    assert [e["type"] for e in events] == ["ADDED", "ERROR"]
    assert events[1]["object"]["code"] == 500
    assert events[1]["object"]["message"].startswith("Internal error occurred: ")
    assert "boom" not in events[1]["object"]["message"]
    assert watch.stopped


async def test_watch_table_events(client: ASGIClient) -> None:
    await create(client, "a")
    async with client.stream("GET", f"{NS}?watch=1", headers={"accept": TABLE}) as stream:
        event = await stream.receive_json()
    assert event["type"] == "ADDED"
    table = event["object"]
    assert table["kind"] == "Table"
    assert [row["cells"][0] for row in table["rows"]] == ["a"]
    assert table["metadata"]["resourceVersion"] == "1"


async def test_watch_limit_is_429(client: ASGIClient) -> None:
    async with (
        client.stream("GET", f"{NS}?watch=1") as s1,
        client.stream("GET", f"{NS}?watch=1") as s2,
        client.stream("GET", f"{NS}?watch=1") as s3,
    ):
        assert (s1.status, s2.status, s3.status) == (200, 200, 200)
        refused = await client.request("GET", f"{NS}?watch=1")
        assert refused.status == 429
        assert refused.header("retry-after") == "1"
        body = refused.json()
        assert body["reason"] == "TooManyRequests"
        assert body["details"]["retryAfterSeconds"] == 1


async def test_each_event_is_encoded_once(client: ASGIClient, app: App) -> None:
    async with (
        client.stream(
            "GET",
            f"{NS}?watch=1&resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan",
        ) as s1,
        client.stream(
            "GET",
            f"{GV}/widgets?watch=1&resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan",
        ) as s2,
        client.stream(
            "GET",
            f"{NS}?watch=1&resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan",
        ) as s3,
    ):
        before = app.encoder.encode_count
        for name in "abcde":
            await create(client, name)
        lines: list[list[bytes]] = []
        for stream in (s1, s2, s3):
            lines.append([await stream.receive_line() or b"" for _ in range(5)])
        assert app.encoder.encode_count - before == 5
        assert lines[0] == lines[1] == lines[2]
        assert lines[0][0].startswith(b'{"type":"ADDED"')


async def test_a_batch_goes_out_in_one_send(client: ASGIClient, storage: DictStorage) -> None:
    for name in "abcde":
        await create(client, name)
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion=0") as stream:
        chunk = await stream.receive_chunk()
    assert chunk is not None
    assert chunk.count(b"\n") == 5


# -- lifespan and mounting ---------------------------------------------------------


async def test_lifespan_shutdown_closes_storages_and_streams(
    client: ASGIClient, app: App, storage: DictStorage
) -> None:
    async with client.lifespan(), client.stream("GET", f"{NS}?watch=1") as stream:
        assert stream.status == 200
        await app.aclose()
        assert await stream.read() == b""
    assert storage.closed
    refused = await client.request("GET", f"{NS}?watch=1")
    assert refused.status == 503
    await app.aclose()


async def test_mounted_under_root_path(app: App) -> None:
    received: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        received.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/k8s/apis/example.com/v1",
        "root_path": "/k8s",
        "query_string": b"",
        "headers": [],
    }
    await app(scope, receive, send)
    assert json.loads(received[1]["body"])["groupVersion"] == "example.com/v1"


async def test_websocket_scope_is_closed(app: App) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_mounted_in_starlette(app: App, storage: DictStorage) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    web = Starlette(routes=[Mount("/k8s", app=app)])
    client = ASGIClient(web)
    resources = (await client.request("GET", "/k8s/apis/example.com/v1/")).json()
    assert resources["groupVersion"] == "example.com/v1"
    created = await client.request(
        "POST",
        "/k8s/apis/example.com/v1/namespaces/default/widgets",
        json={"metadata": {"name": "a"}},
    )
    assert created.status == 201
    async with client.stream("GET", "/k8s/apis/example.com/v1/widgets?watch=1") as stream:
        event = await stream.receive_json()
    assert event["object"]["metadata"]["name"] == "a"
    assert storage.watch_stops == 1


class _WatchRecordingStorage(DictStorage):
    """Records the user a ``watch()`` runs for, and warns the client from it."""

    def __init__(self) -> None:
        super().__init__("example.com/v1", "Widget")
        self.users: list[Any] = []

    async def watch(self, namespace: str, options: ListOptions | None = None) -> Any:
        from k8swatch import add_warning
        from k8swatch.server import current_user

        self.users.append(current_user())
        add_warning("watching a test storage")
        return await super().watch(namespace, options)


async def test_a_watch_stream_keeps_what_its_storage_call_set() -> None:
    # The stream runs after the request's storage calls (outside their context),
    # but the call's user and warnings still apply to it.
    from k8swatch.server import ANONYMOUS

    storage = _WatchRecordingStorage()
    client = ASGIClient(
        create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
    )
    async with client.stream("GET", f"{NS}?watch=1") as stream:
        assert stream.status == 200
        assert stream.header("warning") == '299 - "watching a test storage"'
        assert storage.users == [ANONYMOUS]
        await create(client, "a")
        with anyio.fail_after(5):
            line = b""
            while b"\n" not in line:
                chunk = await stream.receive_chunk()
                assert chunk is not None
                line += chunk
        assert json.loads(line)["object"]["metadata"]["name"] == "a"
