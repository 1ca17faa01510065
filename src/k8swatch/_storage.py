"""The storage protocol: what a REST storage offers to the server layer.

A storage implements any subset of the verbs, one runtime-checkable protocol
each (named as kube-apiserver's ``rest`` interfaces): ``isinstance(storage,
Lister)`` says whether it can list. Objects cross the boundary as
Kubernetes-shaped JSON dicts; every method is a coroutine and fails with a
[`StatusError`][k8swatch.StatusError]. An empty *namespace* means all
namespaces (list, watch) or a cluster-scoped resource.

Beyond the protocols, ``create``, ``update`` and ``delete`` may take the
keyword-only argument ``dry_run: bool = False`` (answer what the write would
store, store nothing) and ``delete`` may take ``preconditions:
DeletePreconditions | None = None`` (409 Conflict when the stored ``uid`` or
``resourceVersion`` differs). The server passes them only to a method that
declares them. [`MemoryStorage`][k8swatch.MemoryStorage] takes both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from typing_extensions import Protocol, final, runtime_checkable

from ._options import ListOptions
from ._status import Status
from ._watch import Watch

__all__ = [
    "Closer",
    "Creater",
    "Deleter",
    "Getter",
    "Lister",
    "ObjectList",
    "Patcher",
    "Updater",
    "Watcher",
]


def _items(items: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    return tuple(items)


@final
@attrs.frozen
class ObjectList:
    """One page of a list: Kubernetes-shaped item dicts and the list's metadata.

    Attributes:
        items: The objects, in the storage's order.
        resource_version: The RV of the snapshot; a watch started from it misses
            nothing and repeats nothing ("" when the storage has none).
        continue_token: Opaque token for the next page ("" on the last page).
        remaining_item_count: Items after this page, when known.
    """

    items: tuple[dict[str, Any], ...] = attrs.field(converter=_items, default=())
    resource_version: str = ""
    continue_token: str = ""
    remaining_item_count: int | None = None


@runtime_checkable
class Getter(Protocol):
    """A storage that reads one object: the ``get`` verb."""

    async def get(self, namespace: str, name: str, /) -> dict[str, Any]:
        """Return the object *name* in *namespace*.

        Raises:
            StatusError: 404 NotFound when there is no such object.
        """
        ...


@runtime_checkable
class Lister(Protocol):
    """A storage that lists objects: the ``list`` verb."""

    async def list(self, namespace: str, options: ListOptions, /) -> ObjectList:
        """Return the objects in *namespace* (``""``: all) that *options* select.

        *options* arrive defaulted and validated (``default_list_options``,
        ``validate_list_options``).

        Raises:
            StatusError: e.g. 400 for a selector the storage cannot apply, 410
                for an expired continue token.
        """
        ...


@runtime_checkable
class Creater(Protocol):
    """A storage that creates objects: the ``create`` verb (Kubernetes spells it ``Creater``)."""

    async def create(self, namespace: str, obj: dict[str, Any], /) -> dict[str, Any]:
        """Store the new object *obj* in *namespace* and return it as stored.

        Raises:
            StatusError: 409 AlreadyExists when the name is taken.
        """
        ...


@runtime_checkable
class Updater(Protocol):
    """A storage that replaces objects: the ``update`` verb."""

    async def update(self, namespace: str, name: str, obj: dict[str, Any], /) -> dict[str, Any]:
        """Replace the object *name* in *namespace* with *obj* and return it as stored.

        Raises:
            StatusError: 404 NotFound; 409 Conflict when *obj*'s
                ``metadata.resourceVersion`` is set and is not the current one.
        """
        ...


@runtime_checkable
class Patcher(Getter, Updater, Protocol):
    """A storage the server can patch: ``get`` and ``update`` make the ``patch`` verb.

    The server reads the object, applies the patch and updates it with the
    resourceVersion it read (retrying on a conflict the client did not cause).
    """


@runtime_checkable
class Deleter(Protocol):
    """A storage that deletes objects: the ``delete`` verb."""

    async def delete(self, namespace: str, name: str, /) -> dict[str, Any] | Status:
        """Delete the object *name* in *namespace*.

        Returns the deleted object, or a [`Status`][k8swatch.Status] (e.g.
        ``Status.success()``) when the deletion is not immediate.

        Raises:
            StatusError: 404 NotFound.
        """
        ...


@runtime_checkable
class Watcher(Protocol):
    """A storage that streams changes: the ``watch`` verb."""

    async def watch(self, namespace: str, options: ListOptions, /) -> Watch[dict[str, Any]]:
        """Start a watch of *namespace* (``""``: all) as *options* ask.

        *options* arrive defaulted and validated, with ``watch=True``.

        Raises:
            StatusError: a request the storage cannot serve (e.g. 400 for an
                unsupported option). Later failures, such as 410 Expired,
                arrive as one ``ERROR`` event in the stream.
        """
        ...


@runtime_checkable
class Closer(Protocol):
    """A storage holding resources: the server ``aclose()``s it at shutdown."""

    async def aclose(self) -> None:
        """Release what the storage holds; open watches end. Idempotent."""
        ...
