"""Watch filters built from list options, as the Go original's ``filterForListOptions``.

Pure code. A [`SelectionPredicate`][k8swatch.SelectionPredicate] holds the
request namespace and the parsed selectors and decides whether one object is
selected; [`filter_for_list_options`][k8swatch.filter_for_list_options] wraps
it as a [`FilterFunc`][k8swatch.FilterFunc] for
[`filter_watch`][k8swatch.filter_watch]. This is where a
[`SelectorError`][k8swatch.SelectorError] from client input becomes a 400
``BadRequest``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from typing_extensions import Self, final

from ._events import Event, EventType, FilterFunc
from ._fields import FieldSelector
from ._label_parser import parse_label_selector
from ._labels import LabelSelector
from ._options import DEFAULT_SUPPORTED_FIELDS, ListOptions, validate_field_selector
from ._selectors import SelectorError
from ._status import bad_request

__all__ = [
    "DEFAULT_SUPPORTED_FIELDS",
    "FilterFunc",
    "GetAttrsFunc",
    "SelectionPredicate",
    "default_get_attrs",
    "filter_for_list_options",
]

ObjectAttrs = tuple[Mapping[str, str], Mapping[str, str]]
"""``(labels, fields)`` of one object."""

GetAttrsFunc = Callable[[Any], ObjectAttrs | None]
"""Return an object's ``(labels, fields)``, or None for an object without metadata."""

_EMPTY_LABELS: Mapping[str, str] = {}
_PASS_THROUGH = frozenset({EventType.BOOKMARK, EventType.ERROR})


def default_get_attrs(obj: Any) -> ObjectAttrs | None:
    """Return ``(labels, fields)`` for a Kubernetes-shaped object.

    Works for dicts (``obj["metadata"]``) and for objects with a
    ``.metadata`` attribute, itself a dict or an object with ``name``,
    ``namespace`` and ``labels`` attributes. ``fields`` holds
    ``metadata.name`` and ``metadata.namespace`` (``""`` when unset); missing
    labels read as no labels. Returns None when *obj* has no metadata at all:
    filters let such objects through, as the Go original does for objects
    without ``ObjectMeta``.

    To select on more fields (say ``status.phase``), write a function that
    returns a bigger ``fields`` mapping and pass it as *get_attrs*, together
    with the matching *supported_fields*.
    """
    meta = _metadata_of(obj)
    if meta is None:
        return None
    name, namespace, labels = meta
    return labels, {"metadata.name": name, "metadata.namespace": namespace}


def _metadata_of(obj: Any) -> tuple[str, str, Mapping[str, str]] | None:
    """``(name, namespace, labels)`` of a Kubernetes-shaped object, or None."""
    data: Any = obj
    # type() checks first: isinstance() against an ABC is several times slower.
    if type(obj) is dict or isinstance(obj, Mapping):
        metadata: Any = data.get("metadata")
    else:
        metadata = getattr(data, "metadata", None)
    if metadata is None:
        return None
    members: Any = metadata  # not narrowed by the checks below: members stay Any
    if type(metadata) is dict or isinstance(metadata, Mapping):
        get = members.get
        return get("name") or "", get("namespace") or "", get("labels") or _EMPTY_LABELS
    return (
        getattr(metadata, "name", None) or "",
        getattr(metadata, "namespace", None) or "",
        getattr(metadata, "labels", None) or _EMPTY_LABELS,
    )


def _match_everything(obj: Any) -> bool:
    return True


@final
@attrs.frozen
class SelectionPredicate:
    """Which objects a list or watch request selects (Go's ``storage.SelectionPredicate``).

    An object is selected when it is in *namespace* (any namespace when
    empty), its labels match *label* and its fields match *field*. The
    namespace is read from the ``metadata.namespace`` field that *get_attrs*
    returns. Objects for which *get_attrs* returns None are selected.

    A watch cache uses [`matches`][k8swatch.SelectionPredicate.matches] on
    the old and the new object of a change to turn MODIFIED into ADDED or
    DELETED when an object starts or stops matching.

    Attributes:
        namespace: The request namespace; ``""`` selects every namespace.
        label: The label selector.
        field: The field selector.
        get_attrs: Extracts ``(labels, fields)`` from an object.
    """

    namespace: str = ""
    label: LabelSelector = attrs.field(factory=LabelSelector.everything)
    field: FieldSelector = attrs.field(factory=FieldSelector.everything)
    get_attrs: GetAttrsFunc = attrs.field(default=default_get_attrs, eq=False, repr=False)
    _match: Callable[[Any], bool] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_match", self._compile())

    @classmethod
    def from_list_options(
        cls,
        namespace: str,
        options: ListOptions | None,
        *,
        get_attrs: GetAttrsFunc = default_get_attrs,
        supported_fields: Iterable[str] = DEFAULT_SUPPORTED_FIELDS,
    ) -> Self:
        """Build the predicate for a request: parse and check its selectors.

        Raises:
            StatusError: 400 BadRequest when a selector does not parse
                (message: Kubernetes' parser message) or the field selector
                uses a field outside *supported_fields* (``field label not
                supported: <field>``).
        """
        if options is None:
            return cls(namespace, get_attrs=get_attrs)
        try:
            label = parse_label_selector(options.label_selector)
        except SelectorError as exc:
            raise bad_request(exc.detail) from None
        field = validate_field_selector(options.field_selector, supported_fields)
        return cls(namespace, label, field, get_attrs)

    @property
    def empty(self) -> bool:
        """True when every object is selected (no namespace, empty selectors)."""
        return not self.namespace and self.label.empty and self.field.empty

    def matches(self, obj: Any) -> bool:
        """Return whether *obj* is selected."""
        return self._match(obj)

    def matches_attrs(self, labels: Mapping[str, str], fields: Mapping[str, str]) -> bool:
        """Return whether an object with these labels and fields is selected."""
        if self.namespace and fields.get("metadata.namespace", "") != self.namespace:
            return False
        return self.label.matches(labels) and self.field.matches(fields)

    def to_filter(self) -> FilterFunc | None:
        """Return a filter keeping the selected objects' events, or None if all are kept.

        ``BOOKMARK`` and ``ERROR`` events always pass, untouched.
        """
        if self.empty:
            return None
        match = self._match

        def filter_event(event: Event[Any]) -> Event[Any] | None:
            if event.type in _PASS_THROUGH or match(event.object):
                return event
            return None

        return filter_event

    def _compile(self) -> Callable[[Any], bool]:
        if self.empty:
            return _match_everything
        get_attrs = self.get_attrs
        namespace = self.namespace
        label = None if self.label.empty else self.label.matches
        field = None if self.field.empty else self.field.matches
        if get_attrs is default_get_attrs:
            # Same decision without building the fields dict unless a field
            # selector needs it.
            def match_metadata(obj: Any) -> bool:
                meta = _metadata_of(obj)
                if meta is None:
                    return True
                name, obj_namespace, labels = meta
                if namespace and obj_namespace != namespace:
                    return False
                if label is not None and not label(labels):
                    return False
                return field is None or field(
                    {"metadata.name": name, "metadata.namespace": obj_namespace}
                )

            return match_metadata

        def match(obj: Any) -> bool:
            attrs_ = get_attrs(obj)
            if attrs_ is None:
                return True
            labels, fields = attrs_
            if namespace and fields.get("metadata.namespace", "") != namespace:
                return False
            if label is not None and not label(labels):
                return False
            return field is None or field(fields)

        return match


def filter_for_list_options(
    namespace: str,
    options: ListOptions | None,
    *,
    get_attrs: GetAttrsFunc = default_get_attrs,
    supported_fields: Iterable[str] = DEFAULT_SUPPORTED_FIELDS,
) -> FilterFunc | None:
    """Build the watch filter for a request, as the Go original's ``filterForListOptions``.

    The filter drops events whose object is outside *namespace* (``""``:
    every namespace), whose labels do not match the label selector, or whose
    fields (from *get_attrs*; by default ``metadata.name`` and
    ``metadata.namespace``) do not match the field selector. ``BOOKMARK`` and
    ``ERROR`` events pass untouched, and so do objects without metadata.
    Returns None when nothing needs filtering.

    Raises:
        StatusError: 400 BadRequest for a selector that does not parse or a
            field selector on a field outside *supported_fields* (``field
            label not supported: spec.foo``).
    """
    return SelectionPredicate.from_list_options(
        namespace, options, get_attrs=get_attrs, supported_fields=supported_fields
    ).to_filter()
