"""Pure helpers of the server: ages, merge patch, Accept parsing, routing."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch.server import ResourceSpec, apply_merge_patch, human_duration, storage_verbs
from k8swatch.server._discovery import parse_accept
from k8swatch.server._routes import DiscoveryRoute, NamespacesRoute, ResourceRoute, match_path
from k8swatch.server._table import build_table, format_age


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (599, "9m59s"),
        (600, "10m"),
        (10799, "179m"),
        (10800, "3h"),
        (3 * 3600 + 25 * 60, "3h25m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (48 * 3600, "2d"),
        (2 * 86400 + 7 * 3600, "2d7h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (3 * 365 * 86400 + 20 * 86400, "3y20d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_format_age() -> None:
    now = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    assert format_age("2024-05-01T11:55:00Z", now) == "5m"
    assert format_age("2024-05-01T09:00:00+00:00", now) == "3h"
    assert format_age("2024-05-01T11:59:30", now) == "30s"
    assert format_age(None, now) == "<unknown>"
    assert format_age("0001-01-01T00:00:00Z", now) == "<unknown>"  # Go's zero time
    assert format_age(" 2024-05-01T11:55:00Z ", now) == "5m"
    assert format_age("yesterday", now) == "<unknown>"


def test_build_table_shape() -> None:
    now = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    obj = {"metadata": {"name": "a", "creationTimestamp": "2024-05-01T11:00:00Z"}}
    table = build_table([obj], resource_version="7", continue_token="c", now=now)
    assert table["metadata"] == {"resourceVersion": "7", "continue": "c"}
    assert table["rows"][0]["cells"] == ["a", "60m"]


# RFC 7386, appendix A.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: object, patch: object, result: object) -> None:
    assert apply_merge_patch(target, patch) == result


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values, json_values)
def test_merge_patch_does_not_modify_its_inputs(target: object, patch: object) -> None:
    import copy

    before = copy.deepcopy((target, patch))
    apply_merge_patch(target, patch)
    assert (target, patch) == before


@given(json_values, st.dictionaries(st.text(max_size=2), json_values, max_size=3))
def test_merge_patch_is_idempotent(target: object, patch: dict[str, object]) -> None:
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once


def test_parse_accept() -> None:
    ranges = parse_accept(
        'application/json;as=Table;v=v1;g=meta.k8s.io, application/json;q=0, */*;q="0.5"'
    )
    assert ranges[0].is_as("Table", "meta.k8s.io", "v1")
    assert [r.media_type for r in ranges] == ["application/json", "*/*"]
    assert ranges[1].accepts_json()
    assert parse_accept("")[0].media_type == "*/*"


def _resources() -> dict[tuple[str, str, str], ResourceSpec]:
    widgets = ResourceSpec("example.com", "v1", "widgets", "Widget", object())
    nodes = ResourceSpec("", "v1", "things", "Thing", object(), namespaced=False)
    return {("example.com", "v1", "widgets"): widgets, ("", "v1", "things"): nodes}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", DiscoveryRoute("root")),
        ("/version", DiscoveryRoute("version")),
        ("/livez", None),  # served by the health endpoints, before routing
        ("/apis/example.com/", DiscoveryRoute("group", group="example.com")),
        ("/api/v1/namespaces", NamespacesRoute()),
        ("/api/v1/namespaces/a/", NamespacesRoute("a")),
        ("/api/v1/watch/namespaces", NamespacesRoute(watch_path=True)),
        ("/apis/example.com/v1/namespaces/a", None),
        ("/apis/example.com/v1/watch", None),
        ("/api/v1/things/x", "things:/x"),
        ("/api/v1/namespaces/a/things", None),
        ("/apis/example.com/v1/widgets", "widgets:/"),
        ("/apis/example.com/v1/namespaces/a/widgets/b", "widgets:a/b"),
        ("/apis/example.com/v1/watch/namespaces/a/widgets/b", "widgets:a/b:watch"),
        ("/apis/example.com/v1/namespaces/a/widgets/b/status", None),
        ("/apis/example.com/v1/widgets/b/c", None),
    ],
)
def test_match_path(path: str, expected: object) -> None:
    route = match_path(path, _resources())
    if isinstance(route, ResourceRoute):
        text = f"{route.resource.plural}:{route.namespace}/{route.name}"
        route = text + (":watch" if route.watch_path else "")
    assert route == expected


def test_storage_verbs() -> None:
    class OnlyWatch:
        async def watch(self) -> None: ...

    assert storage_verbs(OnlyWatch()) == ("watch",)
    assert storage_verbs(object()) == ()
    spec = ResourceSpec("", "v1", "things", "Thing", OnlyWatch())
    assert spec.api_version == "v1"
    assert spec.singular == "thing"
    assert spec.list_kind == "ThingList"


def test_event_encoder_shares_bytes_and_evicts(monkeypatch: pytest.MonkeyPatch) -> None:
    from k8swatch import Event, EventType, Status
    from k8swatch.server import EventEncoder
    from k8swatch.server._stream import table_format

    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", object())
    encoder = EventEncoder(maxsize=2)
    obj = {"metadata": {"name": "a", "resourceVersion": "3"}}
    added = Event(EventType.ADDED, obj)
    first = encoder.encode(added, spec)
    assert encoder.encode(Event(EventType.ADDED, obj), spec) is first  # same object, new event
    assert encoder.encode_count == 1
    assert first == (
        b'{"type":"ADDED","object":{"apiVersion":"example.com/v1","kind":"Widget",'
        b'"metadata":{"name":"a","resourceVersion":"3"}}}\n'
    )
    encoder.encode(Event(EventType.MODIFIED, obj), spec)  # another type: another line
    assert encoder.encode_count == 2
    encoder.encode(Event(EventType.DELETED, obj), spec)  # evicts the oldest entry
    encoder.encode(added, spec)
    assert encoder.encode_count == 4

    # Tables carry an age: reused for a second at most.
    clock = [100.0]
    monkeypatch.setattr("k8swatch.server._stream.time.monotonic", lambda: clock[0])
    table = encoder.encode(added, spec, table_format("None"))
    assert encoder.encode(added, spec, table_format("None")) is table
    clock[0] += 5
    assert encoder.encode(added, spec, table_format("None")) is not table
    assert b'"kind":"Table"' in table

    error = Event(EventType.ERROR, Status(code=410, reason="Expired", message="too old"))
    assert b'"code":410' in encoder.encode(error, spec, table_format("None"))


def test_event_encoder_joins_a_batch_once_for_every_watcher_that_gets_it() -> None:
    from k8swatch import Event, EventType
    from k8swatch.server import EventEncoder

    spec = ResourceSpec("example.com", "v1", "widgets", "Widget", object())
    encoder = EventEncoder()
    events = [
        Event(EventType.ADDED, {"metadata": {"name": n, "resourceVersion": str(i)}})
        for i, n in enumerate("abcd", start=1)
    ]
    data, error = encoder.encode_batch(events, spec)
    assert not error
    assert data == b"".join(encoder.encode(event, spec) for event in events)
    assert encoder.encode_count == 4
    again, _ = encoder.encode_batch(list(events), spec)  # another list, the same events
    assert again is data
    assert encoder.encode_count == 4
    # The same first and last event and length, another one in between: other bytes.
    other = [events[0], events[2], events[1], events[3]]
    swapped, _ = encoder.encode_batch(other, spec)
    assert swapped == b"".join(encoder.encode(event, spec) for event in other)
    assert swapped != data
    failed = Event(EventType.ERROR, {"kind": "Status", "code": 410})
    _, error = encoder.encode_batch([events[0], failed], spec)
    assert error
