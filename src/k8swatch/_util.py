"""Small helpers shared by the public facades."""

from __future__ import annotations

import contextlib


def fix_module_metadata(public: str, namespace: dict[str, object]) -> None:
    """Rewrite ``__module__`` of re-exported objects to their public module.

    Tracebacks, pickles and the docs then say ``k8swatch.Broadcaster`` instead of
    ``k8swatch._broadcaster.Broadcaster``.
    """
    for obj in namespace.values():
        if getattr(obj, "__module__", "").startswith(public + "._"):
            with contextlib.suppress(AttributeError, TypeError):  # read-only aliases
                obj.__module__ = public
