"""RFC 6902 JSON Patch and RFC 7386 merge patch, with kube-apiserver's errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch import StatusError
from k8swatch.server._jsonpatch import (
    MAX_JSON_PATCH_OPERATIONS,
    apply_json_patch,
    decode_json_patch,
    escape_json_pointer,
    json_patch,
    parse_json_pointer,
)

DOC: dict[str, Any] = {
    "metadata": {"name": "a", "labels": {"x/y": "1", "t~": "2"}},
    "spec": {"l": [1, 2, 3]},
}


def _rejected(exc: pytest.ExceptionInfo[StatusError]) -> str:
    status = exc.value.status
    assert status.code == 422
    assert status.reason == "Invalid"
    assert status.message == "the server rejected our request due to an error in our request"
    assert status.details is not None
    return status.details.causes[0].message


def test_pointer_escaping_round_trip() -> None:
    assert parse_json_pointer("") == []
    assert parse_json_pointer("/a~1b/c~0d/~01") == ["a/b", "c~d", "~1"]
    assert escape_json_pointer("a/b~c") == "a~1b~0c"
    with pytest.raises(ValueError, match="start with"):
        parse_json_pointer("a")
    with pytest.raises(ValueError, match="escape"):
        parse_json_pointer("/a~2")


@given(st.lists(st.text(max_size=5), max_size=4))
def test_pointer_escape_inverse(tokens: list[str]) -> None:
    pointer = "".join("/" + escape_json_pointer(t) for t in tokens)
    assert parse_json_pointer(pointer) == tokens


def test_add_replace_remove() -> None:
    out = apply_json_patch(
        DOC,
        [
            {"op": "add", "path": "/spec/new", "value": {"k": 1}},
            {"op": "add", "path": "/spec/l/1", "value": 9},
            {"op": "add", "path": "/spec/l/-", "value": 4},
            {"op": "replace", "path": "/metadata/labels/x~1y", "value": "3"},
            {"op": "remove", "path": "/metadata/labels/t~0"},
        ],
    )
    assert out == {
        "metadata": {"name": "a", "labels": {"x/y": "3"}},
        "spec": {"l": [1, 9, 2, 3, 4], "new": {"k": 1}},
    }
    assert DOC["spec"]["l"] == [1, 2, 3]  # input untouched


def test_move_copy_test() -> None:
    out = apply_json_patch(
        DOC,
        [
            {"op": "test", "path": "/metadata/name", "value": "a"},
            {"op": "copy", "from": "/spec/l", "path": "/spec/m"},
            {"op": "move", "from": "/metadata/name", "path": "/spec/name"},
            {"op": "test", "path": "/spec/m", "value": [1, 2, 3]},
        ],
    )
    assert out["spec"] == {"l": [1, 2, 3], "m": [1, 2, 3], "name": "a"}
    assert "name" not in out["metadata"]


def test_replace_whole_document() -> None:
    assert apply_json_patch(DOC, [{"op": "replace", "path": "", "value": [1]}]) == [1]


def test_test_distinguishes_types() -> None:
    with pytest.raises(StatusError) as exc:
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    assert _rejected(exc) == "testing value /a failed: test failed"
    apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}])


@pytest.mark.parametrize(
    ("op", "cause"),
    [
        (
            {"op": "add", "path": "/nope/x", "value": 1},
            'add operation does not apply: doc is missing path: "/nope/x": missing value',
        ),
        (
            {"op": "remove", "path": "/spec/zz"},
            "error in remove for path: '/spec/zz': "
            "Unable to remove nonexistent key: zz: missing value",
        ),
        (
            {"op": "replace", "path": "/spec/zz", "value": 1},
            "replace operation does not apply: doc is missing key: /spec/zz: missing value",
        ),
        (
            {"op": "add", "path": "/spec/l/7", "value": 1},
            "Unable to access invalid index: 7: invalid index referenced",
        ),
        (
            {"op": "remove", "path": "/spec/l/01"},
            "Unable to access invalid index: 01: invalid index referenced",
        ),
        ({"op": "frob", "path": "/a"}, "Unexpected kind: frob"),
        (
            {"op": "move", "from": "/spec", "path": "/spec/x"},
            "move operation does not apply: cannot move /spec into its own child /spec/x",
        ),
        (
            {"op": "copy", "from": "/zz", "path": "/a"},
            'copy operation does not apply: doc is missing path: "/zz": missing value',
        ),
        ({"op": "add", "value": 1}, "add operation missing path string"),
    ],
)
def test_operation_errors_are_422(op: dict[str, Any], cause: str) -> None:
    with pytest.raises(StatusError) as exc:
        apply_json_patch(DOC, [op])
    assert _rejected(exc) == cause


def test_patch_is_atomic() -> None:
    with pytest.raises(StatusError):
        apply_json_patch(
            DOC, [{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}]
        )
    assert "a" not in DOC


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"op": "add"}', "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        (b"[1]", "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
    ],
)
def test_undecodable_patch_is_400(body: bytes, message: str) -> None:
    with pytest.raises(StatusError) as exc:
        decode_json_patch(body)
    assert exc.value.status.code == 400
    assert exc.value.status.reason == "BadRequest"
    assert str(exc.value) == message


def test_bad_json_is_400() -> None:
    with pytest.raises(StatusError) as exc:
        apply_json_patch({}, b"[")
    assert exc.value.status.code == 400
    assert str(exc.value).startswith("error decoding patch: ")


def test_too_many_operations_is_413() -> None:
    body = json.dumps([{"op": "test", "path": "", "value": {}}] * (MAX_JSON_PATCH_OPERATIONS + 1))
    with pytest.raises(StatusError) as exc:
        decode_json_patch(body)
    assert exc.value.status.code == 413
    assert str(exc.value) == (
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, "
        "got 10001"
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(st.text(max_size=4), json_values, max_size=4), st.text(max_size=4), json_values
)
def test_add_then_remove_restores(doc: dict[str, Any], key: str, value: Any) -> None:
    pointer = "/" + escape_json_pointer(key)
    added = apply_json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
    assert added[key] == value
    if key not in doc:
        assert apply_json_patch(added, [{"op": "remove", "path": pointer}]) == doc


def test_json_patch_function() -> None:
    assert json_patch({"a": 1}, b'[{"op": "add", "path": "/b", "value": 2}]') == {"a": 1, "b": 2}
    with pytest.raises(StatusError) as exc:
        json_patch({"a": 1}, b'[{"op": "replace", "path": "", "value": 2}]')
    assert _rejected(exc) == "the patched document is not a JSON object"


# Differential test against the reference Python implementation (a kopf dependency).
_keys = st.sampled_from(["a", "b", "c/d", "e~f", "0", "1"])
_scalars = st.none() | st.integers(-3, 3) | st.text(alphabet="xyz", max_size=2)
_docs = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)
_tokens = st.lists(_keys | st.sampled_from(["-", "00", "2"]), max_size=3)


@st.composite
def _operations(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]))
    path = "".join("/" + escape_json_pointer(t) for t in draw(_tokens))
    out: dict[str, Any] = {"op": op, "path": path}
    if op in ("add", "replace", "test"):
        out["value"] = draw(_docs)
    if op in ("move", "copy"):
        out["from"] = "".join("/" + escape_json_pointer(t) for t in draw(_tokens))
    return out


@given(st.dictionaries(_keys, _docs, max_size=4), st.lists(_operations(), min_size=1, max_size=3))
def test_agrees_with_reference_implementation(
    doc: dict[str, Any], ops: list[dict[str, Any]]
) -> None:
    import jsonpatch  # type: ignore[import-untyped]

    try:
        expected = jsonpatch.apply_patch(doc, ops)
    except (
        jsonpatch.JsonPatchException,
        jsonpatch.JsonPointerException,
        TypeError,
        KeyError,
        IndexError,
    ):
        expected = None
    try:
        got = apply_json_patch(doc, ops)
    except StatusError:
        got = None
    if expected is None or got is None:
        # The reference accepts a few things RFC 6902 rejects (e.g. "00"); it must
        # never reject what we accept.
        assert not (expected is None and got is not None), (doc, ops, got)
        return
    assert got == expected
