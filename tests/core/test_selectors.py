"""Label selectors: messages, quirks, canonical form and properties (watch-semantics §1)."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from k8swatch import LabelSelector, SelectorError, parse_label_selector
from k8swatch._go import go_parse_int, go_quote
from k8swatch._labels import LabelRequirement
from k8swatch._selectors import SelectorOperator

from .strategies import label_requirements, label_selectors, label_sets, selector_text

Op = SelectorOperator

KEY_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
PREFIX_MSG = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
SLASHES_MSG = (
    "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
    "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
)
REQ = "unable to parse requirement: "


def detail(text: str) -> str:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    return info.value.detail


# --- structural errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("x,", "found '', expected: identifier after ','", 2),
        ("x,,y", "found ',', expected: identifier after ','", 2),
        ("x=a,", "found '', expected: identifier after ','", 4),
        (",x", "found ',', expected: !, identifier, or 'end of string'", 0),
        ("=", "found '=', expected: !, identifier, or 'end of string'", 0),
        ("x y", REQ + "found 'y', expected: in, notin, =, ==, !=, gt, lt", 2),
        ("x (", REQ + "found '(', expected: in, notin, =, ==, !=, gt, lt", 2),
        ("!x=a", "found '=', expected: ',' or 'end of string'", 2),
        ("!,", REQ + "found ',', expected: identifier", 1),
        ("!", REQ + "found '', expected: identifier", 1),
        ("x=(", REQ + "found '(', expected: identifier", 2),
        ("x=!", REQ + "found '!', expected: identifier", 2),
        ("x==a==b", "found '==', expected: ',' or 'end of string'", 4),
        ("x in a", REQ + "found 'a' expected: '('", 5),
        ("x in", REQ + "found '' expected: '('", 4),
        ("x in (a b)", REQ + "found 'b', expected: ',' or ')'", 8),
        ("x in (a", REQ + "found '', expected: ',' or ')'", 7),
        ("x in (a,", REQ + "found '', expected: ',', or identifier", 8),
        ("x in (a,(", REQ + "found '(', expected: ',', or identifier", 8),
        ("x in ((", REQ + "found '(', expected: ',', ')' or identifier", 6),
        ("x in (", REQ + "found '', expected: ',', ')' or identifier", 6),
        ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'", 10),
    ],
)
def test_structural_errors_use_go_wording_and_point_at_the_token(
    text: str, message: str, position: int
) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    err = info.value
    assert err.detail == message
    assert err.text == text
    assert err.position == position
    assert str(err) == f"{message} (at position {position} in {text!r})"
    assert isinstance(err, ValueError)


# --- key and value validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-x", f'<nil>: Invalid value: "-x": {KEY_NAME_MSG}'),
        ("x-", f'<nil>: Invalid value: "x-": {KEY_NAME_MSG}'),
        ("_x", f'<nil>: Invalid value: "_x": {KEY_NAME_MSG}'),
        ("x.", f'<nil>: Invalid value: "x.": {KEY_NAME_MSG}'),
        ("a/b/c", f'<nil>: Invalid value: "a/b/c": {SLASHES_MSG}'),
        ("/key", '<nil>: Invalid value: "/key": prefix part must be non-empty'),
        (
            "example.com/",
            '<nil>: Invalid value: "example.com/": name part must be non-empty; ' + KEY_NAME_MSG,
        ),
        ("Example.com/key", f'<nil>: Invalid value: "Example.com/key": {PREFIX_MSG}'),
        ("a" * 64, f'<nil>: Invalid value: "{"a" * 64}": name part must be no more than 63 bytes'),
        (
            "a" * 254 + "/b",
            f'<nil>: Invalid value: "{"a" * 254}/b": prefix part must be no more than 253 bytes; '
            + PREFIX_MSG.replace("prefix part a lowercase", "prefix part a lowercase"),
        ),
        ("x\vy", f'<nil>: Invalid value: "x\\vy": {KEY_NAME_MSG}'),
        ("é", f'<nil>: Invalid value: "é": {KEY_NAME_MSG}'),
        ("x\u00a0", f'<nil>: Invalid value: "x\\u00a0": {KEY_NAME_MSG}'),
    ],
)
def test_key_validation_messages(text: str, message: str) -> None:
    if text == "a" * 254 + "/b":
        # 254 'a's is a valid DNS subdomain pattern: only the length is wrong.
        message = f'<nil>: Invalid value: "{text}": prefix part must be no more than 253 bytes'
    assert detail(text) == REQ + message


def test_key_length_counts_bytes() -> None:
    # 32 two-byte characters: 32 characters but 64 bytes.
    key = "é" * 32
    assert detail(key) == (
        f'{REQ}<nil>: Invalid value: "{key}": name part must be no more than 63 bytes; '
        + KEY_NAME_MSG
    )


def test_upper_case_name_and_maximum_lengths_are_valid() -> None:
    key = ".".join(["a" * 63] * 3) + "." + "b" * 61 + "/" + "N" * 63
    assert len(key.split("/")[0]) == 253
    selector = parse_label_selector(f"{key}={'v' * 63}")
    assert selector.matches({key: "v" * 63})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a||y", f'values[0][x]: Invalid value: "a||y": {VALUE_MSG}'),
        ("x=-a", f'values[0][x]: Invalid value: "-a": {VALUE_MSG}'),
        ("x=a/b", f'values[0][x]: Invalid value: "a/b": {VALUE_MSG}'),
        ("x in (a,-b)", f'values[0][x]: Invalid value: "-b": {VALUE_MSG}'),
        (
            "x=" + "v" * 64,
            f'values[0][x]: Invalid value: "{"v" * 64}": must be no more than 63 bytes',
        ),
        ("x=é", f'values[0][x]: Invalid value: "é": {VALUE_MSG}'),
        ("x>-1", f'values[0][x]: Invalid value: "-1": {VALUE_MSG}'),
        ("x<+5", f'values[0][x]: Invalid value: "+5": {VALUE_MSG}'),
        (
            "x>",
            'values[0]: Invalid value: "": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x>a",
            'values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x>9223372036854775808",
            'values[0]: Invalid value: "9223372036854775808": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x>a_",
            "[values[0]: Invalid value: \"a_\": for 'Gt', 'Lt' operators, the value must be an "
            f'integer, values[0][x]: Invalid value: "a_": {VALUE_MSG}]',
        ),
    ],
)
def test_value_validation_messages(text: str, message: str) -> None:
    assert detail(text) == REQ + message


@pytest.mark.parametrize("text", ["x>007", "x>9223372036854775807", "x<0", "x>" + "0" * 30 + "1"])
def test_gt_lt_accept_unsigned_int64_text(text: str) -> None:
    assert str(parse_label_selector(text)) == text


def test_nul_is_rejected() -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector("a=b,\x00c")
    assert info.value.position == 4


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_label_selector(None)  # type: ignore[arg-type]


# --- keywords in key/value position, whitespace ------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("in in (notin)", "in in (notin)"),
        ("x=notin", "x=notin"),
        ("a in (x,in,notin)", "a in (in,notin,x)"),
        ("notin notin (in)", "notin notin (in)"),
        ("  x  =  y  ", "x=y"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x==a", "x==a"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in ( )", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x in (b,a,b)", "x in (a,b)"),
        ("x=a,a=x", "a=x,x=a"),
        ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
        ("app in (a),  tier notin (b)  ,  !legacy", "app in (a),!legacy,tier notin (b)"),
        ("x=1,x=2", "x=1,x=2"),
        ("x=2,x=1", "x=2,x=1"),
        ("x,!x", "x,!x"),
        ("\t\r\n", ""),
    ],
)
def test_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


def test_sort_is_stable_for_equal_keys() -> None:
    selector = parse_label_selector("b,x!=2,a,x=1,x")
    assert [str(r) for r in selector.requirements] == ["a", "b", "x!=2", "x=1", "x"]


# --- matching (§1.4) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "absent", "present"),
    [
        # (selector, matches when x is absent, {value: matches when x=value})
        ("x", False, {"": True, "a": True}),
        ("!x", True, {"": False, "a": False}),
        ("x=a", False, {"a": True, "b": False, "": False}),
        ("x==a", False, {"a": True, "b": False}),
        ("x in (a,b)", False, {"a": True, "b": True, "c": False}),
        ("x!=a", True, {"a": False, "b": True, "": True}),
        ("x notin (a,b)", True, {"a": False, "c": True}),
        ("x=", False, {"": True, "a": False}),
        ("x!=", True, {"": False, "a": True}),
        ("x in ()", False, {"": True, "a": False}),
        ("x notin ()", True, {"": False, "a": True}),
        ("x>1", False, {"2": True, "1": False, "+2": True, "010": True, "-5": False}),
        ("x<10", False, {"9": True, "010": False, "-9223372036854775808": True}),
        ("x>1", False, {" 2": False, "1_0": False, "0x10": False, "2.5": False, "1e1": False}),
        ("x>1", False, {"9223372036854775808": False, "": False, "+": False, "٣": False}),
        ("x>1", False, {"9223372036854775807": True, "0" * 40 + "2": True}),
        ("x=A", False, {"a": False, "A": True}),
    ],
)
def test_matching_table(text: str, absent: bool, present: dict[str, bool]) -> None:
    selector = parse_label_selector(text)
    assert selector.matches({"other": "a"}) is absent
    for value, expected in present.items():
        assert selector.matches({"x": value}) is expected, value
        assert selector.requirements[0].matches({"x": value}) is expected, value


def test_key_matching_is_case_sensitive() -> None:
    assert not parse_label_selector("X").matches({"x": "1"})


def test_matches_works_on_any_mapping() -> None:
    class Labels(Mapping[str, str]):
        def __init__(self, data: dict[str, str]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> str:
            return self._data[key]

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    labels = Labels({"app": "web", "tier": "1"})
    assert parse_label_selector("app=web,tier>0,!legacy").matches(labels)
    assert parse_label_selector("app in (web,db),tier").matches(labels)


# --- everything / nothing / equality ---------------------------------------------------------


def test_everything_and_nothing() -> None:
    everything = LabelSelector.everything()
    nothing = LabelSelector.nothing()
    assert parse_label_selector("") == everything
    assert everything.empty
    assert not nothing.empty
    assert str(everything) == str(nothing) == ""
    assert everything.matches({})
    assert not nothing.matches({})
    assert nothing.requirements == ()
    assert everything != nothing
    assert hash(everything) != hash(nothing)
    assert repr(nothing) == "LabelSelector.nothing()"
    assert repr(parse_label_selector("b,a")) == "parse_label_selector('a,b')"


def test_selectors_are_immutable_values() -> None:
    selector = parse_label_selector("a=b")
    with pytest.raises(AttributeError):
        setattr(selector, "_requirements", ())  # noqa: B010
    assert {selector: 1}[parse_label_selector("a = b")] == 1
    assert selector != "a=b"
    for value in (selector, LabelSelector.nothing(), LabelSelector.everything()):
        assert pickle.loads(pickle.dumps(value)) == value


def test_selector_error_pickles() -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector("x in (")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.detail, copy.text, copy.position) == (
        "unable to parse requirement: found '', expected: ',', ')' or identifier",
        "x in (",
        6,
    )


def test_requirement_values_are_a_sorted_set() -> None:
    assert LabelRequirement("x", Op.IN, ("b", "a", "b")).values == ("a", "b")
    assert str(LabelRequirement("x", "notin", ["b", ""])) == "x notin (,b)"
    with pytest.raises(TypeError, match="not a string"):
        LabelRequirement("x", Op.IN, "ab")


def test_from_set_validates() -> None:
    with pytest.raises(SelectorError) as info:
        LabelSelector.from_set({"-bad": "x"})
    assert info.value.detail == f'key: Invalid value: "-bad": {KEY_NAME_MSG}'
    assert str(LabelSelector.from_set({"b": "1", "a": ""})) == "a=,b=1"


# --- Go helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", '"abc"'),
        ('a"b\\', '"a\\"b\\\\"'),
        ("\x00\x07\x1b\x7f", '"\\x00\\a\\x1b\\x7f"'),
        ("é\u00a0\u2028😀", '"é\\u00a0\\u2028😀"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\ud800", '"\\xed\\xa0\\x80"'),
    ],
)
def test_go_quote(text: str, expected: str) -> None:
    assert go_quote(text) == expected


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("0", 0),
        ("+12", 12),
        ("-12", -12),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775808", "value out of range"),
        ("-9223372036854775809", "value out of range"),
        ("99999999999999999999x", "value out of range"),  # Go reports overflow first
        ("", "invalid syntax"),
        ("-", "invalid syntax"),
        ("1_0", "invalid syntax"),
        (" 1", "invalid syntax"),
        ("0x1", "invalid syntax"),
        ("\u0661", "invalid syntax"),
    ],
)
def test_go_parse_int(text: str, result: int | str) -> None:
    if isinstance(result, int):
        assert go_parse_int(text) == result
    else:
        with pytest.raises(ValueError) as info:
            go_parse_int(text)
        assert str(info.value) == f"strconv.ParseInt: parsing {go_quote(text)}: {result}"


def test_go_parse_uint() -> None:
    assert go_parse_int("18446744073709551615", unsigned=True) == 2**64 - 1
    for text, error in [("+1", "invalid syntax"), ("18446744073709551616", "value out of range")]:
        with pytest.raises(ValueError, match=re.escape(f'ParseUint: parsing "{text}": {error}')):
            go_parse_int(text, unsigned=True)


# --- properties -------------------------------------------------------------------------------


def reference_match(requirement: LabelRequirement, labels: Mapping[str, str]) -> bool:
    """Go's Requirement.Matches, written naively."""
    op = requirement.operator
    present = requirement.key in labels
    value = labels.get(requirement.key)
    if op is Op.EXISTS:
        return present
    if op is Op.DOES_NOT_EXIST:
        return not present
    if op in (Op.EQUALS, Op.DOUBLE_EQUALS, Op.IN):
        return present and value in requirement.values
    if op in (Op.NOT_EQUALS, Op.NOT_IN):
        return not present or value not in requirement.values
    if not present or value is None:
        return False
    try:
        number = go_parse_int(value)
    except ValueError:
        return False
    bound = int(requirement.values[0])
    return number > bound if op is Op.GREATER_THAN else number < bound


@given(label_selectors)
def test_parse_of_str_round_trips(selector: LabelSelector) -> None:
    again = parse_label_selector(str(selector))
    assert again == selector
    assert hash(again) == hash(selector)
    assert str(again) == str(selector)


@given(label_selectors, label_sets)
def test_compiled_matching_equals_the_reference(
    selector: LabelSelector, labels: dict[str, str]
) -> None:
    expected = all(reference_match(r, labels) for r in selector.requirements)
    assert selector.matches(labels) is expected
    assert parse_label_selector(str(selector)).matches(labels) is expected


@given(label_requirements(), label_sets)
def test_requirement_matches_equals_the_reference(
    requirement: LabelRequirement, labels: dict[str, str]
) -> None:
    assert requirement.matches(labels) is reference_match(requirement, labels)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["", "x", "y"])))
def test_from_set_matches_exactly_its_labels(labels: dict[str, str]) -> None:
    selector = LabelSelector.from_set(labels)
    assert selector.matches(labels)
    assert selector.matches({**labels, "extra": "1"})
    for key in labels:
        assert not selector.matches({k: v for k, v in labels.items() if k != key})
        assert selector.requires_exact_match(key) == labels[key]


@given(selector_text)
@example("a=b,\x00")
@example("x in (" + "a," * 50)
@example("\udcff")
@example("x>" + "9" * 5000)
def test_random_text_raises_only_selector_error(text: str) -> None:
    error: SelectorError | None = None
    try:
        selector = parse_label_selector(text)
    except SelectorError as exc:
        error = exc
    if error is not None:
        assert error.text == text
        assert 0 <= error.position <= len(text)
    else:
        assert parse_label_selector(str(selector)) == selector


# --- compiled matchers ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 6, 64, 65, 200])
def test_selectors_of_every_size_match_like_the_reference(count: int) -> None:
    shapes = [
        "k{i}=v",
        "k{i}!=w",
        "k{i} in (v,x)",
        "k{i} notin (w,y)",
        "k{i}",
        "!missing{i}",
        "n{i}>1",
        "n{i}<100",
        "k{i} in (v)",
    ]
    text = ",".join(shapes[i % len(shapes)].format(i=i) for i in range(count))
    selector = parse_label_selector(text)
    labels = {f"k{i}": "v" for i in range(count)} | {f"n{i}": "50" for i in range(count)}
    assert selector.matches(labels)
    for key in list(labels)[:: max(1, count // 7)]:
        for changed in ({**labels, key: "w"}, {k: v for k, v in labels.items() if k != key}):
            expected = all(reference_match(r, changed) for r in selector.requirements)
            assert selector.matches(changed) is expected
    if count > 5:
        assert not selector.matches({**labels, "missing5": ""})


def test_compiled_matchers_are_shared_per_shape() -> None:
    from k8swatch._labels import _matcher_factory

    parse_label_selector("a=1,b in (x,y),c")
    before = _matcher_factory.cache_info().hits
    selector = parse_label_selector("z=2,zz in (p,q),zzz")
    assert _matcher_factory.cache_info().hits == before + 1
    assert selector.matches({"z": "2", "zz": "q", "zzz": ""})
    assert not selector.matches({"z": "2", "zz": "r", "zzz": ""})


def test_error_message_shows_an_excerpt_of_long_input() -> None:
    text = "a=b," * 40 + "(" + ",c" * 40
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert info.value.position == 160
    assert str(info.value) == (
        f"found '(', expected: identifier after ',' (at position 160 in ...{text[130:190]!r}...)"
    )
    assert info.value.text == text
