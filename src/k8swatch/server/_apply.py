"""Server-side apply: ``PATCH`` with ``Content-Type: application/apply-patch+yaml``.

The body is the applied configuration, JSON (what kubectl and lightkube send)
or YAML. JSON goes through the strict decoder; YAML needs PyYAML (the
``k8swatch[apply]`` extra, also in ``serve``) and is held to the same limits:
UTF-8, nesting depth, no anchors or aliases (a small body must not expand
into a large object), no values JSON cannot hold.

The field manager (``_managedfields``) merges the configuration into the live
object, or creates the object when there is none (201), and records who owns
what; conflicts answer 409.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any, cast

from k8swatch._status import StatusCause, StatusError, bad_request, unprocessable_entity

from ._body import check_name
from ._decode import MAX_NESTING_DEPTH, check_json_value, decode_json
from ._http import Request, parse_bool
from ._jsontypes import is_array, is_object
from ._managedfields import FieldManager
from ._resource import ResourceSpec, require
from ._routes import ResourceRoute
from ._structured import StructureError
from ._types import metadata_of
from ._write_request import PATCH_CONFLICT_RETRIES, WriteRequest

__all__ = [
    "APPLY_PATCH",
    "apply_config",
    "check_config",
    "decode_apply_body",
    "is_apply",
    "serve_apply",
]

APPLY_PATCH = "application/apply-patch+yaml"
"""The content type of a server-side apply ``PATCH``."""


def is_apply(request: Request) -> bool:
    """Whether *request* is a server-side apply (its content type, parameters aside)."""
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == APPLY_PATCH


# -- the body --------------------------------------------------------------------------


def decode_apply_body(body: bytes) -> dict[str, Any]:
    """The applied configuration in *body* (JSON, or YAML when it is not JSON).

    Raises:
        StatusError: 400 BadRequest ``error decoding YAML: ...`` for a body
            that decodes to no object or breaks the decoder's limits.
    """
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        value = decode_json(body, "error decoding YAML")
    else:
        value = _decode_yaml(body)
    if not is_object(value):
        raise bad_request("error decoding YAML: the applied configuration must be an object")
    return value


def _decode_yaml(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"error decoding YAML: invalid UTF-8 at byte offset {exc.start}"
        ) from None
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        raise bad_request(
            "error decoding YAML: this server reads apply bodies as JSON only "
            "(YAML needs PyYAML: install k8swatch[apply])"
        ) from None
    loader = _loader(yaml)
    try:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise bad_request("error decoding YAML: anchors and aliases are not allowed")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_NESTING_DEPTH:
                    raise bad_request(
                        "error decoding YAML: arrays and objects nested more than "
                        f"{MAX_NESTING_DEPTH} levels deep"
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        documents = list(yaml.load_all(text, Loader=loader))
    except StatusError:
        raise
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise bad_request(f"error decoding YAML: {_first_line(exc)}") from None
    if len(documents) > 1:
        raise bad_request("error decoding YAML: the body holds more than one document")
    value = _jsonable(documents[0] if documents else None)
    try:
        check_json_value([value])
    except ValueError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None
    return value


_LOADERS: dict[int, Any] = {}


def _loader(yaml: Any) -> Any:
    """A safe loader that keeps timestamps as strings (as Kubernetes' YAML→JSON does)."""
    found = _LOADERS.get(id(yaml))
    if found is not None:
        return found
    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    resolvers = {
        first: [r for r in rules if r[0] != "tag:yaml.org,2002:timestamp"]
        for first, rules in base.yaml_implicit_resolvers.items()
    }
    loader = type("_ApplyLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    _LOADERS[id(yaml)] = loader
    return loader


def _jsonable(value: Any) -> Any:
    if is_object(value):
        out: dict[str, Any] = {}
        for key, item in cast("dict[Any, Any]", value).items():
            out[_key(key)] = _jsonable(item)
        return out
    if is_array(value):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise bad_request(f"error decoding YAML: a {type(value).__name__} value has no JSON form")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    raise bad_request("error decoding YAML: object keys must be strings or scalars")


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"arrays and objects nested more than {MAX_NESTING_DEPTH} levels deep"
    text = " ".join(str(exc).split())
    return text[:300]


# -- the merge --------------------------------------------------------------------------


def _gvk(config: Mapping[str, Any]) -> str:
    # apimachinery's GroupVersionKind.String(): "group/version, Kind=kind".
    api_version = config.get("apiVersion")
    kind = config.get("kind")
    text = api_version if isinstance(api_version, str) else ""
    group, _, version = text.rpartition("/")
    return f"{group}/{version}, Kind={kind if isinstance(kind, str) else ''}"


def check_config(res: ResourceSpec, route: ResourceRoute, config: dict[str, Any]) -> dict[str, Any]:
    """*config* with the URL's name and namespace, if it may be applied to *route*.

    Raises:
        StatusError: 400 for a configuration of another kind or version, with
            ``metadata.managedFields``, or naming another object.
    """
    if config.get("apiVersion") != res.api_version or config.get("kind") != res.kind:
        raise bad_request(f"invalid object type: {_gvk(config)}")
    metadata: object = config.get("metadata")
    if metadata is None:
        metadata = {}
    if not is_object(metadata):
        raise bad_request("metadata must be a JSON object")
    meta: dict[str, Any] = metadata
    if meta.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    return {**config, "metadata": check_name(route, meta)}


def apply_config(
    manager: FieldManager,
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    field_manager: str,
    force: bool,
    subresource: str = "",
) -> dict[str, Any]:
    """The object after *field_manager* applies *config* to *live* (None: create it).

    Raises:
        StatusError: 409 for conflicts; 422 for an associative list item
            without its keys, or twice.
    """
    try:
        return manager.apply(live, config, field_manager, force=force, subresource=subresource)
    except StructureError as exc:
        raise unprocessable_entity(
            [StatusCause(reason="FieldValueInvalid", message=str(exc), field="patch")]
        ) from None


def _scoped(route: ResourceRoute, config: dict[str, Any]) -> dict[str, Any]:
    """The part of *config* a write to *route* may change (kube-apiserver's reset fields).

    On ``.../status``: only ``status``; on the object of a resource with the
    status subresource: all but ``status``. The fields left out are neither
    applied nor owned.
    """
    if route.subresource == "status":
        scoped = {k: v for k, v in config.items() if k in ("apiVersion", "kind", "status")}
        metadata = metadata_of(config)
        scoped["metadata"] = {k: v for k, v in metadata.items() if k in ("name", "namespace")}
        return scoped
    if route.resource.status_subresource:
        return {k: v for k, v in config.items() if k != "status"}
    return config


async def serve_apply(write: WriteRequest) -> None:
    """Server-side apply: merge the applied configuration, or create the object.

    200 with the object (no write when nothing changed, managedFields
    included), 201 when the apply created it (not through ``.../status``:
    404 there); 409 for conflicts without ``force``. ``dryRun=All`` answers
    what the storage would store when its write methods take ``dry_run``,
    else the object as the server would send it to the storage.
    """
    route = write.route
    res = route.resource
    body = await write.read_body("patch", apply=True)
    force = parse_bool(write.request.first("force"))
    config = _scoped(route, check_config(res, route, decode_apply_body(body)))
    config, warnings = write.validate(config, "patch")
    config_rv = metadata_of(config).get("resourceVersion")
    dry_run = write.dry_run("patch")
    for attempt in range(PATCH_CONFLICT_RETRIES):
        live: dict[str, Any] | None
        try:
            live = await require(res, "get").get(route.namespace, route.name)
        except StatusError as err:
            if err.code != 404 or route.subresource:
                raise
            live = None
        applied = apply_config(
            write.fields,
            live,
            config,
            field_manager=write.field_manager,
            force=force,
            subresource=route.subresource,
        )
        if live is not None:
            applied = write.for_subresource(live, applied)
        write.check_patched(applied)
        if live is not None and applied == live:
            await write.answer(live, 200, warnings)
            return
        try:
            if live is None:
                result, code = await write.store_create(applied, dry_run), 201
            else:
                updated = await write.store_update(applied, dry_run)
                result, code = (applied if updated is None else updated), 200
        except StatusError as err:
            # Someone else wrote first (created it, or changed it): apply again
            # over what is there now, as kube-apiserver retries.
            retry = err.reason == "AlreadyExists" or (err.reason == "Conflict" and not config_rv)
            if not retry or attempt == PATCH_CONFLICT_RETRIES - 1:
                raise
            continue
        await write.answer(result, code, warnings)
        return
