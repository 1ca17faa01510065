"""List/watch options: decoding, defaulting and validation (watch-semantics §3)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given

from k8swatch import (
    FieldSelector,
    ListOptions,
    StatusError,
    WatchCapabilities,
    default_list_options,
    parse_field_selector,
    validate_field_selector,
    validate_list_options,
    validate_watch_options,
)
from k8swatch._options import (
    parse_resource_version,
    parse_watch_resource_version,
    validate_list_resource_version,
)

from .strategies import list_options

NOT_OLDER = "NotOlderThan"


def query(text: str) -> ListOptions:
    return ListOptions.from_query(parse_qs(text, keep_blank_values=True))


# --- decoding (§3.1) -----------------------------------------------------------------------


def test_empty_query_gives_defaults() -> None:
    assert ListOptions.from_query({}) == ListOptions()
    assert ListOptions().send_initial_events is None
    assert ListOptions().timeout_seconds is None


def test_every_parameter_decodes() -> None:
    options = query(
        "labelSelector=app%3Dweb&fieldSelector=metadata.name%3Da&watch=1&allowWatchBookmarks=true"
        "&resourceVersion=12&resourceVersionMatch=NotOlderThan&timeoutSeconds=30&limit=500"
        "&continue=tok&sendInitialEvents=true"
    )
    assert options == ListOptions(
        label_selector="app=web",
        field_selector="metadata.name=a",
        watch=True,
        allow_watch_bookmarks=True,
        resource_version="12",
        resource_version_match=NOT_OLDER,
        timeout_seconds=30,
        limit=500,
        continue_token="tok",
        send_initial_events=True,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", True),
        ("1", True),
        ("true", True),
        ("True", True),
        ("yes", True),
        ("no", True),
        ("00", True),
        (" false", True),
        ("0", False),
        ("false", False),
        ("FALSE", False),
        ("fAlSe", False),
        ("fal\u017fe", False),  # Go's EqualFold folds the long s
    ],
)
def test_boolean_rule(value: str, expected: bool) -> None:
    options = ListOptions.from_query(
        {"watch": value, "allowWatchBookmarks": [value], "sendInitialEvents": value}
    )
    assert options.watch is expected
    assert options.allow_watch_bookmarks is expected
    assert options.send_initial_events is expected


def test_flag_without_value_is_true() -> None:
    assert query("watch").watch is True
    assert query("watch=").watch is True
    assert query("sendInitialEvents").send_initial_events is True


def test_first_value_wins_and_unknown_parameters_are_ignored() -> None:
    options = ListOptions.from_query(
        {
            "watch": ["0", "1"],
            "limit": ["5", "abc"],
            "resourceVersion": ["1", "2"],
            "timeout": "10",
            "shardSelector": "x",
            "pretty": "true",
        }
    )
    assert options == ListOptions(limit=5, resource_version="1")


def test_empty_value_lists_count_as_absent() -> None:
    options = ListOptions.from_query({"sendInitialEvents": [], "watch": [], "limit": []})
    assert options == ListOptions()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("limit=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("limit=", 'strconv.ParseInt: parsing "": invalid syntax'),
        ("limit=1.5", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
        ("limit=1_000", 'strconv.ParseInt: parsing "1_000": invalid syntax'),
        ("limit=%201", 'strconv.ParseInt: parsing " 1": invalid syntax'),
        ("timeoutSeconds=x", 'strconv.ParseInt: parsing "x": invalid syntax'),
        (
            "timeoutSeconds=9223372036854775808",
            'strconv.ParseInt: parsing "9223372036854775808": value out of range',
        ),
        # timeoutSeconds is decoded before limit
        ("limit=a&timeoutSeconds=b", 'strconv.ParseInt: parsing "b": invalid syntax'),
        ("limit=%22%0A", 'strconv.ParseInt: parsing "\\"\\n": invalid syntax'),
    ],
)
def test_bad_integers_are_bad_requests(params: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        query(params)
    assert info.value.status.code == 400
    assert info.value.status.reason == "BadRequest"
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("params", "timeout", "limit"),
    [
        ("timeoutSeconds=-5&limit=-1", -5, -1),
        ("timeoutSeconds=%2B7&limit=007", 7, 7),
        ("limit=-9223372036854775808", None, -(2**63)),
        ("timeoutSeconds=0", 0, 0),
    ],
)
def test_integers_are_int64(params: str, timeout: int | None, limit: int) -> None:
    options = query(params)
    assert options.timeout_seconds == timeout
    assert options.limit == limit


def test_decoding_applies_no_defaults() -> None:
    assert query("watch=true") == ListOptions(watch=True)


@given(list_options)
def test_to_query_round_trips(options: ListOptions) -> None:
    assert ListOptions.from_query(options.to_query()) == options


def test_to_query_omits_defaults() -> None:
    assert ListOptions().to_query() == {}
    assert ListOptions(send_initial_events=False, timeout_seconds=0).to_query() == {
        "timeoutSeconds": "0",
        "sendInitialEvents": "false",
    }


# --- defaulting (§3.2, TestSetListOptionsDefaults) ----------------------------------------------


@pytest.mark.parametrize(
    ("options", "enabled", "expected"),
    [
        (ListOptions(watch=True, resource_version="1"), True, None),
        (ListOptions(watch=True, send_initial_events=True), True, None),
        (ListOptions(watch=True, resource_version_match="m"), True, None),
        (ListOptions(), True, None),
        (
            ListOptions(watch=True),
            True,
            ListOptions(watch=True, send_initial_events=True, resource_version_match=NOT_OLDER),
        ),
        (
            ListOptions(watch=True, resource_version="0"),
            True,
            ListOptions(
                watch=True,
                resource_version="0",
                send_initial_events=True,
                resource_version_match=NOT_OLDER,
            ),
        ),
        (ListOptions(watch=True), False, None),
        (ListOptions(watch=True, send_initial_events=False), True, None),
    ],
)
def test_set_list_options_defaults(
    options: ListOptions, enabled: bool, expected: ListOptions | None
) -> None:
    assert default_list_options(options, watch_list_enabled=enabled) == (expected or options)


# --- validation (§3.3, TestValidateListOptions) ----------------------------------------------

VALIDATION_CASES = [
    ("valid-default", ListOptions(), False, []),
    (
        "valid-resourceversionmatch-exact",
        ListOptions(resource_version="1", resource_version_match="Exact"),
        False,
        [],
    ),
    (
        "invalid-resourceversionmatch-exact",
        ListOptions(resource_version="0", resource_version_match="Exact"),
        False,
        [
            'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for '
            'resourceVersion "0"'
        ],
    ),
    (
        "valid-resourceversionmatch-notolderthan",
        ListOptions(resource_version="0", resource_version_match=NOT_OLDER),
        False,
        [],
    ),
    (
        "invalid-resourceversionmatch",
        ListOptions(resource_version="0", resource_version_match="foo"),
        False,
        [
            'resourceVersionMatch: Unsupported value: "foo": supported values: "Exact", '
            '"NotOlderThan", ""'
        ],
    ),
    (
        "list-sendInitialEvents-forbidden",
        ListOptions(send_initial_events=True),
        False,
        ["sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"],
    ),
    ("valid-watch-default", ListOptions(watch=True), False, []),
    (
        "valid-watch-sendInitialEvents-on",
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match=NOT_OLDER,
            allow_watch_bookmarks=True,
        ),
        True,
        [],
    ),
    (
        "valid-watch-sendInitialEvents-off",
        ListOptions(
            watch=True,
            send_initial_events=False,
            resource_version_match=NOT_OLDER,
            allow_watch_bookmarks=True,
        ),
        True,
        [],
    ),
    (
        "watch-resourceversionmatch-without-sendInitialEvents-forbidden",
        ListOptions(watch=True, resource_version_match=NOT_OLDER),
        False,
        [
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
            "unless sendInitialEvents is provided"
        ],
    ),
    (
        "watch-sendInitialEvents-without-resourceversionmatch-forbidden",
        ListOptions(watch=True, send_initial_events=True),
        False,
        [
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
            "WatchList feature gate is enabled",
        ],
    ),
    (
        "watch-sendInitialEvents-with-exact-resourceversionmatch-forbidden",
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match="Exact",
            allow_watch_bookmarks=True,
        ),
        True,
        [
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan",
            'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"',
        ],
    ),
    (
        "watch-sendInitialEvents-on-with-empty-resourceversionmatch-forbidden",
        ListOptions(watch=True, send_initial_events=True),
        False,
        [
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
            "WatchList feature gate is enabled",
        ],
    ),
    (
        "watch-sendInitialEvents-off-with-empty-resourceversionmatch-forbidden",
        ListOptions(watch=True, send_initial_events=False),
        False,
        [
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
            "WatchList feature gate is enabled",
        ],
    ),
    (
        "watch-sendInitialEvents-with-incorrect-resourceversionmatch-forbidden",
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match="incorrect",
            allow_watch_bookmarks=True,
        ),
        True,
        [
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan",
            'resourceVersionMatch: Unsupported value: "incorrect": supported values: '
            '"NotOlderThan"',
        ],
    ),
    (
        "watch-sendInitialEvents-no-allowWatchBookmark",
        ListOptions(watch=True, send_initial_events=True, resource_version_match=NOT_OLDER),
        True,
        [],
    ),
    (
        "watch-sendInitialEvents-no-watchlist-fg-disabled",
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match=NOT_OLDER,
            allow_watch_bookmarks=True,
        ),
        False,
        [
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
            "WatchList feature gate is enabled"
        ],
    ),
    (
        "watch-sendInitialEvents-continue",
        ListOptions(
            watch=True,
            send_initial_events=True,
            resource_version_match=NOT_OLDER,
            allow_watch_bookmarks=True,
            continue_token="123",
        ),
        True,
        [
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue "
            "is provided"
        ],
    ),
    # the remaining rules of the spec's tables
    (
        "L1-match-without-resourceVersion",
        ListOptions(resource_version_match=NOT_OLDER),
        True,
        [
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
            "resourceVersion is provided"
        ],
    ),
    (
        "L1-L2-L3-together",
        ListOptions(resource_version_match="<x>", continue_token="c"),
        True,
        [
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
            "resourceVersion is provided",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue "
            "is provided",
            'resourceVersionMatch: Unsupported value: "\\u003cx\\u003e": supported values: '
            '"Exact", "NotOlderThan", ""',
        ],
    ),
    (
        "L4-L5",
        ListOptions(
            resource_version="0", resource_version_match="Exact", send_initial_events=False
        ),
        True,
        [
            'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for '
            'resourceVersion "0"',
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ],
    ),
    (
        "W3-W4",
        ListOptions(watch=True, resource_version="5", resource_version_match="Exact"),
        True,
        [
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
            "unless sendInitialEvents is provided",
            'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"',
        ],
    ),
    ("list-continue-alone", ListOptions(continue_token="c", resource_version="5"), True, []),
    ("watch-limit-and-timeout", ListOptions(watch=True, limit=-1, timeout_seconds=-1), True, []),
]


@pytest.mark.parametrize(
    ("options", "enabled", "errors"),
    [pytest.param(o, e, err, id=name) for name, o, e, err in VALIDATION_CASES],
)
def test_validate_list_options(options: ListOptions, enabled: bool, errors: list[str]) -> None:
    if not errors:
        validate_list_options(options, watch_list_enabled=enabled)
        return
    with pytest.raises(StatusError) as info:
        validate_list_options(options, watch_list_enabled=enabled)
    status = info.value.status
    assert status.code == 422
    assert status.reason == "Invalid"
    assert status.details is not None
    assert status.details.kind == "ListOptions"
    assert status.details.group == "meta.k8s.io"
    rendered = [f"{c.field}: {c.message}" for c in status.details.causes]
    assert rendered == errors
    for cause in status.details.causes:
        expected = (
            "FieldValueNotSupported"
            if cause.message.startswith("Unsupported")
            else "FieldValueForbidden"
        )
        assert cause.reason == expected
    shown = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    assert status.message == f'ListOptions.meta.k8s.io "" is invalid: {shown}'


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ("watch=true", 0),
        ("watch=true&continue=x", 1),  # W5 after defaulting
        ("watch=true&resourceVersion=5&resourceVersionMatch=Exact", 2),
        ("watch=true&resourceVersion=0&sendInitialEvents=false", 1),
    ],
)
def test_consequences_of_defaulting_then_validating(params: str, errors: int) -> None:
    options = default_list_options(query(params))
    if not errors:
        validate_list_options(options)
        return
    with pytest.raises(StatusError) as info:
        validate_list_options(options)
    assert info.value.status.details is not None
    assert len(info.value.status.details.causes) == errors


# --- validate_watch_options (the Go original's rules) ----------------------------------------

SIE_MESSAGE = (
    "invalid watch options: sendInitialEvents=true is not supported for this watch endpoint"
)


def rvm_message(value: str) -> str:
    return (
        f'invalid watch options: resourceVersionMatch "{value}" is not supported '
        "for this watch endpoint"
    )


ACCEPTED = [
    ListOptions(),
    ListOptions(watch=True),
    ListOptions(send_initial_events=False),
    ListOptions(watch=True, send_initial_events=False),
    ListOptions(resource_version="123"),
    ListOptions(resource_version="0"),
    ListOptions(watch=True, resource_version="12345", allow_watch_bookmarks=True),
]


@pytest.mark.parametrize("options", ACCEPTED)
def test_watch_options_accepted(options: ListOptions) -> None:
    validate_watch_options(options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ListOptions(send_initial_events=True), SIE_MESSAGE),
        # the defaulted legacy combinations
        (
            ListOptions(
                watch=True,
                resource_version="",
                send_initial_events=True,
                resource_version_match=NOT_OLDER,
            ),
            SIE_MESSAGE,
        ),
        (
            ListOptions(
                watch=True,
                resource_version="0",
                send_initial_events=True,
                resource_version_match=NOT_OLDER,
            ),
            SIE_MESSAGE,
        ),
        (
            ListOptions(
                watch=True,
                resource_version="12345",
                send_initial_events=True,
                resource_version_match=NOT_OLDER,
            ),
            SIE_MESSAGE,
        ),
        (ListOptions(resource_version_match=NOT_OLDER), rvm_message(NOT_OLDER)),
        (ListOptions(resource_version_match="Exact"), rvm_message("Exact")),
        (
            ListOptions(send_initial_events=False, resource_version_match=NOT_OLDER),
            rvm_message(NOT_OLDER),
        ),
        (ListOptions(resource_version_match='a"b'), rvm_message('a\\"b')),
    ],
)
def test_watch_options_rejected(options: ListOptions, message: str) -> None:
    with pytest.raises(StatusError) as info:
        validate_watch_options(options)
    assert info.value.status.code == 400
    assert info.value.status.reason == "BadRequest"
    assert str(info.value) == message


def test_watch_options_after_apiserver_defaulting() -> None:
    # what a storage really receives for `?watch=true` and `?watch=true&resourceVersion=0`
    for params in ("watch=true", "watch=true&resourceVersion=0"):
        options = default_list_options(query(params))
        with pytest.raises(StatusError, match="sendInitialEvents=true is not supported"):
            validate_watch_options(options)
        validate_watch_options(options, WatchCapabilities(initial_events=True))
    validate_watch_options(default_list_options(query("watch=true&resourceVersion=7")))


@pytest.mark.parametrize(
    ("options", "capabilities", "error"),
    [
        # initial_events: sendInitialEvents=true with NotOlderThan
        (
            ListOptions(watch=True, send_initial_events=True, resource_version_match=NOT_OLDER),
            WatchCapabilities(initial_events=True),
            None,
        ),
        (
            ListOptions(watch=True, send_initial_events=True, resource_version_match=NOT_OLDER),
            WatchCapabilities(resume=True),
            SIE_MESSAGE,
        ),
        (
            ListOptions(watch=True, send_initial_events=True),
            WatchCapabilities(initial_events=True),
            "invalid watch options: sendInitialEvents requires setting resourceVersionMatch "
            "to NotOlderThan",
        ),
        (
            ListOptions(watch=True, send_initial_events=True, resource_version_match="Exact"),
            WatchCapabilities(initial_events=True, resume=True),
            "invalid watch options: sendInitialEvents requires setting resourceVersionMatch "
            "to NotOlderThan",
        ),
        # resume: sendInitialEvents=false with NotOlderThan
        (
            ListOptions(
                watch=True,
                resource_version="10",
                send_initial_events=False,
                resource_version_match=NOT_OLDER,
            ),
            WatchCapabilities(resume=True),
            None,
        ),
        (
            ListOptions(
                watch=True,
                resource_version="10",
                send_initial_events=False,
                resource_version_match=NOT_OLDER,
            ),
            WatchCapabilities(initial_events=True),
            rvm_message(NOT_OLDER),
        ),
        # never: a match without sendInitialEvents, or another match
        (
            ListOptions(watch=True, resource_version_match=NOT_OLDER),
            WatchCapabilities(initial_events=True, resume=True),
            rvm_message(NOT_OLDER),
        ),
        (
            ListOptions(watch=True, send_initial_events=False, resource_version_match="Exact"),
            WatchCapabilities(initial_events=True, resume=True),
            rvm_message("Exact"),
        ),
        (ListOptions(watch=True, resource_version="5"), WatchCapabilities(resume=True), None),
    ],
)
def test_watch_capabilities_relax_exactly_their_rule(
    options: ListOptions, capabilities: WatchCapabilities, error: str | None
) -> None:
    if error is None:
        validate_watch_options(options, capabilities)
        return
    with pytest.raises(StatusError) as info:
        validate_watch_options(options, capabilities)
    assert info.value.status.code == 400
    assert str(info.value) == error


# --- validate_field_selector (TestValidateFieldSelector) -------------------------------------


@pytest.mark.parametrize(
    "selector",
    [
        None,
        "",
        FieldSelector.everything(),
        FieldSelector.from_set({"metadata.name": "acme.template"}),
        FieldSelector.from_set({"metadata.namespace": "control-plane"}),
        "metadata.name=a,metadata.namespace!=b",
    ],
)
def test_validate_field_selector_accepts(selector: FieldSelector | str | None) -> None:
    result = validate_field_selector(selector, frozenset({"metadata.name", "metadata.namespace"}))
    assert isinstance(result, FieldSelector)


def test_validate_field_selector_returns_the_parsed_selector() -> None:
    assert validate_field_selector("metadata.name==a") == parse_field_selector("metadata.name=a")
    assert validate_field_selector(None) == FieldSelector.everything()


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (FieldSelector.from_set({"spec.foo": "bar"}), "field label not supported: spec.foo"),
        ("metadata.name=a,spec.foo=bar", "field label not supported: spec.foo"),
        ("status.phase!=Running", "field label not supported: status.phase"),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    ],
)
def test_validate_field_selector_rejects(selector: FieldSelector | str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        validate_field_selector(selector, ["metadata.name", "metadata.namespace"])
    assert info.value.status.code == 400
    assert info.value.status.reason == "BadRequest"
    assert str(info.value) == message
    assert "not supported" in message or "selector" in message


def test_validate_field_selector_custom_fields() -> None:
    validate_field_selector("status.phase=Running", {"status.phase", "metadata.name"})


# --- storage-level helpers (§3.3) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "number"),
    [("", 0), ("0", 0), ("1", 1), ("007", 7), ("18446744073709551615", 2**64 - 1)],
)
def test_parse_resource_version(value: str, number: int) -> None:
    assert parse_resource_version(value) == number
    assert parse_watch_resource_version(value, "widgets") == number


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("abc", 'strconv.ParseUint: parsing "abc": invalid syntax'),
        ("-1", 'strconv.ParseUint: parsing "-1": invalid syntax'),
        ("+1", 'strconv.ParseUint: parsing "+1": invalid syntax'),
        (
            "18446744073709551616",
            'strconv.ParseUint: parsing "18446744073709551616": value out of range',
        ),
    ],
)
def test_bad_resource_versions(value: str, error: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_resource_version(value)
    assert info.value.status.code == 400
    quoted = '"' + value + '"'
    assert str(info.value) == (
        f"invalid resource version: resourceVersion: Invalid value: {quoted}: {error}"
    )
    with pytest.raises(StatusError) as info:
        parse_watch_resource_version(value, "widgets", group="example.com")
    status = info.value.status
    assert status.code == 422
    assert status.reason == "Invalid"
    assert str(info.value) == (
        f'widgets.example.com "" is invalid: resourceVersion: Invalid value: {quoted}: {error}'
    )
    assert status.details is not None
    assert status.details.causes[0].reason == "FieldValueInvalid"
    assert status.details.causes[0].field == "resourceVersion"


@pytest.mark.parametrize(
    ("options", "result"),
    [
        (ListOptions(), 0),
        (ListOptions(resource_version="42"), 42),
        (ListOptions(continue_token="tok"), 0),
        (ListOptions(continue_token="tok", resource_version="0"), 0),
        (
            ListOptions(continue_token="tok", resource_version="200"),
            "specifying resource version is not allowed when using continue",
        ),
        (
            ListOptions(resource_version="invalid"),
            'invalid resource version: resourceVersion: Invalid value: "invalid": '
            'strconv.ParseUint: parsing "invalid": invalid syntax',
        ),
    ],
)
def test_validate_list_resource_version(options: ListOptions, result: int | str) -> None:
    if isinstance(result, int):
        assert validate_list_resource_version(options) == result
        return
    with pytest.raises(StatusError) as info:
        validate_list_resource_version(options)
    assert info.value.status.code == 400
    assert str(info.value) == result
