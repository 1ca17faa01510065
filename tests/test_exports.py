"""The public API: tuple ``__all__``, public ``__module__``, the architecture contract."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import k8swatch

PUBLIC_MODULES = (
    "k8swatch",
    "k8swatch.server",
    "k8swatch.auth",
    "k8swatch.coder",
    "k8swatch.redis",
    "k8swatch.metrics",
    "k8swatch.testing",
)

# Names fixed by architecture.md. Removing one is a breaking change.
CONTRACT = frozenset(
    {
        "EventType",
        "Event",
        "Watch",
        "Broadcaster",
        "FullChannelBehavior",
        "FilterFunc",
        "filter_watch",
        "filter_for_list_options",
        "default_get_attrs",
        "parse_label_selector",
        "parse_field_selector",
        "LabelSelector",
        "FieldSelector",
        "escape_field_value",
        "unescape_field_value",
        "SelectorError",
        "ListOptions",
        "default_list_options",
        "validate_list_options",
        "validate_watch_options",
        "validate_field_selector",
        "WatchCapabilities",
        "Status",
        "StatusError",
        "bad_request",
        "not_found",
        "already_exists",
        "conflict",
        "invalid",
        "expired",
        "gone",
        "too_many_requests",
        "internal_error",
        "service_unavailable",
        "method_not_supported",
        "stop_aware_watch",
        "StopAwareWatch",
        "WatchCache",
        "MemoryStorage",
        "encode_event",
    }
)

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_all_is_a_tuple_of_public_names(modname: str) -> None:
    mod = importlib.import_module(modname)
    assert isinstance(mod.__all__, tuple)
    assert len(set(mod.__all__)) == len(mod.__all__), "duplicate names in __all__"
    for name in mod.__all__:
        obj = getattr(mod, name)  # a stale name raises AttributeError
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == modname, (name, obj.__module__)


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_public_names_have_docstrings(modname: str) -> None:
    mod = importlib.import_module(modname)
    assert mod.__doc__
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{modname}.{name} has no docstring"


def test_contract_names_are_exported() -> None:
    assert set(k8swatch.__all__) >= CONTRACT


def test_each_private_name_has_exactly_one_public_home() -> None:
    homes: dict[int, list[str]] = {}
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                homes.setdefault(id(obj), []).append(f"{modname}.{name}")
    shared = [names for names in homes.values() if len(names) > 1]
    assert not shared


def test_private_modules_are_private() -> None:
    for info in pkgutil.walk_packages(k8swatch.__path__, "k8swatch."):
        leaf = info.name.rsplit(".", 1)[-1]
        public = info.name in PUBLIC_MODULES or leaf in {"cli"}
        assert public or leaf.startswith("_"), f"{info.name} should be private"


def _documented_names(modname: str) -> set[str]:
    """Names the reference docs render for *modname* (``::: modname`` pages)."""
    for page in (DOCS / "reference").glob("*.md"):
        text = page.read_text()
        if re.search(rf"^::: {re.escape(modname)}\s*$", text, re.MULTILINE):
            return set(importlib.import_module(modname).__all__)
    return set()


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_all_matches_the_reference_docs(modname: str) -> None:
    """Every public module has a reference page rendering its ``__all__``.

    mkdocstrings renders exactly the members in ``__all__`` for ``::: module``,
    so a page per module keeps the docs and ``__all__`` equal by construction;
    ``mkdocs build --strict`` fails on any cross-reference to a missing name.
    """
    mod = importlib.import_module(modname)
    assert _documented_names(modname) == set(mod.__all__)
