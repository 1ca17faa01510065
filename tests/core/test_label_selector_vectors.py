"""Label selector test vectors ported from apimachinery's pkg/labels/selector_test.go."""

from __future__ import annotations

import pytest

from k8swatch import LabelSelector, SelectorError, parse_label_selector
from k8swatch._label_parser import _lex
from k8swatch._labels import LabelRequirement, label_key_errors, label_value_errors
from k8swatch._selectors import SelectorOperator

Op = SelectorOperator


def req(key: str, op: SelectorOperator, *values: str) -> LabelRequirement:
    return LabelRequirement(key, op, values)


# TestSelectorParse
@pytest.mark.parametrize(
    "text",
    ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"],
)
def test_selector_parse_good_strings_restring(text: str) -> None:
    assert str(parse_label_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["x=a||y=b", "x==a==b", "!x=a", "x<a"])
def test_selector_parse_bad_strings(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


# TestDeterministicParse
def test_deterministic_parse() -> None:
    assert str(parse_label_selector("x=a,a=x")) == str(parse_label_selector("a=x,x=a"))
    assert parse_label_selector("x=a,a=x") == parse_label_selector("a=x,x=a")


# TestEverything
def test_everything() -> None:
    assert LabelSelector.everything().matches({"x": "y"})
    assert LabelSelector.everything().empty


MATCHES = [
    ("", {"x": "y"}),
    ("x=y", {"x": "y"}),
    ("x=y,z=w", {"x": "y", "z": "w"}),
    ("x!=y,z!=w", {"x": "z", "z": "a"}),
    ("notin=in", {"notin": "in"}),
    ("x", {"x": "z"}),
    ("!x", {"y": "z"}),
    ("x>1", {"x": "2"}),
    ("x<1", {"x": "0"}),
    ("foo=bar", {"foo": "bar", "baz": "blah"}),
    ("baz=blah", {"foo": "bar", "baz": "blah"}),
    ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}),
]
NO_MATCHES = [
    ("x=z", {}),
    ("x=y", {"x": "z"}),
    ("x=y,z=w", {"x": "w", "z": "w"}),
    ("x!=y,z!=w", {"x": "z", "z": "w"}),
    ("x", {"y": "z"}),
    ("!x", {"x": "z"}),
    ("x>1", {"x": "0"}),
    ("x<1", {"x": "2"}),
    ("foo=blah", {"foo": "bar", "baz": "blah"}),
    ("baz=bar", {"foo": "bar", "baz": "blah"}),
    ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}),
]


# TestSelectorMatches
@pytest.mark.parametrize(("text", "labels"), MATCHES)
def test_selector_matches(text: str, labels: dict[str, str]) -> None:
    assert parse_label_selector(text).matches(labels)


@pytest.mark.parametrize(("text", "labels"), NO_MATCHES)
def test_selector_does_not_match(text: str, labels: dict[str, str]) -> None:
    assert not parse_label_selector(text).matches(labels)


# TestSetMatches / TestNilMapIsValid / TestSetIsEmpty
@pytest.mark.parametrize(
    "selector", [{}, {"foo": "bar"}, {"baz": "blah"}, {"foo": "bar", "baz": "blah"}]
)
def test_set_matches(selector: dict[str, str]) -> None:
    assert LabelSelector.from_set(selector).matches({"foo": "bar", "baz": "blah"})


def test_nil_and_empty_sets_are_everything() -> None:
    assert LabelSelector.from_set(None).empty
    assert LabelSelector.from_set({}).empty
    assert LabelSelector().empty


# TestLexer
@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("", ""),
        (",", ","),
        ("notin", "notin"),
        ("in", "in"),
        ("=", "="),
        ("==", "=="),
        (">", ">"),
        ("<", "<"),
        ("!", "!"),
        ("!=", "!="),
        ("(", "("),
        (")", ")"),
        ("~", "~"),
        ("||", "||"),
    ],
)
def test_lexer_returns_longest_token(text: str, literal: str) -> None:
    assert _lex(text)[0][1] == literal


# TestLexerSequence / TestParserLookahead (token literals)
@pytest.mark.parametrize(
    ("text", "literals"),
    [
        ("key in ( value )", ["key", "in", "(", "value", ")"]),
        ("key notin ( value )", ["key", "notin", "(", "value", ")"]),
        ("key in ( value1, value2 )", ["key", "in", "(", "value1", ",", "value2", ")"]),
        ("key", ["key"]),
        ("!key", ["!", "key"]),
        ("()", ["(", ")"]),
        ("x in (),y", ["x", "in", "(", ")", ",", "y"]),
        ("== != (), = notin", ["==", "!=", "(", ")", ",", "=", "notin"]),
        ("key>2", ["key", ">", "2"]),
        ("key<1", ["key", "<", "1"]),
        ("=!", ["=", "!"]),
        (">=", [">", "="]),
        ("((", ["(", "("]),
        ("===", ["==", "="]),
        ("!==", ["!=", "="]),
        ("!!", ["!", "!"]),
        ("a\vb", ["a\vb"]),
    ],
)
def test_lexer_sequence(text: str, literals: list[str]) -> None:
    tokens = _lex(text)
    assert [lit for _kind, lit, _pos in tokens[:-1]] == literals
    assert tokens[-1][1] == ""


# TestParseOperator
@pytest.mark.parametrize(("token", "found"), [("!", "!"), ("exists", "exists"), ("(", "(")])
def test_parse_operator_errors(token: str, found: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(f"x {token} y")
    assert info.value.detail == (
        f"unable to parse requirement: found '{found}', expected: in, notin, =, ==, !=, gt, lt"
    )


@pytest.mark.parametrize("token", ["in", "=", "==", ">", "<", "notin", "!="])
def test_parse_operator_accepts_binary_operators(token: str) -> None:
    value = "(1)" if "in" in token else "1"
    parse_label_selector(f"x {token} {value}")


# TestRequirementConstructor (the field paths; details checked in test_selectors.py)
@pytest.mark.parametrize(
    ("key", "op", "values", "field"),
    [
        ("x1", Op.IN, (), "values: Invalid value: []"),
        ("x2", Op.NOT_IN, (), "values: Invalid value: []"),
        ("x5", Op.EQUALS, ("foo", "bar"), 'values: Invalid value: ["foo","bar"]'),
        ("x8", Op.EXISTS, ("foo",), 'values: Invalid value: ["foo"]'),
        ("x13", Op.GREATER_THAN, (), "values: Invalid value: []"),
        ("x14", Op.GREATER_THAN, ("bar",), 'values[0]: Invalid value: "bar"'),
        ("x15", Op.LESS_THAN, ("bar",), 'values[0]: Invalid value: "bar"'),
        ("a" * 254, Op.EXISTS, (), f'key: Invalid value: "{"a" * 254}"'),
        ("x16", Op.EQUALS, ("a" * 254,), f'values[0][x16]: Invalid value: "{"a" * 254}"'),
        ("x17", Op.EQUALS, ("a b",), 'values[0][x17]: Invalid value: "a b"'),
    ],
)
def test_requirement_constructor_errors(
    key: str, op: SelectorOperator, values: tuple[str, ...], field: str
) -> None:
    with pytest.raises(SelectorError) as info:
        LabelRequirement(key, op, values)
    assert info.value.detail.startswith(field + ":")


@pytest.mark.parametrize(
    ("key", "op", "values"),
    [
        ("x3", Op.IN, ("foo",)),
        ("x4", Op.NOT_IN, ("foo",)),
        ("x6", Op.EXISTS, ()),
        ("x7", Op.DOES_NOT_EXIST, ()),
        ("x9", Op.IN, ("bar",)),
        ("x11", Op.GREATER_THAN, ("1",)),
        ("x12", Op.LESS_THAN, ("6",)),
    ],
)
def test_requirement_constructor_accepts(
    key: str, op: SelectorOperator, values: tuple[str, ...]
) -> None:
    LabelRequirement(key, op, values)


def test_requirement_constructor_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError, match="unsupportedOp"):
        LabelRequirement("x18", "unsupportedOp", ())


# TestToString
@pytest.mark.parametrize(
    ("requirements", "text"),
    [
        (
            [req("x", Op.IN, "abc", "def"), req("y", Op.NOT_IN, "jkl"), req("z", Op.EXISTS)],
            "x in (abc,def),y notin (jkl),z",
        ),
        (
            [
                req("x", Op.NOT_IN, "abc", "def"),
                req("y", Op.NOT_EQUALS, "jkl"),
                req("z", Op.DOES_NOT_EXIST),
            ],
            "x notin (abc,def),y!=jkl,!z",
        ),
        (
            [req("x", Op.NOT_IN, "abc"), req("y", Op.IN, "jkl", "mno"), req("z", Op.NOT_IN, "")],
            "x notin (abc),y in (jkl,mno),z notin ()",
        ),
        (
            [
                req("x", Op.EQUALS, "abc"),
                req("y", Op.DOUBLE_EQUALS, "jkl"),
                req("z", Op.NOT_EQUALS, "a"),
                req("z", Op.EXISTS),
            ],
            "x=abc,y==jkl,z!=a,z",
        ),
        (
            [req("x", Op.GREATER_THAN, "2"), req("y", Op.LESS_THAN, "8"), req("z", Op.EXISTS)],
            "x>2,y<8,z",
        ),
    ],
)
def test_to_string(requirements: list[LabelRequirement], text: str) -> None:
    assert str(LabelSelector(requirements)) == text


# TestRequirementSelectorMatching
@pytest.mark.parametrize(
    ("labels", "requirements", "match"),
    [
        ({"x": "foo", "y": "baz"}, [req("x", Op.IN, "foo"), req("y", Op.NOT_IN, "alpha")], True),
        ({"x": "foo", "y": "baz"}, [req("x", Op.IN, "foo"), req("y", Op.IN, "alpha")], False),
        ({"y": ""}, [req("x", Op.NOT_IN, ""), req("y", Op.EXISTS)], True),
        ({"y": ""}, [req("x", Op.DOES_NOT_EXIST), req("y", Op.EXISTS)], True),
        ({"y": ""}, [req("x", Op.NOT_IN, ""), req("y", Op.DOES_NOT_EXIST)], False),
        ({"y": "baz"}, [req("x", Op.IN, "")], False),
        ({"z": "2"}, [req("z", Op.GREATER_THAN, "1")], True),
        ({"z": "v2"}, [req("z", Op.GREATER_THAN, "1")], False),
    ],
)
def test_requirement_selector_matching(
    labels: dict[str, str], requirements: list[LabelRequirement], match: bool
) -> None:
    assert LabelSelector(requirements).matches(labels) is match


# TestSetSelectorParser
GOOD_PARSES = [
    ("", []),
    ("\rx", [req("x", Op.EXISTS)]),
    (
        "this-is-a-dns.domain.com/key-with-dash",
        [req("this-is-a-dns.domain.com/key-with-dash", Op.EXISTS)],
    ),
    (
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        [req("this-is-another-dns.domain.com/key-with-dash", Op.IN, "so", "what")],
    ),
    (
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        [req("0.1.2.domain/99", Op.NOT_IN, "10.10.100.1", "tick.tack.clock")],
    ),
    ("foo  in\t (abc)", [req("foo", Op.IN, "abc")]),
    ("x notin\n (abc)", [req("x", Op.NOT_IN, "abc")]),
    ("x  notin\t\t\t(abc,def)", [req("x", Op.NOT_IN, "abc", "def")]),
    ("x in (abc,def)", [req("x", Op.IN, "abc", "def")]),
    ("x in (abc,)", [req("x", Op.IN, "abc", "")]),
    ("x in (abc,abc)", [req("x", Op.IN, "abc")]),
    ("x in ()", [req("x", Op.IN, "")]),
    ("x in (a,,)", [req("x", Op.IN, "a", "")]),
    ("x in (a,,,)", [req("x", Op.IN, "a", "")]),
    ("x in (a,,,,,,)", [req("x", Op.IN, "a", "")]),
    ("x in (a,,a,,a,,a,,)", [req("x", Op.IN, "a", "")]),
    (
        "x notin (abc,,def),bar,z in (),w",
        [
            req("bar", Op.EXISTS),
            req("w", Op.EXISTS),
            req("x", Op.NOT_IN, "abc", "", "def"),
            req("z", Op.IN, ""),
        ],
    ),
    ("x,y in (a)", [req("x", Op.EXISTS), req("y", Op.IN, "a")]),
    ("x=a", [req("x", Op.EQUALS, "a")]),
    ("x>1", [req("x", Op.GREATER_THAN, "1")]),
    ("x<7", [req("x", Op.LESS_THAN, "7")]),
    ("x=a,y!=b", [req("x", Op.EQUALS, "a"), req("y", Op.NOT_EQUALS, "b")]),
    (
        "x=a,y!=b,z in (h,i,j)",
        [req("x", Op.EQUALS, "a"), req("y", Op.NOT_EQUALS, "b"), req("z", Op.IN, "h", "i", "j")],
    ),
    ("x notin ( )", [req("x", Op.NOT_IN, "")]),
    ("x notin (, a)", [req("x", Op.NOT_IN, "", "a")]),
    ("a ", [req("a", Op.EXISTS)]),
    ("a in (x,y,notin, z,in)", [req("a", Op.IN, "in", "notin", "x", "y", "z")]),
]


@pytest.mark.parametrize(("text", "requirements"), GOOD_PARSES)
def test_set_selector_parser_good(text: str, requirements: list[LabelRequirement]) -> None:
    assert parse_label_selector(text).requirements == tuple(requirements)


@pytest.mark.parametrize(
    "text",
    [
        "x=a||y=b",
        "x,,y",
        ",x,y",
        "x nott in (y)",
        "a in (xyz),",
        "a in (xyz)b notin ()",
        "a in (xyz abc)",
        "a notin(",
        "a (",
        "(",
    ],
)
def test_set_selector_parser_bad(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


# TestAdd
def test_add() -> None:
    selector = LabelSelector().add(req("key", Op.IN, "value"))
    assert selector.requirements == (req("key", Op.IN, "value"),)
    selector = selector.add(req("key2", Op.EQUALS, "value2"))
    assert selector.requirements == (req("key", Op.IN, "value"), req("key2", Op.EQUALS, "value2"))
    assert LabelSelector.nothing().add(req("a", Op.EXISTS)) == LabelSelector.nothing()


# TestSetSelectorString
@pytest.mark.parametrize(
    ("labels", "text"),
    [({}, ""), ({"app": "foo"}, "app=foo"), ({"app": "foo", "a": "b"}, "a=b,app=foo")],
)
def test_set_selector_string(labels: dict[str, str], text: str) -> None:
    assert str(LabelSelector.from_set(labels)) == text


# TestRequiresExactMatch
@pytest.mark.parametrize(
    ("requirements", "label", "value"),
    [
        ([req("key", Op.IN, "value")], "key", "value"),
        ([req("key", Op.IN, "value", "value2")], "key", None),
        ([req("key", Op.IN, "value", "value1"), req("key2", Op.IN, "value2")], "key2", "value2"),
        ([req("key", Op.EQUALS, "value")], "key", "value"),
        ([req("key", Op.DOUBLE_EQUALS, "value")], "key", "value"),
        ([req("key", Op.NOT_EQUALS, "value")], "key", None),
        ([req("key", Op.IN, "value"), req("key2", Op.IN, "value2")], "key", "value"),
        ([req("key", Op.NOT_IN, "v"), req("key", Op.EQUALS, "w")], "key", None),
        ([], "key", None),
    ],
)
def test_requires_exact_match(
    requirements: list[LabelRequirement], label: str, value: str | None
) -> None:
    assert LabelSelector(requirements).requires_exact_match(label) == value


def test_nothing_requires_no_exact_match() -> None:
    assert LabelSelector.nothing().requires_exact_match("key") is None


# TestValidatedSelectorFromSet
def test_validated_selector_from_set() -> None:
    assert LabelSelector.from_set({"key": "val"}).requirements == (req("key", Op.EQUALS, "val"),)
    value = "axahm2EJ8Phiephe2eixohbee9eGeiyees1thuozi1xoh0GiuH3diewi8iem7Nui"
    with pytest.raises(SelectorError) as info:
        LabelSelector.from_set({"Key": value})
    assert info.value.detail == (
        f'values[0][Key]: Invalid value: "{value}": must be no more than 63 bytes'
    )


# TestRequirementEqual
def test_requirement_equal() -> None:
    assert req("key", Op.IN, "foo", "bar") == req("key", Op.IN, "bar", "foo")
    assert req("key1", Op.EQUALS, "foo") != req("key2", Op.EQUALS, "foo")
    assert req("key", Op.EQUALS, "foo") != req("key", Op.IN, "foo")
    assert req("key", Op.IN, "foo", "bar") != req("key", Op.IN, "foobar")


# TestMatchesNothing
@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "!a",
        "a=b",
        "a!=b",
        "a in (b)",
        "a notin (b)",
        "a,!a",
        "a=b,a!=b",
        "a in (b),a notin (b)",
    ],
)
def test_parsed_selectors_never_match_nothing(text: str) -> None:
    assert not parse_label_selector(text).matches_nothing


def test_matches_nothing() -> None:
    assert LabelSelector.nothing().matches_nothing
    assert not LabelSelector.everything().matches_nothing
    assert not LabelSelector.from_set({}).matches_nothing
    assert not LabelSelector.from_set({"key": "value"}).matches_nothing


# --- pkg/api/validate/content: TestIsLabelKey, TestIsLabelValue, TestIsDNS1123Subdomain ----

GOOD_KEYS = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "1234",
    "simple/simple",
    "now-with-dashes/simple",
    "now-with-dashes/now-with-dashes",
    "now.with.dots/simple",
    "now-with.dashes-and.dots/simple",
    "1-num.2-num/3-num",
    "1234/5678",
    "1.2.3.4/5678",
    "Uppercase_Is_OK_123",
    "example.com/Uppercase_Is_OK_123",
    "requests.storage-foo",
    "a" * 63,
    "a" * 253 + "/" + "b" * 63,
]
BAD_KEYS = [
    "nospecialchars%^=@",
    "cantendwithadash-",
    "-cantstartwithadash-",
    "only/one/slash",
    "Example.com/abc",
    "example_com/abc",
    "example.com/",
    "/simple",
    "a" * 64,
    "a" * 254 + "/abc",
]
GOOD_VALUES = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "end-with-num-1",
    "1234",
    "a" * 63,
    "",
]
BAD_VALUES = [
    "nospecialchars%^=@",
    "Tama-nui-te-rā.is.Māori.sun",
    "\\backslashes\\are\\bad",
    "-starts-with-dash",
    "ends-with-dash-",
    ".starts.with.dot",
    "ends.with.dot.",
    "a" * 64,
]
GOOD_SUBDOMAINS = [
    "a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "1--a--b--2",
    "a.a", "ab.a", "abc.a", "a1.a", "a-1.a", "a--1--2--b.a", "a.1", "ab.1", "abc.1", "a1.1",
    "a-1.1", "a--1--2--b.1", "0.a", "01.a", "012.a", "1a.a", "1-a.a", "0.1", "01.1", "012.1",
    "1a.1", "1-a.1", "1--a--b--2.1", "a.b.c.d.e", "aa.bb.cc.dd.ee", "1.2.3.4.5",
    "11.22.33.44.55", "a" * 253,
]  # fmt: skip
BAD_SUBDOMAINS = [
    "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a", "a_b",
    "1_", "_1", "1_2", ".", "a.", ".a", "a..b", "1.", ".1", "1..2", " ", "a ", " a", "a b", "1 ",
    " 1", "1 2", "A.a", "aB.a", "ab.A", "A1.a", "a1.A", "A.1", "aB.1", "A1.1", "1A.1", "0.A",
    "01.A", "012.A", "1A.a", "1a.A", "A.B.C.D.E", "AA.BB.CC.DD.EE", "a.B.c.d.e",
    "aa.bB.cc.dd.ee", "a@b", "a,b", "a;b", "a:b", "a%b", "a?b", "a$b", "a" * 254,
]  # fmt: skip


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_is_label_key_accepts(key: str) -> None:
    assert label_key_errors(key) == []
    assert parse_label_selector(key).requirements == (req(key, Op.EXISTS),)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_is_label_key_rejects(key: str) -> None:
    assert label_key_errors(key)
    with pytest.raises(SelectorError):
        LabelRequirement(key, Op.EXISTS)


@pytest.mark.parametrize("value", GOOD_VALUES)
def test_is_label_value_accepts(value: str) -> None:
    assert label_value_errors(value) == []
    assert LabelSelector.from_set({"k": value}).matches({"k": value})


@pytest.mark.parametrize("value", BAD_VALUES)
def test_is_label_value_rejects(value: str) -> None:
    assert label_value_errors(value)
    with pytest.raises(SelectorError):
        LabelRequirement("k", Op.EQUALS, (value,))


@pytest.mark.parametrize("prefix", GOOD_SUBDOMAINS)
def test_dns_subdomain_prefixes_accepted(prefix: str) -> None:
    assert label_key_errors(f"{prefix}/name") == []


@pytest.mark.parametrize("prefix", [p for p in BAD_SUBDOMAINS if "/" not in p])
def test_dns_subdomain_prefixes_rejected(prefix: str) -> None:
    errors = label_key_errors(f"{prefix}/name")
    assert errors
    assert all(e.startswith("prefix part ") for e in errors)
