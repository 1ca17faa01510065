"""Label selectors and their requirements, validated and matched exactly as Kubernetes does.

Pure code: no I/O, no anyio. The rules and error texts follow apimachinery's
``pkg/labels/selector.go``: a label selector is a comma-separated AND of
requirements (``x=a``, ``x!=a``, ``x in (a,b)``, ``x notin (a)``, ``x``,
``!x``, ``x>1``, ``x<1``); keys and values are validated with the Kubernetes
limits, requirements are sorted by key, and ``str()`` prints the canonical
form Go prints. The text grammar is parsed in ``_label_parser``.

A selector compiles its predicate once, at construction, so matching never
re-parses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import attrs
from typing_extensions import Self, final

from ._go import go_json, go_parse_int, go_quote
from ._selectors import SelectorError, SelectorOperator, always_false, always_true

__all__ = [
    "LabelRequirement",
    "LabelSelector",
]


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
        return always_true
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
            _compile_label_selector(requirements) if selectable else always_false,
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
