"""Everyday kubectl commands against ``create_app`` over MemoryStorage resources."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from .conftest import Kubectl, LineReader, wait_for_watchers

pytestmark = pytest.mark.kubectl

WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: {name}
  labels:
    team: blue
spec:
  size: {size}
  color: red
"""


def _create(kubectl: Kubectl, name: str = "w1", size: int = 3) -> None:
    out = kubectl.run("create", "-f", "-", input=WIDGET.format(name=name, size=size))
    assert out.stdout.strip() == f"widget.example.com/{name} created"


def test_get_output_formats(kubectl: Kubectl) -> None:
    assert "No resources found in default namespace." in kubectl.run("get", "widgets").stderr
    _create(kubectl)
    kubectl.run("patch", "widget", "w1", "--type", "merge", "-p", '{"status":{"phase":"Ready"}}')

    table = kubectl.run("get", "widgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "PHASE", "AGE"]
    assert table[1].split()[:3] == ["w1", "3", "Ready"]
    wide = kubectl.run("get", "wd", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "SIZE", "PHASE", "AGE", "COLOR"]
    assert wide[1].split()[-1] == "red"

    as_json = json.loads(kubectl.run("get", "widget", "w1", "-o", "json").stdout)
    assert as_json["kind"] == "Widget"
    assert as_json["spec"] == {"size": 3, "color": "red"}
    as_yaml = kubectl.run("get", "widget", "w1", "-o", "yaml").stdout
    assert "kind: Widget" in as_yaml
    assert "color: red" in as_yaml
    assert kubectl.run("get", "widgets", "-o", "name").stdout.strip() == "widget.example.com/w1"
    path = kubectl.run("get", "widget", "w1", "-o", "jsonpath={.spec.size}/{.metadata.labels.team}")
    assert path.stdout == "3/blue"
    listed = json.loads(kubectl.run("get", "widgets", "-A", "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    assert kubectl.run("get", "widgets", "-l", "team=green").stderr.startswith("No resources")


def test_describe(kubectl: Kubectl) -> None:
    _create(kubectl)
    out = kubectl.run("describe", "widget", "w1").stdout
    assert "Name:" in out
    assert "w1" in out
    assert "Namespace:    default" in out
    assert "team=blue" in out
    assert "Size:" in out


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "widgets.spec").stdout
    assert "KIND:       Widget" in out
    assert "What the widget should be." in out
    assert "size\t<integer>" in out
    assert "Size of the widget, in cm." in out
    recursive = kubectl.run("explain", "widgets", "--recursive").stdout
    assert "tags\t<[]string>" in recursive
    v2 = kubectl.run("explain", "widgets.spec", "--output", "plaintext-openapiv2").stdout
    assert "What the widget should be." in v2
    assert "Size of the widget, in cm." in v2
    gadget = kubectl.run("explain", "gadgets").stdout
    assert "KIND:       Gadget" in gadget


def test_create_validates_on_the_server(kubectl: Kubectl) -> None:
    bad = WIDGET.format(name="w1", size=3) + "  shape: round\n"
    out = kubectl.run("create", "-f", "-", input=bad, check=False)
    assert out.returncode != 0
    assert 'strict decoding error: unknown field "spec.shape"' in out.stderr
    wrong_type = WIDGET.format(name="w1", size='"big"')
    out = kubectl.run("create", "-f", "-", input=wrong_type, check=False)
    assert out.returncode != 0
    assert "spec.size in body must be of type integer" in out.stderr
    warned = kubectl.run("create", "--validate=warn", "-f", "-", input=bad)
    assert 'unknown field "spec.shape"' in warned.stderr
    assert "widget.example.com/w1 created" in warned.stdout
    kubectl.run(
        "create", "--validate=false", "-f", "-", input=WIDGET.format(name="w2", size=1) + "  x: 1\n"
    )
    # a resource without a schema accepts anything
    gadget = (
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nanything:\n  goes: 1\n"
    )
    assert (
        kubectl.run("create", "-f", "-", input=gadget).stdout.strip()
        == "gadget.example.com/g created"
    )


def test_apply_create_then_update(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "w.yaml"
    manifest.write_text(WIDGET.format(name="w1", size=3))
    assert (
        kubectl.run("apply", "-f", str(manifest)).stdout.strip() == "widget.example.com/w1 created"
    )
    manifest.write_text(WIDGET.format(name="w1", size=5).replace("  color: red\n", ""))
    assert (
        kubectl.run("apply", "-f", str(manifest)).stdout.strip()
        == "widget.example.com/w1 configured"
    )
    obj = json.loads(kubectl.run("get", "widget", "w1", "-o", "json").stdout)
    assert obj["spec"] == {"size": 5}  # color removed: apply computed a merge patch
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    assert (
        kubectl.run("apply", "-f", str(manifest)).stdout.strip()
        == "widget.example.com/w1 unchanged"
    )
    manifest.write_text(WIDGET.format(name="w1", size=6))
    diff = kubectl.run("diff", "-f", str(manifest), check=False)
    assert diff.returncode == 1, diff.stderr  # 1: differences found
    assert "-  size: 5" in diff.stdout
    assert "+  size: 6" in diff.stdout
    dry = kubectl.run("apply", "--dry-run=server", "-f", str(manifest))
    assert dry.stdout.strip() == "widget.example.com/w1 configured (server dry run)"
    size = kubectl.run("get", "widget", "w1", "-o", "jsonpath={.spec.size}").stdout
    assert size == "5"  # neither diff nor the dry run persisted anything


def test_edit(kubectl: Kubectl, tmp_path: Path) -> None:
    _create(kubectl)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/size: 3/size: 42/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = kubectl.run("edit", "widget", "w1", env={"EDITOR": str(editor)})
    assert out.stdout.strip() == "widget.example.com/w1 edited"
    size = kubectl.run("get", "widget", "w1", "-o", "jsonpath={.spec.size}").stdout
    assert size == "42"
    noop = tmp_path / "noop.sh"
    noop.write_text("#!/bin/sh\nexit 0\n")
    noop.chmod(noop.stat().st_mode | stat.S_IEXEC)
    out = kubectl.run("edit", "widget", "w1", env={"EDITOR": str(noop)})
    assert "Edit cancelled, no changes made." in out.stdout + out.stderr


def test_patch_merge_and_json(kubectl: Kubectl) -> None:
    _create(kubectl)
    out = kubectl.run("patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"color":"blue"}}')
    assert out.stdout.strip() == "widget.example.com/w1 patched"
    ops = json.dumps(
        [
            {"op": "replace", "path": "/spec/size", "value": 7},
            {"op": "add", "path": "/spec/tags", "value": ["a"]},
            {"op": "add", "path": "/spec/tags/-", "value": "b"},
            {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "w"},
            {"op": "remove", "path": "/metadata/labels/team"},
        ]
    )
    kubectl.run("patch", "widget", "w1", "--type", "json", "-p", ops)
    obj = json.loads(kubectl.run("get", "widget", "w1", "-o", "json").stdout)
    assert obj["spec"] == {"size": 7, "color": "blue", "tags": ["a", "b"]}
    assert obj["metadata"]["labels"] == {"app.kubernetes.io/name": "w"}
    failed = kubectl.run(
        "patch",
        "widget",
        "w1",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/spec/nope"}]',
        check=False,
    )
    assert failed.returncode != 0
    assert failed.stderr.strip() == (
        "The request is invalid: patch: error in remove for path: '/spec/nope': "
        "Unable to remove nonexistent key: nope: missing value"
    )
    test_failed = kubectl.run(
        "patch",
        "widget",
        "w1",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/size","value":1}]',
        check=False,
    )
    assert test_failed.returncode != 0
    # kubectl patch sends no fieldValidation: the server's default is Warn.
    warned = kubectl.run("patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"shape":"o"}}')
    assert warned.stderr.strip() == 'Warning: unknown field "spec.shape"'
    wrong = kubectl.run(
        "patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"size":"big"}}', check=False
    )
    assert wrong.returncode != 0
    assert wrong.stderr.strip() == (
        'The Widget "w1" is invalid: spec.size: Invalid value: "string": '
        'spec.size in body must be of type integer: "string"'
    )


def test_server_side_apply_creates_then_updates(kubectl: Kubectl) -> None:
    out = kubectl.run(
        "apply", "--server-side", "-f", "-", input=WIDGET.format(name="w1", size=3), timeout=60
    )
    assert out.stdout.strip() == "widget.example.com/w1 serverside-applied"
    out = kubectl.run("apply", "--server-side", "-f", "-", input=WIDGET.format(name="w1", size=4))
    assert out.stdout.strip() == "widget.example.com/w1 serverside-applied"
    obj = json.loads(kubectl.run("get", "widget", "w1", "-o", "json").stdout)
    assert obj["spec"] == {"size": 4, "color": "red"}
    assert obj["metadata"]["labels"] == {"team": "blue"}


def test_delete_and_wait(kubectl: Kubectl) -> None:
    _create(kubectl, "w1")
    _create(kubectl, "w2")
    out = kubectl.run("delete", "widget", "w1")
    assert out.stdout.strip() == 'widget.example.com "w1" deleted from default namespace'
    out = kubectl.run("delete", "widget", "w2", "--wait=true", "--timeout=30s")
    assert out.stdout.strip() == 'widget.example.com "w2" deleted from default namespace'
    missing = kubectl.run("get", "widget", "w1", check=False)
    assert missing.returncode != 0
    assert 'widgets.example.com "w1" not found' in missing.stderr
    gone = kubectl.run("delete", "widget", "w1", check=False)
    assert 'widgets.example.com "w1" not found' in gone.stderr
    assert kubectl.run("delete", "widget", "w1", "--ignore-not-found").returncode == 0


def test_wait_for_jsonpath_and_delete(kubectl: Kubectl, widget_app: Any) -> None:
    _create(kubectl)

    def later() -> None:
        kubectl.run(
            "patch", "widget", "w1", "--type", "merge", "-p", '{"status":{"phase":"Ready"}}'
        )

    waiter = kubectl.popen(
        "wait", "widget/w1", "--for=jsonpath={.status.phase}=Ready", "--timeout=60s"
    )
    timer = threading.Timer(1.0, later)
    timer.start()
    try:
        stdout, stderr = waiter.communicate(timeout=90)
    finally:
        timer.join()
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == "widget.example.com/w1 condition met"

    waiter = kubectl.popen("wait", "widget/w1", "--for=delete", "--timeout=60s")
    # kubectl answers at once, silently, for an object that is already gone:
    # delete only once its watch is open.
    wait_for_watchers(widget_app)
    kubectl.run("delete", "widget", "w1", "--wait=false")
    stdout, stderr = waiter.communicate(timeout=90)
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == "widget.example.com/w1 condition met"


def test_get_watch_prints_rows_as_they_change(kubectl: Kubectl) -> None:
    _create(kubectl, "w1", 1)
    reader = LineReader(kubectl.popen("get", "widgets", "--watch"))
    try:
        assert reader.wait_for(r"^NAME\s+SIZE\s+PHASE\s+AGE$")
        reader.wait_for(r"^w1\s+1\s+\S+$")
        _create(kubectl, "w2", 2)
        reader.wait_for(r"^w2\s+2\s+\S+$")
        kubectl.run("patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"size":9}}')
        reader.wait_for(r"^w1\s+9\s+\S+$")
        kubectl.run("delete", "widget", "w2")
        events = LineReader(kubectl.popen("get", "widgets", "--watch", "--output-watch-events"))
        try:
            events.wait_for(r"^EVENT\s+NAME\s+SIZE\s+PHASE\s+AGE$")
            events.wait_for(r"^ADDED\s+w1\s+9\s")
            kubectl.run("delete", "widget", "w1")
            events.wait_for(r"^DELETED\s+w1\s+9\s")
        finally:
            events.stop()
    finally:
        reader.stop()


def test_cluster_scoped_permissive_resource(kubectl: Kubectl) -> None:
    gadget = (
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  free: form\n"
    )
    kubectl.run("apply", "-f", "-", input=gadget)
    table = kubectl.run("get", "gadgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE"]
    assert table[1].split()[0] == "g1"
    kubectl.run("apply", "-f", "-", input=gadget.replace("form", "fixed"))
    assert kubectl.run("get", "gadget", "g1", "-o", "jsonpath={.spec.free}").stdout == "fixed"
    kubectl.run("delete", "gadget", "g1")


def test_label_annotate_and_listing_options(kubectl: Kubectl) -> None:
    _create(kubectl, "w1", 3)
    _create(kubectl, "w2", 1)
    out = kubectl.run("label", "widget", "w1", "tier=gold")
    assert out.stdout.strip() == "widget.example.com/w1 labeled"
    kubectl.run("annotate", "widget", "w2", "note=hello")
    labels = kubectl.run("get", "widgets", "--show-labels").stdout.splitlines()
    assert labels[0].split()[-1] == "LABELS"
    assert labels[1].split()[-1] == "team=blue,tier=gold"
    gold = kubectl.run("get", "widgets", "-l", "tier=gold", "-o", "name").stdout.split()
    assert gold == ["widget.example.com/w1"]
    by_size = kubectl.run("get", "widgets", "--sort-by=.spec.size", "-o", "name").stdout.split()
    assert by_size == ["widget.example.com/w2", "widget.example.com/w1"]
    columns = kubectl.run(
        "get", "widgets", "-o", "custom-columns=N:.metadata.name,NOTE:.metadata.annotations.note"
    ).stdout.splitlines()
    assert [line.split() for line in columns] == [["N", "NOTE"], ["w1", "<none>"], ["w2", "hello"]]
    field = kubectl.run("get", "widgets", "--field-selector", "metadata.name=w2", "-o", "name")
    assert field.stdout.strip() == "widget.example.com/w2"
    kubectl.run("label", "widget", "w1", "tier-")
    assert kubectl.run("get", "widgets", "-l", "tier", "-o", "name").stdout == ""
