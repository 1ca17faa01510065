"""ResourceSpec: one served resource (group, version, plural, kind) and its storage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from typing_extensions import final

from ._columns import PrinterColumn

__all__ = ["ResourceSpec", "storage_verbs"]

# Kubernetes lists verbs alphabetically in discovery; we do the same.
_VERB_METHODS = (
    ("create", ("create",)),
    ("delete", ("delete",)),
    ("get", ("get",)),
    ("list", ("list",)),
    ("patch", ("get", "update")),
    ("update", ("update",)),
    ("watch", ("watch",)),
)


def storage_verbs(storage: object) -> tuple[str, ...]:
    """Return the Kubernetes verbs *storage* supports, from the methods it has.

    ``get``, ``list``, ``create``, ``update``, ``delete`` and ``watch`` map to the
    storage method of the same name; ``patch`` needs both ``get`` and ``update``.
    """
    return tuple(
        verb
        for verb, methods in _VERB_METHODS
        if all(callable(getattr(storage, m, None)) for m in methods)
    )


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _column_tuple(columns: Iterable[PrinterColumn]) -> tuple[PrinterColumn, ...]:
    return tuple(columns)


def _default_singular(spec: ResourceSpec) -> str:
    return spec.kind.lower()


def _default_verbs(spec: ResourceSpec) -> tuple[str, ...]:
    return storage_verbs(spec.storage)


def _default_list_kind(spec: ResourceSpec) -> str:
    return spec.kind + "List"


@final
@attrs.frozen
class ResourceSpec:
    """A resource served by [`create_app`][k8swatch.server.create_app].

    Attributes:
        group: API group (``""`` for the core group, served under ``/api/v1``).
        version: API version, e.g. ``v1alpha1``.
        plural: Resource name in URLs, e.g. ``widgets``.
        kind: Object kind, e.g. ``Widget``.
        storage: The storage (see the storage protocol in the docs): any object
            with some of the coroutines ``get``, ``list``, ``create``, ``update``,
            ``delete``, ``watch`` and ``aclose``.
        namespaced: Whether objects live in namespaces.
        singular: Singular name (defaults to the lower-cased kind).
        short_names: Short names kubectl accepts (``kubectl get wd``).
        categories: Discovery categories (``kubectl get all`` uses ``all``).
        verbs: Verbs offered in discovery and allowed on the HTTP paths;
            defaults to what the storage implements (see
            [`storage_verbs`][k8swatch.server.storage_verbs]).
        list_kind: Kind of the list object (defaults to ``<kind>List``).
        schema: OpenAPI v3 schema of the whole object (as a CRD's
            ``openAPIV3Schema``): served in ``/openapi/v2`` and ``/openapi/v3``
            (``kubectl explain`` prints its descriptions) and checked on create,
            update and patch (``fieldValidation``). ``None`` serves a permissive
            schema (``x-kubernetes-preserve-unknown-fields``).
        printer_columns: Extra [`PrinterColumn`][k8swatch.server.PrinterColumn]s of
            Table output after ``Name`` (``kubectl get``; ``priority > 0`` only
            with ``-o wide``). Empty means the default ``Age`` column.
    """

    group: str
    version: str
    plural: str
    kind: str
    storage: Any = attrs.field(repr=False)
    namespaced: bool = True
    singular: str = attrs.field(default=attrs.Factory(_default_singular, takes_self=True))
    short_names: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    categories: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    verbs: tuple[str, ...] = attrs.field(
        default=attrs.Factory(_default_verbs, takes_self=True), converter=_str_tuple
    )
    list_kind: str = attrs.field(default=attrs.Factory(_default_list_kind, takes_self=True))
    schema: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    printer_columns: tuple[PrinterColumn, ...] = attrs.field(default=(), converter=_column_tuple)

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> tuple[str, str]:
        """``(group, version)``."""
        return (self.group, self.version)
