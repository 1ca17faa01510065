"""A kopf operator manages ``coderworkspaces`` served by ``k8swatch serve`` (issue 17).

kopf keeps its state on the object: its finalizer (added with a JSON patch)
and its last-handled configuration (an annotation). Both are kept now, so the
create, update (on a spec change) and delete handlers each run exactly once,
and the workspace is deleted in Coder only after the delete handler ran.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import kopf
import pytest

from tests._kopf import KopfOperator

from .conftest import QUICK_CODER, Kubectl, workspace_manifest

GROUP, VERSION, PLURAL = "aggregation.coder.com", "v1alpha1", "coderworkspaces"
NAME = "acme.alice.operated"
MINE = {"operated-by": "kopf"}  # the demo workspace is not this operator's


@pytest.fixture(scope="module")
def coder_serve_flags() -> tuple[str, ...]:
    """Quick builds and polls, so kopf's patches and Coder's builds land in seconds."""
    return QUICK_CODER


def workspace_operator(url: str, kubectl: Kubectl) -> KopfOperator:
    """kopf with create, update (of the spec) and delete handlers on this test's workspaces."""
    operator = KopfOperator(url, "default")
    operator.settings.watching.server_timeout = 30

    @kopf.on.create(GROUP, VERSION, PLURAL, labels=MINE, registry=operator.registry)
    def created(name: str, spec: Any, **_: Any) -> None:
        operator.record("create", name, dict(spec))

    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", labels=MINE, registry=operator.registry)
    def updated(name: str, old: Any, new: Any, **_: Any) -> None:
        operator.record("update", name, (old.get("running"), new.get("running")))

    @kopf.on.delete(GROUP, VERSION, PLURAL, labels=MINE, registry=operator.registry)
    def deleted(name: str, meta: Any, **_: Any) -> None:
        # The workspace still exists in Coder while this runs.
        live = kubectl.run("get", "coderworkspace", name, "-o", "name", check=False)
        operator.record("delete", name, (dict(meta).get("deletionTimestamp"), live.stdout))

    return operator


def test_kopf_handlers_each_run_once(coder_kubectl: Kubectl, tmp_path: Path) -> None:
    k = coder_kubectl
    with workspace_operator(k.url, k).running() as operator:
        manifest = tmp_path / "ws.yaml"
        manifest.write_text(workspace_manifest(NAME, labels=MINE))
        k.run("create", "-f", str(manifest))
        assert operator.next_call()[:2] == ("create", NAME)
        # kopf's finalizer and its record of the handled state (two patches) are kept
        deadline = time.monotonic() + 30
        while True:
            live = json.loads(k.run("get", "coderworkspace", NAME, "-o", "json").stdout)
            meta = live["metadata"]
            handled = meta.get("annotations", {}).get(
                "kopf.zalando.org/last-handled-configuration", ""
            )
            if "kopf.zalando.org/KopfFinalizerMarker" in meta.get("finalizers", []) and handled:
                break
            assert time.monotonic() < deadline, f"kopf's state never appeared: {meta}"
            time.sleep(0.2)
        assert json.loads(handled)["spec"]["running"] is True
        assert operator.no_more_calls(3) == []  # builds progressing are no spec change

        k.run("patch", "coderworkspace", NAME, "--type=merge", "-p", '{"spec":{"running":false}}')
        assert operator.next_call() == ("update", NAME, (True, False))
        assert operator.no_more_calls(3) == []

        k.run("delete", "coderworkspace", NAME, "--wait=false")
        kind, name, (deletion_timestamp, live) = operator.next_call()
        assert (kind, name) == ("delete", NAME)
        assert deletion_timestamp
        assert live.strip() == f"coderworkspace.aggregation.coder.com/{NAME}"
        # kopf removes its finalizer: now Coder deletes the workspace
        k.run("wait", "--for=delete", f"coderworkspace/{NAME}", "--timeout=60s")
        assert operator.no_more_calls(2) == []
