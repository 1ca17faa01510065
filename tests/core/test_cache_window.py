"""The pure core of the watch cache: EventWindow arithmetic and continue tokens."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch import EventType, StatusError
from k8swatch._cache import decode_continue, encode_continue
from k8swatch._eventlog import with_resource_version
from k8swatch._window import EventWindow, Start, Wait


def obj(name: str, rv: int, **extra: Any) -> dict[str, Any]:
    return with_resource_version({"metadata": {"name": name}, **extra}, rv)


def filled(capacity: int, count: int) -> EventWindow:
    window = EventWindow(capacity)
    for rv in range(1, count + 1):
        window.add(rv, EventType.ADDED, f"k{rv}", obj(f"k{rv}", rv))
    return window


def test_window_evicts_and_tracks_resumable_from() -> None:
    window = filled(3, 5)
    assert len(window) == 3
    assert window.resource_version == 5
    assert window.resumable_from == 2
    assert window.start == 2
    assert window.end == 5
    assert [c.rv for c in window.changes_from(2) or []] == [3, 4, 5]
    assert window.changes_from(1) is None


def test_position_after_binary_search() -> None:
    window = filled(10, 25)
    assert window.position_after(15) == 15
    assert window.position_after(25) == 25
    too_old = window.position_after(14)
    assert isinstance(too_old, StatusError)
    assert too_old.status.code == 410
    assert str(too_old) == "too old resource version: 14 (15)"


def test_rvs_with_gaps() -> None:
    window = EventWindow(3)
    for rv in (10, 20, 30, 40):
        window.add(rv, EventType.ADDED, f"k{rv}", obj(f"k{rv}", rv))
    assert window.resumable_from == 10
    assert window.position_after(10) == 1
    assert window.position_after(25) == 2
    assert isinstance(window.position_after(9), StatusError)


def test_old_entries_are_ignored() -> None:
    window = filled(5, 3)
    assert window.add(2, EventType.ADDED, "x", obj("x", 2)) is None
    assert "x" not in window.objects


def test_compaction_keeps_positions() -> None:
    window = filled(10, 5000)
    assert window.start == 4990
    assert [c.rv for c in window.changes_from(4995) or []] == [
        4996,
        4997,
        4998,
        4999,
        5000,
    ]
    assert window.position_after(4995) == 4995


def test_state_at_undoes_newer_changes() -> None:
    window = EventWindow(10)
    window.add(1, EventType.ADDED, "a", obj("a", 1, v=1))
    window.add(2, EventType.ADDED, "b", obj("b", 2))
    window.add(3, EventType.MODIFIED, "a", obj("a", 3, v=2))
    window.add(4, EventType.DELETED, "b", obj("b", 4))
    state = window.state_at(2)
    assert not isinstance(state, StatusError)
    assert state["a"]["v"] == 1
    assert "b" in state
    state = window.state_at(3)
    assert not isinstance(state, StatusError)
    assert state["a"]["v"] == 2
    assert "b" in state
    assert window.state_at(4) is window.objects
    assert window.state_at(0) == {}


def test_state_at_too_old() -> None:
    window = filled(2, 5)
    assert isinstance(window.state_at(2), StatusError)


def test_reset_invalidates_cursors() -> None:
    window = filled(5, 5)
    epoch = window.epoch
    window.reset(42, {"x": obj("x", 40)})
    assert window.epoch == epoch + 1
    assert window.resource_version == 42
    assert window.resumable_from == 42
    assert window.changes_from(window.end) == []
    assert isinstance(window.position_after(41), StatusError)


def test_plan_watch() -> None:
    window = filled(3, 6)
    plan = window.plan_watch(4, exact=True, initial=False, minimum=0)
    assert plan == Start(position=4, after=4)
    assert isinstance(window.plan_watch(1, exact=True, initial=False, minimum=0), StatusError)
    assert window.plan_watch(100, exact=True, initial=False, minimum=0) == Start(6, 100)
    assert window.plan_watch(100, exact=True, initial=True, minimum=0) == Wait(100)
    assert window.plan_watch(0, exact=False, initial=True, minimum=7) == Wait(7)
    assert window.plan_watch(0, exact=False, initial=False, minimum=7) == Wait(7)
    start = window.plan_watch(0, exact=False, initial=True, minimum=0)
    assert isinstance(start, Start)
    assert start.after == 6
    assert [o["metadata"]["name"] for o in start.initial or ()] == sorted(window.objects)


@given(
    capacity=st.integers(1, 50),
    gaps=st.lists(st.integers(1, 5), min_size=0, max_size=200),
    probe=st.integers(0, 1200),
)
def test_position_after_matches_a_linear_scan(capacity: int, gaps: list[int], probe: int) -> None:
    window = EventWindow(capacity)
    rvs: list[int] = []
    rv = 0
    for gap in gaps:
        rv += gap
        rvs.append(rv)
        window.add(rv, EventType.ADDED, f"k{rv}", obj(f"k{rv}", rv))
    kept = rvs[-capacity:] if rvs else []
    evicted = rvs[: len(rvs) - len(kept)]
    resumable = evicted[-1] if evicted else 0
    result = window.position_after(probe)
    if probe < resumable:
        assert isinstance(result, StatusError)
        assert str(result) == f"too old resource version: {probe} ({resumable})"
    else:
        assert not isinstance(result, StatusError)
        changes = window.changes_from(result)
        assert changes is not None
        assert [c.rv for c in changes] == [r for r in kept if r > probe]


def test_continue_token_round_trip() -> None:
    token = encode_continue(12, "ns/a\x00")
    assert decode_continue(token) == (12, "ns/a\x00")
    assert "=" not in token


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("!!!", "illegal base64 data"),
        (base64.urlsafe_b64encode(b"not json").decode(), "continue key is not valid"),
        (base64.urlsafe_b64encode(b'{"v":"x","rv":1,"start":"a"}').decode(), "encoded version"),
        (
            base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":0,"start":"a"}').decode(),
            "incorrect encoded start resourceVersion",
        ),
        (
            base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":3,"start":""}').decode(),
            "encoded start key empty",
        ),
        (base64.urlsafe_b64encode(b"[1]").decode(), "not a JSON object"),
    ],
)
def test_bad_continue_tokens(token: str, detail: str) -> None:
    with pytest.raises(StatusError) as info:
        decode_continue(token)
    assert info.value.status.code == 400
    assert str(info.value).startswith("invalid continue token: continue key is not valid: ")
    assert detail in str(info.value)


@given(
    capacity=st.integers(1, 20),
    ops=st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60),
)
def test_state_at_matches_the_history(capacity: int, ops: list[tuple[str, bool]]) -> None:
    window = EventWindow(capacity)
    current: dict[str, dict[str, Any]] = {}
    history: list[dict[str, dict[str, Any]]] = [{}]  # history[rv] = state after rv
    for rv, (key, delete) in enumerate(ops, start=1):
        if key in current and delete:
            window.add(rv, EventType.DELETED, key, obj(key, rv))
            del current[key]
        else:
            kind = EventType.MODIFIED if key in current else EventType.ADDED
            current[key] = obj(key, rv)
            window.add(rv, kind, key, current[key])
        history.append(dict(current))
    for rv in range(len(history)):
        state = window.state_at(rv)
        if rv < window.resumable_from:
            assert isinstance(state, StatusError)
        else:
            assert state == history[rv]
