"""Static checks of the public API's types (run by mypy and pyright in `nox -s typecheck`).

Nothing here runs; the type checkers assert what they infer.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

import k8swatch
from k8swatch import (
    Broadcaster,
    Closer,
    Creater,
    Deleter,
    Event,
    EventType,
    FieldSelector,
    Getter,
    LabelSelector,
    Lister,
    ListOptions,
    MemoryStorage,
    ObjectList,
    Patcher,
    Status,
    StatusError,
    Updater,
    Watch,
    Watcher,
)
from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage
from k8swatch.server import ResourceSpec, storage_verbs


async def check_broadcaster() -> None:
    broadcaster: Broadcaster[dict[str, Any]] = Broadcaster(queue_length=10)
    watch = broadcaster.watch()
    assert_type(watch, Watch[dict[str, Any]])
    await broadcaster.action(EventType.ADDED, {"metadata": {"name": "a"}})
    assert_type(broadcaster.action_or_drop(EventType.DELETED, {}), bool)
    async for event in watch:
        assert_type(event, Event[dict[str, Any]])
        assert_type(event.type, EventType)
        assert_type(event.object, dict[str, Any])
    async for batch in watch.batches():
        for item in batch:
            assert_type(item, Event[dict[str, Any]])
    stopped = k8swatch.stop_aware_watch(watch, timeout=1.0)
    async with stopped:
        assert_type(stopped.stopped, bool)
    broadcaster.shutdown()


def check_selectors() -> None:
    labels = k8swatch.parse_label_selector("app in (a,b),tier!=db")
    assert_type(labels, LabelSelector)
    assert_type(labels.matches({"app": "a"}), bool)
    fields = k8swatch.parse_field_selector("metadata.name=foo")
    assert_type(fields, FieldSelector)
    assert_type(fields.requires_exact_match("metadata.name"), str | None)
    assert_type(k8swatch.escape_field_value("a,b"), str)


def check_options_and_status() -> None:
    options = ListOptions.from_query({"watch": "true", "labelSelector": ["app=a"]})
    assert_type(options, ListOptions)
    assert_type(k8swatch.default_list_options(options), ListOptions)
    err = k8swatch.expired("too old resource version: 1 (2)")
    assert_type(err, StatusError)
    assert_type(err.status, Status)
    assert_type(err.status.to_dict(), dict[str, Any])
    for constructed in (
        k8swatch.path_not_found(),
        k8swatch.method_not_allowed("no"),
        k8swatch.not_acceptable("no"),
        k8swatch.request_entity_too_large("limit is 1"),
        k8swatch.unsupported_media_type("no"),
        k8swatch.unprocessable_entity([]),
    ):
        assert_type(constructed, StatusError)


async def use_storage(
    storage: Patcher,
    lister: Lister,
    creater: Creater,
    deleter: Deleter,
    watcher: Watcher,
    closer: Closer,
    options: ListOptions,
) -> None:
    assert_type(await storage.get("default", "a"), dict[str, Any])
    assert_type(await storage.update("default", "a", {}), dict[str, Any])
    assert_type(await lister.list("", options), ObjectList)
    assert_type(await creater.create("default", {}), dict[str, Any])
    assert_type(await deleter.delete("default", "a"), dict[str, Any] | Status)
    assert_type(await watcher.watch("", options), Watch[dict[str, Any]])
    await closer.aclose()


def narrow(storage: object) -> None:
    if isinstance(storage, Getter):
        assert_type(storage, Getter)
    if isinstance(storage, Updater):
        assert_type(storage, Updater)


async def check_storage_protocols(options: ListOptions) -> None:
    # MemoryStorage and the Coder storages satisfy every protocol statically.
    memory = MemoryStorage("example.com/v1", "Widget")
    await use_storage(memory, memory, memory, memory, memory, memory, options)
    provider = StaticClientProvider("", "", "default")
    workspaces = WorkspaceStorage(provider)
    await use_storage(
        workspaces, workspaces, workspaces, workspaces, workspaces, workspaces, options
    )
    templates = TemplateStorage(provider)
    await use_storage(templates, templates, templates, templates, templates, templates, options)
    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", memory)
    assert_type(spec.storage, object)
    assert_type(storage_verbs(spec.storage), tuple[str, ...])
