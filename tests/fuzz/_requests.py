"""Hypothesis strategies for hostile HTTP requests against a k8swatch app.

A request is a method, a raw path with a raw query string (percent-encoded
by hand, so invalid escapes and encoded slashes reach the server), headers
and a body. The paths are mostly real ones (the served group, its
resources, discovery and OpenAPI) with hostile segments mixed in; the bodies
are objects, merge patches, JSON patches and strategic merge patches with
lone surrogates, huge and negative numbers, deep nesting and raw bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st


@dataclass(frozen=True)
class Request:
    """One generated request: *target* is the raw path and query string."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # What the answer must be, for the known attacks (any sound answer if empty).
    expected: tuple[int, ...] = ()

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return (
            f"Request({self.method!r}, {self.target!r}, headers={self.headers!r}, "
            f"body={body!r} ({len(self.body)} bytes))"
        )

    @property
    def is_watch(self) -> bool:
        """Whether the server may answer with a stream that only ends on a timeout."""
        return "watch" in self.target.lower()


@dataclass(frozen=True)
class Target:
    """What the generated requests aim at: one group/version and its resources."""

    group: str
    version: str
    namespaced: tuple[str, ...]
    cluster: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ("default",)
    names: tuple[str, ...] = ("a",)


_HOSTILE_SEGMENTS = [
    "",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "%",
    "%zz",
    "%ed%a0%80",
    "%ff%fe",
    "%00",
    "\u00e9",
    "a" * 300,
    "-1",
    "9" * 40,
    "watch",
    "status",
    "scale",
    "namespaces",
    "proxy",
    "\ud800",
]
_INTEGERS = [
    "0",
    "1",
    "-1",
    "-9223372036854775809",
    "9223372036854775807",
    "9223372036854775808",
    "1e400",
    "NaN",
    "0x10",
    " 1",
    "",
]
_QUERY_KEYS = [
    "watch",
    "resourceVersion",
    "resourceVersionMatch",
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "timeoutSeconds",
    "allowWatchBookmarks",
    "sendInitialEvents",
    "fieldManager",
    "dryRun",
    "pretty",
    "propagationPolicy",
    "gracePeriodSeconds",
    "includeObject",
    "as",
]
_QUERY_VALUES = [
    "true",
    "false",
    "1",
    "0",
    "NotOlderThan",
    "Exact",
    "All",
    "x=y",
    "x in (a,b),!y",
    "metadata.name=a",
    "metadata.namespace!=default",
    "spec.x=1",
    "a notin (",
    "x=\\",
    "Table",
    "Object",
    "None",
    "eyJ2IjoxfQ",
    "not-base64!",
]
_CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    ";;;",
]
_ACCEPTS = [
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/json;as=Unknown;v=v9;g=example.com",
    "application/vnd.kubernetes.protobuf",
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/yaml",
    "*/*",
    "text/html",
    "",
    ";q=x",
]
_VERBS = ["GET", "GET", "POST", "POST", "PUT", "PATCH", "PATCH", "PATCH", "DELETE"]
_PATCH_TYPES = [
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
]
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "BREW"]

# Header values travel over HTTP/1.1 in the live run: printable ASCII without
# the leading or trailing blanks h11 refuses to send.
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)


def _text() -> st.SearchStrategy[str]:
    """Strings with lone surrogates, NULs, controls and long runs."""
    return st.one_of(
        st.text(max_size=20),
        st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u202e", "\ufeff", "x" * 5000, ""]),
    )


def _numbers() -> st.SearchStrategy[object]:
    return st.one_of(
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**400)]),
        st.floats(allow_nan=False, allow_infinity=False),
    )


def _json_values() -> st.SearchStrategy[object]:
    leaves = st.one_of(st.none(), st.booleans(), _numbers(), _text())
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(_text(), inner, max_size=4)
        ),
        max_leaves=12,
    )


def _dumps(value: object) -> bytes:
    # ensure_ascii writes lone surrogates as \udXXX escapes: valid JSON text
    # that no UTF-8 encoder can write back.
    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([100, 999, 1001, 5000, 10_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["top", "spec", "metadata"]))
    if where == "top":
        return inner.encode()
    if where == "spec":
        return ('{"metadata":{"name":"deep"},"spec":' + inner + "}").encode()
    return ('{"metadata":{"name":"deep","labels":' + inner + "}}").encode()


def _objects(target: Target) -> st.SearchStrategy[dict[str, object]]:
    names = st.one_of(st.sampled_from(target.names), _text())
    metadata = st.fixed_dictionaries(
        {"name": names},
        optional={
            "namespace": st.one_of(st.sampled_from(target.namespaces), _text()),
            "labels": st.one_of(
                st.dictionaries(st.sampled_from(["x", "y", "a/b"]), _text(), max_size=3),
                _json_values(),
            ),
            "annotations": st.dictionaries(_text(), _text(), max_size=2),
            "resourceVersion": st.one_of(st.sampled_from(_INTEGERS), _text(), _numbers()),
            "generateName": _text(),
            "uid": _text(),
            "finalizers": st.lists(_text(), max_size=2),
            "deletionTimestamp": _text(),
        },
    )
    return st.fixed_dictionaries(
        {"metadata": st.one_of(metadata, _json_values())},
        optional={
            "apiVersion": st.one_of(st.just(f"{target.group}/{target.version}"), _text()),
            "kind": _text(),
            "spec": _json_values(),
            "status": _json_values(),
        },
    )


def _pointers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            ["", "/", "/spec", "/spec/x", "/metadata/labels/x", "/metadata/name", "/spec/-"]
        ),
        st.sampled_from(["/spec/0", "/spec/~2", "/spec/~1", "/a/b/c", "spec", "/status"]),
        _text(),
    )


def _json_patches() -> st.SearchStrategy[object]:
    op = st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"])},
        optional={"path": _pointers(), "from": _pointers(), "value": _json_values()},
    )
    return st.one_of(st.lists(op, max_size=6), _json_values())


@st.composite
def _copy_chain(draw: st.DrawFn) -> bytes:
    """The doubling JSON patch: every ``copy`` of ``/spec`` into itself doubles it.

    At most 18 copies (about 60 MB unbounded): enough to show the blow-up
    without taking the machine's memory.
    """
    return copy_chain(draw(st.integers(0, 18)))


def copy_chain(count: int) -> bytes:
    """A JSON patch of *count* self-copies of ``/spec``."""
    ops: list[dict[str, object]] = [{"op": "add", "path": "/spec", "value": {"x": "y" * 16}}]
    ops += [{"op": "copy", "from": "/spec", "path": f"/spec/c{i}"} for i in range(count)]
    return _dumps(ops)


def known_attacks(target: Target) -> list[Request]:
    """The hostile requests of issue 15, tried on every run, and their answers."""
    gv = f"/apis/{target.group}/{target.version}"
    collection = f"{gv}/namespaces/{target.namespaces[0]}/{target.namespaced[0]}"
    item = f"{collection}/{target.names[0]}"
    json_type = {"content-type": "application/json"}
    merge_type = {"content-type": "application/merge-patch+json"}
    deep = "[" * 10_000 + "]" * 10_000
    bad = (400,)
    return [
        # a lone surrogate is valid JSON text that no UTF-8 encoder writes back
        Request(
            "POST", collection, json_type, rb'{"metadata":{"name":"s1"},"spec":{"x":"\ud800"}}', bad
        ),
        Request("PATCH", item, merge_type, rb'{"spec":{"x":"\udfff"}}', bad),
        Request("POST", collection, json_type, b'{"metadata":{"name":"\xed\xa0\x80"}}', bad),
        # nesting past any sane limit, inside spec and at the top
        Request(
            "POST",
            collection,
            json_type,
            f'{{"metadata":{{"name":"d"}},"spec":{deep}}}'.encode(),
            bad,
        ),
        Request("PUT", item, json_type, deep.encode(), bad),
        Request(
            "PATCH",
            item,
            merge_type,
            ('{"spec":' + '{"a":' * 10_000 + "1" + "}" * 10_001).encode(),
            bad,
        ),
        # every copy doubles the object: a patch must not build what no request could send
        Request(
            "PATCH",
            item,
            {"content-type": "application/json-patch+json"},
            copy_chain(18),
            (413, 422),
        ),
        # a resourceVersion on create is the client's mistake, not the server's
        Request(
            "POST",
            collection,
            json_type,
            b'{"metadata":{"name":"rv","resourceVersion":"1"},"spec":{}}',
            bad,
        ),
    ]


def _bodies(target: Target) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(b""),
        _objects(target).map(_dumps),
        _objects(target).map(_dumps),
        _objects(target).map(_dumps),
        _json_patches().map(_dumps),
        _json_values().map(_dumps),
        _json_patches().map(_dumps),
        _copy_chain(),
        _deep(),
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"\xff\xfe{}",
                b'{"metadata":{"name":"\xed\xa0\x80"}}',
                b'{"metadata":{"name":"a"}',
                b'{"metadata":{"name":"a","name":"b"}}',
                b"null",
                b"[]",
                b'"\\ud800"',
                b"1e999999",
                b"-0",
                b"apiVersion: v1\nkind: X\n",
            ]
        ),
    )


def _percent(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def _paths(draw: st.DrawFn, target: Target) -> str:
    gv = f"/apis/{target.group}/{target.version}"
    segment = st.one_of(
        st.sampled_from(target.names),
        st.sampled_from(target.names),
        st.sampled_from(target.names),
        st.sampled_from(_HOSTILE_SEGMENTS).map(
            lambda s: _percent(s) if s in ("\ud800", "\u00e9") else s
        ),
        _text().map(_percent),
    )
    hostile = draw(st.integers(0, 4)) == 0  # one path in five has a hostile part
    namespace = (
        st.one_of(st.sampled_from(target.namespaces), segment)
        if hostile
        else st.sampled_from(target.namespaces)
    )
    resources = target.namespaced + target.cluster
    resource = (
        st.one_of(st.sampled_from(resources), segment) if hostile else st.sampled_from(resources)
    )
    if not hostile:
        segment = st.sampled_from(target.names)
    kind = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 7, 8, 9]))
    if kind == 0:
        return draw(
            st.sampled_from(
                [
                    "/",
                    "/api",
                    "/api/v1",
                    "/apis",
                    f"/apis/{target.group}",
                    gv,
                    "/version",
                    "/healthz",
                    "/readyz",
                    "/livez",
                    "/openapi/v2",
                    "/openapi/v3",
                    f"/openapi/v3/apis/{target.group}/{target.version}",
                    "/metrics",
                    "//",
                    "/apis//",
                ]
            )
        )
    if kind == 1:
        return "/" + "/".join(draw(st.lists(segment, max_size=8)))
    if kind in (2, 3):
        return f"{gv}/namespaces/{draw(namespace)}/{draw(resource)}"
    if kind in (4, 5):
        return f"{gv}/namespaces/{draw(namespace)}/{draw(resource)}/{draw(segment)}"
    if kind == 6:
        sub = draw(st.sampled_from(["status", "scale", "x", ""]))
        return f"{gv}/namespaces/{draw(namespace)}/{draw(resource)}/{draw(segment)}/{sub}"
    if kind == 7:
        return f"{gv}/{draw(resource)}" + draw(st.sampled_from(["", f"/{draw(segment)}"]))
    if kind == 8:
        return f"{gv}/watch/namespaces/{draw(namespace)}/{draw(resource)}"
    return f"{gv}/{draw(segment)}/{draw(segment)}"


@st.composite
def _query(draw: st.DrawFn) -> str:
    key = st.one_of(st.sampled_from(_QUERY_KEYS), _text().map(_percent))
    value = st.one_of(
        st.sampled_from(_QUERY_VALUES + _INTEGERS).map(_percent),
        _text().map(_percent),
        st.sampled_from(["%", "%zz", "%ff", "%ed%a0%80", "a=b", "&&", "%00"]),
    )
    sane = st.one_of(
        st.sampled_from(["watch"]).map(lambda k: (k, "1")),
        st.tuples(st.sampled_from(_QUERY_KEYS), st.sampled_from(_QUERY_VALUES + _INTEGERS)),
    )
    pairs = draw(
        st.one_of(
            st.just([]),
            st.lists(sane, max_size=3),
            st.lists(st.tuples(key, value), max_size=5),
        )
    )
    parts = [f"{k}={v}" for k, v in pairs]
    if any(k == "watch" for k, _ in pairs) or "watch" in parts:
        # a watch must end: the fuzzer closes it, and the server is told too
        parts.append(f"timeoutSeconds={draw(st.integers(0, 1))}")
    return "&".join(parts)


@st.composite
def _coherent(draw: st.DrawFn, target: Target) -> tuple[str, str]:
    """A verb and a path that fit: a create on a collection, a patch on an object."""
    gv = f"/apis/{target.group}/{target.version}"
    resource = draw(st.sampled_from(target.namespaced + target.cluster))
    collection = f"{gv}/{resource}"
    if resource in target.namespaced:
        collection = f"{gv}/namespaces/{draw(st.sampled_from(target.namespaces))}/{resource}"
    if draw(st.booleans()):
        return draw(st.sampled_from(["GET", "POST", "POST", "DELETE"])), collection
    item = f"{collection}/{draw(st.sampled_from(target.names))}"
    item += draw(st.sampled_from(["", "", "", "/status"]))
    return draw(st.sampled_from(["GET", "PUT", "PATCH", "PATCH", "DELETE"])), item


@st.composite
def requests(draw: st.DrawFn, target: Target) -> Request:
    """One hostile request aimed at *target*."""
    if draw(st.integers(0, 3)) != 0:
        method, path = draw(_coherent(target))
    else:
        method = draw(st.one_of(st.sampled_from(_VERBS), st.sampled_from(_METHODS)))
        path = draw(_paths(target))
    query = draw(_query())
    headers: dict[str, str] = {}
    fitting = _PATCH_TYPES if method == "PATCH" else ["application/json"]
    content_type = draw(
        st.one_of(
            st.sampled_from(fitting),
            st.sampled_from(fitting),
            st.sampled_from(_CONTENT_TYPES),
            _header_text,
        )
    )
    if content_type:
        headers["content-type"] = content_type
    accept = draw(st.one_of(st.just("application/json"), st.sampled_from(_ACCEPTS), _header_text))
    if accept:
        headers["accept"] = accept
    if draw(st.booleans()):
        headers[
            draw(st.sampled_from(["x-a", "impersonate-user", "if-match", "accept-encoding"]))
        ] = draw(_header_text)
    body = draw(_bodies(target)) if method in ("POST", "PUT", "PATCH", "DELETE") else b""
    return Request(method, path + ("?" + query if query else ""), headers, body)
