"""``/api/v1/namespaces``: implicit namespaces, listed and watched as the server knows them.

Namespaces are not stored by anyone: every valid name exists (``GET`` of any
valid name answers an ``Active`` namespace, since kubectl checks the
namespace after a NotFound and would blame a missing one). The names the
server *knows* (``default``, the namespaces of the objects its storages
hold, and those it created objects in) live in a small
[`MemoryStorage`][k8swatch.MemoryStorage] of ``Namespace`` objects, so that
the list and the watch have everything a real one has: a resourceVersion,
resume, bookmarks, selectors, ``sendInitialEvents``, tables. A namespace the
server learns about is ``ADDED`` to open watches (kopf's namespace observer
and ``kubectl get ns -w`` see it); namespaces are never deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from k8swatch._memory import MemoryStorage
from k8swatch._options import ListOptions
from k8swatch._status import StatusError, not_found
from k8swatch._storage import Lister

from ._columns import PrinterColumn
from ._http import Request, disallowed_method, send_object
from ._resource import ResourceSpec
from ._routes import NamespacesRoute, ResourceRoute
from ._types import JSONObject, Send, metadata_of

__all__ = ["NamespaceRegistry"]

logger = logging.getLogger("k8swatch.server")

_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _namespace(name: str) -> JSONObject:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


class NamespaceRegistry:
    """The namespaces a server knows, served as the core ``namespaces`` resource."""

    def __init__(self, resources: Iterable[ResourceSpec]) -> None:
        self._resources = tuple(resources)
        self.storage: MemoryStorage = MemoryStorage(
            "v1", "Namespace", resource="namespaces", namespaced=False, window=1000
        )
        self.resource: ResourceSpec = ResourceSpec(
            "",
            "v1",
            "namespaces",
            "Namespace",
            self.storage,
            namespaced=False,
            short_names=("ns",),
            verbs=("get", "list", "watch"),
            printer_columns=(
                PrinterColumn("Status", "string", ".status.phase"),
                PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
            ),
        )
        self._known: set[str] = set()

    async def learn(self, name: str) -> None:
        """Know the namespace *name* from now on (``ADDED`` to open watches).

        Never raises: it runs after a write that succeeded (a closed registry,
        at shutdown, only means no watcher hears of the namespace).
        """
        if not name or name in self._known or not _NAMESPACE_NAME.fullmatch(name):
            return
        try:
            await self.storage.create("", _namespace(name))
        except StatusError as err:
            if err.reason != "AlreadyExists":
                logger.debug("could not record the namespace %s: %s", name, err)
                return
        self._known.add(name)

    async def refresh(self) -> None:
        """Learn ``default`` and the namespaces of every object the storages hold."""
        await self.learn("default")
        for res in self._resources:
            storage = res.storage
            if not res.namespaced or not isinstance(storage, Lister):
                continue
            result = await storage.list("", ListOptions())
            for item in result.items:
                namespace = metadata_of(item).get("namespace")
                if isinstance(namespace, str):
                    await self.learn(namespace)

    async def route(self, route: NamespacesRoute, request: Request) -> ResourceRoute:
        """The resource route serving *route* (after a refresh, for lists and watches)."""
        if request.method != "GET":
            raise disallowed_method(request.method)
        if not route.name or route.watch_path or request.flag("watch"):
            await self.refresh()
        return ResourceRoute(self.resource, "", route.name, route.watch_path)

    async def get(self, name: str, request: Request, send: Send) -> None:
        """``GET`` one namespace: the known one, else an implicit ``Active`` one."""
        if not _NAMESPACE_NAME.fullmatch(name):
            raise not_found("namespaces", name)
        try:
            obj = await self.storage.get("", name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            obj = _namespace(name)
        await send_object(send, request, obj, self.resource, 200)
