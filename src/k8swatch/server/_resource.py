"""ResourceSpec: one served resource (group, version, plural, kind) and its storage."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

import attrs
from typing_extensions import final

from k8swatch._status import method_not_supported
from k8swatch._storage import Creater, Deleter, Getter, Lister, Patcher, Updater, Watcher

from ._columns import PrinterColumn

__all__ = ["ResourceSpec", "accepts_keyword", "require", "storage_verbs"]

# Kubernetes lists verbs alphabetically in discovery; we do the same.
_VERB_PROTOCOLS: Mapping[str, type] = {
    "create": Creater,
    "delete": Deleter,
    "get": Getter,
    "list": Lister,
    "patch": Patcher,
    "update": Updater,
    "watch": Watcher,
}


def storage_verbs(storage: object) -> tuple[str, ...]:
    """Return the Kubernetes verbs *storage* supports, from the protocols it implements.

    ``get``, ``list``, ``create``, ``update``, ``delete`` and ``watch`` need the
    storage method of the same name ([`Getter`][k8swatch.Getter],
    [`Lister`][k8swatch.Lister], ...); ``patch`` needs both ``get`` and
    ``update`` ([`Patcher`][k8swatch.Patcher]). Methods are looked up as
    ``isinstance`` looks them up: on the object or its class, not through
    ``__getattr__``.
    """
    return tuple(
        verb for verb, protocol in _VERB_PROTOCOLS.items() if isinstance(storage, protocol)
    )


def accepts_keyword(storage: object, method: str, keyword: str) -> bool:
    """Whether *storage*'s *method* takes the keyword argument *keyword*.

    The storage protocols' methods may take optional keyword-only arguments
    beyond the protocol's (``dry_run``, ``preconditions``); the server passes
    them only to a storage that declares them, so storages written before
    them keep working.
    """
    kind: Any = type(storage)
    return _accepts(kind, method, keyword)


@functools.lru_cache(maxsize=256)
def _accepts(kind: Any, method: str, keyword: str) -> bool:
    function = getattr(kind, method, None)
    if function is None:
        return False
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    found = parameters.get(keyword)
    if found is not None:
        return found.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


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
        storage: The storage: any object implementing some of the storage
            protocols ([`Getter`][k8swatch.Getter], [`Lister`][k8swatch.Lister],
            [`Creater`][k8swatch.Creater], [`Updater`][k8swatch.Updater],
            [`Deleter`][k8swatch.Deleter], [`Watcher`][k8swatch.Watcher]), and
            [`Closer`][k8swatch.Closer] to be closed at shutdown.
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
        status_subresource: Serve the ``status`` subresource, as a CRD with
            ``subresources: {status: {}}``: ``.../<name>/status`` answers
            ``GET``, ``PUT`` and ``PATCH`` and changes only ``status``; writes
            to the object itself keep the stored ``status`` (a create starts
            with none). Discovery lists ``<plural>/status``.
    """

    group: str
    version: str
    plural: str
    kind: str
    storage: object = attrs.field(repr=False)
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
    status_subresource: bool = False

    @property
    def status_verbs(self) -> tuple[str, ...]:
        """The verbs of the ``status`` subresource (``get``, ``patch``, ``update``
        as offered on the object itself); empty without the subresource."""
        if not self.status_subresource:
            return ()
        return tuple(verb for verb in ("get", "patch", "update") if verb in self.verbs)

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> tuple[str, str]:
        """``(group, version)``."""
        return (self.group, self.version)


@overload
def require(res: ResourceSpec, verb: Literal["get"]) -> Getter: ...
@overload
def require(res: ResourceSpec, verb: Literal["list"]) -> Lister: ...
@overload
def require(res: ResourceSpec, verb: Literal["create"]) -> Creater: ...
@overload
def require(res: ResourceSpec, verb: Literal["update"]) -> Updater: ...
@overload
def require(res: ResourceSpec, verb: Literal["patch"]) -> Patcher: ...
@overload
def require(res: ResourceSpec, verb: Literal["delete"]) -> Deleter: ...
@overload
def require(res: ResourceSpec, verb: Literal["watch"]) -> Watcher: ...
def require(res: ResourceSpec, verb: str) -> object:
    """*res*'s storage as the protocol of *verb*.

    Raises:
        StatusError: 405 MethodNotAllowed when *res* does not offer *verb*
            (not in its ``verbs``, or its storage does not implement it).
    """
    if verb not in res.verbs or not isinstance(res.storage, _VERB_PROTOCOLS[verb]):
        raise method_not_supported(res.plural, verb, group=res.group)
    return res.storage
