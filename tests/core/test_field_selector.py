"""Field selectors (watch-semantics §2), with vectors from apimachinery's pkg/fields."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from k8swatch import (
    FieldSelector,
    SelectorError,
    escape_field_value,
    parse_field_selector,
    unescape_field_value,
)
from k8swatch._fields import FieldRequirement, _split_field_terms
from k8swatch._selectors import SelectorOperator

from .strategies import field_selectors, field_sets, selector_text

Op = SelectorOperator


def eq(field: str, value: str) -> FieldRequirement:
    return FieldRequirement(field, Op.EQUALS, value)


def ne(field: str, value: str) -> FieldRequirement:
    return FieldRequirement(field, Op.NOT_EQUALS, value)


# TestSplitTerms
@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("a", ["a"]),
        ("a=avalue", ["a=avalue"]),
        ("a=avalue,b=bvalue", ["a=avalue", "b=bvalue"]),
        ("a=avalue,b==bvalue,c!=cvalue", ["a=avalue", "b==bvalue", "c!=cvalue"]),
        ("", []),
        ("a=a,", ["a=a", ""]),
        (",a=a", ["", "a=a"]),
        ("k=\\,,k2=v2", ["k=\\,", "k2=v2"]),
        ("k=\\\\,k2=v2", ["k=\\\\", "k2=v2"]),
        ("k=\\\\\\,,k2=v2", ["k=\\\\\\,", "k2=v2"]),
        ("k=\\a\\b\\", ["k=\\a\\b\\"]),
        ("k=\\", ["k=\\"]),
        ("함=수,목=록", ["함=수", "목=록"]),
    ],
)
def test_split_terms(text: str, terms: list[str]) -> None:
    split = _split_field_terms(text)
    assert [term for term, _ in split] == terms
    for term, start in split:
        assert text[start : start + len(term)] == term


# TestSplitTerm (through the parser)
@pytest.mark.parametrize(
    ("term", "requirement"),
    [
        ("a=value", eq("a", "value")),
        ("b==value", eq("b", "value")),
        ("c!=value", ne("c", "value")),
        ("k=\\,", eq("k", ",")),
        ("k=\\=", eq("k", "=")),
        ("함=수", eq("함", "수")),
        ("x=!a", eq("x", "!a")),
        ("x = a", eq("x ", " a")),
        ("=a", eq("", "a")),
        ("a=", eq("a", "")),
        ("!=a", ne("", "a")),
        ("a!b=c", eq("a!b", "c")),
        ("a\\=b", eq("a\\", "b")),
    ],
)
def test_split_term(term: str, requirement: FieldRequirement) -> None:
    assert parse_field_selector(term).requirements == (requirement,)


# TestEscapeValue
@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("", ""),
        ("a", "a"),
        ("=", "\\="),
        (",", "\\,"),
        ("\\", "\\\\"),
        ("\\=\\,\\", "\\\\\\=\\\\\\,\\\\"),
        (" !é\t", " !é\t"),
    ],
)
def test_escape_value(raw: str, escaped: str) -> None:
    assert escape_field_value(raw) == escaped
    assert unescape_field_value(escaped) == raw


@pytest.mark.parametrize(
    ("value", "message", "position"),
    [
        ("\\", "invalid field selector: invalid escape sequence: \\", 0),
        ("\\\\\\", "invalid field selector: invalid escape sequence: \\", 2),
        ("\\a", "invalid field selector: invalid escape sequence: \\a", 0),
        ("x\\é", "invalid field selector: invalid escape sequence: \\é", 1),
        ("a,b", "invalid field selector: unescaped character in value: 44", 1),
        ("a=b", "invalid field selector: unescaped character in value: 61", 1),
    ],
)
def test_unescape_errors(value: str, message: str, position: int) -> None:
    with pytest.raises(SelectorError) as info:
        unescape_field_value(value)
    assert info.value.detail == message
    assert info.value.position == position
    assert info.value.text == value


# TestSelectorParse
@pytest.mark.parametrize("text", ["x=a,y=b,z=c", "", "x!=a,y=b", "x=a||y\\=b", "x=a\\=\\=b"])
def test_parse_good_strings_restring(text: str) -> None:
    assert str(parse_field_selector(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a||y=b", "invalid field selector: unescaped character in value: 61"),
        ("x==a==b", "invalid field selector: unescaped character in value: 61"),
        ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
        ("x in (a)", "invalid selector: 'x in (a)'; can't understand 'x in (a)'"),
        ("x in (a,b,c)", "invalid selector: 'x in (a,b,c)'; can't understand 'b'"),
        ("x", "invalid selector: 'x'; can't understand 'x'"),
        ("!x", "invalid selector: '!x'; can't understand '!x'"),
        ("x>1", "invalid selector: 'x>1'; can't understand 'x>1'"),
        ("x!==a", "invalid field selector: unescaped character in value: 61"),
        ("k=\\a", "invalid field selector: invalid escape sequence: \\a"),
        # terms are sorted before parsing: the first bad term in sorted order is reported
        ("b,a", "invalid selector: 'b,a'; can't understand 'a'"),
        ("z=\\q,a=1=2", "invalid field selector: unescaped character in value: 61"),
    ],
)
def test_parse_bad_strings(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text)
    assert info.value.detail == message
    assert info.value.text == text


def test_error_positions() -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector("a=1,b=x\\q")
    assert info.value.position == 7
    with pytest.raises(SelectorError) as info:
        parse_field_selector("a=1,zzz")
    assert info.value.position == 4


# TestDeterministicParse
def test_deterministic_parse() -> None:
    assert str(parse_field_selector("x=a,a=x")) == str(parse_field_selector("a=x,x=a"))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("k=\\\\,k2=v2", "k2=v2,k=\\\\"),  # raw terms sort before unescaping ('2' < '=')
        ("metadata.name==foo", "metadata.name=foo"),
        (",,a=b,", "a=b"),
        ("=", ""),
        ("!=", ""),
        ("==", ""),
        (",", ""),
        ("=,a=b", "a=b"),
        ("b!=1,a=2", "a=2,b!=1"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_field_selector(text)) == canonical


@pytest.mark.parametrize("text", ["", ",", "=", "!=", ",=,"])
def test_empty_inputs_are_everything(text: str) -> None:
    selector = parse_field_selector(text)
    assert selector.empty
    assert selector == FieldSelector.everything()


# TestSelectorMatches
FIELDSET = {"foo": "bar", "baz": "blah", "complex": "=value\\,\\"}


@pytest.mark.parametrize(
    ("text", "fields", "match"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("foo=bar", FIELDSET, True),
        ("baz=blah", FIELDSET, True),
        ("foo=bar,baz=blah", FIELDSET, True),
        ("foo=bar,baz=blah,complex=\\=value\\\\\\,\\\\", FIELDSET, True),
        ("foo=blah", FIELDSET, False),
        ("baz=bar", FIELDSET, False),
        ("foo=bar,foobar=bar,baz=blah", FIELDSET, False),
        # a missing field reads as "" (unlike labels)
        ("x=", {}, True),
        ("x!=", {}, False),
        ("x!=a", {}, True),
        ("x=a", {}, False),
    ],
)
def test_matches(text: str, fields: dict[str, str], match: bool) -> None:
    selector = parse_field_selector(text)
    assert selector.matches(fields) is match
    assert all(r.matches(fields) for r in selector.requirements) is match


# TestSetMatches / TestNilMapIsValid / TestSetIsEmpty
def test_from_set() -> None:
    fields = {"foo": "bar", "baz": "blah"}
    for selector in ({}, {"foo": "bar"}, {"baz": "blah"}, {"foo": "bar", "baz": "blah"}):
        assert FieldSelector.from_set(selector).matches(fields)
    for selector in ({"foo": "=blah"}, {"baz": "=bar"}, {"foo": "=bar", "foobar": "bar"}):
        assert not FieldSelector.from_set(selector).matches(fields)
    assert FieldSelector.from_set(None).empty
    assert FieldSelector.from_set({}).empty
    assert str(FieldSelector.from_set({"b": "1", "a": "x,y"})) == "a=x\\,y,b=1"


def test_programmatic_terms_are_not_empty() -> None:
    assert not FieldSelector([eq("", "")]).empty
    assert not FieldSelector([eq("a", "b")]).empty


# TestRequiresExactMatch
@pytest.mark.parametrize(
    ("selector", "field", "value"),
    [
        (FieldSelector(), "test", None),
        (FieldSelector([eq("", "")]), "test", None),
        (FieldSelector([eq("a", "b")]), "test", None),
        (FieldSelector([eq("test", "b")]), "test", "b"),
        (FieldSelector([eq("test", "")]), "test", ""),
        (FieldSelector([ne("test", "b")]), "test", None),
        (FieldSelector([ne("test", "")]), "test", None),
        (FieldSelector([eq("", ""), eq("test", "b")]), "test", "b"),
        (FieldSelector([ne("test", "a"), eq("test", "b"), eq("test", "c")]), "test", "b"),
        (FieldSelector.nothing(), "test", None),
    ],
)
def test_requires_exact_match(selector: FieldSelector, field: str, value: str | None) -> None:
    assert selector.requires_exact_match(field) == value


# TestTransform
def test_transform() -> None:
    def rename_a(field: str, value: str) -> tuple[str, str]:
        return ("e", "f") if field == "a" else (field, value)

    def drop_c(field: str, value: str) -> tuple[str, str]:
        return ("", "") if field == "c" else (field, value)

    assert parse_field_selector("").transform(lambda f, v: (f, v)).empty
    assert str(parse_field_selector("a=b,c=d").transform(lambda f, v: (f, v))) == "a=b,c=d"
    assert str(parse_field_selector("a=b,c=d").transform(rename_a)) == "e=f,c=d"
    dropped = parse_field_selector("a=b").transform(lambda f, v: ("", ""))
    assert dropped.empty
    assert str(dropped) == ""
    assert str(parse_field_selector("a=b,c=d,e=f").transform(drop_c)) == "a=b,e=f"
    negated = parse_field_selector("a!=b").transform(lambda f, v: (f.upper(), v))
    assert negated.requirements == (ne("A", "b"),)
    assert FieldSelector.nothing().transform(rename_a) == FieldSelector.nothing()


def test_transform_propagates_errors() -> None:
    def reject(field: str, value: str) -> tuple[str, str]:
        raise LookupError(field)

    with pytest.raises(LookupError, match=r"spec\.foo"):
        parse_field_selector("spec.foo=x").transform(reject)


def test_nothing_and_equality() -> None:
    nothing = FieldSelector.nothing()
    assert not nothing.empty
    assert nothing.matches_nothing
    assert not nothing.matches({})
    assert str(nothing) == ""
    assert nothing != FieldSelector.everything()
    assert repr(nothing) == "FieldSelector.nothing()"
    assert repr(parse_field_selector("a==b")) == "parse_field_selector('a=b')"
    selector = parse_field_selector("a=b,c!=d")
    assert selector == parse_field_selector("c!=d,a==b")
    assert len({selector, parse_field_selector("a=b,c!=d")}) == 1
    assert selector != "a=b,c!=d"
    for value in (selector, nothing, FieldSelector.everything()):
        assert pickle.loads(pickle.dumps(value)) == value
    with pytest.raises(AttributeError):
        setattr(selector, "_requirements", ())  # noqa: B010


def test_requirement_operators() -> None:
    assert FieldRequirement("a", "==", "b").operator is Op.EQUALS
    assert str(FieldRequirement("a", "!=", "x,y")) == "a!=x\\,y"
    with pytest.raises(ValueError, match="'=' or '!='"):
        FieldRequirement("a", Op.IN, "b")


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_field_selector(b"a=b")  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------


@given(st.text())
@example("\\,=")
def test_escape_round_trips(value: str) -> None:
    escaped = escape_field_value(value)
    assert unescape_field_value(escaped) == value
    # an escaped value is one term's value: it never splits and never has a bare "="
    assert parse_field_selector("f=" + escaped).requirements == (eq("f", value),)


@given(field_selectors)
def test_parse_of_str_round_trips(selector: FieldSelector) -> None:
    again = parse_field_selector(str(selector))
    assert again == selector
    assert str(again) == str(selector)


@given(st.lists(st.sampled_from(["a==z", "a=b", "b!=c", "a=", "==x"]), max_size=5))
def test_double_equals_normalises_after_one_round(terms: list[str]) -> None:
    # "==" renders as "=", which can reorder terms once; then the form is stable.
    once = parse_field_selector(str(parse_field_selector(",".join(terms))))
    assert parse_field_selector(str(once)) == once
    assert sorted(map(str, once.requirements)) == sorted(
        map(str, parse_field_selector(",".join(terms)).requirements)
    )


@given(field_selectors, field_sets)
def test_matching_equals_the_reference(selector: FieldSelector, fields: dict[str, str]) -> None:
    expected = all(
        (fields.get(t.field, "") == t.value) is (t.operator is Op.EQUALS)
        for t in selector.requirements
    )
    assert selector.matches(fields) is expected


@given(selector_text)
@example("a=\\")
@example("\x00=\x00")
@example("=\udcff")
def test_random_text_raises_only_selector_error(text: str) -> None:
    error: SelectorError | None = None
    try:
        selector = parse_field_selector(text)
    except SelectorError as exc:
        error = exc
    if error is not None:
        assert error.text == text
        assert 0 <= error.position <= len(text)
    else:
        again = parse_field_selector(str(selector))
        assert parse_field_selector(str(again)) == again


def test_fuzz_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fuzz_selectors import main

    assert main(0.5) == 0
    assert "only SelectorError escaped" in capsys.readouterr().out
