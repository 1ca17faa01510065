"""The write verbs on a resource path: create, update, patch and delete.

Each handler checks that the resource offers the verb (405) before it reads
the body, validates the object against the resource's schema
(``fieldValidation``) and honours ``dryRun=All``: a storage whose write
method takes ``dry_run`` answers what it would store; for any other, the
handler answers without calling the storage's write methods.

With the status subresource (``ResourceSpec.status_subresource``), writes to
the object keep its stored ``status`` and writes to ``.../status`` change
only ``status``, as kube-apiserver's custom-resource strategies do.

Every write records who set which fields in ``metadata.managedFields``
(``_managedfields``): the manager is the ``fieldManager`` parameter, else the
``User-Agent``'s product. Server-side apply has its own handler (``_apply``).

Bodies go through the strict decoder (``_decode``); a patched object is held
to the same rules (nesting depth, UTF-8 text) and to the request size limit,
so a small patch cannot store what no request could.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from k8swatch._finalizers import check_delete_preconditions, plan_delete
from k8swatch._json import copy_json
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
from ._delete_options import parse_delete_options
from ._http import Request, read_request_body, send_object, send_status
from ._managedfields import FieldManager
from ._patch import PatchFunction, check_patch_type, patch_object
from ._resource import ResourceSpec, accepts_keyword, require
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
    "for_subresource",
    "store_update",
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


def for_subresource(
    route: ResourceRoute, current: Mapping[str, Any], obj: dict[str, Any]
) -> dict[str, Any]:
    """*obj* as a write to *route* may store it, given the stored object *current*.

    On ``.../status``: *current* with *obj*'s ``status`` (and
    ``metadata.managedFields`` and ``resourceVersion``), nothing else. On the
    object of a resource with the status subresource: *obj* with *current*'s
    ``status``. Otherwise *obj* unchanged.
    """
    if route.subresource == "status":
        out = copy_json(dict(current))
        metadata = dict(metadata_of(out))
        new_meta = metadata_of(obj)
        for field in ("managedFields", "resourceVersion"):
            if field in new_meta:
                metadata[field] = new_meta[field]
            else:
                metadata.pop(field, None)
        out["metadata"] = metadata
        out.pop("status", None)
        if "status" in obj:
            out["status"] = obj["status"]
        return out
    if route.resource.status_subresource:
        out = dict(obj)
        out.pop("status", None)
        if "status" in current:
            out["status"] = copy_json(current["status"])
        return out
    return obj


async def store_update(
    route: ResourceRoute, obj: dict[str, Any], dry_run: bool
) -> dict[str, Any] | None:
    """``storage.update``; with *dry_run*, only when the storage takes ``dry_run`` (else None)."""
    storage = require(route.resource, "update")
    if not dry_run:
        return await storage.update(route.namespace, route.name, obj)
    if accepts_keyword(storage, "update", "dry_run"):
        method: Any = storage.update
        updated: dict[str, Any] = await method(route.namespace, route.name, obj, dry_run=True)
        return updated
    return None


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
    obj = {**obj, "metadata": metadata}
    if res.status_subresource:
        obj.pop("status", None)  # a create starts without status
    obj, warnings = validate(res, obj, request, "create", schema)
    obj = fields.update(None, obj, field_manager_for(request))
    if request.dry_run("CreateOptions"):
        if accepts_keyword(storage, "create", "dry_run"):
            method: Any = storage.create
            obj = await method(route.namespace, obj, dry_run=True)
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
    """``PUT`` to an object (or its ``status``): 200 with the replaced object."""
    res = route.resource
    require(res, "update")
    check_write_options(request, "update")
    obj = check_type_meta(res, await read_object(request, receive, max_body_bytes))
    metadata = check_name(route, obj["metadata"])
    obj = {**obj, "metadata": metadata}
    dry_run = request.dry_run("UpdateOptions")
    own_rv = bool(metadata.get("resourceVersion"))
    readable = "get" in res.verbs and isinstance(res.storage, Getter)
    for attempt in range(PATCH_CONFLICT_RETRIES):
        current: dict[str, Any] | None = None
        if readable or route.subresource or res.status_subresource:
            # What the write may change, and who owns which field (managedFields),
            # depend on the stored object.
            current = await require(res, "get").get(route.namespace, route.name)
            target = for_subresource(route, current, obj)
            if not own_rv:
                # Store over exactly what was read: a concurrent write retries.
                target["metadata"] = {
                    **metadata_of(target),
                    "resourceVersion": metadata_of(current).get("resourceVersion", ""),
                }
        else:
            target = obj  # a storage that cannot be read gets the object as sent
        target, warnings = validate(res, target, request, "update", schema)
        if current is not None:
            manager = field_manager_for(request)
            target = fields.update(current, target, manager, subresource=route.subresource)
        try:
            updated = await store_update(route, target, dry_run)
        except StatusError as err:
            retry = current is not None and not own_rv and attempt < PATCH_CONFLICT_RETRIES - 1
            if err.reason != "Conflict" or not retry:
                raise
            continue
        if updated is None:  # a dry run the storage cannot make
            await require(res, "get").get(route.namespace, route.name)  # 404 if missing
            updated = target
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
        patched = for_subresource(route, current, {**patched, "metadata": metadata})
        patched, warnings = validate(res, patched, request, "patch", schema)
        manager = field_manager_for(request)
        patched = fields.update(current, patched, manager, subresource=route.subresource)
        try:
            updated = await store_update(route, patched, request.dry_run("PatchOptions"))
            if updated is None:  # a dry run the storage cannot make
                updated = patched
        except StatusError as err:
            # A patch without its own resourceVersion is retried on conflict,
            # as kube-apiserver does.
            current_rv = metadata_of(current).get("resourceVersion")
            own_rv = metadata_of(patched).get("resourceVersion") != current_rv
            if err.reason != "Conflict" or own_rv or attempt == PATCH_CONFLICT_RETRIES - 1:
                raise
            continue
        await send_object(send, request, updated, res, 200, headers=warnings)
        return


async def delete(route: ResourceRoute, request: Request, body: bytes, send: Send) -> None:
    """``DELETE`` an object: 200 with the deleted object, the object marked for
    deletion (it has finalizers), or the storage's Status.

    The ``DeleteOptions`` (body, else query) are validated; preconditions and
    ``dryRun`` go to the storage when its ``delete`` takes ``preconditions`` /
    ``dry_run``, else the server checks them against a ``get`` of the object.
    """
    res = route.resource
    storage = require(res, "delete")
    options = parse_delete_options(request, body)
    method: Any = storage.delete
    kwargs: dict[str, Any] = {}
    checked_here = False
    if options.preconditions:
        if accepts_keyword(storage, "delete", "preconditions"):
            kwargs["preconditions"] = options.preconditions
        else:
            current = await require(res, "get").get(route.namespace, route.name)
            check_delete_preconditions(
                current, options.preconditions, kind=res.kind, group=res.group
            )
            checked_here = True
    if options.dry_run:
        if accepts_keyword(storage, "delete", "dry_run"):
            deleted = await method(route.namespace, route.name, dry_run=True, **kwargs)
        else:
            current = await require(res, "get").get(route.namespace, route.name)
            if not checked_here:
                check_delete_preconditions(
                    current, options.preconditions, kind=res.kind, group=res.group
                )
            plan = plan_delete(current, now=_now())
            deleted = current if plan.object is None else plan.object
    else:
        deleted = await method(route.namespace, route.name, **kwargs)
    if isinstance(deleted, Status):
        await send_status(send, deleted)
        return
    await send_object(send, request, deleted, res, 200)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
