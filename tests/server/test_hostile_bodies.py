"""Hostile request bodies (issue 15): no 5xx, no poisoned store, no amplification."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8swatch import MemoryStorage, StatusError
from k8swatch.server import ResourceSpec, create_app
from k8swatch.server._decode import MAX_NESTING_DEPTH, decode_json
from k8swatch.testing import ASGIClient

GV = "/apis/example.com/v1"
NS = f"{GV}/namespaces/default/widgets"
MERGE = {"content-type": "application/merge-patch+json"}
JSON_PATCH = {"content-type": "application/json-patch+json"}
COPY_ATTACK = json.dumps(
    [{"op": "copy", "from": "/spec", "path": f"/spec/c{i}"} for i in range(1, 19)]
).encode()


def make_client(max_body_bytes: int = 3 * 1024 * 1024) -> ASGIClient:
    storage = MemoryStorage("example.com/v1", "Widget", resource="widgets")
    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", storage)
    return ASGIClient(create_app([spec], max_body_bytes=max_body_bytes))


def nested(depth: int) -> str:
    """*depth* arrays, one inside the other."""
    return "[" * depth + "]" * depth


async def post(client: ASGIClient, body: bytes | str) -> Any:
    return await client.request("POST", NS, body=body, headers={"content-type": "application/json"})


async def create(client: ASGIClient, name: str, spec: Any) -> Any:
    response = await client.request("POST", NS, json={"metadata": {"name": name}, "spec": spec})
    assert response.status == 201, response
    return response.json()


async def assert_collection_readable(client: ASGIClient) -> None:
    """List, get and a watch with initial events all answer 200 and decode."""
    listing = await client.request("GET", NS)
    assert listing.status == 200, listing
    items = listing.json()["items"]
    for item in items:
        got = await client.request("GET", f"{NS}/{item['metadata']['name']}")
        assert got.status == 200, got
        assert got.json() == item
    async with client.stream("GET", f"{NS}?watch=1") as stream:
        assert stream.status == 200
        for _ in items:
            event = await stream.receive_json()
            assert event["type"] == "ADDED", event


def assert_bad_request(response: Any, *needles: str) -> None:
    assert response.status == 400, response
    status = response.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "BadRequest"
    for needle in needles:
        assert needle in status["message"], status["message"]


# -- the decoder ----------------------------------------------------------------


def test_decoder_accepts_pairs_and_escaped_backslashes() -> None:
    assert decode_json(b'{"a":"\\ud83d\\ude00"}', "ctx") == {"a": "\U0001f600"}
    assert decode_json(b'{"a":"\\\\ud800"}', "ctx") == {"a": "\\ud800"}
    assert decode_json(nested(MAX_NESTING_DEPTH), "ctx") is not None
    assert decode_json(b"[1" + b"0" * 300 + b"]", "ctx") == [10**300]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"a":"\\ud800"}', "lone surrogate \\ud800 at line 1 column 7"),
        (b'{"a":"\\ud800\\ud800\\udc00"}', "lone surrogate \\ud800 at line 1 column 7"),
        (b'{\n "a": "x\\udc00"}', "lone surrogate \\udc00 at line 2 column 9"),
        ('{"a":"\ud800"}', "lone surrogate at line 1 column 7"),
        (b'{"a":"\xff"}', "invalid UTF-8 at byte offset 6"),
        (b'{"a":"\xed\xa0\x80"}', "invalid UTF-8 at byte offset 6"),
        (b'{"a":NaN}', "NaN is not valid JSON"),
        (b'{"a":-Infinity}', "-Infinity is not valid JSON"),
        (b'{"a":1e999}', "out of range"),
        (b"1e999", "out of range"),
        (b'"\\ud800"', "lone surrogate \\ud800 at line 1 column 2"),
        (b'{"a":-1' + b"0" * 400 + b"}", "out of range"),
        (nested(MAX_NESTING_DEPTH + 1).encode(), f"more than {MAX_NESTING_DEPTH} levels"),
        (nested(10_000).encode(), f"more than {MAX_NESTING_DEPTH} levels"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, f"more than {MAX_NESTING_DEPTH} levels"),
    ],
)
def test_decoder_rejects(body: bytes | str, needle: str) -> None:
    with pytest.raises(StatusError) as caught:
        decode_json(body, "ctx")
    assert caught.value.status.code == 400
    assert caught.value.status.message.startswith("ctx: ")
    assert needle in caught.value.status.message


# -- one string poisons a collection (1) ----------------------------------------


async def test_lone_surrogate_is_refused_and_not_stored() -> None:
    client = make_client()
    await create(client, "good", {"x": 1})
    response = await post(client, b'{"metadata":{"name":"s1"},"spec":{"x":"\\ud800"}}')
    assert_bad_request(response, "lone surrogate \\ud800", "line 1 column 40 (char 39)")
    assert (await client.request("GET", f"{NS}/s1")).status == 404
    await assert_collection_readable(client)


async def test_lone_surrogate_in_update_and_patches_is_refused() -> None:
    client = make_client()
    await create(client, "a", {"x": "y"})
    put = await client.request(
        "PUT",
        f"{NS}/a",
        body=b'{"metadata":{"name":"a"},"spec":{"x":"\\udfff"}}',
        headers={"content-type": "application/json"},
    )
    assert_bad_request(put, "lone surrogate \\udfff")
    merge = await client.request(
        "PATCH", f"{NS}/a", body=b'{"spec":{"x":"\\ud800"}}', headers=MERGE
    )
    assert_bad_request(merge, "error decoding patch", "lone surrogate")
    patch = b'[{"op":"add","path":"/spec/z","value":"\\ud800"}]'
    jp = await client.request("PATCH", f"{NS}/a", body=patch, headers=JSON_PATCH)
    assert_bad_request(jp, "error decoding patch", "lone surrogate")
    got = await client.request("GET", f"{NS}/a")
    assert got.status == 200
    assert got.json()["spec"] == {"x": "y"}
    await assert_collection_readable(client)


async def test_invalid_utf8_names_the_byte_offset() -> None:
    client = make_client()
    response = await post(client, b'{"metadata":{"name":"u"},"spec":"\xc3\x28"}')
    assert_bad_request(response, "invalid UTF-8 at byte offset 33")


# -- deep nesting (2) -------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_deep_nesting_is_a_400_on_every_verb(opener: str) -> None:
    client = make_client()
    await create(client, "a", {})
    closer = "]" if opener == "[" else "}"
    deep = opener * 10_000 + ("" if opener == "[" else "1") + closer * 10_000
    body = '{"metadata":{"name":"a"},"spec":' + deep + "}"
    for method, path, headers, payload in [
        ("POST", NS, {"content-type": "application/json"}, body),
        ("POST", NS, {"content-type": "application/json"}, deep),
        ("PUT", f"{NS}/a", {"content-type": "application/json"}, body),
        ("PATCH", f"{NS}/a", MERGE, '{"spec":' + deep + "}"),
        ("PATCH", f"{NS}/a", JSON_PATCH, '[{"op":"add","path":"/spec/x","value":' + deep + "}]"),
    ]:
        response = await client.request(method, path, body=payload, headers=headers)
        assert_bad_request(response, f"more than {MAX_NESTING_DEPTH} levels")
    await assert_collection_readable(client)


async def test_nesting_up_to_the_limit_is_stored_and_served() -> None:
    client = make_client()
    # The object is one level: its spec may nest the rest.
    deepest = json.loads(nested(MAX_NESTING_DEPTH - 1))
    await create(client, "deep", deepest)
    too_deep = json.loads(nested(MAX_NESTING_DEPTH))
    response = await client.request(
        "POST", NS, json={"metadata": {"name": "deeper"}, "spec": too_deep}
    )
    assert_bad_request(response, f"more than {MAX_NESTING_DEPTH} levels")
    await assert_collection_readable(client)


async def test_json_patch_cannot_build_an_object_past_the_depth_limit() -> None:
    client = make_client()
    half = MAX_NESTING_DEPTH // 2 + 5
    chain: Any = 1
    for _ in range(half):
        chain = {"k": chain}
    await create(client, "a", chain)
    pointer = "/spec" + "/k" * (half - 1)
    ops = [{"op": "replace", "path": pointer, "value": chain}]
    response = await client.request("PATCH", f"{NS}/a", body=json.dumps(ops), headers=JSON_PATCH)
    assert response.status == 422, response
    assert f"more than {MAX_NESTING_DEPTH} levels" in response.body.decode()
    got = await client.request("GET", f"{NS}/a")
    assert got.json()["spec"] == chain
    await assert_collection_readable(client)


# -- JSON Patch amplification (3) -------------------------------------------------


async def test_copy_amplification_is_cut_off_quickly() -> None:
    client = make_client()
    before = await create(client, "a", {"payload": "x" * 100})
    assert len(COPY_ATTACK) < 1000
    started = time.perf_counter()
    response = await client.request("PATCH", f"{NS}/a", body=COPY_ATTACK, headers=JSON_PATCH)
    elapsed = time.perf_counter() - started
    assert response.status == 422, response
    assert "accumulated size increase of copy" in response.json()["details"]["causes"][0]["message"]
    assert elapsed < 1.0
    got = await client.request("GET", f"{NS}/a")
    assert got.json() == before


async def test_patched_object_past_the_body_limit_is_a_413() -> None:
    client = make_client(max_body_bytes=10_000)
    before = await create(client, "a", {"payload": "x" * 1000})
    copies = [{"op": "copy", "from": "/spec", "path": f"/spec/c{i}"} for i in range(5)]
    response = await client.request("PATCH", f"{NS}/a", body=json.dumps(copies), headers=JSON_PATCH)
    assert response.status == 413, response
    assert response.json()["reason"] == "RequestEntityTooLarge"
    assert (await client.request("GET", f"{NS}/a")).json() == before


async def test_too_many_operations_is_a_413() -> None:
    client = make_client()
    await create(client, "a", {})
    ops = [{"op": "test", "path": "/spec", "value": {}}] * 10_001
    response = await client.request("PATCH", f"{NS}/a", body=json.dumps(ops), headers=JSON_PATCH)
    assert response.status == 413, response
    assert "maximum operations in a JSON patch is 10000" in response.body.decode()


# -- resourceVersion on create (7) ------------------------------------------------


@pytest.mark.parametrize("query", ["", "?dryRun=All"])
async def test_resource_version_on_create_is_a_400(query: str) -> None:
    client = make_client()
    response = await client.request(
        "POST", NS + query, json={"metadata": {"name": "rv", "resourceVersion": "5"}}
    )
    assert_bad_request(response, "resourceVersion should not be set on objects to be created")
    assert (await client.request("GET", f"{NS}/rv")).status == 404


# -- the invariant: what a storage accepted can always be served ---------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=()), max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(st.characters(exclude_categories=()), max_size=4), inner, max_size=4
        ),
    ),
    max_leaves=20,
)


@st.composite
def _deep(draw: st.DrawFn) -> Any:
    value = draw(_values)
    for _ in range(draw(st.integers(0, 2 * MAX_NESTING_DEPTH))):
        value = [value] if draw(st.booleans()) else {"d": value}
    return value


_names = st.sampled_from(["a", "b", "c"])
_pointers = st.sampled_from(["/spec", "/spec/x", "/spec/0", "/spec/-", "/metadata/labels", ""])
_requests = st.one_of(
    st.tuples(st.just("POST"), _names, _deep()),
    st.tuples(st.just("PUT"), _names, _deep()),
    st.tuples(st.just("MERGE"), _names, _deep()),
    st.tuples(
        st.just("JSON"),
        _names,
        st.lists(
            st.fixed_dictionaries(
                {
                    "op": st.sampled_from(["add", "replace", "copy", "move", "test", "remove"]),
                    "path": _pointers,
                    "from": _pointers,
                    "value": _deep(),
                }
            ),
            max_size=4,
        ),
    ),
    st.tuples(st.just("RAW"), _names, st.binary(max_size=64)),
)


def _request(kind: str, name: str, value: Any) -> tuple[str, str, dict[str, str], bytes]:
    if kind == "RAW":
        return "POST", NS, {"content-type": "application/json"}, value
    # json.dumps writes lone surrogates as \udXXX escapes, NaN and Infinity bare.
    if kind == "POST":
        body = {"metadata": {"name": name}, "spec": value}
        return "POST", NS, {"content-type": "application/json"}, json.dumps(body).encode()
    if kind == "PUT":
        body = {"metadata": {"name": name}, "spec": value}
        return (
            "PUT",
            f"{NS}/{name}",
            {"content-type": "application/json"},
            json.dumps(body).encode(),
        )
    if kind == "MERGE":
        return "PATCH", f"{NS}/{name}", MERGE, json.dumps({"spec": value}).encode()
    return "PATCH", f"{NS}/{name}", JSON_PATCH, json.dumps(value).encode()


@settings(max_examples=60)
@given(st.lists(_requests, min_size=1, max_size=6))
def test_whatever_was_accepted_can_be_served(requests: list[tuple[str, str, Any]]) -> None:
    async def body() -> None:
        client = make_client()
        await create(client, "a", {"x": 1})
        for kind, name, value in requests:
            method, path, headers, payload = _request(kind, name, value)
            response = await client.request(method, path, body=payload, headers=headers)
            assert response.status < 500, (kind, response)
            assert response.json()["kind"] in ("Status", "Widget"), response
        await assert_collection_readable(client)

    for backend in ("asyncio", "trio"):
        anyio.run(body, backend=backend)
