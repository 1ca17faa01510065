"""FilterFunc builders (STUB: filled by the selectors/options issue)."""

from __future__ import annotations

from typing import Any

from ._events import FilterFunc
from ._options import ListOptions

DEFAULT_SUPPORTED_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def default_get_attrs(obj: Any) -> tuple[dict[str, str], dict[str, str]]:
    raise NotImplementedError


def filter_for_list_options(
    namespace: str,
    options: ListOptions,
    *,
    get_attrs: Any = default_get_attrs,
    supported_fields: frozenset[str] = DEFAULT_SUPPORTED_FIELDS,
) -> FilterFunc | None:
    raise NotImplementedError
