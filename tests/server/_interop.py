"""Shared pieces of the real-client interop tests: a served app and a kubeconfig."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx

from k8swatch import MemoryStorage
from k8swatch.server import App, ResourceSpec, create_app
from k8swatch.testing import InstrumentedApp, RequestLog

GROUP = "example.com"
VERSION = "v1"
PLURAL = "widgets"
KIND = "Widget"
API_VERSION = f"{GROUP}/{VERSION}"

_namespaces = (f"ns{i}" for i in itertools.count(1))


def new_namespace() -> str:
    """A namespace no other test in this process uses."""
    return next(_namespaces)


WINDOW = 50
"""Events the interop storage keeps for resuming (small, so 410 is easy to reach)."""


def new_storage() -> MemoryStorage:
    """The storage the interop tests serve: MemoryStorage with a short bookmark interval."""
    return MemoryStorage(API_VERSION, KIND, window=WINDOW, bookmark_interval=1.0)


def build_app(storage: Any) -> App:
    return create_app([ResourceSpec(GROUP, VERSION, PLURAL, KIND, storage, short_names=("wd",))])


@attrs.define
class Served:
    """An app served on 127.0.0.1 plus helpers to change objects behind the client's back."""

    url: str
    app: App
    storage: Any
    log: RequestLog = attrs.field(factory=RequestLog)
    """Every request the app received (from every test of the module)."""
    http: httpx.Client = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def path(self, namespace: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return f"{base}/{name}" if name else base

    def create(self, namespace: str, name: str, **labels: str) -> dict[str, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "labels": labels},
            "spec": {"size": 1},
        }
        response = self.http.post(self.path(namespace), json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        response = self.http.patch(
            self.path(namespace, name),
            content=json.dumps(patch),
            headers={"content-type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def delete(self, namespace: str, name: str) -> None:
        response = self.http.delete(self.path(namespace, name))
        assert response.status_code == 200, response.text

    def wait_for_watches(self, count: int, timeout: float = 30) -> None:
        """Wait until exactly *count* watch streams are open (a client connected or left)."""
        deadline = time.monotonic() + timeout
        while self.app.active_watches != count:
            assert time.monotonic() < deadline, f"{self.app.active_watches} watches open"
            time.sleep(0.02)

    def close(self) -> None:
        self.http.close()


def write_kubeconfig(directory: Path, url: str, namespace: str = "default") -> Path:
    """Write a kubeconfig (JSON is valid YAML) for *url* with an empty user."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k8swatch", "cluster": {"server": url}}],
        "users": [{"name": "anonymous", "user": {}}],
        "contexts": [
            {
                "name": "k8swatch",
                "context": {"cluster": "k8swatch", "user": "anonymous", "namespace": namespace},
            }
        ],
        "current-context": "k8swatch",
    }
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


def served_app(server: str) -> Iterator[Served]:
    """Serve a fresh app with *server*; used by the module-scoped fixtures."""
    from k8swatch.testing import serve_app

    storage = new_storage()
    app = build_app(storage)
    instrumented = InstrumentedApp(app)
    with serve_app(instrumented, server=server) as url:  # type: ignore[arg-type]
        served = Served(url, app, storage, instrumented.log)
        # A never-written MemoryStorage lists at resourceVersion "0", which a
        # client would then watch from ("0" means "any state", so changes made
        # in between are lost). Kubernetes never lists at "0"; one write first.
        served.create("seed", "seed")
        try:
            yield served
        finally:
            served.close()
