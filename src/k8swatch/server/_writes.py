"""The write verbs on a resource path: create, update, patch and delete.

Each handler takes the write as a `WriteRequest` (``_write_request``), which
holds the steps they share. Each checks that the resource offers the verb
(405) before it reads the body (but delete, which reads its ``DeleteOptions``
body first), validates the object against the resource's schema
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
from typing import Any

from k8swatch._finalizers import check_delete_preconditions, plan_delete
from k8swatch._status import Status, StatusCause, StatusError, bad_request, invalid
from k8swatch._storage import Getter

from ._body import check_name, check_namespace, check_type_meta
from ._delete_options import parse_delete_options
from ._http import read_body, send_status
from ._patch import check_patch_type, patch_object
from ._resource import accepts_keyword, require
from ._types import metadata_of
from ._write_request import PATCH_CONFLICT_RETRIES, WriteRequest

__all__ = ["RESOURCE_VERSION_ON_CREATE", "create", "delete", "patch", "update"]

RESOURCE_VERSION_ON_CREATE = "resourceVersion should not be set on objects to be created"


async def create(write: WriteRequest) -> None:
    """``POST`` to a collection: 201 with the created object."""
    res = write.resource
    obj = await write.read_object("create")
    metadata = check_namespace(write.route, obj["metadata"])
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
    obj, warnings = write.validate(obj, "create")
    obj = write.record_fields(None, obj)
    created = await write.store_create(obj, write.dry_run("create"))
    await write.answer(created, 201, warnings)


async def update(write: WriteRequest) -> None:
    """``PUT`` to an object (or its ``status``): 200 with the replaced object."""
    route = write.route
    res = route.resource
    obj = await write.read_object("update")
    metadata = check_name(route, obj["metadata"])
    obj = {**obj, "metadata": metadata}
    dry_run = write.dry_run("update")
    own_rv = bool(metadata.get("resourceVersion"))
    readable = "get" in res.verbs and isinstance(res.storage, Getter)
    for attempt in range(PATCH_CONFLICT_RETRIES):
        current: dict[str, Any] | None = None
        if readable or route.subresource or res.status_subresource:
            # What the write may change, and who owns which field (managedFields),
            # depend on the stored object.
            current = await require(res, "get").get(route.namespace, route.name)
            target = write.for_subresource(current, obj)
            if not own_rv:
                # Store over exactly what was read: a concurrent write retries.
                target["metadata"] = {
                    **metadata_of(target),
                    "resourceVersion": metadata_of(current).get("resourceVersion", ""),
                }
        else:
            target = obj  # a storage that cannot be read gets the object as sent
        target, warnings = write.validate(target, "update")
        if current is not None:
            target = write.record_fields(current, target)
        try:
            updated = await write.store_update(target, dry_run)
        except StatusError as err:
            retry = current is not None and not own_rv and attempt < PATCH_CONFLICT_RETRIES - 1
            if err.reason != "Conflict" or not retry:
                raise
            continue
        if updated is None:  # a dry run the storage cannot make
            await require(res, "get").get(route.namespace, route.name)  # 404 if missing
            updated = target
        await write.answer(updated, 200, warnings)
        return


async def patch(write: WriteRequest) -> None:
    """``PATCH`` an object: get, apply the patch, update; 200 with the patched object."""
    route = write.route
    res = route.resource
    storage = require(res, "patch")
    content_type = write.request.headers.get("content-type", "")
    check_patch_type(write.patch_types, content_type)
    body = await write.read_body("patch")
    for attempt in range(PATCH_CONFLICT_RETRIES):
        current = await storage.get(route.namespace, route.name)
        patched = patch_object(write.patch_types, content_type, current, body)
        write.check_patched(patched)
        patched = check_type_meta(res, patched)
        metadata = check_name(route, patched["metadata"])
        patched = write.for_subresource(current, {**patched, "metadata": metadata})
        patched, warnings = write.validate(patched, "patch")
        patched = write.record_fields(current, patched)
        try:
            updated = await write.store_update(patched, write.dry_run("patch"))
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
        await write.answer(updated, 200, warnings)
        return


async def delete(write: WriteRequest) -> None:
    """``DELETE`` an object: 200 with the deleted object, the object marked for
    deletion (it has finalizers), or the storage's Status.

    The ``DeleteOptions`` (body, else query) are validated; preconditions and
    ``dryRun`` go to the storage when its ``delete`` takes ``preconditions`` /
    ``dry_run``, else the server checks them against a ``get`` of the object.
    """
    route = write.route
    res = route.resource
    # The body is read (413 past the limit) before the verb is checked (405).
    body = await read_body(write.receive, write.max_body_bytes)
    storage = require(res, "delete")
    options = parse_delete_options(write.request, body)
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
        await send_status(write.send, deleted)
        return
    await write.answer(deleted, 200)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
