"""Go-compatible quoting, JSON, integer and duration helpers (``k8swatch._go``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch._go import format_go_duration, go_json, go_parse_int, go_quote, parse_go_duration


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\tnew\nline", '"tab\\tnew\\nline"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("é ü 日本", '"é ü 日本"'),
        ("\u2028", '"\\u2028"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\ud800", '"\\xed\\xa0\\x80"'),
    ],
)
def test_go_quote_matches_strconv_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_go_json_is_compact_and_html_safe() -> None:
    assert go_json({"a": [1, "x"]}) == '{"a":[1,"x"]}'
    assert go_json("<a&b>") == '"\\u003ca\\u0026b\\u003e"'
    assert go_json("é\u2029") == '"é\\u2029"'


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists))
def test_go_json_decodes_to_the_same_value(value: object) -> None:
    assert json.loads(go_json(value)) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'strconv.ParseInt: parsing "": invalid syntax'),
        ("12a", 'strconv.ParseInt: parsing "12a": invalid syntax'),
        (
            "9223372036854775808",
            'strconv.ParseInt: parsing "9223372036854775808": value out of range',
        ),
        # Go reports the overflow it meets first, before a later bad character
        (
            "99999999999999999999x",
            'strconv.ParseInt: parsing "99999999999999999999x": value out of range',
        ),
    ],
)
def test_go_parse_int_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="strconv") as info:
        go_parse_int(text)
    assert str(info.value) == message


def test_go_parse_int_bounds() -> None:
    assert go_parse_int("-9223372036854775808") == -(1 << 63)
    assert go_parse_int("+42") == 42
    assert go_parse_int("18446744073709551615", unsigned=True) == (1 << 64) - 1
    with pytest.raises(ValueError, match="ParseUint"):
        go_parse_int("-1", unsigned=True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.12, "120ms"),
        (0.0005, "500µs"),
        (90, "1m30s"),
        (120, "2m0s"),
        (3661.5, "1h1m1.5s"),
    ],
)
def test_format_go_duration_matches_duration_string(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text
    assert parse_go_duration(text) == pytest.approx(seconds)


@given(st.integers(min_value=1, max_value=10 * 3600 * 1000))
def test_go_durations_round_trip_whole_milliseconds(ms: int) -> None:
    assert parse_go_duration(format_go_duration(ms / 1000)) == pytest.approx(ms / 1000)


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "1d", "-1s"])
def test_parse_go_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_go_duration(text)
