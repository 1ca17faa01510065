"""OpenAPI v2/v3 documents, their serving (ETag, 304, hash) and field validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch import StatusError
from k8swatch.coder._openapi_schemas import (
    CODER_TEMPLATE_COLUMNS,
    CODER_WORKSPACE_COLUMNS,
    coder_template_schema,
    coder_workspace_schema,
)
from k8swatch.server._openapi import (
    OpenAPIService,
    build_openapi_v2,
    build_openapi_v3,
    build_openapi_v3_index,
    definition_name,
    object_schema,
)
from k8swatch.server._openapi_pb import PROTOBUF_V2_CONTENT_TYPE, encode_openapi_v2
from k8swatch.server._validation import (
    check_field_validation,
    find_schema_errors,
    format_warning,
    prune_unknown_fields,
    validate_object,
)

GROUP = "aggregation.coder.com"


@attrs.frozen
class Spec:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Any, ...] = ()


WS = Spec(
    GROUP,
    "v1alpha1",
    "coderworkspaces",
    "CoderWorkspace",
    schema=coder_workspace_schema(),
    printer_columns=CODER_WORKSPACE_COLUMNS,
)
TPL = Spec(
    GROUP,
    "v1alpha1",
    "codertemplates",
    "CoderTemplate",
    schema=coder_template_schema(),
    printer_columns=CODER_TEMPLATE_COLUMNS,
)
WIDGET = Spec(
    "example.com", "v1", "widgets", "Widget", namespaced=False, verbs=("get", "list", "watch")
)
RESOURCES = [WS, TPL, WIDGET]


def test_definition_names() -> None:
    assert (
        definition_name(GROUP, "v1alpha1", "CoderWorkspace")
        == "com.coder.aggregation.v1alpha1.CoderWorkspace"
    )
    assert definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"


def test_v3_index_points_at_hashed_group_documents() -> None:
    index = build_openapi_v3_index(RESOURCES)
    assert sorted(index["paths"]) == ["apis/aggregation.coder.com/v1alpha1", "apis/example.com/v1"]
    url = index["paths"]["apis/aggregation.coder.com/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/aggregation.coder.com/v1alpha1?hash=")
    assert len(url.split("hash=")[1]) == 128


def test_v3_group_document_shape() -> None:
    doc = build_openapi_v3(RESOURCES, GROUP, "v1alpha1")
    assert doc["openapi"] == "3.0.0"
    schemas = doc["components"]["schemas"]
    ws = schemas["com.coder.aggregation.v1alpha1.CoderWorkspace"]
    assert ws["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "kind": "CoderWorkspace", "version": "v1alpha1"}
    ]
    assert ws["properties"]["spec"]["properties"]["running"]["type"] == "boolean"
    assert ws["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert (
        schemas["com.coder.aggregation.v1alpha1.CoderWorkspaceList"][
            "x-kubernetes-group-version-kind"
        ][0]["kind"]
        == "CoderWorkspaceList"
    )
    tpl = schemas["com.coder.aggregation.v1alpha1.CoderTemplate"]
    assert tpl["properties"]["spec"]["properties"]["files"]["x-kubernetes-map-type"] == "atomic"
    item = doc["paths"][
        "/apis/aggregation.coder.com/v1alpha1/namespaces/{namespace}/coderworkspaces/{name}"
    ]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": GROUP,
        "kind": "CoderWorkspace",
        "version": "v1alpha1",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert sorted(patch["requestBody"]["content"]) == [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ]
    assert {"get", "put", "patch", "delete", "parameters"} <= set(item)
    coll = doc["paths"][
        "/apis/aggregation.coder.com/v1alpha1/namespaces/{namespace}/coderworkspaces"
    ]
    assert {"watch", "sendInitialEvents", "labelSelector"} <= {
        p["name"] for p in coll["get"]["parameters"]
    }
    assert "fieldValidation" in [p["name"] for p in coll["post"]["parameters"]]
    assert (
        coll["post"]["operationId"] == "createAggregationCoderComV1alpha1NamespacedCoderWorkspace"
    )
    assert "/apis/aggregation.coder.com/v1alpha1/coderworkspaces" in doc["paths"]
    json.dumps(doc)  # serialisable


def test_permissive_schema_and_verbs() -> None:
    doc = build_openapi_v3(RESOURCES, "example.com", "v1")
    widget = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert widget["x-kubernetes-preserve-unknown-fields"] is True
    item = doc["paths"]["/apis/example.com/v1/widgets/{name}"]
    assert set(item) == {"get", "parameters"}
    assert set(doc["paths"]["/apis/example.com/v1/widgets"]) == {"get", "parameters"}


def test_v2_document() -> None:
    doc = build_openapi_v2(RESOURCES)
    assert doc["swagger"] == "2.0"
    ws = doc["definitions"]["com.coder.aggregation.v1alpha1.CoderWorkspace"]
    assert (
        ws["properties"]["metadata"]["$ref"]
        == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    patch = doc["paths"][
        "/apis/aggregation.coder.com/v1alpha1/namespaces/{namespace}/coderworkspaces/{name}"
    ]["patch"]
    assert patch["consumes"] == [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ]
    assert patch["parameters"][0]["in"] == "body"
    assert "#/components" not in json.dumps(doc)


def _respond(
    service: OpenAPIService, path: str, query: dict[str, str] | None = None, **headers: str
) -> Any:
    response = service.respond(
        "GET", path, query or {}, {k.replace("_", "-"): v for k, v in headers.items()}
    )
    assert response is not None
    return response


def test_service_serves_with_etags() -> None:
    service = OpenAPIService(RESOURCES)
    assert service.respond("GET", "/apis", {}, {}) is None
    index = _respond(service, "/openapi/v3")
    assert index.status == 200
    url = json.loads(index.body)["paths"]["apis/aggregation.coder.com/v1alpha1"][
        "serverRelativeURL"
    ]
    path, _, hash_value = url.partition("?hash=")
    doc = _respond(service, path, {"hash": hash_value}, accept="application/json")
    assert doc.status == 200
    headers = dict(doc.headers)
    assert headers["etag"] == f'"{hash_value}"'
    assert headers["cache-control"] == "public, immutable"
    assert json.loads(doc.body)["openapi"] == "3.0.0"
    again = _respond(service, path, if_none_match=f'"{hash_value}"')
    assert again.status == 304
    assert again.body == b""
    stale = _respond(service, path, {"hash": "0" * 128})
    assert stale.status == 301
    assert dict(stale.headers)["location"] == url
    assert _respond(service, "/openapi/v3/apis/nope/v1").status == 404
    assert _respond(service, "/openapi/v2/").status == 200
    proto = _respond(service, "/openapi/v2", accept=PROTOBUF_V2_CONTENT_TYPE)
    assert proto.status == 200
    assert dict(proto.headers)["content-type"] == "application/octet-stream"
    assert proto.body.startswith(b"\x0a\x032.0")  # field 1 (swagger), "2.0"
    assert dict(proto.headers)["etag"] != dict(_respond(service, "/openapi/v2").headers)["etag"]
    refused = _respond(service, "/openapi/v3", accept=PROTOBUF_V2_CONTENT_TYPE)
    assert refused.status == 406
    assert service.respond("POST", "/openapi/v2", {}, {}).status == 405  # type: ignore[union-attr]
    assert service.respond("HEAD", "/openapi/v2", {}, {}).body == b""  # type: ignore[union-attr]


def test_field_validation_values() -> None:
    assert check_field_validation(None) == "Warn"
    assert check_field_validation("Strict") == "Strict"
    with pytest.raises(StatusError) as exc:
        check_field_validation("strict", "patch")
    assert exc.value.status.code == 422
    assert str(exc.value) == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


WS_SCHEMA = object_schema(WS)
GOOD = {
    "apiVersion": "aggregation.coder.com/v1alpha1",
    "kind": "CoderWorkspace",
    "metadata": {"name": "acme.alice.dev", "namespace": "default", "annotations": {"a": "b"}},
    "spec": {"organization": "acme", "templateName": "t", "running": True, "ttlMillis": None},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    obj = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = obj
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return obj


def test_valid_object_passes_every_directive() -> None:
    for directive in ("Strict", "Warn", "Ignore"):
        assert (
            validate_object(
                GOOD,
                WS_SCHEMA,
                kind="CoderWorkspace",
                version="v1alpha1",
                group=GROUP,
                directive=directive,
            )
            == []
        )


def test_unknown_fields() -> None:
    obj = _with("spec.bogus", 1)
    obj["metadata"]["frob"] = 2
    with pytest.raises(StatusError) as exc:
        validate_object(
            obj,
            WS_SCHEMA,
            kind="CoderWorkspace",
            version="v1alpha1",
            group=GROUP,
            directive="Strict",
        )
    assert exc.value.status.code == 400
    assert str(exc.value) == (
        'CoderWorkspace in version "v1alpha1" cannot be handled as a CoderWorkspace: '
        "strict decoding "
        'error: unknown field "metadata.frob", unknown field "spec.bogus"'
    )
    warnings = validate_object(
        obj, WS_SCHEMA, kind="CoderWorkspace", version="v1alpha1", directive="Warn"
    )
    assert warnings == ['unknown field "metadata.frob"', 'unknown field "spec.bogus"']
    assert format_warning(warnings[1]) == '299 - "unknown field \\"spec.bogus\\""'
    assert (
        validate_object(
            obj, WS_SCHEMA, kind="CoderWorkspace", version="v1alpha1", directive="Ignore"
        )
        == []
    )
    with pytest.raises(StatusError) as exc:
        validate_object(
            obj,
            WS_SCHEMA,
            kind="CoderWorkspace",
            version="v1alpha1",
            directive="Strict",
            verb="patch",
        )
    assert exc.value.status.code == 422
    assert str(exc.value).startswith(' "" is invalid: patch: Invalid value: "{')
    assert str(exc.value).endswith(
        'strict decoding error: unknown field "metadata.frob", unknown field "spec.bogus"'
    )


def test_type_errors_regardless_of_directive() -> None:
    obj = _with("spec.running", "yes")
    for directive in ("Strict", "Ignore"):
        with pytest.raises(StatusError) as exc:
            validate_object(
                obj,
                WS_SCHEMA,
                kind="CoderWorkspace",
                version="v1alpha1",
                group=GROUP,
                directive=directive,
            )
        assert exc.value.status.code == 422
        assert str(exc.value) == (
            'CoderWorkspace.aggregation.coder.com "acme.alice.dev" is invalid: '
            "spec.running: Invalid value: "
            '"string": spec.running in body must be of type boolean: "string"'
        )


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("spec.ttlMillis", 1.5, "spec.ttlMillis"),
        ("spec", [], "spec"),
        ("metadata.labels", {"a": 1}, "metadata.labels.a"),
    ],
)
def test_type_error_fields(path: str, value: Any, field: str) -> None:
    errors, unknown = find_schema_errors(_with(path, value), WS_SCHEMA)
    assert [e.field for e in errors] == [field]
    assert unknown == []


def test_maps_arrays_and_preserve_unknown() -> None:
    tpl = object_schema(TPL)
    obj = {"metadata": {"finalizers": ["a", 3]}, "spec": {"files": {"main.tf": "x", "b": 2}}}
    errors, _unknown = find_schema_errors(obj, tpl)
    assert [e.field for e in errors] == ["metadata.finalizers[1]", "spec.files.b"]
    widget = object_schema(WIDGET)
    assert find_schema_errors({"anything": {"goes": 1}, "metadata": {"bad": 1}}, widget) == (
        [],
        ["metadata.bad"],
    )
    assert find_schema_errors(2, {"x-kubernetes-int-or-string": True}) == ([], [])
    errors, _ = find_schema_errors(True, {"x-kubernetes-int-or-string": True})
    assert (
        errors[0].message
        == 'Invalid value: "boolean": <root> in body must be of type integer or string: "boolean"'
    )
    assert find_schema_errors(3, {"type": "number"}) == ([], [])
    assert find_schema_errors(None, {"type": "string", "nullable": True}) == ([], [])
    assert find_schema_errors({"a": None}, {"properties": {"a": {"type": "string"}}}) == ([], [])


def test_coder_columns() -> None:
    assert [c.name for c in CODER_WORKSPACE_COLUMNS if c.priority == 0] == [
        "Owner",
        "Template",
        "Running",
        "Status",
        "Age",
    ]
    assert [c.name for c in CODER_TEMPLATE_COLUMNS if c.priority == 0] == [
        "Organization",
        "Active-Version",
        "Age",
    ]


def _decode(data: bytes) -> list[tuple[int, Any]]:
    """A minimal protobuf decoder: (field number, int or bytes) pairs."""
    out: list[tuple[int, Any]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        else:
            assert wire == 2
            size = varint()
            out.append((number, data[pos : pos + size]))
            pos += size
    return out


def _field(message: bytes, number: int) -> list[Any]:
    return [value for n, value in _decode(message) if n == number]


def test_v2_protobuf_structure() -> None:
    doc = build_openapi_v2(RESOURCES)
    top = encode_openapi_v2(doc)
    assert _field(top, 1) == [b"2.0"]
    (paths,) = _field(top, 8)
    names = [_field(named, 1)[0].decode() for named in _field(paths, 2)]
    assert names == list(doc["paths"])
    (definitions,) = _field(top, 9)
    by_name = {_field(n, 1)[0].decode(): _field(n, 2)[0] for n in _field(definitions, 1)}
    assert set(by_name) == set(doc["definitions"])
    ws = by_name["com.coder.aggregation.v1alpha1.CoderWorkspace"]
    extensions = {
        _field(n, 1)[0].decode(): json.loads(_field(_field(n, 2)[0], 2)[0]) for n in _field(ws, 31)
    }
    assert extensions["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "kind": "CoderWorkspace", "version": "v1alpha1"}
    ]
    (props,) = _field(ws, 25)
    prop_names = [_field(n, 1)[0].decode() for n in _field(props, 1)]
    assert prop_names == list(
        doc["definitions"]["com.coder.aggregation.v1alpha1.CoderWorkspace"]["properties"]
    )
    (type_item,) = _field(ws, 22)
    assert _field(type_item, 1) == [b"object"]
    labels = by_name["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    (meta_props,) = _field(labels, 25)
    label_schema = next(
        _field(n, 2)[0] for n in _field(meta_props, 1) if _field(n, 1) == [b"labels"]
    )
    (additional,) = _field(label_schema, 21)
    assert _field(_field(additional, 1)[0], 22) == [b"\x0a\x06string"]
    closed = encode_openapi_v2({"definitions": {"x": {"additionalProperties": False}}})
    (defs,) = _field(closed, 9)
    (named,) = _field(defs, 1)
    (additional_item,) = _field(_field(named, 2)[0], 21)
    assert _decode(additional_item) == [(2, 0)]


def _values_for(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        if props:
            return st.fixed_dictionaries({}, optional={k: _values_for(v) for k, v in props.items()})
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            return st.dictionaries(st.text(max_size=5), _values_for(additional), max_size=3)
        return st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    if kind == "array":
        return st.lists(_values_for(schema.get("items") or {}), max_size=3)
    if kind == "integer":
        return st.integers()
    if kind == "number":
        return st.floats(allow_nan=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=8)
    return st.none()


@pytest.mark.parametrize("resource", [WS, TPL], ids=["workspace", "template"])
@given(data=st.data())
def test_generated_objects_validate(resource: Spec, data: st.DataObject) -> None:
    schema = object_schema(resource)
    obj = data.draw(_values_for(schema))
    assert find_schema_errors(obj, schema) == ([], [])
    if isinstance(obj.get("spec"), dict):
        obj["spec"]["zzUnknown"] = 1
        assert find_schema_errors(obj, schema)[1] == ["spec.zzUnknown"]


def test_prune_unknown_fields() -> None:
    obj = _with("spec.bogus", 1)
    obj["metadata"]["frob"] = 2
    obj["spec"]["nested"] = {"x": 1}
    pruned = prune_unknown_fields(obj, WS_SCHEMA)
    assert pruned == GOOD
    assert obj["spec"]["bogus"] == 1  # the input is not modified
    tpl = object_schema(TPL)
    files = {"spec": {"files": {"a": "b"}, "zz": 1}, "metadata": {"finalizers": ["x"]}}
    assert prune_unknown_fields(files, tpl) == {
        "spec": {"files": {"a": "b"}},
        "metadata": {"finalizers": ["x"]},
    }
    widget = object_schema(WIDGET)
    assert prune_unknown_fields({"free": {"form": 1}}, widget) == {"free": {"form": 1}}
    assert prune_unknown_fields([1, {"a": 1}], {"type": "array"}) == [1, {"a": 1}]
    assert prune_unknown_fields(
        {"a": {"b": 1, "c": 2}}, {"allOf": [{"properties": {"a": {"properties": {"b": {}}}}}]}
    ) == {"a": {"b": 1}}
