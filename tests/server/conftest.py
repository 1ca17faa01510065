"""Server test fixtures."""

from __future__ import annotations

import pytest

from k8swatch import stop_aware_watch


def _stubbed() -> bool:
    try:
        stop_aware_watch(None)  # type: ignore[arg-type]
    except NotImplementedError:
        return True
    except Exception:
        return False
    return False


@pytest.fixture(autouse=True)
def _core_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    # TEMPORARY: until the foundation helper's stop_aware_watch lands.
    if _stubbed():
        from k8swatch.server import _stream

        from . import _shim

        monkeypatch.setattr(_stream, "stop_aware_watch", _shim.stop_aware_watch)
