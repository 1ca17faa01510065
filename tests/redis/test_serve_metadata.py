"""Labels, annotations and finalizers of Coder objects live in Redis with ``--redis-url``:
they survive a restart of ``k8swatch serve`` in front of a separate
``k8swatch fake-coder``, are shared by replicas, and go when the object goes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest

from k8swatch.redis import open_redis_backend
from tests.kubectl.conftest import Kubectl

from .test_serve_replicas import NS, serve_args, started

pytestmark = pytest.mark.redis

DEMO = "acme.alice.dev-workspace"


def names(k: Kubectl, selector: str) -> list[str]:
    out = k.run("get", "coderworkspaces", "-o", "name", "-l", selector).stdout
    return [line.split("/", 1)[1] for line in out.split()]


async def records(redis_url: str, prefix: str) -> dict[str, tuple[int, dict[str, object]]]:
    async with open_redis_backend(redis_url, prefix=prefix) as backend:
        store = backend.metadata_store_for("coderworkspaces", group="aggregation.coder.com")
        return await store.read_all()


def stored(redis_url: str, prefix: str) -> dict[str, tuple[int, dict[str, object]]]:
    return anyio.run(records, redis_url, prefix)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = dict(os.environ)
    out["HOME"] = str(tmp_path)
    out.pop("KUBECONFIG", None)
    out.pop("CODER_SESSION_TOKEN", None)
    return out


def test_labels_survive_a_restart_of_serve(
    redis_url: str, prefix: str, env: dict[str, str], tmp_path: Path
) -> None:
    with started(["fake-coder", "--port", "0", "--build-mode", "instant"], env) as fake:
        coder_url, token = fake.value("URL: "), fake.value("token: ")
        replica_env = {**env, "CODER_SESSION_TOKEN": token}
        args = serve_args(coder_url, redis_url, prefix, tmp_path / "kubeconfig")
        with started(args, replica_env) as first:
            k = Kubectl(first.value("URL: "), tmp_path / "home1", namespace=NS)
            k.run("label", "coderworkspace", DEMO, "team=a")
            k.run("annotate", "coderworkspace", DEMO, "example.com/owner=platform")
            k.run(
                "patch", "coderworkspace", DEMO, "--type=merge",
                "-p", '{"metadata": {"finalizers": ["example.com/keep"]}}',
            )  # fmt: skip
            assert names(k, "team=a") == [DEMO]
        ((_, (_, body)),) = stored(redis_url, prefix).items()
        metadata = dict(body["metadata"])
        managers = {entry["manager"] for entry in metadata.pop("managedFields")}
        assert metadata == {
            "labels": {"team": "a"},
            "annotations": {"example.com/owner": "platform"},
            "finalizers": ["example.com/keep"],
        }
        assert {"kubectl-label", "kubectl-annotate", "kubectl-patch"} <= managers, managers
        with started(args, replica_env) as second:
            k = Kubectl(second.value("URL: "), tmp_path / "home2", namespace=NS)
            assert names(k, "team=a") == [DEMO]
            note = k.run(
                "get", "coderworkspace", DEMO, "-o",
                r"jsonpath={.metadata.annotations.example\.com/owner}",
            ).stdout  # fmt: skip
            assert note == "platform"
            # the deletion it holds, and then the object and its metadata go
            k.run("delete", "coderworkspace", DEMO, "--wait=false")
            deleting = k.run(
                "get", "coderworkspace", DEMO, "-o", "jsonpath={.metadata.deletionTimestamp}"
            ).stdout
            assert deleting
            k.run(
                "patch", "coderworkspace", DEMO, "--type=json",
                "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]',
            )  # fmt: skip
            k.run("wait", "--for=delete", f"coderworkspace/{DEMO}", "--timeout=60s")
            deadline = time.monotonic() + 30
            while stored(redis_url, prefix):
                assert time.monotonic() < deadline, "the metadata outlived its workspace"
                time.sleep(0.3)
