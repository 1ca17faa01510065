"""The write verbs on a resource path: create, update, patch and delete.

Each handler checks that the resource offers the verb (405) before it reads
the body, validates the object against the resource's schema
(``fieldValidation``) and honours ``dryRun=All`` by answering without calling
the storage's write methods.

Every write records who set which fields in ``metadata.managedFields``
(``_managedfields``): the manager is the ``fieldManager`` parameter, else the
``User-Agent``'s product. Server-side apply has its own handler (``_apply``).

Bodies go through the strict decoder (``_decode``); a patched object is held
to the same rules (nesting depth, UTF-8 text) and to the request size limit,
so a small patch cannot store what no request could.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k8swatch._status import (
    Status,
    StatusCause,
    StatusError,
    bad_request,
    invalid,
    request_entity_too_large,
    unprocessable_entity,
)
from k8swatch._storage import Getter
from k8swatch._wire import encode_json

from ._body import check_name, check_namespace, check_type_meta, read_object
from ._decode import check_json_value
from ._http import Request, read_request_body, send_object, send_status
from ._managedfields import FieldManager
from ._patch import PatchFunction, check_patch_type, patch_object
from ._resource import ResourceSpec, require
from ._routes import ResourceRoute
from ._types import Receive, Send, metadata_of
from ._validation import (
    check_field_validation,
    format_warning,
    prune_unknown_fields,
    validate_object,
)
from ._write_options import check_write_options, field_manager_for

__all__ = [
    "PATCH_CONFLICT_RETRIES",
    "RESOURCE_VERSION_ON_CREATE",
    "check_patched",
    "create",
    "delete",
    "patch",
    "update",
    "validate",
]

PATCH_CONFLICT_RETRIES = 5

RESOURCE_VERSION_ON_CREATE = "resourceVersion should not be set on objects to be created"


def check_patched(obj: dict[str, Any], max_body_bytes: int) -> None:
    """422 when the patched *obj* nests too deeply or holds a lone surrogate; 413 when
    its JSON is larger than *max_body_bytes* (what a PUT of it would be refused for).
    """
    try:
        check_json_value(obj)
    except ValueError as exc:
        raise unprocessable_entity(
            [StatusCause(reason="FieldValueInvalid", message=str(exc), field="patch")]
        ) from None
    size = len(encode_json(obj))
    if size > max_body_bytes:
        raise request_entity_too_large(
            f"the patched object is {size} bytes, larger than the limit of {max_body_bytes}"
        )


def validate(
    res: ResourceSpec,
    obj: dict[str, Any],
    request: Request,
    verb: str,
    schema: Mapping[str, Any],
) -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
    """Check *obj* against the resource's *schema* (``fieldValidation``).

    Returns the object to store, without the fields the schema does not
    declare (pruned, as kube-apiserver prunes custom resources), and the
    ``Warning`` headers to send (``fieldValidation=Warn``); raises
    StatusError for ``Strict`` unknown fields and for wrong types.
    """
    directive = check_field_validation(request.first("fieldValidation"), verb)
    warnings = validate_object(
        obj,
        schema,
        kind=res.kind,
        version=res.version,
        group=res.group,
        directive=directive,
        verb=verb,
    )
    pruned: dict[str, Any] = prune_unknown_fields(obj, schema)
    return pruned, [(b"warning", format_warning(text).encode()) for text in warnings]


async def create(
    route: ResourceRoute,
    request: Request,
    receive: Receive,
    send: Send,
    *,
    schema: Mapping[str, Any],
    max_body_bytes: int,
    fields: FieldManager,
) -> None:
    """``POST`` to a collection: 201 with the created object."""
    res = route.resource
    storage = require(res, "create")
    check_write_options(request, "create")
    obj = check_type_meta(res, await read_object(request, receive, max_body_bytes))
    metadata = check_namespace(route, obj["metadata"])
    if metadata.get("resourceVersion"):
        raise bad_request(RESOURCE_VERSION_ON_CREATE)
    if not metadata.get("name") and not metadata.get("generateName"):
        raise invalid(
            res.kind,
            "",
            [
                StatusCause(
                    reason="FieldValueRequired",
                    message="Required value: name or generateName is required",
                    field="metadata.name",
                )
            ],
            group=res.group,
        )
    obj, warnings = validate(res, {**obj, "metadata": metadata}, request, "create", schema)
    obj = fields.update(None, obj, field_manager_for(request))
    if request.dry_run("CreateOptions"):
        await send_object(send, request, obj, res, 201, headers=warnings)
        return
    created = await storage.create(route.namespace, obj)
    await send_object(send, request, created, res, 201, headers=warnings)


async def update(
    route: ResourceRoute,
    request: Request,
    receive: Receive,
    send: Send,
    *,
    schema: Mapping[str, Any],
    max_body_bytes: int,
    fields: FieldManager,
) -> None:
    """``PUT`` to an object: 200 with the replaced object."""
    res = route.resource
    storage = require(res, "update")
    check_write_options(request, "update")
    obj = check_type_meta(res, await read_object(request, receive, max_body_bytes))
    metadata = check_name(route, obj["metadata"])
    obj, warnings = validate(res, {**obj, "metadata": metadata}, request, "update", schema)
    own_rv = metadata.get("resourceVersion")
    getter = res.storage if "get" in res.verbs and isinstance(res.storage, Getter) else None
    for attempt in range(PATCH_CONFLICT_RETRIES):
        # managedFields are computed against the object read here; a PUT
        # without a resourceVersion is pinned to it and retried on conflict.
        # (A storage that cannot be read gets the object as sent.)
        tracked = obj
        if getter is not None:
            current = await getter.get(route.namespace, route.name)  # 404 if missing
            tracked = fields.update(current, obj, field_manager_for(request))
            current_rv = metadata_of(current).get("resourceVersion")
            if not own_rv and current_rv:
                tracked["metadata"] = {**tracked["metadata"], "resourceVersion": current_rv}
        if request.dry_run("UpdateOptions"):
            if getter is None:
                await require(res, "get").get(route.namespace, route.name)  # 405 as before
            await send_object(send, request, tracked, res, 200, headers=warnings)
            return
        try:
            updated = await storage.update(route.namespace, route.name, tracked)
        except StatusError as err:
            retry = err.reason == "Conflict" and getter is not None and not own_rv
            if not retry or attempt == PATCH_CONFLICT_RETRIES - 1:
                raise
            continue
        await send_object(send, request, updated, res, 200, headers=warnings)
        return


async def patch(
    route: ResourceRoute,
    request: Request,
    receive: Receive,
    send: Send,
    *,
    schema: Mapping[str, Any],
    max_body_bytes: int,
    patch_types: Mapping[str, PatchFunction],
    fields: FieldManager,
) -> None:
    """``PATCH`` an object: get, apply the patch, update; 200 with the patched object."""
    res = route.resource
    storage = require(res, "patch")
    content_type = request.headers.get("content-type", "")
    check_patch_type(patch_types, content_type)
    check_write_options(request, "patch")
    body = await read_request_body(request, receive, max_body_bytes)
    for attempt in range(PATCH_CONFLICT_RETRIES):
        current = await storage.get(route.namespace, route.name)
        patched = patch_object(patch_types, content_type, current, body)
        check_patched(patched, max_body_bytes)
        patched = check_type_meta(res, patched)
        metadata = check_name(route, patched["metadata"])
        patched, warnings = validate(
            res, {**patched, "metadata": metadata}, request, "patch", schema
        )
        patched = fields.update(current, patched, field_manager_for(request))
        if request.dry_run("PatchOptions"):
            await send_object(send, request, patched, res, 200, headers=warnings)
            return
        try:
            updated = await storage.update(route.namespace, route.name, patched)
        except StatusError as err:
            # A patch without its own resourceVersion is retried on conflict,
            # as kube-apiserver does.
            current_rv = metadata_of(current).get("resourceVersion")
            own_rv = metadata.get("resourceVersion") != current_rv
            if err.reason != "Conflict" or own_rv or attempt == PATCH_CONFLICT_RETRIES - 1:
                raise
            continue
        await send_object(send, request, updated, res, 200, headers=warnings)
        return


async def delete(route: ResourceRoute, request: Request, send: Send) -> None:
    """``DELETE`` an object: 200 with the deleted object, or the storage's Status."""
    res = route.resource
    storage = require(res, "delete")
    if request.dry_run("DeleteOptions"):
        current = await require(res, "get").get(route.namespace, route.name)
        await send_object(send, request, current, res, 200)
        return
    deleted = await storage.delete(route.namespace, route.name)
    if isinstance(deleted, Status):
        await send_status(send, deleted)
        return
    await send_object(send, request, deleted, res, 200)
