"""The sans-I/O field manager: field sets, FieldsV1, merge, compare, and managedFields.

Two kinds of tests:

- cases carried over from structured-merge-diff's own tests (merge/leaf_test.go
  and merge/set_test.go: the operations, the resulting object and who owns
  what), run through ``FieldManager``;
- hypothesis properties of the algebra (FieldsV1 round trip, compare's
  symmetry, merge's identities, apply's idempotence).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8swatch.server._fieldpath import (
    decode_fields_v1,
    encode_fields_v1,
    field_element,
    index_element,
    key_element,
    path_string,
    value_element,
)
from k8swatch.server._managedfields import FieldManager, decode_managed_fields
from k8swatch.server._structured import (
    StructureError,
    compare,
    merge,
    remove_items,
    to_field_set,
)

_clock = (f"2026-01-01T00:00:{i % 60:02d}Z" for i in itertools.count())

LEAF_SCHEMA = {
    "type": "object",
    "properties": {
        "numeric": {"type": "number"},
        "string": {"type": "string"},
        "bool": {"type": "boolean"},
    },
}
SET_SCHEMA = {
    "type": "object",
    "properties": {
        "list": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    },
}


class State:
    """A live object and the operations on it (structured-merge-diff's test fixture)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.manager = FieldManager(schema, "v1", lambda: next(_clock))
        self.live: dict[str, Any] | None = None

    def apply(self, manager: str, config: dict[str, Any], *, force: bool = False) -> None:
        self.live = self.manager.apply(self.live, config, manager, force=force)

    def update(self, manager: str, obj: dict[str, Any]) -> None:
        new = {**obj, "metadata": (self.live or {}).get("metadata", {})}
        self.live = self.manager.update(self.live, new, manager)

    def object(self) -> dict[str, Any]:
        assert self.live is not None
        return {k: v for k, v in self.live.items() if k != "metadata"}

    def owners(self) -> dict[str, set[str]]:
        assert self.live is not None
        managed = decode_managed_fields(self.live["metadata"].get("managedFields"))
        return {entry.manager: {path_string(p) for p in entry.fields} for entry in managed.values()}


# -- carried over from structured-merge-diff's merge tests ---------------------------


def test_leaf_apply_twice() -> None:
    state = State(LEAF_SCHEMA)
    state.apply("default", {"numeric": 1, "string": "string"})
    state.apply("default", {"numeric": 2, "string": "string", "bool": False})
    assert state.object() == {"numeric": 2, "string": "string", "bool": False}
    assert state.owners() == {"default": {".numeric", ".string", ".bool"}}


def test_leaf_apply_update_apply_no_conflict() -> None:
    state = State(LEAF_SCHEMA)
    state.apply("default", {"numeric": 1, "string": "string"})
    state.update("controller", {"numeric": 1, "string": "string", "bool": True})
    state.apply("default", {"numeric": 2, "string": "string"})
    assert state.object() == {"numeric": 2, "string": "string", "bool": True}
    assert state.owners() == {"default": {".numeric", ".string"}, "controller": {".bool"}}


def test_leaf_apply_update_apply_with_conflict() -> None:
    from k8swatch import StatusError

    state = State(LEAF_SCHEMA)
    state.apply("default", {"numeric": 1, "string": "string"})
    state.update("controller", {"numeric": 1, "string": "controller string", "bool": True})
    with pytest.raises(StatusError) as info:
        state.apply("default", {"numeric": 2, "string": "user string"})
    assert [(c.field, c.message) for c in info.value.status.details.causes] == [  # type: ignore[union-attr]
        (".string", 'conflict with "controller" using v1')
    ]
    state.apply("default", {"numeric": 2, "string": "user string"}, force=True)
    assert state.object() == {"numeric": 2, "string": "user string", "bool": True}
    assert state.owners() == {"default": {".numeric", ".string"}, "controller": {".bool"}}


def test_set_apply_update_apply_no_overlap() -> None:
    state = State(SET_SCHEMA)
    state.apply("default", {"list": ["a", "c"]})
    state.update("controller", {"list": ["a", "b", "c", "d"]})
    state.apply("default", {"list": ["a", "aprime", "c", "cprime"]})
    assert state.object() == {"list": ["a", "b", "aprime", "c", "d", "cprime"]}
    assert state.owners() == {
        "default": {'.list[="a"]', '.list[="aprime"]', '.list[="c"]', '.list[="cprime"]'},
        "controller": {'.list[="b"]', '.list[="d"]'},
    }


def test_set_apply_update_apply_with_overlap() -> None:
    state = State(SET_SCHEMA)
    state.apply("default", {"list": ["a", "c"]})
    state.update("controller", {"list": ["a", "b", "c", "d"]})
    state.apply("default", {"list": ["a", "b", "c"]})
    assert state.object() == {"list": ["a", "b", "c", "d"]}
    assert state.owners() == {
        "default": {'.list[="a"]', '.list[="b"]', '.list[="c"]'},
        "controller": {'.list[="b"]', '.list[="d"]'},
    }


def test_set_apply_update_apply_reorder() -> None:
    state = State(SET_SCHEMA)
    state.apply("default", {"list": ["a", "b", "c", "d"]})
    state.update("controller", {"list": ["a", "d", "c", "b"]})  # owns nothing: no field changed
    state.apply("default", {"list": ["a", "b", "c", "d"]})
    assert state.object() == {"list": ["a", "b", "c", "d"]}
    assert state.owners() == {"default": {f'.list[="{x}"]' for x in "abcd"}}


def test_set_apply_twice_reorder_and_remove() -> None:
    state = State(SET_SCHEMA)
    state.apply("default", {"list": ["a", "b", "c", "d"]})
    state.apply("default", {"list": ["a", "d", "c", "b"]})
    assert state.object() == {"list": ["a", "d", "c", "b"]}
    state.apply("default", {"list": ["a", "c"]})
    assert state.object() == {"list": ["a", "c"]}
    assert state.owners() == {"default": {'.list[="a"]', '.list[="c"]'}}


def test_keyed_list_items_are_owned_one_by_one() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                },
            }
        },
    }
    state = State(schema)
    state.apply("a", {"items": [{"name": "x", "v": 1}]})
    state.apply("b", {"items": [{"name": "y", "v": 2}]})
    assert state.object() == {"items": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}
    state.apply("a", {"items": []})
    assert state.object() == {"items": [{"name": "y", "v": 2}]}
    # An empty list sets no field: "a" owns nothing any more.
    assert state.owners() == {
        "b": {'.items[name="y"]', '.items[name="y"].name', '.items[name="y"].v'},
    }


def test_fields_v1_encoding_matches_the_apiserver() -> None:
    paths = {
        ("f:metadata", "f:labels"),
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:containers", 'k:{"name":"nginx"}'),
        ("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image"),
        ("f:spec", "f:finalizers", 'v:"a"'),
        ("f:spec", "f:replicas"),
    }
    encoded = encode_fields_v1(paths)
    assert json.dumps(encoded, separators=(",", ":")) == (
        '{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":'
        '{"k:{\\"name\\":\\"nginx\\"}":{".":{},"f:image":{}}},"f:finalizers":{"v:\\"a\\"":{}},'
        '"f:replicas":{}}}'
    )
    assert decode_fields_v1(encoded) == paths
    assert key_element({"protocol": "TCP", "port": 80}) == 'k:{"port":80,"protocol":"TCP"}'
    assert path_string(("f:spec", 'k:{"port":80,"protocol":"TCP"}', "f:name")) == (
        '.spec[port=80,protocol="TCP"].name'
    )
    assert path_string(("f:a", "i:3")) == ".a[3]"
    assert value_element("<&>") == 'v:"\\u003c\\u0026\\u003e"'


@pytest.mark.parametrize(
    "bad", [[], {"x:y": {}}, {"f:a": 1}, {"k:[1]": {}}, {"v:nope": {}}, {"i:x": {}}]
)
def test_fields_v1_refuses_bad_encodings(bad: Any) -> None:
    with pytest.raises(ValueError, match="fieldsV1"):
        decode_fields_v1(bad)


def test_structure_errors_are_strict_only_for_configurations() -> None:
    schema = {
        "type": "array",
        "x-kubernetes-list-type": "set",
        "items": {"type": "object"},
    }
    with pytest.raises(StructureError, match=r"element 0: .* that's a map type"):
        to_field_set([{"a": 1}], schema, strict=True)
    assert to_field_set([{"a": 1}], schema) == {()}  # a stored object: one atomic value


# -- properties ---------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "c", "x.y", "<>", "ü"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["", "s", "t"]))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_names, inner, min_size=1, max_size=3)
    ),
    max_leaves=12,
)
_objects = st.dictionaries(_names, _values, max_size=4)

_elements = st.one_of(
    _names.map(field_element),
    st.dictionaries(_names, _scalars, min_size=1, max_size=2).map(key_element),
    _scalars.map(value_element),
    st.integers(0, 9).map(index_element),
)
_paths = st.lists(_elements, min_size=1, max_size=4).map(tuple)


@given(st.frozensets(_paths, max_size=12))
def test_fields_v1_round_trip(paths: frozenset[tuple[str, ...]]) -> None:
    encoded = encode_fields_v1(paths)
    assert decode_fields_v1(json.loads(json.dumps(encoded))) == paths


@given(_objects, _objects)
def test_compare_is_antisymmetric(lhs: dict[str, Any], rhs: dict[str, Any]) -> None:
    forward = compare(lhs, rhs, None)
    backward = compare(rhs, lhs, None)
    assert forward.added == backward.removed
    assert forward.removed == backward.added
    assert forward.modified == backward.modified
    assert not forward.added & forward.removed
    assert compare(lhs, lhs, None).added == compare(lhs, lhs, None).modified == frozenset()
    if lhs != rhs:
        assert forward.added | forward.modified | forward.removed


@given(_objects, _objects)
def test_merge_identities(live: dict[str, Any], config: dict[str, Any]) -> None:
    assert merge(live, live, None) == live
    assert merge({}, config, None) == config
    merged = merge(live, config, None)
    # The merged object sets every field the configuration sets, to its value.
    assert to_field_set(config, None) <= to_field_set(merged, None)
    assert merge(merged, config, None) == merged


@given(_objects)
def test_removing_every_field_leaves_nothing(obj: dict[str, Any]) -> None:
    assert remove_items(obj, to_field_set(obj, None), None) == {}
    assert remove_items(obj, frozenset(), None) == obj


_nonempty = st.dictionaries(
    _names,
    st.recursive(
        _scalars,
        lambda inner: st.dictionaries(_names, inner, min_size=1, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


@settings(max_examples=200)
@given(_nonempty, _nonempty)
def test_a_sole_applier_gets_exactly_what_it_applies(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    state = State({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    state.apply("me", first)
    assert state.object() == first
    state.apply("me", second)
    assert state.object() == second
    before = state.live
    state.apply("me", second)  # applying again changes nothing
    assert state.live == before


# -- kubectl's upgrade from client-side apply ------------------------------------------

LAST = "kubectl.kubernetes.io/last-applied-configuration"


def _csa_object(spec: dict[str, Any], annotation: str) -> dict[str, Any]:
    manager = FieldManager(LEAF_SCHEMA, "v1", lambda: "2026-01-01T00:00:00Z")
    obj = {"metadata": {"name": "o", "annotations": {LAST: annotation}}, **spec}
    return manager.update(None, obj, "kubectl-client-side-apply")


def test_kubectl_takes_over_what_its_client_side_apply_set() -> None:
    manager = FieldManager(LEAF_SCHEMA, "v1", lambda: "2026-01-01T00:00:01Z")
    live = _csa_object({"numeric": 1, "string": "s"}, json.dumps({"numeric": 1, "string": "s"}))
    applied = manager.apply(live, {"numeric": 2, "string": "s"}, "kubectl", force=False)
    assert applied["numeric"] == 2
    assert json.loads(applied["metadata"]["annotations"][LAST]) == {"numeric": 2, "string": "s"}
    assert applied["metadata"]["annotations"][LAST].endswith("\n")
    # Another manager gets the conflict, and so does kubectl for a field changed since.
    from k8swatch import StatusError

    with pytest.raises(StatusError):
        manager.apply(live, {"numeric": 2}, "other", force=False)
    changed = manager.update(live, {**live, "string": "t"}, "editor")
    with pytest.raises(StatusError) as info:
        manager.apply(changed, {"numeric": 2, "string": "u"}, "kubectl", force=False)
    assert info.value.status.message == (
        'Apply failed with 1 conflict: conflict with "editor" using v1: .string'
    )


def test_a_last_applied_annotation_past_the_limit_is_dropped() -> None:
    manager = FieldManager(LEAF_SCHEMA, "v1", lambda: "2026-01-01T00:00:01Z")
    live = _csa_object({"string": "s"}, json.dumps({"string": "s"}))
    big = "x" * (256 * 1024)
    applied = manager.apply(live, {"string": big}, "kubectl", force=False)
    assert applied["string"] == big
    assert LAST not in applied["metadata"].get("annotations", {})


def test_yaml_bodies_need_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from k8swatch import StatusError
    from k8swatch.server._apply import decode_apply_body

    assert decode_apply_body(b' {"a": 1}') == {"a": 1}  # JSON needs nothing
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(StatusError) as info:
        decode_apply_body(b"a: 1\n")
    assert info.value.status.code == 400
    assert "install k8swatch[apply]" in info.value.status.message


_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False, allow_infinity=False, width=64),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=5), _json_values, max_size=4))
def test_yaml_apply_bodies_round_trip(value: dict[str, Any]) -> None:
    import yaml

    from k8swatch.server._apply import decode_apply_body

    # (escaped: PyYAML writes U+0085 raw, and YAML reads it as a line break)
    for text in (yaml.safe_dump(value, allow_unicode=False), json.dumps(value)):
        assert decode_apply_body(text.encode("utf-8")) == value


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))
def test_any_apply_body_decodes_or_is_a_400(body: bytes) -> None:
    from k8swatch import StatusError
    from k8swatch.server._apply import decode_apply_body

    refused: StatusError | None = None
    try:
        decoded = decode_apply_body(body)
    except StatusError as exc:
        refused = exc
    if refused is not None:
        assert refused.status.code == 400
        assert refused.status.message.startswith("error decoding YAML")
    else:
        assert isinstance(decoded, dict)
        json.dumps(decoded, allow_nan=False)  # JSON through and through


def test_update_managers_are_capped_at_ten() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    ticks = itertools.count()
    manager = FieldManager(schema, "v1", lambda: f"2026-01-01T00:00:{next(ticks):02d}Z")
    obj: dict[str, Any] = manager.update(None, {"metadata": {"name": "o"}}, "creator")
    for i in range(12):
        obj = manager.update(obj, {**obj, f"f{i}": i}, f"m{i:02d}")
    managed = decode_managed_fields(obj["metadata"]["managedFields"])
    names = sorted(entry.manager for entry in managed.values())
    assert len(names) == 10
    # The three oldest updates (m00, m01, m02) went into one bucket, with the newest time.
    assert names == ["ancient-changes", *(f"m{i:02d}" for i in range(3, 12))]
    bucket = next(e for e in managed.values() if e.manager == "ancient-changes")
    assert {path_string(p) for p in bucket.fields} == {".f0", ".f1", ".f2"}
    assert bucket.time == "2026-01-01T00:00:02Z"  # m02's
    # More updates keep merging into the same bucket.
    obj = manager.update(obj, {**obj, "f12": 12}, "m12")
    managed = decode_managed_fields(obj["metadata"]["managedFields"])
    assert len(managed) == 10
    bucket = next(e for e in managed.values() if e.manager == "ancient-changes")
    assert {path_string(p) for p in bucket.fields} == {".f0", ".f1", ".f2", ".f3"}
