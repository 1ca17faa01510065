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

from k8swatch._status import StatusCause, StatusError, bad_request, invalid, unprocessable_entity

from ._body import check_name
from ._decode import MAX_NESTING_DEPTH, check_json_value, decode_json
from ._http import Request
from ._jsontypes import is_array, is_object
from ._managedfields import FieldManager, manager_from_user_agent
from ._resource import ResourceSpec
from ._routes import ResourceRoute
from ._structured import StructureError

__all__ = [
    "APPLY_PATCH",
    "FIELD_MANAGER_MAX_LENGTH",
    "apply_config",
    "check_config",
    "check_write_options",
    "decode_apply_body",
    "field_manager_for",
]

APPLY_PATCH = "application/apply-patch+yaml"
"""The content type of a server-side apply ``PATCH``."""

FIELD_MANAGER_MAX_LENGTH = 128
"""The longest ``fieldManager`` kube-apiserver accepts."""

_OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


def check_write_options(request: Request, verb: str, *, apply: bool = False) -> None:
    """Check ``fieldManager`` and ``force`` as kube-apiserver validates its write options.

    Raises:
        StatusError: 422 Invalid on ``<Verb>Options.meta.k8s.io``: a
            ``fieldManager`` longer than 128 characters or with unprintable
            ones; no ``fieldManager`` on an apply; ``force`` on any other patch.
    """
    manager = request.first("fieldManager") or ""
    causes: list[StatusCause] = []
    if verb == "patch" and not apply and request.first("force") is not None:
        causes.append(
            StatusCause(
                reason="FieldValueForbidden",
                message="Forbidden: may not be specified for non-apply patch",
                field="force",
            )
        )
    if apply and not manager:
        causes.append(
            StatusCause(
                reason="FieldValueRequired",
                message="Required value: is required for apply patch",
                field="fieldManager",
            )
        )
    if len(manager) > FIELD_MANAGER_MAX_LENGTH:
        causes.append(
            StatusCause(
                reason="FieldValueTooLong",
                message=f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes",
                field="fieldManager",
            )
        )
    for position, char in enumerate(manager):
        if not char.isprintable():
            causes.append(
                StatusCause(
                    reason="FieldValueInvalid",
                    message=(
                        f"Invalid value: {json.dumps(manager)}: invalid characters at "
                        f"position {position}"
                    ),
                    field="fieldManager",
                )
            )
            break
    if causes:
        raise invalid(_OPTIONS_KIND.get(verb, "PatchOptions"), "", causes, group="meta.k8s.io")


def field_manager_for(request: Request) -> str:
    """The manager of a write: ``fieldManager``, else the ``User-Agent``'s product name."""
    return request.first("fieldManager") or manager_from_user_agent(
        request.headers.get("user-agent", "")
    )


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
) -> dict[str, Any]:
    """The object after *field_manager* applies *config* to *live* (None: create it).

    Raises:
        StatusError: 409 for conflicts; 422 for an associative list item
            without its keys, or twice.
    """
    try:
        return manager.apply(live, config, field_manager, force=force)
    except StructureError as exc:
        raise unprocessable_entity(
            [StatusCause(reason="FieldValueInvalid", message=str(exc), field="patch")]
        ) from None
