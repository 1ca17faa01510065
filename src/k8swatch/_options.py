"""List/watch options: decoding, defaulting and validation, as kube-apiserver does them.

Pure code. The steps are separate so a server can run each exactly where
kube-apiserver does:

1. [`ListOptions.from_query`][k8swatch.ListOptions.from_query] decodes the
   wire query (no defaults);
2. [`default_list_options`][k8swatch.default_list_options] applies the
   WatchList defaulting;
3. [`validate_list_options`][k8swatch.validate_list_options] runs
   apimachinery's ``ValidateListOptions`` (422 Invalid);
4. a storage checks what it supports with
   [`validate_watch_options`][k8swatch.validate_watch_options] and
   [`validate_field_selector`][k8swatch.validate_field_selector] (400
   BadRequest), and, for a storage with resourceVersions, the storage-level
   checks ([`parse_resource_version`][k8swatch.parse_resource_version],
   [`validate_list_resource_version`][k8swatch.validate_list_resource_version]).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs
from typing_extensions import Self, final

from ._fields import FieldSelector, parse_field_selector
from ._go import go_json, go_parse_int, go_quote
from ._selectors import SelectorError
from ._status import StatusCause, bad_request, invalid

__all__ = [
    "DEFAULT_SUPPORTED_FIELDS",
    "RESOURCE_VERSION_MATCH_EXACT",
    "RESOURCE_VERSION_MATCH_NOT_OLDER_THAN",
    "ListOptions",
    "WatchCapabilities",
    "default_list_options",
    "parse_resource_version",
    "parse_watch_resource_version",
    "validate_field_selector",
    "validate_list_options",
    "validate_list_resource_version",
    "validate_watch_options",
]

RESOURCE_VERSION_MATCH_EXACT: Final = "Exact"
"""``resourceVersionMatch=Exact``: list exactly at the given resourceVersion."""
RESOURCE_VERSION_MATCH_NOT_OLDER_THAN: Final = "NotOlderThan"
"""``resourceVersionMatch=NotOlderThan``: at least as new as the given resourceVersion."""

DEFAULT_SUPPORTED_FIELDS: Final = frozenset({"metadata.name", "metadata.namespace"})
"""The fields every Kubernetes resource supports in a field selector."""

QueryValue = str | Sequence[str]


def _first(query: Mapping[str, QueryValue], name: str) -> str | None:
    """The first value of *name*, or None when absent (or present with no value at all)."""
    value = query.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    for item in value:
        return item
    return None


def _decode_bool(value: str) -> bool:
    # runtime.Convert_Slice_string_To_bool: only "0" and "false" are false, the latter
    # compared with Go's strings.EqualFold (so "FALSE" and "fal\u017fe" are false too).
    return not (value == "0" or value.casefold() == "false")


def _decode_int64(value: str) -> int:
    try:
        return go_parse_int(value)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


@final
@attrs.frozen
class ListOptions:
    """``metav1.ListOptions`` as kube-apiserver hands it to a storage.

    Selectors stay strings here; parse them with
    [`parse_label_selector`][k8swatch.parse_label_selector] and
    [`parse_field_selector`][k8swatch.parse_field_selector] (or let
    [`filter_for_list_options`][k8swatch.filter_for_list_options] do it).

    Attributes:
        label_selector: ``labelSelector``.
        field_selector: ``fieldSelector``.
        watch: ``watch``: stream changes instead of listing.
        allow_watch_bookmarks: ``allowWatchBookmarks`` (ignored for lists).
        resource_version: ``resourceVersion`` (``""``, ``"0"`` or a decimal).
        resource_version_match: ``resourceVersionMatch`` (``""``, ``Exact``,
            ``NotOlderThan``).
        timeout_seconds: ``timeoutSeconds``, None when absent.
        limit: ``limit`` (page size for lists; ignored for watches).
        continue_token: ``continue``.
        send_initial_events: ``sendInitialEvents``: None when absent.
    """

    label_selector: str = ""
    field_selector: str = ""
    watch: bool = False
    allow_watch_bookmarks: bool = False
    resource_version: str = ""
    resource_version_match: str = ""
    timeout_seconds: int | None = None
    limit: int = 0
    continue_token: str = ""
    send_initial_events: bool | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str | Sequence[str]]) -> Self:
        """Decode a wire query exactly as kube-apiserver's parameter decoder does.

        *query* maps each parameter to a string or a sequence of strings
        (``urllib.parse.parse_qs`` output, a multidict, or a plain dict).
        Only the first value of a repeated parameter counts; unknown
        parameters are ignored; a boolean is false only for ``0`` and
        (case-insensitive) ``false`` — present and empty (``?watch=``) is
        true; ``sendInitialEvents`` stays None when absent. No defaulting.

        Raises:
            StatusError: 400 BadRequest for a ``timeoutSeconds`` or ``limit``
                that is not a base-10 int64, with Go's message
                (``strconv.ParseInt: parsing "abc": invalid syntax``,
                ``...: value out of range``); ``timeoutSeconds`` is decoded
                first.
        """
        timeout_text = _first(query, "timeoutSeconds")
        limit_text = _first(query, "limit")
        watch_text = _first(query, "watch")
        bookmarks_text = _first(query, "allowWatchBookmarks")
        initial_text = _first(query, "sendInitialEvents")
        return cls(
            label_selector=_first(query, "labelSelector") or "",
            field_selector=_first(query, "fieldSelector") or "",
            watch=watch_text is not None and _decode_bool(watch_text),
            allow_watch_bookmarks=bookmarks_text is not None and _decode_bool(bookmarks_text),
            resource_version=_first(query, "resourceVersion") or "",
            resource_version_match=_first(query, "resourceVersionMatch") or "",
            timeout_seconds=None if timeout_text is None else _decode_int64(timeout_text),
            limit=0 if limit_text is None else _decode_int64(limit_text),
            continue_token=_first(query, "continue") or "",
            send_initial_events=None if initial_text is None else _decode_bool(initial_text),
        )

    def to_query(self) -> dict[str, str]:
        """Return the wire query for these options (only what differs from the defaults).

        ``ListOptions.from_query(opts.to_query()) == opts`` for every value.
        """
        query: dict[str, str] = {}
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        if self.watch:
            query["watch"] = "true"
        if self.allow_watch_bookmarks:
            query["allowWatchBookmarks"] = "true"
        if self.resource_version:
            query["resourceVersion"] = self.resource_version
        if self.resource_version_match:
            query["resourceVersionMatch"] = self.resource_version_match
        if self.timeout_seconds is not None:
            query["timeoutSeconds"] = str(self.timeout_seconds)
        if self.limit:
            query["limit"] = str(self.limit)
        if self.continue_token:
            query["continue"] = self.continue_token
        if self.send_initial_events is not None:
            query["sendInitialEvents"] = "true" if self.send_initial_events else "false"
        return query


@final
@attrs.frozen
class WatchCapabilities:
    """What a storage's watch supports beyond the Go original's rules.

    The original storage (no event history) rejects ``sendInitialEvents=true``
    and every ``resourceVersionMatch``. Each capability relaxes exactly one
    part of that, for storages built on the watch cache:

    Attributes:
        initial_events: The storage can send the current state as synthetic
            ``ADDED`` events followed by the ``k8s.io/initial-events-end``
            bookmark. Accepts ``sendInitialEvents=true`` together with
            ``resourceVersionMatch=NotOlderThan`` (what the apiserver's
            defaulting produces for ``watch=true`` with resourceVersion
            ``""``/``"0"``, and what a watch-list client sends).
        resume: The storage replays events after a given resourceVersion
            (and answers 410 Expired when it is too old). Accepts
            ``sendInitialEvents=false`` together with
            ``resourceVersionMatch=NotOlderThan``, the explicit spelling of
            "resume from resourceVersion". A plain ``resourceVersion`` is
            accepted either way.
    """

    initial_events: bool = False
    resume: bool = False


def default_list_options(options: ListOptions, *, watch_list_enabled: bool = True) -> ListOptions:
    """Apply kube-apiserver's WatchList defaulting (``SetListOptionsDefaults``).

    For a watch with ``sendInitialEvents`` unset, no ``resourceVersionMatch``
    and resourceVersion ``""`` or ``"0"``, set ``sendInitialEvents=true`` and
    ``resourceVersionMatch=NotOlderThan``; return everything else unchanged.
    Run it before [`validate_list_options`][k8swatch.validate_list_options],
    as the apiserver does.

    Args:
        options: The decoded options.
        watch_list_enabled: Whether the WatchList feature is on (as in every
            current Kubernetes); off, nothing is defaulted.
    """
    if not watch_list_enabled:
        return options
    if options.send_initial_events is not None or options.resource_version_match:
        return options
    if options.watch and options.resource_version in ("", "0"):
        return attrs.evolve(
            options,
            send_initial_events=True,
            resource_version_match=RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
        )
    return options


def _forbidden(field: str, detail: str) -> StatusCause:
    return StatusCause(reason="FieldValueForbidden", message=f"Forbidden: {detail}", field=field)


def _not_supported(field: str, value: str, supported: Iterable[str]) -> StatusCause:
    choices = ", ".join(go_quote(v) for v in supported)
    return StatusCause(
        reason="FieldValueNotSupported",
        # Go renders the named string type through encoding/json, not %q.
        message=f"Unsupported value: {go_json(value)}: supported values: {choices}",
        field=field,
    )


def validate_list_options(options: ListOptions, *, watch_list_enabled: bool = True) -> None:
    """Validate like apimachinery's ``ValidateListOptions``.

    Every rule runs (errors are collected, not short-circuited), in Go's
    order, with Go's messages and field paths.

    Args:
        options: The decoded (and defaulted) options.
        watch_list_enabled: Whether the WatchList feature is on (default, as
            in every current Kubernetes); off, a watch with
            ``sendInitialEvents`` is forbidden.

    Raises:
        StatusError: 422 Invalid ``ListOptions.meta.k8s.io "" is invalid:
            ...`` whose ``details.causes`` list every problem.
    """
    causes: list[StatusCause] = []
    match = options.resource_version_match
    rvm = "resourceVersionMatch"
    if options.watch:
        if options.send_initial_events is not None:
            if match != RESOURCE_VERSION_MATCH_NOT_OLDER_THAN:
                causes.append(
                    _forbidden(
                        rvm,
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                )
            if not watch_list_enabled:
                causes.append(
                    _forbidden(
                        "sendInitialEvents",
                        "sendInitialEvents is forbidden for watch unless the WatchList "
                        "feature gate is enabled",
                    )
                )
        if match:
            if options.send_initial_events is None:
                causes.append(
                    _forbidden(
                        rvm,
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents "
                        "is provided",
                    )
                )
            if match != RESOURCE_VERSION_MATCH_NOT_OLDER_THAN:
                causes.append(_not_supported(rvm, match, [RESOURCE_VERSION_MATCH_NOT_OLDER_THAN]))
            if options.continue_token:
                causes.append(
                    _forbidden(rvm, "resourceVersionMatch is forbidden when continue is provided")
                )
    else:
        if match:
            if not options.resource_version:
                causes.append(
                    _forbidden(
                        rvm, "resourceVersionMatch is forbidden unless resourceVersion is provided"
                    )
                )
            if options.continue_token:
                causes.append(
                    _forbidden(rvm, "resourceVersionMatch is forbidden when continue is provided")
                )
            if match not in (RESOURCE_VERSION_MATCH_EXACT, RESOURCE_VERSION_MATCH_NOT_OLDER_THAN):
                causes.append(
                    _not_supported(
                        rvm,
                        match,
                        [RESOURCE_VERSION_MATCH_EXACT, RESOURCE_VERSION_MATCH_NOT_OLDER_THAN, ""],
                    )
                )
            if match == RESOURCE_VERSION_MATCH_EXACT and options.resource_version == "0":
                causes.append(
                    _forbidden(
                        rvm, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
                    )
                )
        if options.send_initial_events is not None:
            causes.append(
                _forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
            )
    if causes:
        raise invalid("ListOptions", "", causes, group="meta.k8s.io")


def validate_watch_options(
    options: ListOptions, capabilities: WatchCapabilities = WatchCapabilities()
) -> None:
    """Check the watch options a storage supports (the Go original's rules).

    Without capabilities (a storage that only broadcasts live events):

    * ``sendInitialEvents=true`` is rejected, including the defaulted legacy
      combinations (``sendInitialEvents=true`` + ``resourceVersionMatch=NotOlderThan``
      with resourceVersion ``""`` or ``"0"``);
    * any ``resourceVersionMatch`` is rejected;
    * ``sendInitialEvents=false`` and a plain ``resourceVersion`` are accepted
      (the watch starts "now").

    ``capabilities.initial_events`` accepts ``sendInitialEvents=true`` with
    ``resourceVersionMatch=NotOlderThan``; ``capabilities.resume`` accepts
    ``sendInitialEvents=false`` with ``resourceVersionMatch=NotOlderThan``.
    Any other ``resourceVersionMatch`` stays rejected; with
    ``initial_events``, ``sendInitialEvents=true`` without
    ``resourceVersionMatch=NotOlderThan`` is rejected with the apiserver's
    wording.

    Raises:
        StatusError: 400 BadRequest ``invalid watch options: sendInitialEvents=true
            is not supported for this watch endpoint`` or ``invalid watch
            options: resourceVersionMatch "<v>" is not supported for this
            watch endpoint``.
    """
    match = options.resource_version_match
    initial = options.send_initial_events
    if initial:
        if not capabilities.initial_events:
            raise bad_request(
                "invalid watch options: sendInitialEvents=true is not supported for this "
                "watch endpoint"
            )
        if match != RESOURCE_VERSION_MATCH_NOT_OLDER_THAN:
            raise bad_request(
                "invalid watch options: sendInitialEvents requires setting "
                "resourceVersionMatch to NotOlderThan"
            )
    if match:
        allowed = match == RESOURCE_VERSION_MATCH_NOT_OLDER_THAN and (
            (initial is True and capabilities.initial_events)
            or (initial is False and capabilities.resume)
        )
        if not allowed:
            raise bad_request(
                f"invalid watch options: resourceVersionMatch {go_quote(match)} is not "
                "supported for this watch endpoint"
            )


def validate_field_selector(
    selector: FieldSelector | str | None,
    supported_fields: Iterable[str] = DEFAULT_SUPPORTED_FIELDS,
) -> FieldSelector:
    """Reject a field selector that uses a field the resource does not support.

    *selector* may be a parsed selector, its text, or None (no selector).
    Returns the parsed selector (`FieldSelector.everything()` for None).

    Raises:
        StatusError: 400 BadRequest ``field label not supported: <field>``
            for the first unsupported field, or with the parser's message
            when *selector* is text that does not parse.
    """
    if selector is None:
        return FieldSelector.everything()
    if isinstance(selector, str):
        try:
            selector = parse_field_selector(selector)
        except SelectorError as exc:
            raise bad_request(exc.detail) from None
    supported = (
        supported_fields if isinstance(supported_fields, frozenset) else frozenset(supported_fields)
    )
    for requirement in selector.requirements:
        if requirement.field not in supported:
            raise bad_request(f"field label not supported: {requirement.field}")
    return selector


def _resource_version_cause(value: str) -> tuple[int, StatusCause | None]:
    if value in ("", "0"):
        return 0, None
    try:
        return go_parse_int(value, unsigned=True), None
    except ValueError as exc:
        return 0, StatusCause(
            reason="FieldValueInvalid",
            message=f"Invalid value: {go_quote(value)}: {exc}",
            field="resourceVersion",
        )


def parse_resource_version(value: str) -> int:
    """Parse a list request's resourceVersion as the apiserver's storage does.

    ``""`` and ``"0"`` give 0; anything else must be a decimal uint64.

    Raises:
        StatusError: 400 BadRequest ``invalid resource version: resourceVersion:
            Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid
            syntax``.
    """
    number, cause = _resource_version_cause(value)
    if cause is not None:
        raise bad_request(f"invalid resource version: {cause.field}: {cause.message}")
    return number


def parse_watch_resource_version(value: str, resource: str, *, group: str = "") -> int:
    """Parse a watch request's resourceVersion as the apiserver's watch cache does.

    Same rules as [`parse_resource_version`][k8swatch.parse_resource_version],
    but a bad value is a 422 Invalid naming the resource, e.g.
    ``widgets.example.com "" is invalid: resourceVersion: Invalid value: "abc":
    strconv.ParseUint: parsing "abc": invalid syntax``.

    Raises:
        StatusError: 422 Invalid.
    """
    number, cause = _resource_version_cause(value)
    if cause is not None:
        raise invalid(resource, "", [cause], group=group)
    return number


def validate_list_resource_version(options: ListOptions) -> int:
    """The storage-level list checks of apiserver's ``storage.ValidateListOptions``.

    Call it after decoding the continue token (a bad token is the storage's
    ``bad_request("invalid continue token: <detail>")``, checked first). With
    a continue token, a resourceVersion other than ``""``/``"0"`` is
    rejected; otherwise the resourceVersion is parsed. Returns the parsed
    resourceVersion (0 for ``""``, ``"0"`` and with a continue token).

    Raises:
        StatusError: 400 BadRequest ``specifying resource version is not
            allowed when using continue`` or ``invalid resource version: ...``.
    """
    if options.continue_token:
        if options.resource_version not in ("", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        return 0
    return parse_resource_version(options.resource_version)
