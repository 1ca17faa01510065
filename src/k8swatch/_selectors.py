"""Label and field selectors (STUB: filled by the selectors/options issue)."""

from __future__ import annotations

from collections.abc import Mapping


class SelectorError(ValueError):
    """A selector could not be parsed."""


class LabelSelector:
    """A parsed label selector."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        raise NotImplementedError


class FieldSelector:
    """A parsed field selector."""

    def matches(self, fields: Mapping[str, str]) -> bool:
        raise NotImplementedError


def parse_label_selector(text: str) -> LabelSelector:
    raise NotImplementedError


def parse_field_selector(text: str) -> FieldSelector:
    raise NotImplementedError


def escape_field_value(value: str) -> str:
    raise NotImplementedError


def unescape_field_value(value: str) -> str:
    raise NotImplementedError
