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

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from email.utils import formatdate
from typing import Any, Protocol

import attrs
from typing_extensions import final

from k8swatch._json import copy_json
from k8swatch._status import StatusError, method_not_allowed, not_acceptable, path_not_found
from k8swatch.server._jsontypes import is_array, is_mapping, is_object
from k8swatch.server._openapi_meta import META, meta_definitions, object_meta_schema
from k8swatch.server._openapi_operations import (
    DELETE_PARAMS,
    DRY_RUN,
    FIELD_MANAGER,
    FIELD_VALIDATION,
    FORCE,
    LIST_PARAMS,
    PRETTY,
    Builder,
    Param,
)
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


def _permissive_schema() -> dict[str, Any]:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def object_schema(resource: OpenAPIResource) -> dict[str, Any]:
    """The full schema of *resource*'s kind, as served in the OpenAPI documents.

    The resource's own ``schema`` (an OpenAPI v3 schema of the whole object, as
    a CRD's ``openAPIV3Schema``) gets ``apiVersion``, ``kind`` and ``metadata``
    filled in when missing; a resource without one gets a permissive schema
    (``x-kubernetes-preserve-unknown-fields``) with just those three fields.
    Metadata is always the full ``ObjectMeta``, inlined, so the result can
    validate objects on its own: as kube-apiserver never prunes or validates
    ObjectMeta by a CRD's schema, a declared ``metadata`` (kubebuilder writes
    ``metadata: {type: object}``) contributes only what the apiserver allows
    there, the constraints on ``name`` and ``generateName`` (``maxLength``,
    ``minLength``, ``pattern``, ``enum``...).
    """
    declared = _schema_of(resource)
    schema = copy_json(dict(declared)) if declared is not None else _permissive_schema()
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
    meta["properties"] = {
        **meta["properties"],
        **_name_constraints(meta["properties"], props.get("metadata")),
    }
    props["metadata"] = meta
    schema["properties"] = props
    return schema


# What a CRD's metadata schema may say about the name (the apiserver refuses the
# rest), and what object_schema keeps of it.
_NAME_KEYWORDS = ("maxLength", "minLength", "pattern", "enum", "format", "const", "description")


def _name_constraints(meta_props: Mapping[str, Any], declared: object) -> dict[str, Any]:
    declared_props = declared.get("properties") if is_mapping(declared) else None
    if not is_mapping(declared_props):
        return {}
    out: dict[str, Any] = {}
    for field in ("name", "generateName"):
        constraints = declared_props.get(field)
        if not is_mapping(constraints):
            continue
        kept = {k: copy_json(v) for k, v in constraints.items() if k in _NAME_KEYWORDS}
        if kept:
            out[field] = {**meta_props[field], **kept}
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


def _camel(name: str) -> str:
    return name[:1].upper() + name[1:]


def _tag(group: str, version: str) -> str:
    parts = group.split(".") if group else ["core"]
    head = parts[0] + "".join(_camel(p) for p in parts[1:])
    return f"{head}_{version}"


def _paths(builder: Builder, kinds: Sequence[_Kind]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for k in kinds:
        r = k.resource
        verbs = _verbs_of(r)
        base = "/" + _group_path(r.group, r.version)
        tag = _tag(r.group, r.version)
        prefix = "".join(_camel(p) for p in tag.split("_"))
        ns_word = "Namespaced" if r.namespaced else ""
        ident = f"{ns_word}{r.kind}"
        ns_params: list[Param] = (
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
        name_param: Param = (
            "name",
            "path",
            {"type": "string", "uniqueItems": True},
            f"name of the {r.kind}",
        )
        obj_ref = builder.ref(k.name)
        list_ref = builder.ref(k.list_name)
        status_ref = builder.ref(f"{META}.Status")
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
                params=LIST_PARAMS,
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
                params=(DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION),
                responses=builder.responses(
                    {"200": "OK", "201": "Created", "202": "Accepted"}, obj_ref
                ),
                body=builder.body(obj_ref, [_JSON, "application/yaml"]),
            )
        if coll_item:
            coll_item["parameters"] = [builder.param(p) for p in (*ns_params, PRETTY)]
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
                params=(DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION),
                responses=builder.responses({"200": "OK", "201": "Created"}, obj_ref),
                body=builder.body(obj_ref, [_JSON, "application/yaml"]),
            )
        if "patch" in verbs:
            # No strategic-merge-patch (as for a CRD): client-side kubectl apply
            # then sends JSON merge patches; server-side apply has its own type.
            patch_schema: dict[str, Any] = {"type": "object"}
            if not builder.v2:
                patch_schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            obj_item["patch"] = builder.operation(
                operation_id=f"patch{prefix}{ident}",
                description=f"partially update the specified {r.kind}",
                action="patch",
                gvk=k.gvk,
                tag=tag,
                params=(DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE),
                responses=builder.responses({"200": "OK", "201": "Created"}, obj_ref),
                body=builder.body(
                    patch_schema,
                    [
                        "application/apply-patch+yaml",
                        "application/json-patch+json",
                        "application/merge-patch+json",
                    ],
                ),
            )
        if "delete" in verbs:
            obj_item["delete"] = builder.operation(
                operation_id=f"delete{prefix}{ident}",
                description=f"delete a {r.kind}",
                action="delete",
                gvk=k.gvk,
                tag=tag,
                params=DELETE_PARAMS,
                responses=builder.responses({"200": "OK", "202": "Accepted"}, status_ref),
                body=builder.body(builder.ref(f"{META}.DeleteOptions"), [_JSON], required=False),
            )
        if obj_item:
            obj_item["parameters"] = [builder.param(p) for p in (name_param, *ns_params, PRETTY)]
            paths[item] = obj_item
        status_item = _status_operations(k, prefix, ident, tag, obj_item)
        if status_item:
            status_item["parameters"] = [builder.param(p) for p in (name_param, *ns_params, PRETTY)]
            paths[f"{item}/status"] = status_item
        if r.namespaced and "list" in verbs:
            paths[f"{base}/{r.plural}"] = {
                "get": builder.operation(
                    operation_id=f"list{prefix}{r.kind}ForAllNamespaces",
                    description=f"list or watch objects of kind {r.kind}",
                    action="list",
                    gvk=k.gvk,
                    tag=tag,
                    params=LIST_PARAMS,
                    responses=builder.responses({"200": "OK"}, list_ref),
                    produces_stream=True,
                ),
                "parameters": [builder.param(PRETTY)],
            }
    return paths


def _status_operations(
    k: _Kind,
    prefix: str,
    ident: str,
    tag: str,
    obj_item: Mapping[str, Any],
) -> dict[str, Any]:
    """The operations of ``.../<name>/status``: the object's, renamed as kube-apiserver does."""
    status_verbs: Iterable[str] = getattr(k.resource, "status_verbs", ())
    out: dict[str, Any] = {}
    actions = (("get", "get", "read"), ("update", "put", "replace"), ("patch", "patch", "patch"))
    for verb, method, action in actions:
        if verb not in status_verbs or method not in obj_item:
            continue
        operation = copy_json(dict(obj_item[method]))
        operation["operationId"] = f"{action}{prefix}{ident}Status"
        operation["description"] = str(operation.get("description", "")).replace(
            "the specified", "status of the specified"
        )
        out[method] = operation
    return out


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


def _definitions(builder: Builder, kinds: Sequence[_Kind]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for k in kinds:
        schema = object_schema(k.resource)
        props = dict(schema["properties"])
        # Served documents reference ObjectMeta, as kube-apiserver's do.
        meta_description = props["metadata"].get("description", "")
        props["metadata"] = (
            {**builder.ref(f"{META}.ObjectMeta"), "description": meta_description}
            if builder.v2
            else {
                "allOf": [builder.ref(f"{META}.ObjectMeta")],
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
                    {**builder.ref(f"{META}.ListMeta"), "description": "Standard list metadata."}
                    if builder.v2
                    else {
                        "allOf": [builder.ref(f"{META}.ListMeta")],
                        "default": {},
                        "description": "Standard list metadata.",
                    }
                ),
            },
            "x-kubernetes-group-version-kind": [list_gvk],
        }
    defs.update(meta_definitions())
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
    builder = Builder(v2=False)
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
    builder = Builder(v2=True)
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
