"""The graceful-deletion rules of ``_finalizers``: pure functions, no storage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch._finalizers import (
    PROPAGATION_POLICIES,
    DeletePreconditions,
    check_delete_options,
    check_delete_preconditions,
    check_finalizers_update,
    deletes_on_update,
    finalizers_of,
    is_deleting,
    keep_deletion_fields,
    plan_delete,
    strip_deletion_fields,
)
from k8swatch._status import StatusError

NOW = "2026-01-02T03:04:05Z"
EARLIER = "2025-12-31T00:00:00Z"


def widget(**metadata: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "w",
        "namespace": "default",
        "uid": "u-1",
        "resourceVersion": "7",
        "generation": 3,
    }
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {**base, **metadata}}


def test_delete_without_finalizers_deletes_now() -> None:
    plan = plan_delete(widget(), now=NOW)
    assert plan.delete_now
    assert plan.object is None


def test_delete_with_finalizers_marks_and_bumps_generation() -> None:
    stored = widget(finalizers=["example.com/keep"])
    plan = plan_delete(stored, now=NOW)
    assert not plan.delete_now
    assert plan.changed
    assert plan.object is not None
    meta = plan.object["metadata"]
    assert meta["deletionTimestamp"] == NOW
    assert meta["deletionGracePeriodSeconds"] == 0
    assert meta["generation"] == 4
    assert meta["finalizers"] == ["example.com/keep"]
    assert "deletionTimestamp" not in stored["metadata"]  # the argument is not mutated


def test_repeated_delete_changes_nothing() -> None:
    stored = widget(
        finalizers=["example.com/keep"], deletionTimestamp=EARLIER, deletionGracePeriodSeconds=0
    )
    plan = plan_delete(stored, now=NOW)
    assert not plan.delete_now
    assert not plan.changed
    assert plan.object == stored


def test_preconditions_met_pass() -> None:
    check_delete_preconditions(
        widget(), DeletePreconditions(uid="u-1", resource_version="7"), kind="Widget"
    )
    check_delete_preconditions(widget(), None, kind="Widget")
    check_delete_preconditions(widget(), DeletePreconditions(), kind="Widget")


def test_uid_precondition_conflicts_in_apiserver_words() -> None:
    with pytest.raises(StatusError) as exc:
        check_delete_preconditions(
            widget(), DeletePreconditions(uid="other"), kind="Widget", group="example.com"
        )
    status = exc.value.status
    assert (status.code, status.reason) == (409, "Conflict")
    assert status.message == (
        'Operation cannot be fulfilled on Widget.example.com "w": the UID in the precondition '
        "(other) does not match the UID in record (u-1). The object might have been deleted "
        "and then recreated"
    )


def test_resource_version_precondition_conflicts() -> None:
    with pytest.raises(StatusError) as exc:
        check_delete_preconditions(
            widget(), DeletePreconditions(resource_version="6"), kind="Widget"
        )
    assert exc.value.status.code == 409
    assert exc.value.status.message.endswith(
        "the ResourceVersion in the precondition (6) does not match the ResourceVersion in "
        "record (7). The object might have been modified"
    )


def test_preconditions_from_dict() -> None:
    assert DeletePreconditions.from_dict(None) == DeletePreconditions()
    assert not DeletePreconditions.from_dict({})
    parsed = DeletePreconditions.from_dict({"uid": "a", "resourceVersion": "5"})
    assert parsed == DeletePreconditions(uid="a", resource_version="5")
    assert parsed


@pytest.mark.parametrize("policy", [None, *PROPAGATION_POLICIES])
def test_valid_propagation_policies_pass(policy: str | None) -> None:
    check_delete_options(policy)


def test_unknown_propagation_policy_is_invalid() -> None:
    with pytest.raises(StatusError) as exc:
        check_delete_options("Sideways")
    status = exc.value.status
    assert (status.code, status.reason) == (422, "Invalid")
    assert status.message == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
        '"Sideways": supported values: "Foreground", "Background", "Orphan", "nil"'
    )


def test_policy_with_orphan_dependents_is_invalid() -> None:
    with pytest.raises(StatusError) as exc:
        check_delete_options("Background", orphan_dependents=True)
    assert "orphanDependents and deletionPropagation cannot be both set" in (
        exc.value.status.message
    )


def test_new_finalizer_on_deleting_object_is_forbidden() -> None:
    old = widget(finalizers=["a"], deletionTimestamp=NOW, deletionGracePeriodSeconds=0)
    new = widget(finalizers=["a", "z", "b"], deletionTimestamp=NOW)
    with pytest.raises(StatusError) as exc:
        check_finalizers_update(old, new, kind="Widget", group="example.com")
    status = exc.value.status
    assert (status.code, status.reason) == (422, "Invalid")
    assert status.message == (
        'Widget.example.com "w" is invalid: metadata.finalizers: Forbidden: no new finalizers '
        'can be added if the object is being deleted, found new finalizers []string{"b", "z"}'
    )
    assert status.details is not None
    assert status.details.causes[0].field == "metadata.finalizers"


def test_removing_finalizers_of_deleting_object_is_allowed() -> None:
    old = widget(finalizers=["a", "b"], deletionTimestamp=NOW)
    check_finalizers_update(old, widget(finalizers=["b"]), kind="Widget")
    check_finalizers_update(old, widget(), kind="Widget")


def test_finalizers_may_be_added_before_deletion() -> None:
    check_finalizers_update(widget(), widget(finalizers=["a"]), kind="Widget")


def test_update_cannot_start_a_deletion() -> None:
    with pytest.raises(StatusError) as exc:
        check_finalizers_update(widget(), widget(deletionTimestamp=NOW), kind="Widget")
    assert exc.value.status.message == (
        f'Widget "w" is invalid: metadata.deletionTimestamp: Invalid value: "{NOW}": '
        "field is immutable"
    )


def test_keep_deletion_fields_restores_the_stored_ones() -> None:
    old = widget(finalizers=["a"], deletionTimestamp=EARLIER, deletionGracePeriodSeconds=0)
    new = widget(finalizers=["a"])
    kept = keep_deletion_fields(old, new)
    assert kept["metadata"]["deletionTimestamp"] == EARLIER
    assert kept["metadata"]["deletionGracePeriodSeconds"] == 0
    assert "deletionTimestamp" not in new["metadata"]
    changed = keep_deletion_fields(old, widget(finalizers=["a"], deletionTimestamp=NOW))
    assert changed["metadata"]["deletionTimestamp"] == EARLIER


def test_keep_deletion_fields_leaves_a_live_object_alone() -> None:
    new = widget(deletionTimestamp=NOW)
    assert keep_deletion_fields(widget(), new) == new


def test_removing_last_finalizer_of_deleting_object_deletes() -> None:
    old = widget(finalizers=["a"], deletionTimestamp=NOW, deletionGracePeriodSeconds=0)
    assert deletes_on_update(old, widget(finalizers=[]))
    assert deletes_on_update(old, widget())
    assert not deletes_on_update(old, widget(finalizers=["a"]))
    assert not deletes_on_update(widget(finalizers=["a"]), widget())
    graceful = widget(finalizers=["a"], deletionTimestamp=NOW, deletionGracePeriodSeconds=30)
    assert not deletes_on_update(graceful, widget())


def test_strip_deletion_fields() -> None:
    obj = widget(deletionTimestamp=NOW, deletionGracePeriodSeconds=5)
    stripped = strip_deletion_fields(obj)
    assert "deletionTimestamp" not in stripped["metadata"]
    assert "deletionGracePeriodSeconds" not in stripped["metadata"]
    assert obj["metadata"]["deletionTimestamp"] == NOW


def test_accessors_tolerate_odd_metadata() -> None:
    assert finalizers_of({}) == ()
    assert finalizers_of({"metadata": {"finalizers": "nope"}}) == ()
    assert not is_deleting({"metadata": None})
    assert plan_delete({"metadata": "x"}, now=NOW).delete_now


@given(
    old=st.lists(st.sampled_from("abcde"), unique=True),
    new=st.lists(st.sampled_from("abcde"), unique=True),
)
def test_deleting_object_accepts_exactly_the_subsets(old: list[str], new: list[str]) -> None:
    stored = widget(finalizers=old, deletionTimestamp=NOW, deletionGracePeriodSeconds=0)
    updated = widget(finalizers=new)
    if set(new) <= set(old):
        check_finalizers_update(stored, updated, kind="Widget")
        assert deletes_on_update(stored, updated) == (not new)
    else:
        with pytest.raises(StatusError):
            check_finalizers_update(stored, updated, kind="Widget")
