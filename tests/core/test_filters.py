"""filter_for_list_options, default_get_attrs and SelectionPredicate (watch-semantics §6.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch import (
    Event,
    EventType,
    FieldSelector,
    LabelSelector,
    ListOptions,
    StatusError,
    default_get_attrs,
    filter_for_list_options,
    parse_field_selector,
    parse_label_selector,
)
from k8swatch._filters import SelectionPredicate

from .strategies import k8s_objects, label_selectors, namespaces

ALL_TYPES = [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]


def template_event(
    name: str, namespace: str, labels: dict[str, str] | None, type_: EventType = EventType.ADDED
) -> Event[dict[str, Any]]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    return Event(type_, {"kind": "CoderTemplate", "metadata": metadata})


def passes(f: Any, event: Event[Any]) -> bool:
    result = f(event)
    if result is not None:
        assert result is event  # passed through untouched
    return result is not None


# --- TestFilterForListOptions -----------------------------------------------------------------


def test_no_namespace_and_no_options_returns_no_filter() -> None:
    assert filter_for_list_options("", None) is None
    assert filter_for_list_options("", ListOptions()) is None
    assert filter_for_list_options("", ListOptions(watch=True, resource_version="5")) is None


def test_namespace_filtering() -> None:
    f = filter_for_list_options("control-plane", None)
    assert f is not None
    assert passes(f, template_event("acme.match", "control-plane", None))
    assert not passes(f, template_event("acme.match", "other-namespace", None))
    assert not passes(f, template_event("acme.match", "", None))


def test_label_selector_filtering() -> None:
    f = filter_for_list_options("", ListOptions(label_selector="env=prod"))
    assert f is not None
    assert passes(f, template_event("acme.match", "", {"env": "prod"}))
    assert not passes(f, template_event("acme.match", "", {"env": "dev"}))
    assert not passes(f, template_event("acme.match", "", None))


def test_field_selector_filtering() -> None:
    f = filter_for_list_options("", ListOptions(field_selector="metadata.name=acme.match"))
    assert f is not None
    assert passes(f, template_event("acme.match", "", None))
    assert not passes(f, template_event("acme.other", "", None))


def test_combined_namespace_label_and_field_filtering() -> None:
    f = filter_for_list_options(
        "control-plane",
        ListOptions(label_selector="team=platform", field_selector="metadata.name=acme.match"),
    )
    assert f is not None
    assert passes(f, template_event("acme.match", "control-plane", {"team": "platform"}))
    assert not passes(f, template_event("acme.match", "other", {"team": "platform"}))
    assert not passes(f, template_event("acme.match", "control-plane", {"team": "ops"}))
    assert not passes(f, template_event("acme.other", "control-plane", {"team": "platform"}))


def test_field_selector_on_namespace() -> None:
    f = filter_for_list_options("", ListOptions(field_selector="metadata.namespace!=kube-system"))
    assert f is not None
    assert passes(f, template_event("a", "default", None))
    assert not passes(f, template_event("a", "kube-system", None))


def test_empty_selectors_only_scope_the_namespace() -> None:
    f = filter_for_list_options("ns", ListOptions(label_selector=" ", field_selector=","))
    assert f is not None
    assert passes(f, template_event("a", "ns", {"x": "y"}))


@pytest.mark.parametrize("type_", [EventType.BOOKMARK, EventType.ERROR])
def test_bookmark_and_error_pass_through_untouched(type_: EventType) -> None:
    f = filter_for_list_options(
        "ns", ListOptions(label_selector="a=b", field_selector="metadata.name=x")
    )
    assert f is not None
    bookmark = Event(type_, {"kind": "Widget", "metadata": {"resourceVersion": "12"}})
    assert f(bookmark) is bookmark
    status = Event(type_, {"kind": "Status", "code": 410})
    assert f(status) is status


def test_objects_without_metadata_pass_through() -> None:
    f = filter_for_list_options("ns", ListOptions(label_selector="a=b"))
    assert f is not None
    for obj in ({"kind": "Thing"}, object(), None, 42):
        event = Event(EventType.ADDED, obj)
        assert f(event) is event


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ListOptions(field_selector="spec.foo=bar"), "field label not supported: spec.foo"),
        (
            ListOptions(label_selector="x in ("),
            "unable to parse requirement: found '', expected: ',', ')' or identifier",
        ),
        (ListOptions(field_selector="x"), "invalid selector: 'x'; can't understand 'x'"),
        # label errors are reported before field errors, as the apiserver decodes them
        (
            ListOptions(label_selector="!", field_selector="spec.foo=bar"),
            "unable to parse requirement: found '', expected: identifier",
        ),
    ],
)
def test_bad_selectors_are_bad_requests(options: ListOptions, message: str) -> None:
    with pytest.raises(StatusError) as info:
        filter_for_list_options("", options)
    assert info.value.status.code == 400
    assert info.value.status.reason == "BadRequest"
    assert str(info.value) == message


def test_supported_fields_and_custom_get_attrs() -> None:
    def get_attrs(obj: Mapping[str, Any]) -> tuple[Mapping[str, str], Mapping[str, str]]:
        labels, fields = default_get_attrs(obj) or ({}, {})
        return labels, {**fields, "status.phase": obj.get("status", {}).get("phase", "")}

    options = ListOptions(field_selector="status.phase=Running")
    with pytest.raises(StatusError, match=r"field label not supported: status\.phase"):
        filter_for_list_options("", options, get_attrs=get_attrs)
    f = filter_for_list_options(
        "ns",
        options,
        get_attrs=get_attrs,
        supported_fields={"metadata.name", "metadata.namespace", "status.phase"},
    )
    assert f is not None
    running = {"metadata": {"name": "a", "namespace": "ns"}, "status": {"phase": "Running"}}
    pending = {"metadata": {"name": "b", "namespace": "ns"}, "status": {"phase": "Pending"}}
    elsewhere = {"metadata": {"name": "c", "namespace": "x"}, "status": {"phase": "Running"}}
    assert passes(f, Event(EventType.ADDED, running))
    assert not passes(f, Event(EventType.ADDED, pending))
    assert not passes(f, Event(EventType.ADDED, elsewhere))


# --- default_get_attrs ----------------------------------------------------------------------------


@attrs.define
class Meta:
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None


@attrs.define
class Obj:
    metadata: Any


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {"name": "a", "namespace": "ns", "labels": {"x": "1"}}},
        Obj(Meta("a", "ns", {"x": "1"})),
        Obj({"name": "a", "namespace": "ns", "labels": {"x": "1"}}),
    ],
)
def test_default_get_attrs_shapes(obj: Any) -> None:
    assert default_get_attrs(obj) == (
        {"x": "1"},
        {"metadata.name": "a", "metadata.namespace": "ns"},
    )


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {}},
        {"metadata": {"name": None, "labels": None}},
        Obj(Meta()),
        Obj(object()),
    ],
)
def test_default_get_attrs_missing_members(obj: Any) -> None:
    assert default_get_attrs(obj) == ({}, {"metadata.name": "", "metadata.namespace": ""})


@pytest.mark.parametrize("obj", [{"kind": "Status"}, {"metadata": None}, object(), None, "x"])
def test_default_get_attrs_without_metadata(obj: Any) -> None:
    assert default_get_attrs(obj) is None


# --- SelectionPredicate ------------------------------------------------------------


def test_selection_predicate() -> None:
    predicate = SelectionPredicate.from_list_options(
        "ns", ListOptions(label_selector="app=web", field_selector="metadata.name!=b")
    )
    assert predicate.namespace == "ns"
    assert predicate.label == parse_label_selector("app=web")
    assert predicate.field == parse_field_selector("metadata.name!=b")
    assert not predicate.empty
    web = {"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web"}}}
    assert predicate.matches(web)
    assert not predicate.matches(
        {"metadata": {"name": "b", "namespace": "ns", "labels": {"app": "web"}}}
    )
    assert predicate.matches_attrs({"app": "web"}, {"metadata.namespace": "ns"})
    assert not predicate.matches_attrs({"app": "web"}, {})
    assert not predicate.matches_attrs({}, {"metadata.namespace": "ns"})
    assert predicate == SelectionPredicate(
        "ns", parse_label_selector("app=web"), parse_field_selector("metadata.name!=b")
    )


def test_empty_predicate_matches_everything() -> None:
    predicate = SelectionPredicate()
    assert predicate.empty
    assert predicate.to_filter() is None
    assert predicate.matches({"metadata": {"namespace": "x"}})
    assert predicate.matches(object())
    assert SelectionPredicate.from_list_options("", None).empty


def test_nothing_selectors_match_nothing() -> None:
    predicate = SelectionPredicate(label=LabelSelector.nothing())
    assert not predicate.empty
    assert not predicate.matches({"metadata": {}})
    predicate = SelectionPredicate(field=FieldSelector.nothing())
    assert not predicate.matches({"metadata": {}})


def test_predicate_for_selector_transitions() -> None:
    # How a watch cache decides ADDED/DELETED when an object starts/stops matching.
    predicate = SelectionPredicate(label=parse_label_selector("tier=web"))
    old = {"metadata": {"name": "a", "labels": {"tier": "db"}}}
    new = {"metadata": {"name": "a", "labels": {"tier": "web"}}}
    assert (predicate.matches(old), predicate.matches(new)) == (False, True)


# --- properties ------------------------------------------------------------


@given(
    namespaces,
    label_selectors,
    st.sampled_from(["", "metadata.name=a", "metadata.name!=a", "metadata.namespace=default"]),
    st.lists(k8s_objects(), max_size=6),
    st.sampled_from(ALL_TYPES),
)
def test_filter_drops_exactly_what_matches_rejects(
    namespace: str,
    label: LabelSelector,
    field: str,
    objects: list[dict[str, Any]],
    type_: EventType,
) -> None:
    options = ListOptions(label_selector=str(label), field_selector=field)
    f = filter_for_list_options(namespace, options)
    field_selector = parse_field_selector(field)
    for obj in objects:
        metadata = obj["metadata"]
        obj_namespace = metadata.get("namespace", "")
        expected = (
            (not namespace or obj_namespace == namespace)
            and label.matches(metadata.get("labels") or {})
            and field_selector.matches(
                {"metadata.name": metadata["name"], "metadata.namespace": obj_namespace}
            )
        )
        event = Event(type_, obj)
        if f is None:
            assert expected
            assert not namespace
            assert label.empty
            assert field_selector.empty
        else:
            assert (f(event) is event) is expected
            assert (f(event) is None) is (not expected)


@given(namespaces, label_selectors, st.lists(k8s_objects(), max_size=6))
def test_default_fast_path_agrees_with_generic_get_attrs(
    namespace: str, label: LabelSelector, objects: list[dict[str, Any]]
) -> None:
    field = parse_field_selector("metadata.name!=b")
    fast = SelectionPredicate(namespace, label, field)
    generic = SelectionPredicate(namespace, label, field, lambda obj: default_get_attrs(obj))
    for obj in objects:
        assert fast.matches(obj) is generic.matches(obj)
        wrapped = Obj(Meta(**obj["metadata"]))
        assert fast.matches(wrapped) is generic.matches(obj)
