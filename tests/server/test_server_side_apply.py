"""Server-side apply over HTTP: bodies (JSON and YAML), options, errors, managedFields.

A real server (uvicorn, and hypercorn's trio worker) on 127.0.0.1, driven with
httpx; kubectl and lightkube drive the same paths in tests/kubectl and
test_interop_lightkube.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from k8swatch import MemoryStorage
from k8swatch.server import ResourceSpec, create_app
from k8swatch.testing import serve_app

APPLY = {"content-type": "application/apply-patch+yaml"}
MERGE = {"content-type": "application/merge-patch+json"}
BASE = "/apis/example.com/v1/namespaces/default/widgets"
GADGETS = "/apis/example.com/v1/gadgets"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "a": {"type": "integer"},
                "b": {"type": "integer"},
                "when": {"type": "string"},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name", "protocol"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"},
                            "port": {"type": "integer"},
                        },
                    },
                },
            },
        }
    },
}

_names = (f"w{i}" for i in itertools.count())


class Server:
    def __init__(self, url: str, widgets: MemoryStorage) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.widgets = widgets

    def apply(
        self, name: str, body: str | bytes, *, manager: str | None = "alice", **params: str
    ) -> httpx.Response:
        query = dict(params)
        if manager is not None:
            query["fieldManager"] = manager
        return self.http.patch(f"{BASE}/{name}", content=body, headers=APPLY, params=query)


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn-trio"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    widgets = MemoryStorage("example.com/v1", "Widget", resource="widgets")
    gadgets = MemoryStorage("example.com/v1", "Gadget", resource="gadgets", namespaced=False)
    app = create_app(
        [
            ResourceSpec("example.com", "v1", "widgets", "Widget", widgets, schema=SCHEMA),
            ResourceSpec("example.com", "v1", "gadgets", "Gadget", gadgets, namespaced=False),
        ]
    )
    with serve_app(app, server=request.param) as url:
        served = Server(url, widgets)
        yield served
        served.http.close()


def widget(name: str, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def owners(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{e['manager']}/{e['operation']}": e["fieldsV1"] for e in obj["metadata"]["managedFields"]
    }


def test_apply_creates_then_is_a_no_op_when_nothing_changes(server: Server) -> None:
    name = next(_names)
    created = server.apply(name, widget(name, a=1))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["spec"] == {"a": 1}
    assert body["metadata"]["uid"]
    assert owners(body) == {"alice/Apply": {"f:spec": {"f:a": {}}}}
    again = server.apply(name, widget(name, a=1))
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]


def test_yaml_bodies(server: Server) -> None:
    name = next(_names)
    text = (
        "apiVersion: example.com/v1\n"
        "kind: Widget\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        "  a: 2\n"
        "  when: 2024-01-02\n"
        "  ports:\n"
        "  - name: http\n"
        "    port: 80\n"
    )
    created = server.apply(name, text)
    assert created.status_code == 201, created.text
    spec = created.json()["spec"]
    assert spec == {"a": 2, "when": "2024-01-02", "ports": [{"name": "http", "port": 80}]}
    # The defaulted key field names the item.
    ports = owners(created.json())["alice/Apply"]["f:spec"]["f:ports"]
    assert list(ports) == ['k:{"name":"http","protocol":"TCP"}']


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a: &x [1]\nb: *x\n", "error decoding YAML: anchors and aliases are not allowed"),
        (b"[" * 150 + b"]" * 150, "error decoding YAML: arrays and objects nested more than 100"),
        (b"- " * 150 + b"x\n", "error decoding YAML: arrays and objects nested more than 100"),
        (b"a: \xff\n", "error decoding YAML: invalid UTF-8 at byte offset 3"),
        (b"a: 1\n---\nb: 2\n", "error decoding YAML: the body holds more than one document"),
        (b"a: .nan\n", "error decoding YAML: a number is out of range"),
        (b"a: !!binary aGk=\n", "error decoding YAML: a bytes value has no JSON form"),
        (b"a: [1\n", "error decoding YAML: while parsing"),
        (b"- 1\n", "error decoding YAML: the applied configuration must be an object"),
        (b'{"a": NaN}', "error decoding YAML: "),
    ],
)
def test_bad_bodies_are_400(server: Server, body: bytes, message: str) -> None:
    response = server.apply("bad", body)
    assert response.status_code == 400, response.text
    status = response.json()
    assert status["reason"] == "BadRequest"
    assert status["message"].startswith(message), status["message"]


def test_options_are_validated(server: Server) -> None:
    missing = server.apply("x", widget("x", a=1), manager=None)
    assert missing.status_code == 422
    assert missing.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    too_long = server.apply("x", widget("x", a=1), manager="m" * 129)
    assert too_long.status_code == 422
    assert "fieldManager: Too long: may not be more than 128 bytes" in too_long.json()["message"]
    name = next(_names)
    assert server.apply(name, widget(name, a=1)).status_code == 201
    forced = server.http.patch(
        f"{BASE}/{name}", content=b'{"spec":{"a":2}}', headers=MERGE, params={"force": "true"}
    )
    assert forced.status_code == 422
    assert forced.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: '
        "may not be specified for non-apply patch"
    )


def test_configurations_of_other_objects_are_refused(server: Server) -> None:
    other = json.dumps({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {}})
    response = server.apply("x", other)
    assert response.status_code == 400
    assert response.json()["message"] == "invalid object type: example.com/v2, Kind=Widget"
    response = server.apply("x", json.dumps({"metadata": {"name": "x"}}))
    assert response.json()["message"] == "invalid object type: /, Kind="
    named = server.apply("x", widget("y", a=1))
    assert named.status_code == 400
    assert "does not match the name on the URL" in named.json()["message"]
    managed = json.loads(widget("x"))
    managed["metadata"]["managedFields"] = [{"manager": "me"}]
    response = server.apply("x", json.dumps(managed))
    assert response.status_code == 400
    assert response.json()["message"] == "metadata.managedFields must be nil"


def test_bad_associative_lists_are_422(server: Server) -> None:
    no_key = server.apply("x", widget("x", ports=[{"port": 80}]))
    assert no_key.status_code == 422
    [cause] = no_key.json()["details"]["causes"]
    assert cause["message"] == (
        ".spec.ports: element 0: associative list with keys has an element that omits key "
        'field "name" (and doesn\'t have default value)'
    )
    twice = server.apply("x", widget("x", ports=[{"name": "a"}, {"name": "a"}]))
    assert twice.status_code == 422
    [cause] = twice.json()["details"]["causes"]
    assert cause["message"] == '.spec.ports: duplicate entries for key [name="a",protocol="TCP"]'


def test_conflicts_name_every_field_and_manager(server: Server) -> None:
    name = next(_names)
    server.apply(name, widget(name, a=1, b=1))
    refused = server.apply(name, widget(name, a=2, b=2), manager="bob")
    assert refused.status_code == 409
    status = refused.json()
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.a\n- .spec.b'
    )
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".spec.a"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".spec.b"},
    ]
    moved = server.apply(name, widget(name, a=2), manager="bob", force="true")
    assert moved.status_code == 200
    assert owners(moved.json()) == {
        "alice/Apply": {"f:spec": {"f:b": {}}},
        "bob/Apply": {"f:spec": {"f:a": {}}},
    }


def test_updates_are_recorded_by_manager(server: Server) -> None:
    name = next(_names)
    obj = json.loads(widget(name, a=1))
    created = server.http.post(BASE, json=obj, headers={"user-agent": "my-controller/1.2 (linux)"})
    assert created.status_code == 201
    [entry] = created.json()["metadata"]["managedFields"]
    assert entry["manager"] == "my-controller"
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == "example.com/v1"
    assert entry["fieldsV1"] == {"f:spec": {".": {}, "f:a": {}}}
    current = created.json()
    current["spec"]["b"] = 2
    replaced = server.http.put(f"{BASE}/{name}", json=current, params={"fieldManager": "editor"})
    assert replaced.status_code == 200
    assert owners(replaced.json()) == {
        "my-controller/Update": {"f:spec": {".": {}, "f:a": {}}},
        "editor/Update": {"f:spec": {"f:b": {}}},
    }
    # An apply changing an updater's field conflicts, naming its apiVersion.
    refused = server.apply(name, widget(name, a=5))
    assert refused.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "my-controller" using example.com/v1: .spec.a'
    )
    # A JSON patch is an update too.
    patched = server.http.patch(
        f"{BASE}/{name}",
        content=json.dumps([{"op": "remove", "path": "/spec/b"}]),
        headers={"content-type": "application/json-patch+json", "user-agent": "jp/1"},
    )
    assert patched.status_code == 200
    assert "editor/Update" not in owners(patched.json())  # its only field is gone
    # managedFields sent with a PUT replace the stored ones.
    current = patched.json()
    current["metadata"]["managedFields"] = [
        {
            "manager": "someone",
            "operation": "Update",
            "apiVersion": "example.com/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:a": {}}},
        }
    ]
    reset = server.http.put(f"{BASE}/{name}", json=current, params={"fieldManager": "editor"})
    assert owners(reset.json()) == {"someone/Update": {"f:spec": {"f:a": {}}}}


def test_objects_without_managers_get_before_first_apply(server: Server) -> None:
    import anyio

    name = next(_names)

    async def create() -> None:
        body = {"metadata": {"name": name}, "spec": {"a": 1}}
        await server.widgets.create("default", body)

    anyio.run(create)
    refused = server.apply(name, widget(name, a=2))
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using '
        "example.com/v1: .spec.a"
    )
    shared = server.apply(name, widget(name, a=1))
    assert shared.status_code == 200
    assert owners(shared.json()) == {
        "alice/Apply": {"f:spec": {"f:a": {}}},
        "before-first-apply/Update": {"f:spec": {".": {}, "f:a": {}}},
    }


def test_dry_run_apply_stores_nothing(server: Server) -> None:
    name = next(_names)
    preview = server.apply(name, widget(name, a=1), dryRun="All")
    assert preview.status_code == 201
    assert owners(preview.json()) == {"alice/Apply": {"f:spec": {"f:a": {}}}}
    assert server.http.get(f"{BASE}/{name}").status_code == 404
    stored = server.apply(name, widget(name, a=1)).json()
    preview = server.apply(name, widget(name, a=3), dryRun="All")
    assert preview.status_code == 200
    assert preview.json()["spec"] == {"a": 3}
    assert server.http.get(f"{BASE}/{name}").json() == stored


def test_cluster_scoped_and_untyped(server: Server) -> None:
    name = next(_names)
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": name, "labels": {"x": "1"}},
        "spec": {"deep": {"k": "v"}, "list": [1, 2]},
    }
    response = server.http.patch(
        f"{GADGETS}/{name}", content=json.dumps(body), headers=APPLY, params={"fieldManager": "m"}
    )
    assert response.status_code == 201, response.text
    assert owners(response.json())["m/Apply"] == {
        "f:metadata": {"f:labels": {"f:x": {}}},
        "f:spec": {".": {}, "f:deep": {".": {}, "f:k": {}}, "f:list": {}},
    }


def test_apply_with_the_status_subresource() -> None:
    storage = MemoryStorage("example.com/v1", "Widget", resource="widgets")
    app = create_app(
        [ResourceSpec("example.com", "v1", "widgets", "Widget", storage, status_subresource=True)]
    )
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        path = f"{BASE}/s1"

        def apply(body: dict[str, Any], suffix: str = "", manager: str = "alice") -> Any:
            return http.patch(
                path + suffix,
                content=json.dumps({"apiVersion": "example.com/v1", "kind": "Widget", **body}),
                headers=APPLY,
                params={"fieldManager": manager},
            )

        missing = apply({"metadata": {"name": "s1"}, "status": {"phase": "Up"}}, "/status")
        assert missing.status_code == 404
        created = apply({"metadata": {"name": "s1"}, "spec": {"a": 1}, "status": {"x": 1}})
        assert created.status_code == 201, created.text
        assert "status" not in created.json()  # a create starts without status
        assert owners(created.json()) == {"alice/Apply": {"f:spec": {".": {}, "f:a": {}}}}
        status = apply(
            {
                "metadata": {"name": "s1", "labels": {"l": "v"}},
                "spec": {"a": 9},
                "status": {"phase": "Up"},
            },
            "/status",
            manager="controller",
        )
        assert status.status_code == 200, status.text
        body = status.json()
        assert body["spec"] == {"a": 1}  # only status changes through /status
        assert body["status"] == {"phase": "Up"}
        assert "labels" not in body["metadata"]
        entries = {
            (e["manager"], e.get("subresource", "")): e for e in body["metadata"]["managedFields"]
        }
        assert entries[("controller", "status")]["fieldsV1"] == {
            "f:status": {".": {}, "f:phase": {}}
        }
        # The object's own apply leaves status alone.
        again = apply({"metadata": {"name": "s1"}, "spec": {"a": 2}, "status": {"phase": "Down"}})
        assert again.json()["status"] == {"phase": "Up"}
        assert again.json()["spec"] == {"a": 2}
