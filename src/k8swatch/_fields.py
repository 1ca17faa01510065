"""Field selectors, parsed and matched exactly as Kubernetes does.

Pure code: no I/O, no anyio. The grammar, quirks and error texts follow
apimachinery's ``pkg/fields/selector.go``: a field selector is a
comma-separated AND of ``field=value``, ``field==value`` and ``field!=value``
terms whose values use backslash escapes (``\\\\``, ``\\,``, ``\\=``).
The parser raises [`SelectorError`][k8swatch.SelectorError] and nothing else,
whatever the input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from typing_extensions import Self, final

from ._selectors import SelectorError, SelectorOperator, always_false, always_true

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "escape_field_value",
    "parse_field_selector",
    "unescape_field_value",
]

_Op = SelectorOperator


def escape_field_value(value: str) -> str:
    """Escape a literal for use as a field selector value (``\\`` ``,`` ``=`` get a backslash)."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "," in value:
        value = value.replace(",", "\\,")
    if "=" in value:
        value = value.replace("=", "\\=")
    return value


def _unescape(value: str) -> tuple[str, str, int]:
    """Return (unescaped, error detail or "", error index)."""
    if "\\" not in value and "," not in value and "=" not in value:
        return value, "", 0
    out: list[str] = []
    in_slash = False
    for i, ch in enumerate(value):
        if in_slash:
            if ch in "\\,=":
                out.append(ch)
            else:
                return "", f"invalid field selector: invalid escape sequence: \\{ch}", i - 1
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == "," or ch == "=":
            return "", f"invalid field selector: unescaped character in value: {ord(ch)}", i
        else:
            out.append(ch)
    if in_slash:
        return "", "invalid field selector: invalid escape sequence: \\", len(value) - 1
    return "".join(out), "", 0


def unescape_field_value(value: str) -> str:
    """Return the literal a field selector value stands for (inverse of `escape_field_value`).

    Raises:
        SelectorError: an unknown escape (``\\a``), a trailing lone ``\\`` or an
            unescaped ``,``/``=``, with Go's message (e.g. ``invalid field
            selector: unescaped character in value: 61``).
    """
    result, detail, index = _unescape(value)
    if detail:
        raise SelectorError(detail, value, index)
    return result


@final
@attrs.frozen
class FieldRequirement:
    """One term of a field selector: ``field=value`` or ``field!=value``.

    ``==`` parses to ``=`` (``operator`` is ``EQUALS``); the value is the
    unescaped literal.
    """

    field: str
    operator: SelectorOperator = attrs.field(converter=SelectorOperator)
    value: str

    def __attrs_post_init__(self) -> None:
        if self.operator is _Op.DOUBLE_EQUALS:
            object.__setattr__(self, "operator", _Op.EQUALS)
        elif self.operator not in (_Op.EQUALS, _Op.NOT_EQUALS):
            raise ValueError(
                f"field selector operator must be '=' or '!=', not {self.operator.value!r}"
            )

    def __str__(self) -> str:
        op = "=" if self.operator is _Op.EQUALS else "!="
        return f"{self.field}{op}{escape_field_value(self.value)}"

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Return whether *fields* satisfy the term (a missing field reads as ``""``)."""
        if self.operator is _Op.EQUALS:
            return fields.get(self.field, "") == self.value
        return fields.get(self.field, "") != self.value


FieldPredicate = Callable[[Mapping[str, str]], bool]


def _compile_field_selector(terms: tuple[FieldRequirement, ...]) -> FieldPredicate:
    if not terms:
        return always_true
    checks = tuple((t.field, t.value, t.operator is _Op.EQUALS) for t in terms)
    if len(checks) == 1:
        field, value, equal = checks[0]
        if equal:
            return lambda fields: fields.get(field, "") == value
        return lambda fields: fields.get(field, "") != value

    def match_all(fields: Mapping[str, str]) -> bool:
        get = fields.get
        for field, value, equal in checks:  # noqa: SIM110 - a plain loop beats all() here
            if (get(field, "") == value) is not equal:
                return False
        return True

    return match_all


@final
class FieldSelector:
    """A parsed field selector: an AND of [`FieldRequirement`][k8swatch.FieldRequirement].

    Terms keep their order (the parser sorts the raw terms first, as Go
    does); matching reads a missing field as ``""``, so ``f=`` matches when
    ``f`` is absent and ``f!=`` does not. Immutable and hashable.
    """

    __slots__ = ("_hash", "_match", "_requirements", "_selectable")

    _requirements: tuple[FieldRequirement, ...]
    _selectable: bool
    _match: FieldPredicate
    _hash: int

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self._init(tuple(requirements), selectable=True)

    def _init(self, requirements: tuple[FieldRequirement, ...], *, selectable: bool) -> None:
        object.__setattr__(self, "_requirements", requirements)
        object.__setattr__(self, "_selectable", selectable)
        object.__setattr__(
            self,
            "_match",
            _compile_field_selector(requirements) if selectable else always_false,
        )
        object.__setattr__(self, "_hash", hash((requirements, selectable)))

    def __setattr__(self, name: str, value: object) -> None:
        raise attrs.exceptions.FrozenInstanceError

    @classmethod
    def everything(cls) -> Self:
        """The selector that matches everything (also what ``""`` parses to)."""
        return cls(())

    @classmethod
    def nothing(cls) -> Self:
        """The selector that matches nothing; not empty, renders as ``""``."""
        self = cls.__new__(cls)
        self._init((), selectable=False)
        return self

    @classmethod
    def from_set(cls, fields: Mapping[str, str] | None) -> Self:
        """Return the selector requiring ``field=value`` for each item, sorted by field."""
        if not fields:
            return cls.everything()
        return cls(FieldRequirement(f, _Op.EQUALS, v) for f, v in sorted(fields.items()))

    @property
    def requirements(self) -> tuple[FieldRequirement, ...]:
        """The terms, in order."""
        return self._requirements

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything."""
        return self._selectable and not self._requirements

    @property
    def matches_nothing(self) -> bool:
        """True only for [`nothing()`][k8swatch.FieldSelector.nothing]."""
        return not self._selectable

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Return whether *fields* satisfy every term."""
        return self._match(fields)

    def requires_exact_match(self, field: str) -> str | None:
        """Return the value of the first ``field=value`` term on *field* (even ``""``), or None."""
        for term in self._requirements:
            if term.field == field and term.operator is _Op.EQUALS:
                return term.value
        return None

    def transform(self, fn: Callable[[str, str], tuple[str, str]]) -> FieldSelector:
        """Return a selector with ``fn(field, value)`` applied to every term.

        A term mapped to ``("", "")`` is dropped; order is preserved. Servers
        use it to rename fields or reject unknown ones: whatever *fn* raises
        propagates.
        """
        if not self._selectable:
            return self
        terms: list[FieldRequirement] = []
        for term in self._requirements:
            field, value = fn(term.field, term.value)
            if field or value:
                terms.append(FieldRequirement(field, term.operator, value))
        return FieldSelector(terms)

    def __str__(self) -> str:
        return ",".join(str(t) for t in self._requirements)

    def __repr__(self) -> str:
        if not self._selectable:
            return "FieldSelector.nothing()"
        return f"parse_field_selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self._selectable == other._selectable and self._requirements == other._requirements

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        if not self._selectable:
            return (FieldSelector.nothing, ())
        return (FieldSelector, (self._requirements,))


def _split_field_terms(text: str) -> list[tuple[str, int]]:
    """Split on commas not escaped by a backslash; return (term, start index) pairs."""
    if not text:
        return []
    terms: list[tuple[str, int]] = []
    if "\\" not in text:
        start = 0
        for part in text.split(","):
            terms.append((part, start))
            start += len(part) + 1
        return terms
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append((text[start:i], start))
            start = i + 1
    terms.append((text[start:], start))
    return terms


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a field selector string, as ``fields.ParseSelector`` does.

    Terms are split on unescaped commas and sorted (as raw text) before being
    parsed, which defines the canonical order; empty terms are skipped; each
    term splits at its first ``!=``, ``==`` or ``=``; values are unescaped; a
    term with empty field and value is dropped.

    Raises:
        SelectorError: a term without operator (``invalid selector: '<text>';
            can't understand '<term>'``) or a bad value escape. No other
            exception escapes, whatever the input.
        TypeError: *text* is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"field selector must be a str, not {type(text).__name__}")
    parts = _split_field_terms(text)
    if len(parts) > 1:
        parts.sort(key=lambda part: part[0])
    terms: list[FieldRequirement] = []
    for raw, start in parts:
        if not raw:
            continue
        # The first position where "!=", "==" or "=" starts: escapes do not count.
        eq = raw.find("=")
        if eq > 0 and raw[eq - 1] == "!":
            index, operator, width = eq - 1, _Op.NOT_EQUALS, 2
        elif eq >= 0:
            index, operator = eq, _Op.EQUALS
            width = 2 if raw.startswith("==", eq) else 1
        else:
            raise SelectorError(
                f"invalid selector: '{text}'; can't understand '{raw}'", text, start
            )
        field = raw[:index]
        value, detail, offset = _unescape(raw[index + width :])
        if detail:
            raise SelectorError(detail, text, start + index + width + offset)
        if field or value:
            terms.append(FieldRequirement(field, operator, value))
    return FieldSelector(terms)
