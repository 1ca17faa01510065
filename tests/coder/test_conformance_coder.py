"""The watch conformance suite against the Coder storages in cache mode (FakeCoder)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage
from k8swatch.testing import WatchConformance

from .conftest import FakeCoderServer

NS = "control-plane"
ORG = "acme"


class TestTemplateStorageConformance(WatchConformance):
    """``TemplateStorage(watch_cache=True)``: resume, initial events and bookmarks.

    Labels and finalizers live in the storage's metadata store. The static
    provider serves one namespace, so the namespace cases are not generated.
    """

    # The storage takes dry_run=True, but cannot predict what Coder answers for
    # a new object (its id, status), which the dry-run case compares.
    supports_dry_run = False
    namespaced = False
    namespace = NS

    @pytest.fixture(autouse=True)
    def _coder(self, fake_coder_server: FakeCoderServer) -> None:
        self.server = fake_coder_server

    @asynccontextmanager
    async def make_storage(self) -> AsyncIterator[TemplateStorage]:
        provider = StaticClientProvider(self.server.url, self.server.token, NS)
        storage = TemplateStorage(
            provider,
            watch_cache=True,
            cache_window=self.history_window,
            bookmark_interval=self.bookmark_interval,
            build_poll_interval=0.01,
        )
        try:
            yield storage
        finally:
            await storage.aclose()
            await provider.aclose()

    def object_name(self, name: str) -> str:
        return f"{ORG}.{name}"

    def short_name(self, stored: str) -> str:
        return stored.removeprefix(f"{ORG}.")

    def new_object(
        self, name: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "apiVersion": "aggregation.coder.com/v1alpha1",
            "kind": "CoderTemplate",
            "metadata": {
                "name": name,
                "namespace": namespace,
                **({"labels": dict(labels)} if labels else {}),
            },
            "spec": {"organization": ORG, "versionID": str(uuid.uuid4()), "description": "0"},
        }

    def change_object(
        self, obj: Mapping[str, Any], *, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        changed = copy.deepcopy(dict(obj))
        if labels is not None:
            changed["metadata"]["labels"] = dict(labels)
        spec = changed.setdefault("spec", {})
        spec["description"] = str(int(spec.get("description") or 0) + 1)
        return changed


class TestTemplateStorageGoOriginalConformance(TestTemplateStorageConformance):
    """``TemplateStorage()`` without the cache: the Go original's live-only watch.

    Resume, initial events and bookmarks are not generated; instead the suite
    checks that ``sendInitialEvents=true`` and ``resourceVersionMatch`` are
    rejected with 400 BadRequest.
    """

    supports_resume = False
    supports_initial_events = False
    supports_bookmarks = False
    # The live-only watch filters by labels as the Go original's filterForListOptions
    # does: an object moving into or out of the selection is not turned into an
    # ADDED or DELETED (the watch cache does that).
    supports_labels = False

    @asynccontextmanager
    async def make_storage(self) -> AsyncIterator[TemplateStorage]:
        provider = StaticClientProvider(self.server.url, self.server.token, NS)
        storage = TemplateStorage(provider, build_poll_interval=0.01)
        try:
            yield storage
        finally:
            await storage.aclose()
            await provider.aclose()


OWNER = "alice"


class TestWorkspaceStorageConformance(WatchConformance):
    """``WorkspaceStorage(watch_cache=True)``.

    Updates toggle ``spec.running`` (a start/stop build). Coder deletes a
    workspace asynchronously: the storage reports MODIFIED (the delete build),
    and the DELETED once a resync finds it gone (``graceful_delete``).
    """

    namespaced = False
    graceful_delete = True
    namespace = NS
    # Removing the last finalizer starts the delete build: a MODIFIED, then the
    # DELETED once Coder is done, not the single DELETED the case expects; the
    # label case deletes too (tests/coder/test_metadata.py covers both instead).
    supports_finalizers = False
    supports_labels = False
    # As for templates: the dry run cannot predict Coder's answer for a new object.
    supports_dry_run = False

    @pytest.fixture(autouse=True)
    def _coder(self, fake_coder_server: FakeCoderServer) -> None:
        self.server = fake_coder_server

    @asynccontextmanager
    async def make_storage(self) -> AsyncIterator[WorkspaceStorage]:
        provider = StaticClientProvider(self.server.url, self.server.token, NS)
        storage = WorkspaceStorage(
            provider,
            watch_cache=True,
            cache_window=self.history_window,
            bookmark_interval=self.bookmark_interval,
        )
        try:
            yield storage
        finally:
            await storage.aclose()
            await provider.aclose()

    async def finish_deletion(self, storage: Any) -> None:
        await storage.resync(NS)

    def object_name(self, name: str) -> str:
        return f"{ORG}.{OWNER}.{name}"

    def short_name(self, stored: str) -> str:
        return stored.removeprefix(f"{ORG}.{OWNER}.")

    def new_object(
        self, name: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "apiVersion": "aggregation.coder.com/v1alpha1",
            "kind": "CoderWorkspace",
            "metadata": {
                "name": name,
                "namespace": namespace,
                **({"labels": dict(labels)} if labels else {}),
            },
            "spec": {"organization": ORG, "templateName": "starter-template", "running": True},
        }

    def change_object(
        self, obj: Mapping[str, Any], *, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        changed = copy.deepcopy(dict(obj))
        if labels is not None:
            changed["metadata"]["labels"] = dict(labels)
        spec = changed.setdefault("spec", {})
        spec["running"] = not spec.get("running", True)
        return changed
