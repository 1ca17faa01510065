"""``/api/v1/namespaces``: implicit namespaces, listed from what the storages hold."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from k8swatch._options import ListOptions
from k8swatch._status import method_not_supported, not_found
from k8swatch._storage import Lister
from k8swatch._wire import encode_json

from ._http import Request, disallowed_method, send_bytes, send_object
from ._resource import ResourceSpec
from ._routes import NamespacesRoute
from ._table import build_table
from ._types import JSONObject, Send, metadata_of

__all__ = ["serve_namespaces"]

_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


async def _known_namespaces(resources: Iterable[ResourceSpec]) -> list[str]:
    names = {"default"}
    for res in resources:
        storage = res.storage
        if not res.namespaced or not isinstance(storage, Lister):
            continue
        result = await storage.list("", ListOptions())
        for item in result.items:
            namespace = metadata_of(item).get("namespace")
            if namespace:
                names.add(str(namespace))
    return sorted(names)


async def serve_namespaces(
    resources: Iterable[ResourceSpec], route: NamespacesRoute, request: Request, send: Send
) -> None:
    """``GET`` one namespace or the list: ``default`` and those the objects of *resources* use."""
    if request.method != "GET":
        raise disallowed_method(request.method)
    if route.watch_path or request.flag("watch"):
        raise method_not_supported("namespaces", "watch")
    if route.name:
        # Namespaces are implicit: every valid name exists (kubectl checks the
        # namespace after a NotFound and would blame a missing namespace).
        if not _NAMESPACE_NAME.fullmatch(route.name):
            raise not_found("namespaces", route.name)
        await send_object(send, request, _namespace(route.name), None, 200)
        return
    items = [_namespace(n) for n in await _known_namespaces(resources)]
    include = request.table_include()
    if include is not None:
        await send_bytes(send, 200, encode_json(build_table(items, include_object=include)))
        return
    document: JSONObject = {
        "kind": "NamespaceList",
        "apiVersion": "v1",
        "metadata": {},
        "items": items,
    }
    await send_bytes(send, 200, encode_json(document))
