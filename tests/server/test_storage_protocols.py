"""The storage protocols: the shipped storages implement them, and verbs follow from them."""

from __future__ import annotations

from typing import Any

import pytest

from k8swatch import (
    Closer,
    Creater,
    Deleter,
    Getter,
    Lister,
    ListOptions,
    MemoryStorage,
    ObjectList,
    Patcher,
    Updater,
    Watcher,
)
from k8swatch.server import ResourceSpec, storage_verbs

from ._dictstorage import DictStorage

ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
PROTOCOLS = (Getter, Lister, Creater, Updater, Patcher, Deleter, Watcher, Closer)

# What storage_verbs did before the protocols: probe for callable attributes.
_PROBED_METHODS = (
    ("create", ("create",)),
    ("delete", ("delete",)),
    ("get", ("get",)),
    ("list", ("list",)),
    ("patch", ("get", "update")),
    ("update", ("update",)),
    ("watch", ("watch",)),
)


def probed_verbs(storage: object) -> tuple[str, ...]:
    return tuple(
        verb
        for verb, methods in _PROBED_METHODS
        if all(callable(getattr(storage, m, None)) for m in methods)
    )


def coder_storages() -> list[object]:
    pytest.importorskip("httpx")
    from k8swatch.coder import StaticClientProvider, TemplateStorage, WorkspaceStorage

    provider = StaticClientProvider("", "", "default")
    return [WorkspaceStorage(provider), TemplateStorage(provider)]


class ListOnly:
    async def list(self, namespace: str, options: ListOptions) -> ObjectList:
        return ObjectList()


class GetOnly:
    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return {}


class NotAStorage:
    list = None


@pytest.mark.parametrize(
    "storage",
    [MemoryStorage("example.com/v1", "Widget"), DictStorage("example.com/v1", "Widget")],
    ids=["MemoryStorage", "DictStorage"],
)
def test_full_storages_implement_every_protocol(storage: object) -> None:
    for protocol in PROTOCOLS:
        assert isinstance(storage, protocol), protocol
    assert storage_verbs(storage) == ALL_VERBS


def test_coder_storages_implement_every_protocol() -> None:
    for storage in coder_storages():
        for protocol in PROTOCOLS:
            assert isinstance(storage, protocol), (storage, protocol)
        assert storage_verbs(storage) == ALL_VERBS


def test_storage_verbs_match_the_attribute_probe() -> None:
    storages = [
        MemoryStorage("example.com/v1", "Widget"),
        DictStorage("example.com/v1", "Widget"),
        *coder_storages(),
        ListOnly(),
        GetOnly(),
        NotAStorage(),
        object(),
    ]
    for storage in storages:
        assert storage_verbs(storage) == probed_verbs(storage), storage


def test_partial_storages() -> None:
    assert storage_verbs(ListOnly()) == ("list",)
    assert isinstance(ListOnly(), Lister)
    assert not isinstance(ListOnly(), Watcher)
    assert storage_verbs(GetOnly()) == ("get",)
    assert not isinstance(GetOnly(), Patcher)
    assert storage_verbs(NotAStorage()) == ()
    assert not isinstance(NotAStorage(), Lister)


def test_resource_spec_verbs_default_to_the_protocols() -> None:
    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", ListOnly())
    assert spec.verbs == ("list",)
