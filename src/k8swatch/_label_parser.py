"""The label selector text grammar: lexer, parser and ``parse_label_selector``.

The grammar, quirks and error texts follow apimachinery's
``pkg/labels/selector.go``: a comma-separated AND of requirements (``x=a``,
``x!=a``, ``x in (a,b)``, ``x notin (a)``, ``x``, ``!x``, ``x>1``, ``x<1``),
requirements sorted by key. The parser raises
[`SelectorError`][k8swatch.SelectorError] and nothing else, whatever the input.
"""

from __future__ import annotations

import re

from ._go import go_quote
from ._labels import _SET_OPS, LabelRequirement, LabelSelector, _key_errors, _requirement_key
from ._selectors import SelectorError, SelectorOperator

__all__ = ["parse_label_selector"]

_Op = SelectorOperator

# Token kinds
_EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(13)
_SPECIAL_TOKENS = {
    "==": _DEQ,
    "!=": _NEQ,
    "=": _EQ,
    "!": _NOT,
    "(": _OPEN,
    ")": _CLOSE,
    ",": _COMMA,
    ">": _GT,
    "<": _LT,
}
_OPERATOR_TOKENS = {
    _IN: _Op.IN,
    _NOTIN: _Op.NOT_IN,
    _EQ: _Op.EQUALS,
    _DEQ: _Op.DOUBLE_EQUALS,
    _NEQ: _Op.NOT_EQUALS,
    _GT: _Op.GREATER_THAN,
    _LT: _Op.LESS_THAN,
}
# Whitespace is only space, tab, CR and LF; special characters are lexed greedily
# into the longest known operator ("==", "!=", else one character).
_LEX_RE = re.compile(r"(==|!=|[=!(),<>])|([^ \t\r\n=!(),<>]+)|[ \t\r\n]+")

_Token = tuple[int, str, int]  # kind, literal, position


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    append = tokens.append
    for m in _LEX_RE.finditer(text):
        special, ident = m.group(1, 2)
        if special is not None:
            append((_SPECIAL_TOKENS[special], special, m.start()))
        elif ident is not None:
            kind = _IN if ident == "in" else _NOTIN if ident == "notin" else _IDENT
            append((kind, ident, m.start()))
    append((_EOS, "", len(text)))
    return tokens


class _LabelParser:
    """Recursive descent over the token list, mirroring apimachinery's parser."""

    __slots__ = ("index", "text", "tokens")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.index = 0

    # In "values" context the keywords in/notin are plain identifiers.
    def look(self) -> _Token:
        kind, lit, pos = self.tokens[self.index]
        if kind in (_IN, _NOTIN):
            return _IDENT, lit, pos
        return kind, lit, pos

    def take(self) -> _Token:
        token = self.look()
        if token[0] != _EOS:
            self.index += 1
        return token

    def fail(self, detail: str, position: int) -> SelectorError:
        return SelectorError(detail, self.text, position)

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            kind, lit, pos = self.look()
            if kind in (_IDENT, _NOT):
                requirements.append(self.parse_requirement())
                kind, lit, pos = self.take()
                if kind == _EOS:
                    return requirements
                if kind != _COMMA:
                    raise self.fail(f"found '{lit}', expected: ',' or 'end of string'", pos)
                kind, lit, pos = self.look()
                if kind != _IDENT and kind != _NOT:
                    raise self.fail(f"found '{lit}', expected: identifier after ','", pos)
            elif kind == _EOS:
                return requirements
            else:
                raise self.fail(f"found '{lit}', expected: !, identifier, or 'end of string'", pos)

    def parse_requirement(self) -> LabelRequirement:
        prefix = "unable to parse requirement: "
        # key, with the operator inferred for exists / does-not-exist
        kind, key, key_pos = self.take()
        operator: SelectorOperator | None = None
        if kind == _NOT:
            operator = _Op.DOES_NOT_EXIST
            kind, key, key_pos = self.take()
        if kind != _IDENT:
            raise self.fail(f"{prefix}found '{key}', expected: identifier", key_pos)
        key_errors = _key_errors(key)
        if key_errors:
            raise self.fail(
                f"{prefix}<nil>: Invalid value: {go_quote(key)}: {'; '.join(key_errors)}",
                key_pos,
            )
        next_kind = self.look()[0]
        if operator is None and (next_kind in (_EOS, _COMMA)):
            operator = _Op.EXISTS
        if operator is not None:
            return self.build(key, operator, (), key_pos)
        # binary operator (keywords count here)
        kind, lit, pos = self.tokens[self.index]
        if kind != _EOS:
            self.index += 1
        found = _OPERATOR_TOKENS.get(kind)
        if found is None:
            raise self.fail(f"{prefix}found '{lit}', expected: in, notin, =, ==, !=, gt, lt", pos)
        operator = found
        if operator in _SET_OPS:
            kind, lit, pos = self.take()
            if kind != _OPEN:
                raise self.fail(f"{prefix}found '{lit}' expected: '('", pos)
            values_pos = pos
            kind, lit, pos = self.look()
            if kind in (_IDENT, _COMMA):
                values = self.parse_identifiers_list(prefix)
                kind, _lit, _pos = self.take()
                if kind != _CLOSE:  # pragma: no cover - the list only ends before ')'
                    raise self.fail(f"{prefix}found '{lit}', expected: ')'", pos)
            elif kind == _CLOSE:
                self.take()
                values = {""}
            else:
                raise self.fail(f"{prefix}found '{lit}', expected: ',', ')' or identifier", pos)
            return self.build(key, operator, tuple(sorted(values)), values_pos)
        # exact value: '=', '==', '!=', '>', '<'
        kind, lit, pos = self.look()
        if kind in (_EOS, _COMMA):
            return self.build(key, operator, ("",), pos)
        kind, lit, pos = self.take()
        if kind != _IDENT:
            raise self.fail(f"{prefix}found '{lit}', expected: identifier", pos)
        return self.build(key, operator, (lit,), pos)

    def parse_identifiers_list(self, prefix: str) -> set[str]:
        values: set[str] = set()
        while True:
            kind, lit, pos = self.take()
            if kind == _IDENT:
                values.add(lit)
                kind2, lit2, pos2 = self.look()
                if kind2 == _COMMA:
                    continue
                if kind2 == _CLOSE:
                    return values
                raise self.fail(f"{prefix}found '{lit2}', expected: ',' or ')'", pos2)
            if kind == _COMMA:
                if not values:
                    values.add("")  # "(,"
                kind2 = self.look()[0]
                if kind2 == _CLOSE:
                    values.add("")  # ",)"
                    return values
                if kind2 == _COMMA:
                    values.add("")  # ",,"
            else:
                raise self.fail(f"{prefix}found '{lit}', expected: ',', or identifier", pos)

    def build(
        self, key: str, operator: SelectorOperator, values: tuple[str, ...], position: int
    ) -> LabelRequirement:
        try:
            return LabelRequirement._from_parser(key, operator, values)
        except SelectorError as exc:
            raise self.fail(f"unable to parse requirement: {exc.detail}", position) from None


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector string, as ``labels.Parse`` does.

    ``""`` (or only whitespace) gives
    [`LabelSelector.everything()`][k8swatch.LabelSelector.everything].

    Raises:
        SelectorError: the text is not a valid selector; ``detail`` is the
            message Kubernetes gives. No other exception escapes, whatever
            the input (a NUL character, which Go's lexer mishandles, is
            rejected outright).
        TypeError: *text* is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"label selector must be a str, not {type(text).__name__}")
    nul = text.find("\x00")
    if nul >= 0:
        raise SelectorError("found NUL character, which is not allowed in a selector", text, nul)
    requirements = _LabelParser(text).parse()
    if len(requirements) > 1:
        requirements.sort(key=_requirement_key)
    return LabelSelector._from_sorted(tuple(requirements))
