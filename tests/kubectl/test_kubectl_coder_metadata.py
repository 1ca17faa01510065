"""kubectl keeps what it writes on Coder objects (issue 17): labels, annotations,
``kubectl apply``'s last-applied configuration, finalizers; nothing is dropped
silently; server-side dry runs answer what the write stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .conftest import QUICK_CODER, Kubectl, workspace_manifest

pytestmark = pytest.mark.kubectl

DEMO = "acme.alice.dev-workspace"
TEMPLATE = "acme.starter-template"


@pytest.fixture(scope="module")
def coder_serve_flags() -> tuple[str, ...]:
    """Quick builds and polls: the start builds these tests wait for end in a second."""
    return QUICK_CODER


@pytest.fixture
def k(coder_kubectl: Kubectl) -> Kubectl:
    """kubectl pointed at this module's ``k8swatch serve``."""
    return coder_kubectl


def get(k: Kubectl, kind: str, name: str) -> dict[str, object]:
    return json.loads(k.run("get", kind, name, "-o", "json").stdout)


def delete_when_built(k: Kubectl, kind: str, name: str) -> None:
    """Delete *name* once Coder takes it: Coder refuses (409) while the start build runs."""
    deadline = time.monotonic() + 30
    while True:
        done = k.run("delete", kind, name, "--wait=false", check=False)
        if done.returncode == 0 or "build is already active" not in done.stderr:
            break
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.2)
    assert done.returncode == 0, done.stderr


def names(k: Kubectl, *args: str) -> list[str]:
    out = k.run("get", "coderworkspaces", "-o", "name", *args).stdout
    return [line.split("/", 1)[1] for line in out.split()]


def test_label_and_annotate_round_trip(k: Kubectl) -> None:
    out = k.run("label", "coderworkspace", DEMO, "team=a")
    assert "labeled" in out.stdout
    shown = k.run("get", "coderworkspaces", "--show-labels").stdout
    assert "team=a" in next(line for line in shown.splitlines() if line.startswith(DEMO))
    assert names(k, "-l", "team=a") == [DEMO]
    assert names(k, "-l", "team=b") == []
    assert names(k, "-l", "team in (a,b),!gone") == [DEMO]
    k.run("annotate", "coderworkspace", DEMO, "example.com/note=hello world")
    note = k.run(
        "get", "coderworkspace", DEMO, "-o", r"jsonpath={.metadata.annotations.example\.com/note}"
    ).stdout
    assert note == "hello world"
    k.run("label", "coderworkspace", DEMO, "team-")
    assert names(k, "-l", "team=a") == []
    k.run("annotate", "coderworkspace", DEMO, "example.com/note-")
    assert "annotations" not in get(k, "coderworkspace", DEMO)["metadata"]  # type: ignore[operator]


def test_server_dry_run_answers_what_the_write_stores(k: Kubectl) -> None:
    dry = json.loads(
        k.run("label", "coderworkspace", DEMO, "stage=dry", "--dry-run=server", "-o", "json").stdout
    )
    assert dry["metadata"]["labels"] == {"stage": "dry"}
    assert "labels" not in get(k, "coderworkspace", DEMO)["metadata"]  # type: ignore[operator]
    real = json.loads(k.run("label", "coderworkspace", DEMO, "stage=dry", "-o", "json").stdout)
    assert real["metadata"]["labels"] == dry["metadata"]["labels"]
    assert real["spec"] == dry["spec"]
    k.run("label", "coderworkspace", DEMO, "stage-")


def test_apply_twice_is_unchanged_and_diff_exits_0(k: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "ws.yaml"
    manifest.write_text(workspace_manifest("acme.alice.applied", labels={"team": "a"}))
    first = k.run("apply", "-f", str(manifest))
    assert "created" in first.stdout
    second = k.run("apply", "-f", str(manifest))
    assert "unchanged" in second.stdout, second.stdout
    assert "Warning" not in second.stderr, second.stderr
    diff = k.run("diff", "-f", str(manifest), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert names(k, "-l", "team=a") == ["acme.alice.applied"]
    manifest.write_text(workspace_manifest("acme.alice.applied", labels={"team": "b"}))
    diff = k.run("diff", "-f", str(manifest), check=False)
    assert diff.returncode == 1, diff.stderr
    assert "+    team: b" in diff.stdout
    assert "configured" in k.run("apply", "-f", str(manifest)).stdout
    assert names(k, "-l", "team=b") == ["acme.alice.applied"]
    delete_when_built(k, "coderworkspace", "acme.alice.applied")


def test_a_finalizer_holds_the_deletion_until_removed(k: Kubectl, tmp_path: Path) -> None:
    name = "acme.alice.held"
    manifest = tmp_path / "held.yaml"
    manifest.write_text(workspace_manifest(name, labels={"team": "held"}))
    k.run("create", "-f", str(manifest))
    k.run(
        "patch",
        "coderworkspace",
        name,
        "--type=json",
        "-p",
        '[{"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]}]',
    )
    out = k.run("delete", "coderworkspace", name, "--wait=false")
    assert "deleted" in out.stdout
    held = get(k, "coderworkspace", name)
    metadata = held["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["deletionTimestamp"]
    assert metadata["finalizers"] == ["example.com/hold"]
    time.sleep(1.5)  # three polls: Coder was never asked to delete it
    status = get(k, "coderworkspace", name)["status"]
    assert isinstance(status, dict)
    assert status["latestBuildStatus"] in ("pending", "starting", "running")
    # no new finalizers while it is being deleted
    refused = k.run(
        "patch",
        "coderworkspace",
        name,
        "--type=merge",
        "-p",
        '{"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}',
        check=False,
    )
    assert refused.returncode == 1
    assert "no new finalizers can be added if the object is being deleted" in refused.stderr
    k.run("patch", "coderworkspace", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    k.run("wait", "--for=delete", f"coderworkspace/{name}", "--timeout=60s")
    gone = k.run("get", "coderworkspace", name, check=False)
    assert gone.returncode == 1
    assert "NotFound" in gone.stderr


def test_writes_that_cannot_be_kept_are_refused_or_warned(k: Kubectl) -> None:
    status = k.run(
        "patch",
        "coderworkspace",
        DEMO,
        "--type=merge",
        "-p",
        '{"status": {"ownerName": "mallory"}}',
        check=False,
    )
    assert status.returncode == 0
    assert "Warning: status: CoderWorkspace" in status.stderr
    assert "the status is read from Coder; the change was not kept" in status.stderr
    owner = get(k, "coderworkspace", DEMO)["status"]
    assert isinstance(owner, dict)
    assert owner["ownerName"] == "alice"
    running = k.run(
        "patch", "codertemplate", TEMPLATE, "--type=merge", "-p", '{"spec": {"running": true}}',
        check=False,
    )  # fmt: skip
    assert running.returncode == 1
    assert "spec.running: Forbidden" in running.stderr
    label = k.run(
        "patch", "coderworkspace", DEMO, "--type=merge",
        "-p", '{"metadata": {"labels": {"bad": "-value-"}}}', check=False,
    )  # fmt: skip
    assert label.returncode == 1
    assert "metadata.labels: Invalid value" in label.stderr


def test_what_the_apiserver_would_warn_about_is_a_warning(k: Kubectl) -> None:
    before = get(k, "coderworkspace", DEMO)["spec"]
    assert isinstance(before, dict)
    assert before["ttlMillis"]
    cleared = k.run(
        "patch", "coderworkspace", DEMO, "--type=json",
        "-p", '[{"op": "remove", "path": "/spec/ttlMillis"}]',
    )  # fmt: skip
    assert (
        f"Warning: spec.ttlMillis: an existing workspace's value cannot be cleared; it stays \""
        f'{before["ttlMillis"]}"'
    ) in cleared.stderr
    assert get(k, "coderworkspace", DEMO)["spec"] == before
    held = k.run(
        "patch", "coderworkspace", DEMO, "--type=merge",
        "-p", '{"metadata": {"finalizers": ["keep-me"]}}',
    )  # fmt: skip
    assert (
        'Warning: metadata.finalizers: "keep-me": prefer a domain-qualified finalizer name'
    ) in held.stderr
    k.run("patch", "coderworkspace", DEMO, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
