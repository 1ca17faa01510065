"""FakeCoderState without I/O: plain sync tests, time moved by hand through the clock.

The state is the fake Coder minus HTTP: operations take what a request carries and
return records, a listener sees every change, and ``async`` builds progress only when
the injected clock has moved and `advance()` is called.
"""

from __future__ import annotations

from typing import Literal

import pytest

from k8swatch.coder._fake_model import FakeCoderChange, FakeCoderError, parse_time
from k8swatch.coder._fake_render import render_workspace
from k8swatch.coder._fake_state import FakeCoderState

TEMPLATE_ID = "7e3a9c10-2b4d-4f6a-8c1e-5d7f9a0b1c20"
WORKSPACE_ID = "3b5d7f90-4c6e-4a8b-9c0d-1e2f3a4b5c50"
UNKNOWN_ID = "0badc0de-0000-4000-8000-000000000000"


class ManualClock:
    """A clock the test moves by hand (POSIX seconds)."""

    def __init__(self, start: str = "2026-01-01T12:00:01Z") -> None:
        self.now = parse_time(start) / 1_000_000

    def __call__(self) -> float:
        return self.now


def seeded_state(
    clock: ManualClock,
    *,
    build_mode: Literal["instant", "async"] = "instant",
    build_step_seconds: float = 1.0,
) -> tuple[FakeCoderState, list[str]]:
    """A seeded state and the list its changes are recorded in (``kind action``)."""
    state = FakeCoderState.create(
        clock, build_mode=build_mode, build_step_seconds=build_step_seconds
    )
    state.seed_demo_data()
    seen: list[str] = []

    def record(change: FakeCoderChange) -> None:
        seen.append(f"{change.kind} {change.action}")

    state.add_listener(record)
    return state, seen


def test_async_build_progresses_only_as_the_clock_moves() -> None:
    clock = ManualClock()
    state, seen = seeded_state(clock, build_mode="async", build_step_seconds=10)
    workspace = state.workspaces.create("alice", {"name": "fresh", "template_id": TEMPLATE_ID})
    assert state.workspaces.status(workspace) == "pending"
    assert seen == ["workspace created"]
    assert state.seconds_until_next_step() == pytest.approx(10)

    assert state.advance() == 0  # the clock has not moved: nothing is due
    clock.now += 11
    assert state.advance() == 1
    assert state.workspaces.status(workspace) == "starting"
    assert state.seconds_until_next_step() == pytest.approx(9)

    clock.now += 30  # past the last step: it is stamped when it was due, not now
    assert state.advance() == 1
    assert state.workspaces.status(workspace) == "running"
    assert state.seconds_until_next_step() is None
    assert seen == ["workspace created", "workspace updated", "workspace updated"]
    # The workspace was stamped at 12:00:01, its build a microsecond later.
    rendered = render_workspace(state.store, workspace)
    assert rendered["latest_build"]["job"]["started_at"] == "2026-01-01T12:00:11.000001Z"
    assert rendered["latest_build"]["job"]["completed_at"] == "2026-01-01T12:00:21.000001Z"
    assert rendered["updated_at"] == "2026-01-01T12:00:21.000001Z"


def test_a_second_build_while_one_is_active_is_a_conflict() -> None:
    clock = ManualClock()
    state, _ = seeded_state(clock, build_mode="async", build_step_seconds=10)
    state.workspaces.create_build(WORKSPACE_ID, {"transition": "stop"})
    with pytest.raises(FakeCoderError) as caught:
        state.workspaces.create_build(WORKSPACE_ID, {"transition": "start"})
    assert (caught.value.status, caught.value.message) == (
        409,
        "A workspace build is already active.",
    )
    clock.now += 30
    assert state.advance() == 2
    build = state.workspaces.create_build(WORKSPACE_ID, {"transition": "start"})
    assert build.build_number == 5
    assert state.workspaces.build_transitions[WORKSPACE_ID] == ["stop", "start"]


def test_stop_transition_in_instant_mode() -> None:
    state, seen = seeded_state(ManualClock())
    workspace = state.store.workspaces[WORKSPACE_ID]
    assert state.workspaces.status(workspace) == "running"
    build = state.workspaces.create_build(WORKSPACE_ID, {"transition": "stop"})
    assert (build.build_number, build.transition, build.job.status) == (4, "stop", "succeeded")
    assert state.store.latest_build(workspace) is build
    assert state.workspaces.status(workspace) == "stopped"
    assert build.deadline is None  # only a start build gets one
    assert workspace.updated_at == build.updated_at == parse_time("2026-01-01T12:00:01Z")
    assert seen == ["workspace updated"]


def test_delete_build_deletes_the_workspace_once_it_succeeds() -> None:
    clock = ManualClock()
    state, seen = seeded_state(clock, build_mode="async", build_step_seconds=1)
    state.workspaces.create_build(WORKSPACE_ID, {"transition": "delete"})
    clock.now += 1
    state.advance()
    assert state.workspaces.status(state.store.workspaces[WORKSPACE_ID]) == "deleting"
    assert state.store.workspace_by_id(WORKSPACE_ID).deleted is False
    clock.now += 1
    state.advance()
    with pytest.raises(FakeCoderError) as caught:
        state.store.workspace_by_id(WORKSPACE_ID)
    assert caught.value.status == 410
    assert state.workspaces.search("", 0, 0) == ([], 0)
    assert seen == ["workspace updated", "workspace updated", "workspace deleted"]


def test_unknown_template_is_an_error_that_changes_nothing() -> None:
    state, seen = seeded_state(ManualClock())
    with pytest.raises(FakeCoderError) as caught:
        state.workspaces.create("alice", {"name": "fresh", "template_id": UNKNOWN_ID})
    assert caught.value.status == 400
    assert caught.value.to_body() == {
        "message": f'Template "{UNKNOWN_ID}" doesn\'t exist.',
        "validations": [{"field": "template_id", "detail": "template not found"}],
    }
    assert list(state.store.workspaces) == [WORKSPACE_ID]
    assert seen == []


def test_timestamps_strictly_increase_with_a_frozen_clock() -> None:
    state, _ = seeded_state(ManualClock("2026-01-01T12:00:00Z"))
    stamps = [state.store.stamp() for _ in range(3)]
    assert stamps == [parse_time("2026-01-01T12:00:00Z") + n for n in (1, 2, 3)]
