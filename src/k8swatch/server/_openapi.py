"""OpenAPI v2 and v3 documents built from resource specs, served like kube-apiserver.

What kubectl 1.37 needs (see ``clients.md``):

- ``GET /openapi/v3`` — an index ``{"paths": {"apis/<g>/<v>": {"serverRelativeURL":
  "/openapi/v3/apis/<g>/<v>?hash=<etag>"}}}``;
- ``GET /openapi/v3/apis/<g>/<v>`` — the group-version document: a schema per kind
  carrying ``x-kubernetes-group-version-kind`` and field ``description`` s (what
  ``kubectl explain`` prints), and the path operations, each tagged with its GVK.
  The PATCH operation offers a ``fieldValidation`` parameter, so kubectl sends
  ``fieldValidation=Strict`` and leaves validation to the server; its request
  body does not list ``application/strategic-merge-patch+json``, so ``kubectl
  apply`` sends JSON merge patches.
- ``GET /openapi/v2`` — the same as Swagger 2.0: JSON, or protobuf when asked
  for it as kubectl does (``kubectl explain --output plaintext-openapiv2``).

Every document has a strong ETag (the SHA-512 of its bytes, upper-case hex, as
kube-openapi computes it); ``If-None-Match`` answers 304 and a ``?hash=`` that
matches makes the response immutable for caches.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from email.utils import formatdate
from typing import Any, Protocol

import attrs
from typing_extensions import final

from k8swatch._status import StatusError, method_not_allowed, not_acceptable, path_not_found
from k8swatch.server._jsontypes import is_array, is_mapping, is_object
from k8swatch.server._openapi_pb import PROTOBUF_V2_CONTENT_TYPE, encode_openapi_v2

__all__ = [
    "OpenAPIResponse",
    "OpenAPIService",
    "OpenAPIResource",
    "build_openapi_v2",
    "build_openapi_v3",
    "build_openapi_v3_index",
    "definition_name",
    "object_schema",
]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_JSON = "application/json"
_V2_PROTOBUF_KEY = "/openapi/v2 (protobuf)"


class OpenAPIResource(Protocol):
    """What the OpenAPI builders read from a resource spec (``ResourceSpec`` has it)."""

    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def plural(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def namespaced(self) -> bool: ...


def _schema_of(resource: OpenAPIResource) -> Mapping[str, Any] | None:
    schema = getattr(resource, "schema", None)
    return schema if is_mapping(schema) else None


def _verbs_of(resource: OpenAPIResource) -> frozenset[str]:
    verbs = getattr(resource, "verbs", None)
    if not verbs:
        return frozenset({"get", "list", "create", "update", "patch", "delete", "watch"})
    return frozenset(verbs)


def _group_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def definition_name(group: str, version: str, kind: str) -> str:
    """The schema name kube-apiserver uses for a kind: reversed group, version, kind.

    ``aggregation.coder.com``/``v1alpha1``/``CoderWorkspace`` →
    ``com.coder.aggregation.v1alpha1.CoderWorkspace``; the core group gives
    ``io.k8s.api.core.v1.<Kind>``.
    """
    if not group:
        return f"io.k8s.api.core.{version}.{kind}"
    return ".".join([*reversed(group.split(".")), version, kind])


# --------------------------------------------------------------------------- meta schemas

_OBJECT_META_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "name": (
        {"type": "string"},
        "Name must be unique within a namespace. Required when creating resources; "
        "cannot be updated.",
    ),
    "generateName": (
        {"type": "string"},
        "Optional prefix the server uses to generate a unique name when name is empty.",
    ),
    "namespace": (
        {"type": "string"},
        "Namespace defines the space within which the name must be unique.",
    ),
    "uid": (
        {"type": "string"},
        "UID is the unique identifier of this object, set by the server; read-only.",
    ),
    "resourceVersion": (
        {"type": "string"},
        "An opaque value that represents the internal version of this object, used "
        "for optimistic concurrency, change detection and watches; read-only.",
    ),
    "generation": (
        {"type": "integer", "format": "int64"},
        "A sequence number representing a specific generation of the desired state.",
    ),
    "creationTimestamp": (
        {"type": "string", "format": "date-time"},
        "The server time when this object was created (RFC 3339, UTC); read-only.",
    ),
    "deletionTimestamp": (
        {"type": "string", "format": "date-time"},
        "The time after which this resource will be deleted; read-only.",
    ),
    "deletionGracePeriodSeconds": (
        {"type": "integer", "format": "int64"},
        "Seconds allowed for this object to gracefully terminate; read-only.",
    ),
    "labels": (
        {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
        "Map of string keys and values used to organize and select objects.",
    ),
    "annotations": (
        {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
        "Unstructured key value map stored with a resource by external tools.",
    ),
    "finalizers": (
        {"type": "array", "items": {"type": "string", "default": ""}},
        "Must be empty before the object is deleted from the registry.",
    ),
    "ownerReferences": (
        {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "Objects depended on by this object.",
    ),
    "managedFields": (
        {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "Maps workflow-id and version to the set of fields managed by that workflow.",
    ),
    "selfLink": ({"type": "string"}, "Deprecated; not set by this server."),
}


def object_meta_schema() -> dict[str, Any]:
    """The ``ObjectMeta`` schema (field types and short descriptions)."""
    return {
        "description": (
            "ObjectMeta is metadata that all persisted resources must have, which "
            "includes all objects users must create."
        ),
        "type": "object",
        "properties": {
            name: {**schema, "description": text}
            for name, (schema, text) in _OBJECT_META_FIELDS.items()
        },
    }


def _list_meta_schema() -> dict[str, Any]:
    return {
        "description": "ListMeta describes metadata that synthetic resources must have.",
        "type": "object",
        "properties": {
            "resourceVersion": {
                "type": "string",
                "description": "The version of the list; start a watch from it.",
            },
            "continue": {
                "type": "string",
                "description": "Set when more items are available; pass it back to continue.",
            },
            "remainingItemCount": {
                "type": "integer",
                "format": "int64",
                "description": "Number of items after this page, when known.",
            },
            "selfLink": {"type": "string", "description": "Deprecated; not set."},
        },
    }


def _status_schema() -> dict[str, Any]:
    return {
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "Always v1."},
            "kind": {"type": "string", "description": "Always Status."},
            "metadata": {"type": "object", "description": "Standard list metadata."},
            "status": {"type": "string", "description": "Success or Failure."},
            "message": {"type": "string", "description": "Human-readable description."},
            "reason": {"type": "string", "description": "Machine-readable reason."},
            "details": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "Extended data associated with the reason.",
            },
            "code": {"type": "integer", "format": "int32", "description": "HTTP code."},
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
    }


def _watch_event_schema() -> dict[str, Any]:
    return {
        "description": "Event represents a single event to a watched resource.",
        "type": "object",
        "required": ["type", "object"],
        "properties": {
            "type": {
                "type": "string",
                "description": "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.",
            },
            "object": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "The object (or a Status for ERROR).",
            },
        },
    }


def _delete_options_schema() -> dict[str, Any]:
    return {
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "dryRun": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "description": "When present, modifications are not persisted.",
            },
            "gracePeriodSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "Seconds before the object should be deleted.",
            },
            "propagationPolicy": {
                "type": "string",
                "description": "Orphan, Background or Foreground.",
            },
            "preconditions": {
                "type": "object",
                "properties": {
                    "resourceVersion": {"type": "string", "description": "Target RV."},
                    "uid": {"type": "string", "description": "Target UID."},
                },
                "description": "Must be fulfilled before a deletion is carried out.",
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": "meta.k8s.io", "kind": "DeleteOptions", "version": "v1"}
        ],
    }


def _permissive_schema() -> dict[str, Any]:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def object_schema(resource: OpenAPIResource) -> dict[str, Any]:
    """The full schema of *resource*'s kind, as served in the OpenAPI documents.

    The resource's own ``schema`` (an OpenAPI v3 schema of the whole object, as
    a CRD's ``openAPIV3Schema``) gets ``apiVersion``, ``kind`` and ``metadata``
    filled in when missing; a resource without one gets a permissive schema
    (``x-kubernetes-preserve-unknown-fields``) with just those three fields.
    Metadata is inlined (``ObjectMeta``), so the result can validate objects on
    its own.
    """
    declared = _schema_of(resource)
    schema = copy.deepcopy(dict(declared)) if declared is not None else _permissive_schema()
    schema.setdefault("type", "object")
    schema.setdefault(
        "description",
        f"{resource.kind} is a {resource.plural} resource of {resource.group or 'core'}"
        f"/{resource.version}.",
    )
    props = dict(schema.get("properties") or {})
    props.setdefault(
        "apiVersion",
        {
            "type": "string",
            "description": (
                "APIVersion defines the versioned schema of this representation of an object."
            ),
        },
    )
    props.setdefault(
        "kind",
        {"type": "string", "description": "Kind is a string value representing the REST resource."},
    )
    meta = object_meta_schema()
    meta["description"] = (
        "Standard object's metadata. More info: https://git.k8s.io/community/contributors/"
        "devel/sig-architecture/api-conventions.md#metadata"
    )
    props.setdefault("metadata", meta)
    schema["properties"] = props
    return schema


# --------------------------------------------------------------------------- parameters

_Param = tuple[str, str, dict[str, Any], str]  # name, in, schema, description

_PRETTY: _Param = (
    "pretty",
    "query",
    {"type": "string"},
    "If 'true', then the output is pretty printed.",
)
_DRY_RUN: _Param = (
    "dryRun",
    "query",
    {"type": "string"},
    "When present, indicates that modifications should not be persisted. Valid value: All.",
)
_FIELD_MANAGER: _Param = (
    "fieldManager",
    "query",
    {"type": "string"},
    "A name associated with the actor or entity that is making these changes.",
)
_FIELD_VALIDATION: _Param = (
    "fieldValidation",
    "query",
    {"type": "string"},
    "How the server handles unknown or duplicate fields in the request: Ignore, Warn "
    "(the default: a warning header per unknown field) or Strict (the request fails "
    "with a BadRequest naming the fields).",
)
_FORCE: _Param = (
    "force",
    "query",
    {"type": "boolean", "uniqueItems": True},
    "Force is only meaningful for apply requests (not supported by this server).",
)
_LIST_PARAMS: tuple[_Param, ...] = (
    (
        "allowWatchBookmarks",
        "query",
        {"type": "boolean", "uniqueItems": True},
        "Request watch events with type BOOKMARK.",
    ),
    (
        "continue",
        "query",
        {"type": "string", "uniqueItems": True},
        "The continue option from a previous paged list.",
    ),
    (
        "fieldSelector",
        "query",
        {"type": "string", "uniqueItems": True},
        "Restrict the returned objects by their fields (metadata.name, metadata.namespace).",
    ),
    (
        "labelSelector",
        "query",
        {"type": "string", "uniqueItems": True},
        "Restrict the returned objects by their labels.",
    ),
    (
        "limit",
        "query",
        {"type": "integer", "uniqueItems": True},
        "Maximum number of responses to return for a list call.",
    ),
    (
        "resourceVersion",
        "query",
        {"type": "string", "uniqueItems": True},
        "Constrains which resource versions the request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "query",
        {"type": "string", "uniqueItems": True},
        "Determines how resourceVersion is applied to list calls.",
    ),
    (
        "sendInitialEvents",
        "query",
        {"type": "boolean", "uniqueItems": True},
        "Start a watch with synthetic ADDED events for the current state, then a bookmark.",
    ),
    (
        "timeoutSeconds",
        "query",
        {"type": "integer", "uniqueItems": True},
        "Timeout for the list/watch call.",
    ),
    (
        "watch",
        "query",
        {"type": "boolean", "uniqueItems": True},
        "Watch for changes to the described resources and return them as a stream.",
    ),
)
_DELETE_PARAMS: tuple[_Param, ...] = (
    _DRY_RUN,
    (
        "gracePeriodSeconds",
        "query",
        {"type": "integer", "uniqueItems": True},
        "The duration in seconds before the object should be deleted.",
    ),
    (
        "propagationPolicy",
        "query",
        {"type": "string", "uniqueItems": True},
        "Whether and how garbage collection will be performed.",
    ),
)


def _v3_param(param: _Param) -> dict[str, Any]:
    name, where, schema, text = param
    out: dict[str, Any] = {"name": name, "in": where, "description": text}
    if where == "path":
        out["required"] = True
    out["schema"] = {k: v for k, v in schema.items() if k != "uniqueItems"}
    if schema.get("uniqueItems"):
        out["schema"]["uniqueItems"] = True
    return out


def _v2_param(param: _Param) -> dict[str, Any]:
    name, where, schema, text = param
    out: dict[str, Any] = {"name": name, "in": where, "description": text, **schema}
    if where == "path":
        out["required"] = True
    return out


# --------------------------------------------------------------------------- documents


@attrs.frozen
class _Kind:
    resource: OpenAPIResource
    name: str
    list_name: str
    gvk: dict[str, str]


def _kinds(resources: Iterable[OpenAPIResource]) -> list[_Kind]:
    out: list[_Kind] = []
    for r in resources:
        name = definition_name(r.group, r.version, r.kind)
        out.append(
            _Kind(r, name, name + "List", {"group": r.group, "kind": r.kind, "version": r.version})
        )
    return out


class _Builder:
    """Builds one document; *v2* switches between Swagger 2.0 and OpenAPI 3.0."""

    def __init__(self, v2: bool) -> None:
        self.v2 = v2
        self.prefix = "#/definitions/" if v2 else "#/components/schemas/"

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": self.prefix + name}

    def param(self, param: _Param) -> dict[str, Any]:
        return _v2_param(param) if self.v2 else _v3_param(param)

    def responses(self, codes: Mapping[str, str], schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for code, text in codes.items():
            if self.v2:
                out[code] = {"description": text, "schema": schema}
            else:
                out[code] = {
                    "description": text,
                    "content": {
                        _JSON: {"schema": schema},
                        "application/yaml": {"schema": schema},
                    },
                }
        out["401"] = {"description": "Unauthorized"}
        return out

    def body(
        self, schema: dict[str, Any], content_types: Sequence[str], required: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (operation fields, extra v2 parameter) for a request body."""
        if self.v2:
            param = {"name": "body", "in": "body", "required": required, "schema": schema}
            return {"consumes": list(content_types)}, param
        return {
            "requestBody": {
                "content": {ct: {"schema": schema} for ct in content_types},
                "required": required,
            }
        }, {}

    def operation(
        self,
        *,
        operation_id: str,
        description: str,
        action: str,
        gvk: dict[str, str],
        tag: str,
        params: Sequence[_Param],
        responses: dict[str, Any],
        body: tuple[dict[str, Any], dict[str, Any]] | None = None,
        produces_stream: bool = False,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "tags": [tag],
            "description": description,
            "operationId": operation_id,
        }
        parameters = [self.param(p) for p in params]
        if body is not None:
            fields, extra = body
            op.update(fields)
            if extra:
                parameters.insert(0, extra)
        if parameters:
            op["parameters"] = parameters
        if self.v2:
            produces = [_JSON, "application/yaml"]
            if produces_stream:
                produces += ["application/json;stream=watch"]
            op["produces"] = produces
            op["schemes"] = ["https"]
        op["responses"] = responses
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = dict(gvk)
        return op


def _camel(name: str) -> str:
    return name[:1].upper() + name[1:]


def _tag(group: str, version: str) -> str:
    parts = group.split(".") if group else ["core"]
    head = parts[0] + "".join(_camel(p) for p in parts[1:])
    return f"{head}_{version}"


def _paths(builder: _Builder, kinds: Sequence[_Kind]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for k in kinds:
        r = k.resource
        verbs = _verbs_of(r)
        base = "/" + _group_path(r.group, r.version)
        tag = _tag(r.group, r.version)
        prefix = "".join(_camel(p) for p in tag.split("_"))
        ns_word = "Namespaced" if r.namespaced else ""
        ident = f"{ns_word}{r.kind}"
        ns_params: list[_Param] = (
            [
                (
                    "namespace",
                    "path",
                    {"type": "string", "uniqueItems": True},
                    "object name and auth scope, such as for teams and projects",
                )
            ]
            if r.namespaced
            else []
        )
        name_param: _Param = (
            "name",
            "path",
            {"type": "string", "uniqueItems": True},
            f"name of the {r.kind}",
        )
        obj_ref = builder.ref(k.name)
        list_ref = builder.ref(k.list_name)
        status_ref = builder.ref(f"{_META}.Status")
        collection = (
            f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
        )
        item = f"{collection}/{{name}}"
        coll_item: dict[str, Any] = {}
        if "list" in verbs:
            coll_item["get"] = builder.operation(
                operation_id=f"list{prefix}{ident}",
                description=f"list or watch objects of kind {r.kind}",
                action="list",
                gvk=k.gvk,
                tag=tag,
                params=_LIST_PARAMS,
                responses=builder.responses({"200": "OK"}, list_ref),
                produces_stream=True,
            )
        if "create" in verbs:
            coll_item["post"] = builder.operation(
                operation_id=f"create{prefix}{ident}",
                description=f"create a {r.kind}",
                action="post",
                gvk=k.gvk,
                tag=tag,
                params=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION),
                responses=builder.responses(
                    {"200": "OK", "201": "Created", "202": "Accepted"}, obj_ref
                ),
                body=builder.body(obj_ref, [_JSON, "application/yaml"]),
            )
        if coll_item:
            coll_item["parameters"] = [builder.param(p) for p in (*ns_params, _PRETTY)]
            paths[collection] = coll_item
        obj_item: dict[str, Any] = {}
        if "get" in verbs:
            obj_item["get"] = builder.operation(
                operation_id=f"read{prefix}{ident}",
                description=f"read the specified {r.kind}",
                action="get",
                gvk=k.gvk,
                tag=tag,
                params=(),
                responses=builder.responses({"200": "OK"}, obj_ref),
            )
        if "update" in verbs:
            obj_item["put"] = builder.operation(
                operation_id=f"replace{prefix}{ident}",
                description=f"replace the specified {r.kind}",
                action="put",
                gvk=k.gvk,
                tag=tag,
                params=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION),
                responses=builder.responses({"200": "OK", "201": "Created"}, obj_ref),
                body=builder.body(obj_ref, [_JSON, "application/yaml"]),
            )
        if "patch" in verbs:
            # No strategic-merge-patch and no apply-patch: kubectl apply then sends
            # JSON merge patches, which this server implements.
            patch_schema: dict[str, Any] = {"type": "object"}
            if not builder.v2:
                patch_schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            obj_item["patch"] = builder.operation(
                operation_id=f"patch{prefix}{ident}",
                description=f"partially update the specified {r.kind}",
                action="patch",
                gvk=k.gvk,
                tag=tag,
                params=(_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE),
                responses=builder.responses({"200": "OK", "201": "Created"}, obj_ref),
                body=builder.body(
                    patch_schema,
                    ["application/json-patch+json", "application/merge-patch+json"],
                ),
            )
        if "delete" in verbs:
            obj_item["delete"] = builder.operation(
                operation_id=f"delete{prefix}{ident}",
                description=f"delete a {r.kind}",
                action="delete",
                gvk=k.gvk,
                tag=tag,
                params=_DELETE_PARAMS,
                responses=builder.responses({"200": "OK", "202": "Accepted"}, status_ref),
                body=builder.body(builder.ref(f"{_META}.DeleteOptions"), [_JSON], required=False),
            )
        if obj_item:
            obj_item["parameters"] = [builder.param(p) for p in (name_param, *ns_params, _PRETTY)]
            paths[item] = obj_item
        if r.namespaced and "list" in verbs:
            paths[f"{base}/{r.plural}"] = {
                "get": builder.operation(
                    operation_id=f"list{prefix}{r.kind}ForAllNamespaces",
                    description=f"list or watch objects of kind {r.kind}",
                    action="list",
                    gvk=k.gvk,
                    tag=tag,
                    params=_LIST_PARAMS,
                    responses=builder.responses({"200": "OK"}, list_ref),
                    produces_stream=True,
                ),
                "parameters": [builder.param(_PRETTY)],
            }
    return paths


def _rewrite_refs(value: Any, prefix: str) -> Any:
    if is_object(value):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith("#/components/schemas/"):
                out[key] = prefix + item[len("#/components/schemas/") :]
            else:
                out[key] = _rewrite_refs(item, prefix)
        return out
    if is_array(value):
        return [_rewrite_refs(v, prefix) for v in value]
    return value


def _definitions(builder: _Builder, kinds: Sequence[_Kind]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for k in kinds:
        schema = object_schema(k.resource)
        props = dict(schema["properties"])
        # Served documents reference ObjectMeta, as kube-apiserver's do.
        meta_description = props["metadata"].get("description", "")
        props["metadata"] = (
            {**builder.ref(f"{_META}.ObjectMeta"), "description": meta_description}
            if builder.v2
            else {
                "allOf": [builder.ref(f"{_META}.ObjectMeta")],
                "default": {},
                "description": meta_description,
            }
        )
        schema["properties"] = props
        schema["x-kubernetes-group-version-kind"] = [dict(k.gvk)]
        defs[k.name] = _rewrite_refs(schema, builder.prefix) if builder.v2 else schema
        list_gvk = {**k.gvk, "kind": k.resource.kind + "List"}
        defs[k.list_name] = {
            "description": f"{k.resource.kind}List is a list of {k.resource.kind}",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string", "description": "APIVersion of this list."},
                "kind": {"type": "string", "description": "Kind of this list."},
                "items": {
                    "type": "array",
                    "description": f"List of {k.resource.plural}.",
                    "items": builder.ref(k.name),
                },
                "metadata": (
                    {**builder.ref(f"{_META}.ListMeta"), "description": "Standard list metadata."}
                    if builder.v2
                    else {
                        "allOf": [builder.ref(f"{_META}.ListMeta")],
                        "default": {},
                        "description": "Standard list metadata.",
                    }
                ),
            },
            "x-kubernetes-group-version-kind": [list_gvk],
        }
    defs[f"{_META}.ObjectMeta"] = object_meta_schema()
    defs[f"{_META}.ListMeta"] = _list_meta_schema()
    defs[f"{_META}.Status"] = _status_schema()
    defs[f"{_META}.DeleteOptions"] = _delete_options_schema()
    defs[f"{_META}.WatchEvent"] = _watch_event_schema()
    return defs


def _info(title: str, version: str) -> dict[str, Any]:
    return {"title": title, "version": version}


def build_openapi_v3(
    resources: Iterable[OpenAPIResource], group: str, version: str, *, title: str = "k8swatch"
) -> dict[str, Any]:
    """Return the OpenAPI 3.0 document of one group-version (``/openapi/v3/apis/<g>/<v>``)."""
    kinds = [
        k for k in _kinds(resources) if (k.resource.group, k.resource.version) == (group, version)
    ]
    builder = _Builder(v2=False)
    return {
        "openapi": "3.0.0",
        "info": _info(title, version),
        "paths": _paths(builder, kinds),
        "components": {"schemas": _definitions(builder, kinds)},
    }


def build_openapi_v2(
    resources: Iterable[OpenAPIResource], *, title: str = "k8swatch", version: str = "v1"
) -> dict[str, Any]:
    """Return the Swagger 2.0 document of every resource (``/openapi/v2``)."""
    kinds = _kinds(resources)
    builder = _Builder(v2=True)
    return {
        "swagger": "2.0",
        "info": _info(title, version),
        "paths": _paths(builder, kinds),
        "definitions": _definitions(builder, kinds),
    }


def _etag(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def build_openapi_v3_index(
    resources: Iterable[OpenAPIResource], *, title: str = "k8swatch"
) -> dict[str, Any]:
    """Return the ``/openapi/v3`` index: a ``serverRelativeURL`` per group-version."""
    resources = list(resources)
    paths: dict[str, Any] = {}
    for group, version in sorted({(r.group, r.version) for r in resources}):
        data = _encode(build_openapi_v3(resources, group, version, title=title))
        key = _group_path(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_etag(data)}"}
    return {"paths": paths}


# --------------------------------------------------------------------------- serving


@final
@attrs.frozen
class OpenAPIResponse:
    """An HTTP answer for an ``/openapi/...`` request: status, headers, body bytes."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _accepts(accept: str, media_type: str) -> bool:
    if not accept.strip():
        return True
    for part in accept.split(","):
        kind = part.split(";", 1)[0].strip().lower()
        if kind in (media_type, "*/*", media_type.split("/", 1)[0] + "/*"):
            return True
    return False


def _prefers_protobuf(accept: str) -> bool:
    """Whether the first acceptable type listed in *accept* is OpenAPI v2 protobuf."""
    for part in accept.split(","):
        kind = part.split(";", 1)[0].strip().lower()
        if kind == PROTOBUF_V2_CONTENT_TYPE:
            return True
        if kind in (_JSON, "*/*", "application/*"):
            return False
    return False


def _etag_matches(if_none_match: str, etag: str) -> bool:
    for candidate in if_none_match.split(","):
        value = candidate.strip()
        if value == "*":
            return True
        value = value.removeprefix("W/")
        if value.strip('"') == etag:
            return True
    return False


def _status_response(err: StatusError) -> OpenAPIResponse:
    return OpenAPIResponse(err.code, (("content-type", _JSON),), _encode(err.status.to_dict()))


@final
class OpenAPIService:
    """Serves ``/openapi/v2``, ``/openapi/v3`` and ``/openapi/v3/<group path>``.

    Documents are built once, on first use, from the resources given at
    construction (they do not change while the server runs). Call
    [`respond`][k8swatch.server.OpenAPIService.respond] with the request path,
    query and headers; it returns ``None`` for paths that are not OpenAPI paths.
    """

    def __init__(self, resources: Iterable[OpenAPIResource], *, title: str = "k8swatch") -> None:
        self._resources = list(resources)
        self._title = title
        self._docs: dict[str, tuple[bytes, str]] | None = None

    def _documents(self) -> dict[str, tuple[bytes, str]]:
        if self._docs is None:
            docs: dict[str, tuple[bytes, str]] = {}
            for group, version in sorted({(r.group, r.version) for r in self._resources}):
                data = _encode(build_openapi_v3(self._resources, group, version, title=self._title))
                docs["/openapi/v3/" + _group_path(group, version)] = (data, _etag(data))
            index = {
                "paths": {
                    path.removeprefix("/openapi/v3/"): {"serverRelativeURL": f"{path}?hash={etag}"}
                    for path, (_, etag) in docs.items()
                }
            }
            data = _encode(index)
            docs["/openapi/v3"] = (data, _etag(data))
            v2 = build_openapi_v2(self._resources, title=self._title)
            data = _encode(v2)
            docs["/openapi/v2"] = (data, _etag(data))
            data = encode_openapi_v2(v2)
            docs[_V2_PROTOBUF_KEY] = (data, _etag(data))
            self._docs = docs
        return self._docs

    def respond(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> OpenAPIResponse | None:
        """Answer a request for an OpenAPI document, or ``None`` if *path* is not one.

        *headers* maps lower-case header names to values (``accept``,
        ``if-none-match``). Unknown group-versions are 404; ``/openapi/v2``
        is protobuf when the request prefers it; any other request that does
        not accept JSON is 406; ``If-None-Match`` with the current ETag
        is 304; a ``hash`` query parameter that does not match the current
        document redirects (301) to the current URL, as kube-openapi does.
        """
        clean = path.rstrip("/") or "/"
        if clean != "/openapi" and not clean.startswith("/openapi/"):
            return None
        if method not in ("GET", "HEAD"):
            return _status_response(method_not_allowed(f"{method} is not allowed on {clean}"))
        docs = self._documents()
        entry = docs.get(clean)
        if entry is None:
            return _status_response(path_not_found())
        data, etag = entry
        accept = headers.get("accept", "")
        content_type = _JSON
        if clean == "/openapi/v2" and _prefers_protobuf(accept):
            data, etag = docs[_V2_PROTOBUF_KEY]
            # kube-openapi answers the protobuf request as octet-stream (the
            # requested type is not a valid MIME type for Go's parser).
            content_type = "application/octet-stream"
        elif not _accepts(accept, _JSON):
            return _status_response(not_acceptable(f"only {_JSON} is supported, not {accept!r}"))
        out_headers: list[tuple[str, str]] = [("etag", f'"{etag}"')]
        is_group_doc = clean.startswith("/openapi/v3/")
        requested_hash = query.get("hash", "")
        if is_group_doc and requested_hash:
            if requested_hash != etag:
                return OpenAPIResponse(
                    301,
                    (("location", f"{clean}?hash={etag}"), ("content-type", _JSON)),
                    b"",
                )
            out_headers += [
                ("vary", "Accept"),
                ("cache-control", "public, immutable"),
                ("expires", formatdate(time.time() + 365 * 24 * 3600, usegmt=True)),
            ]
        else:
            out_headers.append(("cache-control", "no-cache, private"))
        if _etag_matches(headers.get("if-none-match", ""), etag):
            return OpenAPIResponse(304, tuple(out_headers), b"")
        out_headers.append(("content-type", content_type))
        return OpenAPIResponse(200, tuple(out_headers), b"" if method == "HEAD" else data)
