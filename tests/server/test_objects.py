"""Objects as the apiserver keeps them, over HTTP: finalizers and graceful deletion,
DeleteOptions, dry runs, the status subresource and watchable namespaces."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import ASGIClient, ASGIStream

from ._dictstorage import DictStorage

GV = "/apis/example.com/v1"
NS = f"{GV}/namespaces/default/widgets"
GADGETS = f"{GV}/namespaces/default/gadgets"
FINALIZER = "example.com/keep"


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage("example.com/v1", "Widget", bookmark_interval=0.2)


@pytest.fixture
def app(storage: MemoryStorage) -> App:
    return create_app(
        [
            ResourceSpec("example.com", "v1", "widgets", "Widget", storage),
            ResourceSpec(
                "example.com",
                "v1",
                "gadgets",
                "Gadget",
                MemoryStorage("example.com/v1", "Gadget"),
                status_subresource=True,
            ),
        ]
    )


@pytest.fixture
def client(app: App) -> ASGIClient:
    return ASGIClient(app)


async def create(client: ASGIClient, name: str, *, path: str = NS, **fields: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **fields.pop("metadata", {})}
    response = await client.request("POST", path, json={"metadata": metadata, **fields})
    assert response.status == 201, response
    result: dict[str, Any] = response.json()
    return result


def rv(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


async def next_change(stream: ASGIStream) -> dict[str, Any]:
    """The next event that is not a bookmark."""
    while True:
        event: dict[str, Any] = await stream.receive_json()
        if event["type"] != "BOOKMARK":
            return event


async def patch_finalizers(client: ASGIClient, name: str, finalizers: list[str]) -> Any:
    return await client.request(
        "PATCH",
        f"{NS}/{name}",
        json={"metadata": {"finalizers": finalizers}},
        headers={"content-type": "application/merge-patch+json"},
    )


# -- finalizers and graceful deletion ---------------------------------------------


async def test_delete_with_finalizer_marks_then_last_finalizer_removal_deletes(
    client: ASGIClient,
) -> None:
    created = await create(client, "w", metadata={"finalizers": [FINALIZER]}, spec={"a": 1})
    listed = (await client.request("GET", NS)).json()
    async with client.stream("GET", f"{NS}?watch=1&resourceVersion={rv(listed)}") as stream:
        deleted = await client.request("DELETE", f"{NS}/w")
        assert deleted.status == 200
        marked = deleted.json()
        assert marked["kind"] == "Widget"
        meta = marked["metadata"]
        assert meta["deletionTimestamp"]
        assert meta["deletionGracePeriodSeconds"] == 0
        assert meta["generation"] == created["metadata"]["generation"] + 1
        assert meta["finalizers"] == [FINALIZER]
        event = await next_change(stream)
        assert event["type"] == "MODIFIED"
        assert event["object"]["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
        # The object stays, and a second DELETE changes nothing.
        assert (await client.request("GET", f"{NS}/w")).json() == marked
        again = await client.request("DELETE", f"{NS}/w")
        assert again.status == 200
        assert again.json() == marked
        # No new finalizer once deleting, in the apiserver's words.
        refused = await patch_finalizers(client, "w", [FINALIZER, "example.com/late"])
        assert refused.status == 422
        assert refused.json()["message"] == (
            'Widget.example.com "w" is invalid: metadata.finalizers: Forbidden: no new '
            "finalizers can be added if the object is being deleted, found new finalizers "
            '[]string{"example.com/late"}'
        )
        # A PUT cannot take the deletionTimestamp away either.
        put = {**marked, "metadata": {**meta, "deletionTimestamp": None, "labels": {"x": "1"}}}
        kept = (await client.request("PUT", f"{NS}/w", json=put)).json()
        assert kept["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
        modified = await next_change(stream)
        assert modified["object"]["metadata"]["labels"] == {"x": "1"}
        # Removing the last finalizer deletes: one DELETED, no MODIFIED first.
        released = await patch_finalizers(client, "w", [])
        assert released.status == 200
        assert released.json()["metadata"].get("finalizers") in (None, [])
        event = await next_change(stream)
        assert event["type"] == "DELETED"
        assert event["object"]["metadata"]["name"] == "w"
    assert (await client.request("GET", f"{NS}/w")).status == 404


async def test_delete_without_finalizers_deletes_at_once(client: ASGIClient) -> None:
    await create(client, "w")
    deleted = await client.request("DELETE", f"{NS}/w")
    assert deleted.status == 200
    assert "deletionTimestamp" not in deleted.json()["metadata"]
    assert (await client.request("GET", f"{NS}/w")).status == 404


async def test_create_cannot_start_a_deletion(client: ASGIClient) -> None:
    created = await create(
        client,
        "w",
        metadata={"deletionTimestamp": "2020-01-01T00:00:00Z", "deletionGracePeriodSeconds": 5},
    )
    assert "deletionTimestamp" not in created["metadata"]
    assert "deletionGracePeriodSeconds" not in created["metadata"]


async def test_update_cannot_start_a_deletion(client: ASGIClient) -> None:
    created = await create(client, "w")
    body = {
        **created,
        "metadata": {**created["metadata"], "deletionTimestamp": "2020-01-01T00:00:00Z"},
    }
    response = await client.request("PUT", f"{NS}/w", json=body)
    assert response.status == 422
    assert "metadata.deletionTimestamp" in response.json()["message"]


# -- DeleteOptions -------------------------------------------------------------------


async def test_preconditions_mismatch_conflicts(client: ASGIClient) -> None:
    created = await create(client, "w")
    uid = created["metadata"]["uid"]
    wrong_uid = await client.request(
        "DELETE", f"{NS}/w", json={"kind": "DeleteOptions", "preconditions": {"uid": "nope"}}
    )
    assert wrong_uid.status == 409
    assert wrong_uid.json()["reason"] == "Conflict"
    assert wrong_uid.json()["message"] == (
        'Operation cannot be fulfilled on Widget.example.com "w": the UID in the precondition '
        f"(nope) does not match the UID in record ({uid}). The object might have been deleted "
        "and then recreated"
    )
    wrong_rv = await client.request(
        "DELETE", f"{NS}/w", json={"preconditions": {"resourceVersion": "999"}}
    )
    assert wrong_rv.status == 409
    assert "the ResourceVersion in the precondition (999)" in wrong_rv.json()["message"]
    assert (await client.request("GET", f"{NS}/w")).status == 200
    right = await client.request(
        "DELETE",
        f"{NS}/w",
        json={"preconditions": {"uid": uid, "resourceVersion": rv(created)}},
    )
    assert right.status == 200
    assert (await client.request("GET", f"{NS}/w")).status == 404


async def test_preconditions_checked_for_a_storage_without_them() -> None:
    storage = DictStorage("example.com/v1", "Widget")
    client = ASGIClient(
        create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
    )
    await create(client, "w")
    refused = await client.request("DELETE", f"{NS}/w", json={"preconditions": {"uid": "x"}})
    assert refused.status == 409
    assert "the UID in the precondition (x)" in refused.json()["message"]
    assert ("default", "w") in storage.objects


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
async def test_propagation_policy_is_accepted(client: ASGIClient, policy: str) -> None:
    await create(client, "a")
    await create(client, "b")
    by_query = await client.request("DELETE", f"{NS}/a?propagationPolicy={policy}")
    assert by_query.status == 200
    by_body = await client.request(
        "DELETE", f"{NS}/b", json={"kind": "DeleteOptions", "propagationPolicy": policy}
    )
    assert by_body.status == 200


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"propagationPolicy": "Sideways"}, 422, 'Unsupported value: "Sideways"'),
        (
            {"propagationPolicy": "Orphan", "orphanDependents": True},
            422,
            "orphanDependents and deletionPropagation cannot be both set",
        ),
        ({"dryRun": ["Some"]}, 422, 'Unsupported value: "Some": supported values: "All"'),
        ({"kind": "Widget"}, 400, "must be a DeleteOptions"),
        ({"preconditions": "uid"}, 400, "preconditions must be an object"),
        ({"preconditions": {"uid": 5}}, 400, "preconditions.uid must be a string"),
        ({"gracePeriodSeconds": "soon"}, 400, "gracePeriodSeconds must be an integer"),
        ([1], 400, "must be a DeleteOptions object"),
    ],
)
async def test_bad_delete_options(client: ASGIClient, body: Any, code: int, text: str) -> None:
    await create(client, "w")
    response = await client.request("DELETE", f"{NS}/w", json=body)
    assert response.status == code, response
    assert text in response.json()["message"]
    assert (await client.request("GET", f"{NS}/w")).status == 200


async def test_delete_body_not_json_is_bad_request(client: ASGIClient) -> None:
    await create(client, "w")
    response = await client.request("DELETE", f"{NS}/w", body=b"{nope")
    assert response.status == 400
    assert response.json()["kind"] == "Status"


# -- dry run ------------------------------------------------------------------------


async def test_dry_run_create_answers_what_create_stores(client: ASGIClient) -> None:
    body = {"metadata": {"name": "w", "finalizers": [FINALIZER]}, "spec": {"a": 1}}
    dry = await client.request("POST", f"{NS}?dryRun=All", json=body)
    assert dry.status == 201
    assert (await client.request("GET", f"{NS}/w")).status == 404
    real = (await client.request("POST", NS, json=body)).json()
    dry_obj = dry.json()
    assert "resourceVersion" not in dry_obj["metadata"]
    for volatile in ("uid", "creationTimestamp", "resourceVersion"):
        dry_obj["metadata"].pop(volatile, None)
        real["metadata"].pop(volatile)
    # The two requests may straddle a second: managedFields' times may differ.
    for obj in (dry_obj, real):
        for entry in obj["metadata"]["managedFields"]:
            entry.pop("time")
    assert dry_obj == real
    again = await client.request("POST", f"{NS}?dryRun=All", json=body)
    assert again.status == 409


async def test_dry_run_update_and_patch_answer_what_the_write_stores(
    client: ASGIClient,
) -> None:
    created = await create(client, "w", spec={"a": 1})
    body = {**created, "spec": {"a": 2}}
    dry = (await client.request("PUT", f"{NS}/w?dryRun=All", json=body)).json()
    assert dry["metadata"]["generation"] == 2
    assert dry["metadata"]["uid"] == created["metadata"]["uid"]
    assert (await client.request("GET", f"{NS}/w")).json() == created
    patch = {"spec": {"a": 2}}
    headers = {"content-type": "application/merge-patch+json"}
    dry_patch = (
        await client.request("PATCH", f"{NS}/w?dryRun=All", json=patch, headers=headers)
    ).json()
    assert dry_patch == dry
    real = (await client.request("PUT", f"{NS}/w", json=body)).json()
    assert {**dry["metadata"], "resourceVersion": ""} == {
        **real["metadata"],
        "resourceVersion": "",
    }
    assert {k: v for k, v in dry.items() if k != "metadata"} == {
        k: v for k, v in real.items() if k != "metadata"
    }


async def test_dry_run_delete_answers_the_mark_and_changes_nothing(client: ASGIClient) -> None:
    created = await create(client, "w", metadata={"finalizers": [FINALIZER]})
    dry = await client.request("DELETE", f"{NS}/w", json={"dryRun": ["All"]})
    assert dry.status == 200
    assert dry.json()["metadata"]["deletionTimestamp"]
    assert dry.json()["metadata"]["generation"] == 2
    assert (await client.request("GET", f"{NS}/w")).json() == created
    plain = await create(client, "p")
    dry_plain = await client.request("DELETE", f"{NS}/p?dryRun=All")
    assert dry_plain.json() == plain
    assert (await client.request("GET", f"{NS}/p")).status == 200
    # The release of the last finalizer, dry: the object stays.
    await client.request("DELETE", f"{NS}/w")
    released = await client.request(
        "PATCH",
        f"{NS}/w?dryRun=All",
        json={"metadata": {"finalizers": None}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert released.status == 200
    assert (await client.request("GET", f"{NS}/w")).status == 200


# -- the status subresource -------------------------------------------------------


async def test_discovery_lists_the_status_subresource(client: ASGIClient) -> None:
    resources = (await client.request("GET", GV)).json()["resources"]
    names = [r["name"] for r in resources]
    assert names == ["widgets", "gadgets", "gadgets/status"]
    status = resources[2]
    assert status == {
        "name": "gadgets/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Gadget",
        "verbs": ["get", "patch", "update"],
    }
    aggregated = (
        await client.request(
            "GET",
            "/apis",
            headers={
                "accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            },
        )
    ).json()
    widgets, gadgets = aggregated["items"][0]["versions"][0]["resources"]
    assert "subresources" not in widgets
    assert gadgets["subresources"] == [
        {
            "subresource": "status",
            "responseKind": {"group": "example.com", "version": "v1", "kind": "Gadget"},
            "verbs": ["get", "patch", "update"],
        }
    ]


async def test_status_subresource_writes(client: ASGIClient) -> None:
    created = await create(client, "g", path=GADGETS, spec={"size": 1}, status={"ready": True})
    assert "status" not in created  # a create starts without status
    assert created["metadata"]["generation"] == 1
    # PUT .../status changes only the status.
    body = {**created, "spec": {"size": 5}, "status": {"ready": True}}
    body["metadata"] = {**created["metadata"], "labels": {"ignored": "yes"}}
    updated = (await client.request("PUT", f"{GADGETS}/g/status", json=body)).json()
    assert updated["status"] == {"ready": True}
    assert updated["spec"] == {"size": 1}
    assert "labels" not in updated["metadata"]
    assert updated["metadata"]["generation"] == 1
    # A stale resourceVersion on .../status conflicts.
    stale = await client.request("PUT", f"{GADGETS}/g/status", json=body)
    assert stale.status == 409
    # Writes to the object keep the stored status; spec changes bump generation.
    main = {**updated, "spec": {"size": 2}, "status": {"ready": False}}
    replaced = (await client.request("PUT", f"{GADGETS}/g", json=main)).json()
    assert replaced["status"] == {"ready": True}
    assert replaced["spec"] == {"size": 2}
    assert replaced["metadata"]["generation"] == 2
    headers = {"content-type": "application/merge-patch+json"}
    patched = (
        await client.request(
            "PATCH", f"{GADGETS}/g", json={"status": {"ready": False}}, headers=headers
        )
    ).json()
    assert patched["status"] == {"ready": True}
    status_patched = (
        await client.request(
            "PATCH",
            f"{GADGETS}/g/status",
            json={"spec": {"size": 9}, "status": {"phase": "Up"}},
            headers=headers,
        )
    ).json()
    assert status_patched["status"] == {"ready": True, "phase": "Up"}
    assert status_patched["spec"] == {"size": 2}
    assert status_patched["metadata"]["generation"] == 2
    got = (await client.request("GET", f"{GADGETS}/g/status")).json()
    assert got == status_patched


async def test_status_subresource_paths_and_methods(client: ASGIClient) -> None:
    await create(client, "g", path=GADGETS)
    await create(client, "w")
    assert (await client.request("POST", f"{GADGETS}/g/status", json={})).status == 405
    assert (await client.request("DELETE", f"{GADGETS}/g/status")).status == 405
    assert (await client.request("GET", f"{NS}/w/status")).status == 404
    assert (await client.request("GET", f"{GADGETS}/g/scale")).status == 404
    assert (await client.request("GET", f"{GADGETS}/missing/status")).status == 404
    watch = await client.request("GET", f"{GV}/watch/namespaces/default/gadgets/g/status")
    assert watch.status == 404


# -- namespaces -----------------------------------------------------------------------


async def test_namespaces_watch_sees_new_namespaces(client: ASGIClient) -> None:
    listing = (await client.request("GET", "/api/v1/namespaces")).json()
    assert [n["metadata"]["name"] for n in listing["items"]] == ["default"]
    default = listing["items"][0]
    assert default["metadata"]["labels"] == {"kubernetes.io/metadata.name": "default"}
    assert default["metadata"]["uid"]
    path = f"/api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion={rv(listing)}"
    async with client.stream("GET", path) as stream:
        assert stream.status == 200
        await create(client, "w", path=f"{GV}/namespaces/team-a/widgets")
        event = await next_change(stream)
        assert event["type"] == "ADDED"
        assert event["object"]["kind"] == "Namespace"
        assert event["object"]["metadata"]["name"] == "team-a"
        assert event["object"]["status"] == {"phase": "Active"}
    one = (await client.request("GET", "/api/v1/namespaces/team-a")).json()
    assert one["metadata"]["uid"] == event["object"]["metadata"]["uid"]


async def test_namespaces_watch_list_sends_known_ones_then_the_end_bookmark(
    client: ASGIClient,
) -> None:
    await create(client, "w", path=f"{GV}/namespaces/team-b/widgets")
    query = (
        "labelSelector=kubernetes.io/metadata.name%3Dteam-b&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    )
    async with client.stream("GET", f"/api/v1/watch/namespaces?{query}") as stream:
        added = await stream.receive_json()
        bookmark = await stream.receive_json()
    assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "team-b")
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_namespaces_refuse_writes(client: ASGIClient) -> None:
    response = await client.request("POST", "/api/v1/namespaces", json={})
    assert response.status == 405


async def test_openapi_has_the_status_paths(client: ASGIClient) -> None:
    v3 = (await client.request("GET", "/openapi/v3/apis/example.com/v1")).json()
    status = v3["paths"]["/apis/example.com/v1/namespaces/{namespace}/gadgets/{name}/status"]
    assert {op["operationId"] for m, op in status.items() if m != "parameters"} == {
        "readExampleComV1NamespacedGadgetStatus",
        "replaceExampleComV1NamespacedGadgetStatus",
        "patchExampleComV1NamespacedGadgetStatus",
    }
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status" not in v3["paths"]
    v2 = (await client.request("GET", "/openapi/v2")).json()
    assert "put" in v2["paths"]["/apis/example.com/v1/namespaces/{namespace}/gadgets/{name}/status"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_DELETE_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["DeleteOptions", "Widget", ""]) | _JSON,
        "apiVersion": st.sampled_from(["v1", "meta.k8s.io/v1"]) | _JSON,
        "preconditions": st.fixed_dictionaries(
            {}, optional={"uid": _JSON, "resourceVersion": _JSON}
        )
        | _JSON,
        "propagationPolicy": st.sampled_from(["Background", "Foreground", "Orphan", "x"]) | _JSON,
        "orphanDependents": _JSON,
        "gracePeriodSeconds": _JSON,
        "dryRun": st.just(["All"]) | _JSON,
    },
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_DELETE_OPTIONS | _JSON)
async def test_any_delete_body_gets_a_status_never_a_500(body: Any) -> None:
    app = create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", _storage())])
    client = ASGIClient(app)
    await create(client, "w", metadata={"finalizers": [FINALIZER]})
    response = await client.request("DELETE", f"{NS}/w", json=body)
    assert response.status in (200, 400, 409, 422), response
    if response.status != 200:
        assert response.json()["kind"] == "Status"
    if response.status == 200:
        assert response.json()["metadata"]["deletionTimestamp"]


def _storage() -> MemoryStorage:
    return MemoryStorage("example.com/v1", "Widget")
