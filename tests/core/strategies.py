"""Hypothesis strategies for selectors, label sets, objects and list options."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from k8swatch import FieldSelector, LabelSelector, ListOptions
from k8swatch._fields import FieldRequirement
from k8swatch._labels import LabelRequirement
from k8swatch._selectors import SelectorOperator

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

# Small alphabets make collisions (same key twice, value present in a set) likely.
_names = st.sampled_from(["a", "b", "app", "tier", "x", "x1", "in", "notin", "A.b_c-D"])
_dns_labels = st.text(_LOWER_ALNUM, min_size=1, max_size=4)


@st.composite
def label_names(draw: st.DrawFn) -> str:
    """A valid label name part: alphanumeric ends, ``-_.`` inside, at most 63 bytes."""
    if draw(st.booleans()):
        return draw(_names)
    first = draw(st.sampled_from(_ALNUM))
    middle = draw(st.text(_ALNUM + "-_.", max_size=8))
    if not middle:
        return first
    return first + middle + draw(st.sampled_from(_ALNUM))


@st.composite
def label_keys(draw: st.DrawFn) -> str:
    """A valid label key, sometimes with a DNS subdomain prefix."""
    name = draw(label_names())
    if draw(st.integers(0, 3)) == 0:
        prefix = ".".join(draw(st.lists(_dns_labels, min_size=1, max_size=3)))
        return f"{prefix}/{name}"
    return name


@st.composite
def label_values(draw: st.DrawFn) -> str:
    """A valid label value (possibly empty)."""
    if draw(st.integers(0, 4)) == 0:
        return ""
    if draw(st.booleans()):
        return draw(st.sampled_from(["a", "b", "prod", "dev", "1", "10", "007", "in"]))
    return draw(label_names())


int_label_values = st.integers(0, 10**6).map(str)


@st.composite
def label_requirements(draw: st.DrawFn) -> LabelRequirement:
    """A valid requirement with any operator."""
    key = draw(label_keys())
    op = draw(st.sampled_from(list(SelectorOperator)))
    if op in (SelectorOperator.EXISTS, SelectorOperator.DOES_NOT_EXIST):
        values: tuple[str, ...] = ()
    elif op in (SelectorOperator.IN, SelectorOperator.NOT_IN):
        values = tuple(draw(st.lists(label_values(), min_size=1, max_size=4)))
    elif op in (SelectorOperator.GREATER_THAN, SelectorOperator.LESS_THAN):
        values = (draw(int_label_values),)
    else:
        values = (draw(label_values()),)
    return LabelRequirement(key, op, values)


label_selectors = st.lists(label_requirements(), max_size=6).map(LabelSelector)
"""Any selector the parser can produce (never ``nothing()``)."""

label_sets = st.dictionaries(
    st.one_of(label_keys(), st.sampled_from(["a", "b", "x", "app", "tier"])),
    st.one_of(label_values(), int_label_values, st.sampled_from(["+2", "-3", " 1", "0x1"])),
    max_size=6,
)
"""Label mappings (values include numbers and strings Go's ParseInt rejects)."""

field_names = st.sampled_from(
    ["metadata.name", "metadata.namespace", "spec.x", "a", "b", "", "x ", "a\\", "a\\,b", "é"]
)
field_values = st.one_of(
    st.sampled_from(["", "a", "b", "a,b", "a=b", "\\", "!x", " a", "é", "\\,"]),
    st.text(max_size=6),
)


@st.composite
def field_requirements(draw: st.DrawFn) -> FieldRequirement:
    """A field term (field names avoid ``=``/``!=`` so they survive a round trip)."""
    field = draw(field_names)
    op = draw(st.sampled_from([SelectorOperator.EQUALS, SelectorOperator.NOT_EQUALS]))
    value = draw(field_values)
    if field.endswith("!") and op is SelectorOperator.EQUALS:
        field += "x"
    return FieldRequirement(field, op, value)


field_selectors = st.lists(field_requirements(), max_size=5).map(
    lambda terms: FieldSelector(sorted((t for t in terms if t.field or t.value), key=str))
)
"""Selectors in canonical order (terms sorted by their text, as the parser orders them)."""

field_sets = st.dictionaries(field_names, field_values, max_size=5)

namespaces = st.sampled_from(["", "default", "control-plane", "other"])


@st.composite
def k8s_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A Kubernetes-shaped dict with name, namespace and labels."""
    metadata: dict[str, Any] = {"name": draw(st.sampled_from(["a", "b", "acme.match"]))}
    namespace = draw(namespaces)
    if namespace:
        metadata["namespace"] = namespace
    labels: dict[str, str] = draw(label_sets)
    with_labels: bool = bool(labels) or draw(st.booleans())
    if with_labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Widget", "metadata": metadata}


list_options = st.builds(
    ListOptions,
    label_selector=st.sampled_from(["", "a", "app=prod", "x in (a,b)"]),
    field_selector=st.sampled_from(["", "metadata.name=a", "metadata.namespace!=x"]),
    watch=st.booleans(),
    allow_watch_bookmarks=st.booleans(),
    resource_version=st.sampled_from(["", "0", "1", "123", "abc"]),
    resource_version_match=st.sampled_from(["", "Exact", "NotOlderThan", "foo"]),
    timeout_seconds=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    limit=st.integers(-(2**63), 2**63 - 1),
    continue_token=st.sampled_from(["", "abc"]),
    send_initial_events=st.one_of(st.none(), st.booleans()),
)

selector_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=" \t\r\n\v\f\x00=!(),<>\\abcxyz01in", max_size=40),
    st.lists(
        st.sampled_from(
            ["x", "in", "notin", "(", ")", ",", "=", "==", "!=", "!", ">", "<", " ", "a", "1", "\\"]
        ),
        max_size=15,
    ).map("".join),
)
"""Random selector-ish text: arbitrary unicode, NUL, and token soup."""
