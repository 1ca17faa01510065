"""The read verbs on a resource path: list and get, and the list options a watch shares."""

from __future__ import annotations

from typing import Any

import attrs

from k8swatch._fields import escape_field_value, parse_field_selector
from k8swatch._label_parser import parse_label_selector
from k8swatch._options import ListOptions, default_list_options, validate_list_options
from k8swatch._selectors import SelectorError
from k8swatch._status import bad_request
from k8swatch._wire import encode_json

from ._http import Request, send_bytes, send_object
from ._resource import require
from ._routes import ResourceRoute
from ._stream import with_type_meta
from ._table import build_table
from ._types import Send

__all__ = ["get", "list_objects", "list_options"]


def list_options(route: ResourceRoute, request: Request) -> ListOptions:
    """The request's list options, defaulted and validated as kube-apiserver does.

    A request for one object (``.../widgets/<name>``, e.g. a watch of it)
    selects ``metadata.name``; a field selector naming another object is 400.
    """
    options = ListOptions.from_query(request.query)
    if route.watch_path and not options.watch:
        options = attrs.evolve(options, watch=True)
    try:
        parse_label_selector(options.label_selector)
        fields = parse_field_selector(options.field_selector)
    except SelectorError as exc:
        raise bad_request(exc.detail) from None
    if route.name:
        if not fields.empty:
            if fields.requires_exact_match("metadata.name") != route.name:
                raise bad_request("fieldSelector metadata.name doesn't match requested name")
        else:
            options = attrs.evolve(
                options, field_selector="metadata.name=" + escape_field_value(route.name)
            )
    options = default_list_options(options)
    validate_list_options(options)
    return options


async def list_objects(route: ResourceRoute, request: Request, send: Send) -> None:
    """``GET`` a collection: the ``<Kind>List``, or a Table if the request asks for one."""
    res = route.resource
    storage = require(res, "list")
    options = list_options(route, request)
    result = await storage.list(route.namespace, options)
    items = [with_type_meta(item, res) for item in result.items]
    include = request.table_include()
    if include is not None:
        table = build_table(
            items,
            resource_version=result.resource_version,
            continue_token=result.continue_token,
            include_object=include,
            columns=res.printer_columns,
        )
        await send_bytes(send, 200, encode_json(table))
        return
    metadata: dict[str, Any] = {"resourceVersion": result.resource_version}
    if result.continue_token:
        metadata["continue"] = result.continue_token
    if result.remaining_item_count is not None:
        metadata["remainingItemCount"] = result.remaining_item_count
    document = {
        "apiVersion": res.api_version,
        "kind": res.list_kind,
        "metadata": metadata,
        "items": items,
    }
    await send_bytes(send, 200, encode_json(document))


async def get(route: ResourceRoute, request: Request, send: Send) -> None:
    """``GET`` an object."""
    obj = await require(route.resource, "get").get(route.namespace, route.name)
    await send_object(send, request, obj, route.resource, 200)
