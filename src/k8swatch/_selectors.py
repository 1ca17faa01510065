"""Label and field selectors, parsed and matched exactly as Kubernetes does.

Pure code: no I/O, no anyio. The grammar, quirks and error texts follow
apimachinery's ``pkg/labels/selector.go`` and ``pkg/fields/selector.go``:

* a label selector is a comma-separated AND of requirements (``x=a``,
  ``x!=a``, ``x in (a,b)``, ``x notin (a)``, ``x``, ``!x``, ``x>1``, ``x<1``);
  keys and values are validated with the Kubernetes limits, requirements are
  sorted by key, and ``str()`` prints the canonical form Go prints;
* a field selector is a comma-separated AND of ``field=value``,
  ``field==value`` and ``field!=value`` terms whose values use backslash
  escapes (``\\\\``, ``\\,``, ``\\=``).

Parsers raise [`SelectorError`][k8swatch.SelectorError] and nothing else,
whatever the input. Parsed selectors are immutable, hashable values; matching
runs a predicate compiled once at construction, so it never re-parses.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import attrs
from typing_extensions import Self, final

from ._go import go_json, go_parse_int, go_quote

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "SelectorError",
    "SelectorOperator",
    "escape_field_value",
    "parse_field_selector",
    "parse_label_selector",
    "unescape_field_value",
]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


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


_INT64_RE = re.compile(r"[+-]?0*([0-9]{1,19})")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _int64_or_none(value: object) -> int | None:
    """Fast Go ``ParseInt(v, 10, 64)`` for matching: the number, or None where Go fails."""
    if not isinstance(value, str):
        return None
    if value.isdigit() and value.isascii() and len(value) <= 18:
        return int(value)  # fast path: plain digits, cannot overflow
    m = _INT64_RE.fullmatch(value)
    if m is None:
        return None
    number = int(m.group(1))
    if value[0] == "-":
        number = -number
    if _INT64_MIN <= number <= _INT64_MAX:
        return number
    return None


# --------------------------------------------------------------------------------------
# Key and value validation (content.IsLabelKey / IsLabelValue)
# --------------------------------------------------------------------------------------


def _regex_error(msg: str, regex: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{regex}')"
    msg += " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += f"'{example}', "
    return msg + f"regex used for validation is '{regex}')"


def _byte_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_KEY_ERR = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character",
    _LABEL_KEY_FMT,
    "MyName",
    "my.name",
    "123-abc",
)
_LABEL_VALUE_FMT = f"({_LABEL_KEY_FMT})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_ERR = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', "
    "'_' or '.', and must start and end with an alphanumeric character",
    _LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_ERR = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character",
    _DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
_TOO_MANY_SLASHES_ERR = (
    "a valid label key "
    + _LABEL_KEY_ERR
    + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
)


_VALID_KEY_RE = re.compile(f"(?:(?P<prefix>{_DNS1123_SUBDOMAIN_FMT})/)?(?P<name>{_LABEL_KEY_FMT})")


def label_key_errors(key: str) -> list[str]:
    """Return the problems ``content.IsLabelKey`` finds in *key* (empty if valid)."""
    m = _VALID_KEY_RE.fullmatch(key)
    if m is not None:  # fast path: the pattern only admits ASCII, so len() counts bytes
        prefix, name = m.group("prefix", "name")
        if len(name) <= 63 and (prefix is None or len(prefix) <= 253):
            return []
    errors: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if _byte_len(prefix) > 253:
                errors.append("prefix part must be no more than 253 bytes")
            if _DNS1123_SUBDOMAIN_RE.fullmatch(prefix) is None:
                errors.append("prefix part " + _DNS1123_SUBDOMAIN_ERR)
    else:
        return [_TOO_MANY_SLASHES_ERR]
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_len(name) > 63:
        errors.append("name part must be no more than 63 bytes")
    if _LABEL_KEY_RE.fullmatch(name) is None:
        errors.append("name part " + _LABEL_KEY_ERR)
    return errors


@functools.lru_cache(maxsize=1024)
def _cached_key_errors(key: str) -> tuple[str, ...]:
    return tuple(label_key_errors(key))


def _key_errors(key: str) -> tuple[str, ...]:
    # Keys repeat (app, tier, ...); only plausible ones are cached, so a client
    # cannot fill the cache with huge strings.
    if len(key) <= 317:
        return _cached_key_errors(key)
    return tuple(label_key_errors(key))


def label_value_errors(value: str) -> list[str]:
    """Return the problems ``content.IsLabelValue`` finds in *value* (empty if valid)."""
    errors: list[str] = []
    if _byte_len(value) > 63:
        errors.append("must be no more than 63 bytes")
    if _LABEL_VALUE_RE.fullmatch(value) is None:
        errors.append(_LABEL_VALUE_ERR)
    return errors


def _aggregate(messages: list[str]) -> str:
    unique: list[str] = []
    for message in messages:
        if message not in unique:
            unique.append(message)
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


# --------------------------------------------------------------------------------------
# Requirements
# --------------------------------------------------------------------------------------


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


_Op = SelectorOperator
_SET_OPS = frozenset({_Op.IN, _Op.NOT_IN})
_EXACT_OPS = frozenset({_Op.EQUALS, _Op.DOUBLE_EQUALS, _Op.NOT_EQUALS})
_UNARY_OPS = frozenset({_Op.EXISTS, _Op.DOES_NOT_EXIST})
_NUMERIC_OPS = frozenset({_Op.GREATER_THAN, _Op.LESS_THAN})
_INFIX = {
    _Op.EQUALS: "=",
    _Op.DOUBLE_EQUALS: "==",
    _Op.NOT_EQUALS: "!=",
    _Op.GREATER_THAN: ">",
    _Op.LESS_THAN: "<",
    _Op.IN: " in ",
    _Op.NOT_IN: " notin ",
}

LabelPredicate = Callable[[Mapping[str, str]], bool]


def _requirement_problems(
    key: str, operator: SelectorOperator, values: tuple[str, ...], *, check_key: bool = True
) -> list[str]:
    """Go's ``NewRequirement`` validation, rendered as field errors (empty if valid)."""
    problems: list[str] = []
    if check_key:
        key_errors = _key_errors(key)
        if key_errors:
            problems.append(f"key: Invalid value: {go_quote(key)}: {'; '.join(key_errors)}")
    count = len(values)
    if operator in _SET_OPS:
        if not count:
            problems.append(
                f"values: Invalid value: {go_json(list(values))}: "
                "for 'in', 'notin' operators, values set can't be empty"
            )
    elif operator in _EXACT_OPS:
        if count != 1:
            problems.append(
                f"values: Invalid value: {go_json(list(values))}: "
                "exact-match compatibility requires one single value"
            )
    elif operator in _UNARY_OPS:
        if count:
            problems.append(
                f"values: Invalid value: {go_json(list(values))}: "
                "values set must be empty for exists and does not exist"
            )
    else:  # gt / lt
        if count != 1:
            problems.append(
                f"values: Invalid value: {go_json(list(values))}: "
                "for 'Gt', 'Lt' operators, exactly one value is required"
            )
        for i, value in enumerate(values):
            try:
                go_parse_int(value)
            except ValueError:
                problems.append(
                    f"values[{i}]: Invalid value: {go_quote(value)}: "
                    "for 'Gt', 'Lt' operators, the value must be an integer"
                )
    for i, value in enumerate(values):
        if len(value) <= 63 and _LABEL_VALUE_RE.fullmatch(value) is not None:
            continue  # fast path: valid (the pattern only admits ASCII)
        value_errors = label_value_errors(value)
        if value_errors:
            problems.append(
                f"values[{i}][{key}]: Invalid value: {go_quote(value)}: {'; '.join(value_errors)}"
            )
    return problems


def _values_tuple(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError("values must be a sequence of strings, not a string")
    return tuple(values)


def _normalize_values(operator: SelectorOperator, values: tuple[str, ...]) -> tuple[str, ...]:
    if operator in _SET_OPS and (len(values) > 1 or not values):
        return tuple(sorted(set(values)))
    return values


@final
@attrs.frozen
class LabelRequirement:
    """One requirement of a label selector, e.g. ``tier in (backend,cache)``.

    Construction validates exactly like Go's ``labels.NewRequirement`` (key
    and values against the Kubernetes limits, the number of values the
    operator needs, integers for ``gt``/``lt``) and raises
    [`SelectorError`][k8swatch.SelectorError] otherwise. The values of ``in``
    and ``notin`` are a set: they are stored sorted and de-duplicated.

    Attributes:
        key: The label key (``[prefix/]name``).
        operator: How the label's value is compared.
        values: The values (one for ``=``, ``==``, ``!=``, ``gt``, ``lt``;
            none for ``exists``/``!``).
    """

    key: str
    operator: SelectorOperator = attrs.field(converter=SelectorOperator)
    values: tuple[str, ...] = attrs.field(default=(), converter=_values_tuple)

    def __attrs_post_init__(self) -> None:
        values = _normalize_values(self.operator, self.values)
        object.__setattr__(self, "values", values)
        problems = _requirement_problems(self.key, self.operator, values)
        if problems:
            raise SelectorError(_aggregate(problems), str(self), 0)

    @classmethod
    def _from_parser(cls, key: str, operator: SelectorOperator, values: tuple[str, ...]) -> Self:
        """Build from parser output: key already validated, values sorted and unique."""
        problems = _requirement_problems(key, operator, values, check_key=False)
        if problems:
            raise SelectorError(_aggregate(problems), key, 0)
        self = object.__new__(cls)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "values", values)
        return self

    def __str__(self) -> str:
        op = self.operator
        if op is _Op.EXISTS:
            return self.key
        if op is _Op.DOES_NOT_EXIST:
            return "!" + self.key
        joined = ",".join(self.values)
        if op in _SET_OPS:
            return f"{self.key}{_INFIX[op]}({joined})"
        return f"{self.key}{_INFIX[op]}{joined}"

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether *labels* satisfy this requirement (Go's ``Requirement.Matches``)."""
        return _compile_requirement(self)(labels)


def _compile_requirement(req: LabelRequirement) -> LabelPredicate:
    key = req.key
    op = req.operator
    values = req.values
    if op is _Op.EXISTS:
        return lambda labels: key in labels
    if op is _Op.DOES_NOT_EXIST:
        return lambda labels: key not in labels
    if op in _NUMERIC_OPS:
        bound = go_parse_int(values[0])
        greater = op is _Op.GREATER_THAN

        def compare(labels: Mapping[str, str]) -> bool:
            number = _int64_or_none(labels.get(key))
            if number is None:
                return False
            return number > bound if greater else number < bound

        return compare
    positive = op in (_Op.EQUALS, _Op.DOUBLE_EQUALS, _Op.IN)
    if len(values) == 1:
        value = values[0]
        if positive:
            return lambda labels: labels.get(key) == value
        return lambda labels: labels.get(key) != value
    members = frozenset(values)
    if positive:
        return lambda labels: labels.get(key) in members
    return lambda labels: labels.get(key) not in members


def _always(_: Mapping[str, str]) -> bool:
    return True


def _never(_: Mapping[str, str]) -> bool:
    return False


def _gt(value: object, bound: int) -> bool:
    number = _int64_or_none(value)
    return number is not None and number > bound


def _lt(value: object, bound: int) -> bool:
    number = _int64_or_none(value)
    return number is not None and number < bound


_TERM_TEMPLATES = {
    "exists": "k{i} in labels",
    "absent": "k{i} not in labels",
    "eq": "get(k{i}) == v{i}",
    "ne": "get(k{i}) != v{i}",
    "in": "get(k{i}) in v{i}",
    "notin": "get(k{i}) not in v{i}",
    "gt": "_gt(get(k{i}), v{i})",
    "lt": "_lt(get(k{i}), v{i})",
}
_MAX_GENERATED = 64


@functools.lru_cache(maxsize=256)
def _matcher_factory(shape: tuple[str, ...]) -> Callable[..., LabelPredicate]:
    """Return ``factory(k0, v0, k1, ...) -> match`` for one sequence of requirement kinds.

    Like attrs, this generates Python source, but only from the fixed templates
    above: keys and values are passed to the factory as arguments and never
    enter the source. One factory per shape is compiled and cached, so parsing
    a selector only creates a closure. The generated ``match`` evaluates every
    requirement inline (one ``and`` chain), which is several times faster than
    calling one function per requirement.
    """
    params: list[str] = []
    terms: list[str] = []
    for i, kind in enumerate(shape):
        params.append(f"k{i}")
        if kind not in ("exists", "absent"):
            params.append(f"v{i}")
        terms.append(_TERM_TEMPLATES[kind].format(i=i))
    source = (
        f"def factory({', '.join(params)}):\n"
        "    def match(labels):\n"
        "        get = labels.get\n"
        f"        return {' and '.join(terms)}\n"
        "    return match\n"
    )
    namespace: dict[str, Any] = {"_gt": _gt, "_lt": _lt}
    exec(compile(source, f"<k8swatch label selector {','.join(shape)}>", "exec"), namespace)
    return cast("Callable[..., LabelPredicate]", namespace["factory"])


def _requirement_shape(req: LabelRequirement) -> tuple[str, tuple[object, ...]]:
    op = req.operator
    if op is _Op.EXISTS:
        return "exists", (req.key,)
    if op is _Op.DOES_NOT_EXIST:
        return "absent", (req.key,)
    if op in _NUMERIC_OPS:
        return ("gt" if op is _Op.GREATER_THAN else "lt"), (req.key, go_parse_int(req.values[0]))
    positive = op in (_Op.EQUALS, _Op.DOUBLE_EQUALS, _Op.IN)
    if len(req.values) == 1:
        return ("eq" if positive else "ne"), (req.key, req.values[0])
    return ("in" if positive else "notin"), (req.key, frozenset(req.values))


def _compile_label_selector(requirements: tuple[LabelRequirement, ...]) -> LabelPredicate:
    if not requirements:
        return _always
    if len(requirements) == 1:
        return _compile_requirement(requirements[0])
    if len(requirements) > _MAX_GENERATED:
        predicates = tuple(_compile_requirement(r) for r in requirements)

        def match_all(labels: Mapping[str, str]) -> bool:
            for predicate in predicates:  # noqa: SIM110 - a plain loop beats all() here
                if not predicate(labels):
                    return False
            return True

        return match_all
    shape: list[str] = []
    args: list[object] = []
    for req in requirements:
        kind, values = _requirement_shape(req)
        shape.append(kind)
        args.extend(values)
    return _matcher_factory(tuple(shape))(*args)


# --------------------------------------------------------------------------------------
# LabelSelector
# --------------------------------------------------------------------------------------


@final
class LabelSelector:
    """A parsed label selector: an AND of [`LabelRequirement`][k8swatch.LabelRequirement].

    Build one with [`parse_label_selector`][k8swatch.parse_label_selector],
    [`from_set`][k8swatch.LabelSelector.from_set],
    [`everything`][k8swatch.LabelSelector.everything],
    [`nothing`][k8swatch.LabelSelector.nothing] or from requirements.
    Requirements are kept sorted by key (stable, as Go sorts them), so
    ``parse_label_selector(str(s)) == s``. Instances are immutable and hashable.
    """

    __slots__ = ("_hash", "_match", "_requirements", "_selectable")

    _requirements: tuple[LabelRequirement, ...]
    _selectable: bool
    _match: LabelPredicate
    _hash: int | None

    def __init__(self, requirements: Iterable[LabelRequirement] = ()) -> None:
        reqs = tuple(sorted(requirements, key=_requirement_key))
        self._init(reqs, selectable=True)

    def _init(self, requirements: tuple[LabelRequirement, ...], *, selectable: bool) -> None:
        object.__setattr__(self, "_requirements", requirements)
        object.__setattr__(self, "_selectable", selectable)
        object.__setattr__(
            self,
            "_match",
            _compile_label_selector(requirements) if selectable else _never,
        )
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise attrs.exceptions.FrozenInstanceError

    @classmethod
    def _from_sorted(cls, requirements: tuple[LabelRequirement, ...]) -> Self:
        self = cls.__new__(cls)
        self._init(requirements, selectable=True)
        return self

    @classmethod
    def everything(cls) -> Self:
        """The selector that matches every label set (also what ``""`` parses to)."""
        return cls._from_sorted(())

    @classmethod
    def nothing(cls) -> Self:
        """The selector that matches no label set.

        It is not [`empty`][k8swatch.LabelSelector.empty] and renders as ``""``
        like `everything()`; parsing never produces it.
        """
        self = cls.__new__(cls)
        self._init((), selectable=False)
        return self

    @classmethod
    def from_set(cls, labels: Mapping[str, str] | None) -> Self:
        """Return the selector requiring exactly *labels* (``key=value`` each).

        Like Go's ``ValidatedSelectorFromSet``: an empty or None mapping gives
        `everything()`; keys and values are validated.

        Raises:
            SelectorError: a key or value is not a valid label key/value.
        """
        if not labels:
            return cls.everything()
        return cls(LabelRequirement(k, _Op.EQUALS, (v,)) for k, v in labels.items())

    @property
    def requirements(self) -> tuple[LabelRequirement, ...]:
        """The requirements, sorted by key (empty for everything and nothing)."""
        return self._requirements

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (Go's ``Empty()``)."""
        return self._selectable and not self._requirements

    @property
    def matches_nothing(self) -> bool:
        """True only for [`nothing()`][k8swatch.LabelSelector.nothing] (Go's ``MatchesNothing``)."""
        return not self._selectable

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether *labels* satisfy every requirement."""
        return self._match(labels)

    def requires_exact_match(self, key: str) -> str | None:
        """Return the value the first requirement on *key* pins, or None.

        Only ``=``, ``==`` and a one-value ``in`` pin a value; ``!=`` and
        ``notin`` never do.
        """
        for req in self._requirements:
            if req.key == key:
                if req.operator in (_Op.EQUALS, _Op.DOUBLE_EQUALS, _Op.IN) and len(req.values) == 1:
                    return req.values[0]
                return None
        return None

    def add(self, *requirements: LabelRequirement) -> LabelSelector:
        """Return a new selector with *requirements* added (Go's ``Add``)."""
        if not self._selectable:
            return self
        return LabelSelector(self._requirements + requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        if not self._selectable:
            return "LabelSelector.nothing()"
        return f"parse_label_selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._selectable == other._selectable and self._requirements == other._requirements

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash((self._requirements, self._selectable)))
        return cast("int", self._hash)

    def __reduce__(self) -> tuple[Any, ...]:
        if not self._selectable:
            return (LabelSelector.nothing, ())
        return (LabelSelector, (self._requirements,))


def _requirement_key(req: LabelRequirement) -> str:
    return req.key


# --------------------------------------------------------------------------------------
# Label selector lexer and parser
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------


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
        return _always
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
            _compile_field_selector(requirements) if selectable else _never,
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
