"""One write to a resource path, and the steps every write verb shares.

The app builds a `WriteRequest` per write (``POST``, ``PUT``, ``PATCH``,
``DELETE``) and hands it to the verb's handler (``_writes``, ``_apply``).
It carries the request and what the server writes with (the resource's
schema and field manager, the body size limit, the patch functions), and
the steps the handlers share: check the write options and read the body,
validate the object, store it (or make a dry run of it) and answer with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from k8swatch._json import copy_json
from k8swatch._status import StatusCause, request_entity_too_large, unprocessable_entity
from k8swatch._wire import encode_json

from ._body import check_type_meta, read_object
from ._decode import check_json_value
from ._http import Request, read_request_body, send_object
from ._managedfields import FieldManager
from ._patch import PatchFunction
from ._resource import ResourceSpec, accepts_keyword, require
from ._routes import ResourceRoute
from ._types import Receive, Send, metadata_of
from ._validation import (
    check_field_validation,
    format_warning,
    prune_unknown_fields,
    validate_object,
)
from ._write_options import check_write_options, field_manager_for, options_kind

__all__ = ["PATCH_CONFLICT_RETRIES", "Headers", "WriteRequest"]

PATCH_CONFLICT_RETRIES = 5
"""How many times a write that read the stored object tries again on a conflict."""

Headers = list[tuple[bytes, bytes]]
"""Response headers: the ``Warning`` headers a write answers with."""


@attrs.frozen
class WriteRequest:
    """A write to *route*: the request, its ASGI channels and what the server writes with.

    Attributes:
        route: The resource path written to.
        request: The HTTP request.
        receive: The ASGI ``receive`` callable (the body).
        send: The ASGI ``send`` callable (the answer).
        schema: The resource's object schema (``fieldValidation``, pruning).
        fields: The resource's field manager (``metadata.managedFields``).
        max_body_bytes: The largest body, or patched object, accepted (else 413).
        patch_types: The ``PATCH`` content types served, and their functions.
    """

    route: ResourceRoute
    request: Request
    receive: Receive
    send: Send
    schema: Mapping[str, Any]
    fields: FieldManager
    max_body_bytes: int
    patch_types: Mapping[str, PatchFunction]

    @property
    def resource(self) -> ResourceSpec:
        """The resource written to."""
        return self.route.resource

    @property
    def field_manager(self) -> str:
        """Who writes: ``fieldManager``, else the ``User-Agent``'s product name."""
        return field_manager_for(self.request)

    # -- the prelude ----------------------------------------------------------------

    async def read_body(self, verb: str, *, apply: bool = False) -> bytes:
        """The body, once the *verb*'s write options are valid.

        Raises:
            StatusError: 422 for bad write options (`check_write_options`), then
                413 for a body larger than ``max_body_bytes``.
        """
        check_write_options(self.request, verb, apply=apply)
        return await read_request_body(self.request, self.receive, self.max_body_bytes)

    async def read_object(self, verb: Literal["create", "update"]) -> dict[str, Any]:
        """The body as an object of the resource (its type meta and a metadata dict).

        Raises:
            StatusError: 405 when the resource does not offer *verb*; 422 for bad
                write options; 413 for a body past ``max_body_bytes``; 400 for a
                body that is not a JSON object, or that names another type.
        """
        require(self.resource, verb)
        check_write_options(self.request, verb)
        body = await read_object(self.request, self.receive, self.max_body_bytes)
        return check_type_meta(self.resource, body)

    def dry_run(self, verb: str) -> bool:
        """Whether ``dryRun=All`` was asked for (422 for any other value)."""
        return self.request.dry_run(options_kind(verb))

    # -- the object -----------------------------------------------------------------

    def validate(self, obj: dict[str, Any], verb: str) -> tuple[dict[str, Any], Headers]:
        """Check *obj* against the resource's schema (``fieldValidation``).

        Returns the object to store, without the fields the schema does not
        declare (pruned, as kube-apiserver prunes custom resources), and the
        ``Warning`` headers to send (``fieldValidation=Warn``); raises
        StatusError for ``Strict`` unknown fields and for wrong types.
        """
        res = self.resource
        directive = check_field_validation(self.request.first("fieldValidation"), verb)
        warnings = validate_object(
            obj,
            self.schema,
            kind=res.kind,
            version=res.version,
            group=res.group,
            directive=directive,
            verb=verb,
        )
        pruned: dict[str, Any] = prune_unknown_fields(obj, self.schema)
        return pruned, [(b"warning", format_warning(text).encode()) for text in warnings]

    def check_patched(self, obj: dict[str, Any]) -> None:
        """422 when the patched *obj* nests too deeply or holds a lone surrogate; 413
        when its JSON is larger than ``max_body_bytes`` (what a PUT of it would be
        refused for).
        """
        try:
            check_json_value(obj)
        except ValueError as exc:
            raise unprocessable_entity(
                [StatusCause(reason="FieldValueInvalid", message=str(exc), field="patch")]
            ) from None
        size = len(encode_json(obj))
        if size > self.max_body_bytes:
            raise request_entity_too_large(
                f"the patched object is {size} bytes, larger than the limit of "
                f"{self.max_body_bytes}"
            )

    def for_subresource(self, current: Mapping[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        """*obj* as this write may store it, given the stored object *current*.

        On ``.../status``: *current* with *obj*'s ``status`` (and
        ``metadata.managedFields`` and ``resourceVersion``), nothing else. On the
        object of a resource with the status subresource: *obj* with *current*'s
        ``status``. Otherwise *obj* unchanged.
        """
        if self.route.subresource == "status":
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
        if self.resource.status_subresource:
            out = dict(obj)
            out.pop("status", None)
            if "status" in current:
                out["status"] = copy_json(current["status"])
            return out
        return obj

    def record_fields(
        self, current: Mapping[str, Any] | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        """*obj* with the ``managedFields`` of this write over *current* (None: a create)."""
        return self.fields.update(
            current, obj, self.field_manager, subresource=self.route.subresource
        )

    # -- storing and answering ------------------------------------------------------

    async def store_create(self, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        """``storage.create``; with *dry_run*, only when the storage takes ``dry_run``
        (else *obj* as it is).
        """
        route = self.route
        storage = require(route.resource, "create")
        if not dry_run:
            return await storage.create(route.namespace, obj)
        if accepts_keyword(storage, "create", "dry_run"):
            method: Any = storage.create
            created: dict[str, Any] = await method(route.namespace, obj, dry_run=True)
            return created
        return obj

    async def store_update(self, obj: dict[str, Any], dry_run: bool) -> dict[str, Any] | None:
        """``storage.update``; with *dry_run*, only when the storage takes ``dry_run``
        (else None).
        """
        route = self.route
        storage = require(route.resource, "update")
        if not dry_run:
            return await storage.update(route.namespace, route.name, obj)
        if accepts_keyword(storage, "update", "dry_run"):
            method: Any = storage.update
            updated: dict[str, Any] = await method(route.namespace, route.name, obj, dry_run=True)
            return updated
        return None

    async def answer(
        self, obj: dict[str, Any], code: int, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        """Send *obj* with the resource's type meta (or as a Table when asked for one)."""
        await send_object(self.send, self.request, obj, self.resource, code, headers=headers)
