"""List/watch options: decoding, defaulting and validation (STUB: filled by the selectors/options issue)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from typing_extensions import Self, final


@final
@attrs.frozen
class ListOptions:
    """metav1.ListOptions as kube-apiserver hands it to a storage."""

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
        """Decode a wire query."""
        raise NotImplementedError


@final
@attrs.frozen
class WatchCapabilities:
    """What a storage's watch supports beyond the Go original's rules."""

    initial_events: bool = False
    resume: bool = False


def default_list_options(options: ListOptions) -> ListOptions:
    """Apply the apiserver's WatchList defaulting."""
    raise NotImplementedError


def validate_list_options(options: ListOptions) -> None:
    """Validate like apimachinery's ValidateListOptions."""
    raise NotImplementedError


def validate_watch_options(
    options: ListOptions, capabilities: WatchCapabilities = WatchCapabilities()
) -> None:
    """The Go original's watch option rules."""
    raise NotImplementedError


def validate_field_selector(selector: Any, supported_fields: frozenset[str]) -> None:
    """Reject unsupported fields."""
    raise NotImplementedError
