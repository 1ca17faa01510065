"""What label and field selectors share: the error and the operators.

Pure code: no I/O, no anyio. The grammar, quirks and error texts follow
apimachinery's ``pkg/labels/selector.go`` (label selectors, in ``_labels``
and ``_label_parser``) and ``pkg/fields/selector.go`` (field selectors, in
``_fields``).

Parsers raise [`SelectorError`][k8swatch.SelectorError] and nothing else,
whatever the input. Parsed selectors are immutable, hashable values; matching
runs a predicate compiled once at construction, so it never re-parses.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SelectorError",
    "SelectorOperator",
    "always_true",
    "always_false",
]


class SelectorError(ValueError):
    """A label or field selector (or a field selector value) is malformed.

    Raised by [`parse_label_selector`][k8swatch.parse_label_selector],
    [`parse_field_selector`][k8swatch.parse_field_selector],
    [`unescape_field_value`][k8swatch.unescape_field_value] and the
    validating constructors. It belongs to the pure layer and knows nothing
    of HTTP: code that receives selectors from clients turns it into a 400
    ``BadRequest`` with ``detail`` as the message (as
    [`filter_for_list_options`][k8swatch.filter_for_list_options] does).
    The caller cannot recover other than by fixing the selector.

    Attributes:
        detail: The message Kubernetes gives for this input, verbatim
            (e.g. ``found '(', expected: identifier``).
        text: The whole text that was being parsed.
        position: Index in ``text`` of the offending spot (``len(text)``
            when the input ended too early).
    """

    def __init__(self, detail: str, text: str = "", position: int = 0) -> None:
        super().__init__(f"{detail} (at position {position} in {_excerpt(text, position)})")
        self.detail = detail
        self.text = text
        self.position = position

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail, self.text, self.position))


def _excerpt(text: str, position: int) -> str:
    """The text around *position*, so errors on huge inputs stay readable."""
    if len(text) <= 80:
        return repr(text)
    start = max(0, position - 30)
    end = min(len(text), position + 30)
    return f"{'...' if start else ''}{text[start:end]!r}{'...' if end < len(text) else ''}"


class SelectorOperator(str, enum.Enum):
    """A selector requirement's operator, spelled as apimachinery's ``selection.Operator``."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"

    def __str__(self) -> str:
        return self.value


# The predicates of the empty selector and of ``nothing()``, for both kinds.
def always_true(_: Mapping[str, str]) -> bool:
    return True


def always_false(_: Mapping[str, str]) -> bool:
    return False
