"""``kubectl apply --server-side`` and managedFields, against ``create_app`` over HTTP.

A ``Machine`` resource whose schema has an associative list (``ports``, keyed
by ``name``), a set (``tags``) and an atomic list (``args``), as CRDs write
them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Kubectl, ThreadedServer

pytestmark = pytest.mark.kubectl

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer"},
                "color": {"type": "string"},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "port": {"type": "integer"},
                        },
                    },
                },
                "tags": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "args": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}


def machine(name: str = "m1", **spec: Any) -> str:
    obj: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Machine"}
    obj["metadata"] = {"name": name}
    if spec:
        obj["spec"] = spec
    return json.dumps(obj)


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    from k8swatch import MemoryStorage
    from k8swatch.server import ResourceSpec, create_app

    app = create_app(
        [
            ResourceSpec(
                "example.com",
                "v1",
                "machines",
                "Machine",
                MemoryStorage("example.com/v1", "Machine", resource="machines"),
                schema=SCHEMA,
            )
        ]
    )
    with ThreadedServer(app) as url:
        yield Kubectl(url, tmp_path / "home")


def ssa(kubectl: Kubectl, manifest: str, *flags: str, check: bool = True) -> Any:
    return kubectl.run("apply", "--server-side", *flags, "-f", "-", input=manifest, check=check)


def get(kubectl: Kubectl, name: str = "m1") -> dict[str, Any]:
    out = kubectl.run("get", "machine", name, "-o", "json", "--show-managed-fields")
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def test_two_managers_conflict_then_force(kubectl: Kubectl) -> None:
    out = ssa(kubectl, machine(size=3, color="red"), "--field-manager=alice")
    assert out.stdout.strip() == "machine.example.com/m1 serverside-applied"
    created = get(kubectl)
    assert created["spec"] == {"size": 3, "color": "red"}
    [entry] = created["metadata"]["managedFields"]
    assert entry["manager"] == "alice"
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "example.com/v1"
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["fieldsV1"] == {"f:spec": {"f:color": {}, "f:size": {}}}
    assert entry["time"].endswith("Z")

    refused = ssa(kubectl, machine(size=5), "--field-manager=bob", check=False)
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "alice": .spec.size' in refused.stderr
    assert "Please review the fields above--they currently have other managers." in (refused.stderr)
    assert "--force-conflicts" in refused.stderr
    assert get(kubectl)["spec"]["size"] == 3

    ssa(kubectl, machine(size=5), "--field-manager=bob", "--force-conflicts")
    moved = get(kubectl)
    assert moved["spec"] == {"size": 5, "color": "red"}
    assert managers(moved) == {
        ("alice", "Apply"): {"f:spec": {"f:color": {}}},
        ("bob", "Apply"): {"f:spec": {"f:size": {}}},
    }


def test_same_value_is_shared_and_dropping_a_field_removes_it(kubectl: Kubectl) -> None:
    ssa(kubectl, machine(size=3, color="red"), "--field-manager=alice")
    ssa(kubectl, machine(size=3), "--field-manager=bob")  # same value: no conflict
    shared = managers(get(kubectl))
    assert shared[("alice", "Apply")] == {"f:spec": {"f:color": {}, "f:size": {}}}
    assert shared[("bob", "Apply")] == {"f:spec": {"f:size": {}}}
    # alice stops applying both: color (hers alone) goes, size (bob's too) stays.
    ssa(kubectl, machine(), "--field-manager=alice")
    after = get(kubectl)
    assert after["spec"] == {"size": 3}
    assert ("alice", "Apply") not in managers(after)


def test_lists_merge_by_their_schema(kubectl: Kubectl) -> None:
    ssa(
        kubectl,
        machine(ports=[{"name": "http", "port": 80}], tags=["a"], args=["x"]),
        "--field-manager=alice",
    )
    ssa(
        kubectl,
        machine(ports=[{"name": "grpc", "port": 9090}], tags=["b"]),
        "--field-manager=bob",
    )
    obj = get(kubectl)
    assert obj["spec"]["ports"] == [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}]
    assert obj["spec"]["tags"] == ["a", "b"]
    assert managers(obj)[("bob", "Apply")] == {
        "f:spec": {
            "f:ports": {'k:{"name":"grpc"}': {".": {}, "f:name": {}, "f:port": {}}},
            "f:tags": {'v:"b"': {}},
        }
    }
    # An atomic list is one field: a different value conflicts.
    refused = ssa(kubectl, machine(args=["y"]), "--field-manager=bob", check=False)
    assert 'conflict with "alice": .spec.args' in refused.stderr
    # A conflict on one item of a keyed list names the item.
    refused = ssa(
        kubectl, machine(ports=[{"name": "http", "port": 8080}]), "--field-manager=bob", check=False
    )
    assert 'conflict with "alice": .spec.ports[name="http"].port' in refused.stderr


def test_managed_fields_after_ordinary_kubectl_edits(kubectl: Kubectl) -> None:
    kubectl.run("create", "-f", "-", input=machine(size=1, color="red"))
    obj = get(kubectl)
    assert managers(obj) == {
        ("kubectl-create", "Update"): {"f:spec": {".": {}, "f:color": {}, "f:size": {}}}
    }
    kubectl.run("label", "machine", "m1", "team=blue")
    kubectl.run("patch", "machine", "m1", "--type=merge", "-p", '{"spec":{"size":2}}')
    obj = get(kubectl)
    assert managers(obj) == {
        ("kubectl-create", "Update"): {"f:spec": {".": {}, "f:color": {}}},
        ("kubectl-label", "Update"): {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}},
        ("kubectl-patch", "Update"): {"f:spec": {"f:size": {}}},
    }
    # kubectl edit, with an "editor" that changes the colour.
    editor = kubectl.home / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/color: red/color: blue/" "$1"\n')
    editor.chmod(0o755)
    kubectl.run("edit", "machine", "m1", env={"EDITOR": str(editor)})
    obj = get(kubectl)
    assert obj["spec"]["color"] == "blue"
    assert managers(obj)[("kubectl-edit", "Update")] == {"f:spec": {"f:color": {}}}
    assert managers(obj)[("kubectl-create", "Update")] == {"f:spec": {}}
    replaced = dict(obj, spec={"size": 2, "color": "green"})
    kubectl.run("replace", "-f", "-", input=json.dumps(replaced))
    obj = get(kubectl)
    assert managers(obj)[("kubectl-replace", "Update")] == {"f:spec": {"f:color": {}}}
    assert ("kubectl-edit", "Update") not in managers(obj)  # its one field moved on
    # kubectl-create keeps the one thing left of its own: that spec exists.
    assert managers(obj)[("kubectl-create", "Update")] == {"f:spec": {}}
    # Client-side apply still works, under its own manager.
    kubectl.run("apply", "-f", "-", input=machine(size=4, color="green"))
    obj = get(kubectl)
    assert obj["spec"] == {"size": 4, "color": "green"}
    csa = managers(obj)[("kubectl-client-side-apply", "Update")]
    assert csa["f:spec"] == {"f:size": {}}
    assert "f:kubectl.kubernetes.io/last-applied-configuration" in str(csa)
    # Another manager's server-side apply conflicts with the client-side manager, named
    # with its apiVersion.
    refused = ssa(kubectl, machine(size=5), "--field-manager=other", check=False)
    assert (
        'conflict with "kubectl-client-side-apply" using example.com/v1: .spec.size'
        in refused.stderr
    )
    # kubectl's own server-side apply takes over what its client-side apply set (the
    # last-applied annotation says so) and keeps the annotation in step.
    ssa(kubectl, machine(size=5, color="green"))
    obj = get(kubectl)
    assert obj["spec"] == {"size": 5, "color": "green"}
    assert managers(obj)[("kubectl", "Apply")] == {"f:spec": {"f:color": {}, "f:size": {}}}
    last = json.loads(
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last["spec"] == {"size": 5, "color": "green"}
    # A field it did not set client-side still conflicts.
    ssa(kubectl, machine(size=5, color="green", args=["x"]))  # args is new: nobody owns it
    kubectl.run("patch", "machine", "m1", "--type=merge", "-p", '{"spec":{"args":["y"]}}')
    refused = ssa(kubectl, machine(size=5, color="green", args=["x"]), check=False)
    assert 'conflict with "kubectl-patch" using example.com/v1: .spec.args' in refused.stderr


def test_dry_run_and_diff(kubectl: Kubectl) -> None:
    out = ssa(kubectl, machine(size=1), "--dry-run=server", "-o", "json")
    preview = json.loads(out.stdout)
    assert preview["spec"] == {"size": 1}
    missing = kubectl.run("get", "machine", "m1", check=False)
    assert missing.returncode != 0
    ssa(kubectl, machine(size=1), "--field-manager=alice")
    stored = get(kubectl)
    out = ssa(kubectl, machine(size=2), "--field-manager=alice", "--dry-run=server", "-o", "json")
    assert json.loads(out.stdout)["spec"] == {"size": 2}
    assert get(kubectl) == stored
    same = kubectl.run(
        "diff",
        "--server-side",
        "--field-manager=alice",
        "-f",
        "-",
        input=machine(size=1),
        check=False,
    )
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""
    changed = kubectl.run(
        "diff",
        "--server-side",
        "--field-manager=alice",
        "-f",
        "-",
        input=machine(size=7),
        check=False,
    )
    assert changed.returncode == 1, changed.stderr
    assert "+  size: 7" in changed.stdout


def test_client_side_diff_of_an_unchanged_object_exits_0(kubectl: Kubectl) -> None:
    manifest = machine("m2", size=1, tags=["a"])
    kubectl.run("apply", "-f", "-", input=manifest)
    kubectl.run("label", "machine", "m2", "team=blue")  # another manager, no manifest change
    same = kubectl.run("diff", "-f", "-", input=manifest, check=False)
    assert same.returncode == 0, same.stdout + same.stderr
    changed = kubectl.run("diff", "-f", "-", input=machine("m2", size=2, tags=["a"]), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "-  size: 1" in changed.stdout
    assert "+  size: 2" in changed.stdout
