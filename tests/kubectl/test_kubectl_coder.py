"""kubectl against ``k8swatch serve`` (embedded fake Coder with its demo data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Kubectl, LineReader, workspace_manifest

pytestmark = pytest.mark.kubectl

DEMO = "acme.alice.dev-workspace"
TEMPLATE = "acme.starter-template"


def _row(output: str, name: str) -> list[str]:
    for line in output.splitlines():
        if line.split() and line.split()[0] == name:
            return line.split()
    pytest.fail(f"no row for {name} in:\n{output}")


def test_get_shows_the_printer_columns(coder_kubectl: Kubectl) -> None:
    out = coder_kubectl.run("get", "coderworkspaces").stdout
    assert out.splitlines()[0].split() == ["NAME", "OWNER", "TEMPLATE", "RUNNING", "STATUS", "AGE"]
    assert _row(out, DEMO)[:5] == [DEMO, "alice", "starter-template", "true", "running"]
    wide = coder_kubectl.run("get", "coderworkspaces", "-o", "wide").stdout
    assert wide.splitlines()[0].split() == [
        "NAME",
        "OWNER",
        "TEMPLATE",
        "RUNNING",
        "STATUS",
        "AGE",
        "ORGANIZATION",
        "LAST-USED",
    ]
    assert _row(wide, DEMO)[6] == "acme"
    everywhere = coder_kubectl.run("get", "coderworkspaces", "-A").stdout.splitlines()
    assert everywhere[0].split()[:3] == ["NAMESPACE", "NAME", "OWNER"]
    templates = coder_kubectl.run("get", "codertemplates").stdout
    assert templates.splitlines()[0].split() == ["NAME", "ORGANIZATION", "ACTIVE-VERSION", "AGE"]
    assert _row(templates, TEMPLATE)[:3] == [
        TEMPLATE,
        "acme",
        "9d2e4f60-1a3b-4c5d-8e7f-6a8b0c2d4e30",
    ]
    wide_templates = coder_kubectl.run("get", "codertemplates", "-o", "wide").stdout
    assert "Starter" in _row(wide_templates, TEMPLATE)
    name = coder_kubectl.run("get", "coderworkspace", DEMO, "-o", "name").stdout.strip()
    assert name == f"coderworkspace.aggregation.coder.com/{DEMO}"
    status = coder_kubectl.run(
        "get", "coderworkspace", DEMO, "-o", "jsonpath={.status.ownerName}"
    ).stdout
    assert status == "alice"


def test_explain_prints_field_docs(coder_kubectl: Kubectl) -> None:
    out = coder_kubectl.run("explain", "coderworkspaces.spec").stdout
    assert "KIND:       CoderWorkspace" in out
    assert "Desired state of the workspace." in out
    assert "templateName\t<string>" in out
    assert "running\t<boolean>" in out
    files = coder_kubectl.run("explain", "codertemplates.spec.files").stdout
    assert "FIELD: files <map[string]string>" in files
    status = coder_kubectl.run("explain", "coderworkspaces.status.latestBuildStatus").stdout
    assert "Status of the most recent build" in status


def test_stop_and_start_with_wait(coder_kubectl: Kubectl) -> None:
    manifest = workspace_manifest("acme.alice.waiter")
    coder_kubectl.run("apply", "-f", "-", input=manifest)
    coder_kubectl.run(
        "wait",
        "coderworkspace/acme.alice.waiter",
        "--for=jsonpath={.status.latestBuildStatus}=running",
        "--timeout=60s",
    )
    out = coder_kubectl.run(
        "patch",
        "coderworkspace",
        "acme.alice.waiter",
        "--type",
        "merge",
        "-p",
        '{"spec":{"running":false}}',
    )
    assert out.stdout.strip() == "coderworkspace.aggregation.coder.com/acme.alice.waiter patched"
    waited = coder_kubectl.run(
        "wait",
        "coderworkspace/acme.alice.waiter",
        "--for=jsonpath={.status.latestBuildStatus}=stopped",
        "--timeout=60s",
    )
    assert waited.stdout.strip() == (
        "coderworkspace.aggregation.coder.com/acme.alice.waiter condition met"
    )
    coder_kubectl.run(
        "patch",
        "coderworkspace",
        "acme.alice.waiter",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/running","value":true}]',
    )
    coder_kubectl.run(
        "wait",
        "coderworkspace/acme.alice.waiter",
        "--for=jsonpath={.status.latestBuildStatus}=running",
        "--timeout=60s",
    )


def test_apply_update_and_delete(coder_kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "ws.yaml"
    manifest.write_text(workspace_manifest("acme.alice.scratch"))
    created = coder_kubectl.run("apply", "-f", str(manifest))
    assert (
        created.stdout.strip() == "coderworkspace.aggregation.coder.com/acme.alice.scratch created"
    )
    manifest.write_text(workspace_manifest("acme.alice.scratch", running="false"))
    updated = coder_kubectl.run("apply", "-f", str(manifest))
    assert updated.stdout.strip() == (
        "coderworkspace.aggregation.coder.com/acme.alice.scratch configured"
    )
    obj = json.loads(
        coder_kubectl.run("get", "coderworkspace", "acme.alice.scratch", "-o", "json").stdout
    )
    assert obj["spec"]["running"] is False
    coder_kubectl.run(
        "wait",
        "coderworkspace/acme.alice.scratch",
        "--for=jsonpath={.status.latestBuildStatus}=stopped",
        "--timeout=60s",
    )
    deleted = coder_kubectl.run(
        "delete", "coderworkspace", "acme.alice.scratch", "--wait=true", "--timeout=60s"
    )
    assert deleted.stdout.startswith('coderworkspace.aggregation.coder.com "acme.alice.scratch"')
    coder_kubectl.run("wait", "coderworkspace/acme.alice.scratch", "--for=delete", "--timeout=60s")
    gone = coder_kubectl.run("get", "coderworkspace", "acme.alice.scratch", check=False)
    assert gone.returncode != 0
    assert "not found" in gone.stderr


def test_strict_validation_and_server_side_apply(coder_kubectl: Kubectl) -> None:
    bad = workspace_manifest("acme.alice.bad") + "  shape: round\n"
    out = coder_kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert out.returncode != 0
    assert 'strict decoding error: unknown field "spec.shape"' in out.stderr
    wrong = workspace_manifest("acme.alice.bad", running='"yes"')
    out = coder_kubectl.run("create", "-f", "-", input=wrong, check=False)
    assert out.returncode != 0
    assert "spec.running in body must be of type boolean" in out.stderr
    ssa = coder_kubectl.run(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=workspace_manifest(DEMO),
        check=False,
    )
    assert ssa.returncode == 0, ssa.stderr
    assert ssa.stdout.strip() == f"coderworkspace.aggregation.coder.com/{DEMO} serverside-applied"


def test_server_side_apply_records_managers_in_the_metadata_store(
    coder_kubectl: Kubectl,
) -> None:
    name = "acme.alice.applied"
    created = coder_kubectl.run("apply", "--server-side", "-f", "-", input=workspace_manifest(name))
    assert (
        created.stdout.strip() == f"coderworkspace.aggregation.coder.com/{name} serverside-applied"
    )
    try:
        coder_kubectl.run(
            "wait",
            f"coderworkspace/{name}",
            "--for=jsonpath={.status.latestBuildStatus}=running",
            "--timeout=50s",
        )
        got = coder_kubectl.run(
            "get", "coderworkspace", name, "-o", "json", "--show-managed-fields"
        )
        entries = json.loads(got.stdout)["metadata"]["managedFields"]
        assert [(e["manager"], e["operation"]) for e in entries] == [("kubectl", "Apply")]
        assert "f:running" in entries[0]["fieldsV1"]["f:spec"]
        # Another manager changing running conflicts with kubectl, until it forces.
        stop = workspace_manifest(name, running="false")
        other = ("apply", "--server-side", "--field-manager=other", "-f", "-")
        refused = coder_kubectl.run(*other, input=stop, check=False)
        assert refused.returncode == 1
        assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.running' in (
            refused.stderr
        )
        coder_kubectl.run(*other, "--force-conflicts", input=stop)
        out = coder_kubectl.run("get", "coderworkspace", name, "-o", "jsonpath={.spec.running}")
        assert out.stdout == "false"
    finally:
        coder_kubectl.run(
            "wait",
            f"coderworkspace/{name}",
            "--for=jsonpath={.status.latestBuildStatus}=stopped",
            "--timeout=50s",
            check=False,
        )
        coder_kubectl.run("delete", "coderworkspace", name)


def test_get_watch_follows_a_stop(coder_kubectl: Kubectl) -> None:
    coder_kubectl.run("apply", "-f", "-", input=workspace_manifest("acme.alice.watched"))
    reader = LineReader(coder_kubectl.popen("get", "coderworkspaces", "--watch"))
    try:
        reader.wait_for(r"^acme\.alice\.watched\s+alice\s+starter-template\s+true\s+running\s")
        coder_kubectl.run(
            "patch",
            "coderworkspace",
            "acme.alice.watched",
            "--type",
            "merge",
            "-p",
            '{"spec":{"running":false}}',
        )
        reader.wait_for(r"^acme\.alice\.watched\s+alice\s+starter-template\s+false\s+stopped\s")
    finally:
        reader.stop()


def test_edit_and_describe(coder_kubectl: Kubectl, tmp_path: Path) -> None:
    coder_kubectl.run("apply", "-f", "-", input=workspace_manifest("acme.alice.edited"))
    coder_kubectl.run(
        "wait",
        "coderworkspace/acme.alice.edited",
        "--for=jsonpath={.status.latestBuildStatus}=running",
        "--timeout=60s",
    )
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/running: true/running: false/' \"$1\"\n")
    editor.chmod(0o755)
    out = coder_kubectl.run(
        "edit", "coderworkspace", "acme.alice.edited", env={"EDITOR": str(editor)}
    )
    assert out.stdout.strip() == "coderworkspace.aggregation.coder.com/acme.alice.edited edited"
    coder_kubectl.run(
        "wait",
        "coderworkspace/acme.alice.edited",
        "--for=jsonpath={.status.latestBuildStatus}=stopped",
        "--timeout=60s",
    )
    described = coder_kubectl.run("describe", "codertemplate", TEMPLATE).stdout
    assert "Name:         acme.starter-template" in described
    assert "Starter Template" in described
    # objects read back validate against their own schema, strictly
    for kind, name in (("coderworkspace", DEMO), ("codertemplate", TEMPLATE)):
        live = coder_kubectl.run("get", kind, name, "-o", "json").stdout
        replaced = coder_kubectl.run("replace", "--validate=strict", "-f", "-", input=live)
        assert replaced.stdout.strip().endswith(f"/{name} replaced")
