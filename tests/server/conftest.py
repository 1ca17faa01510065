"""Server test fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from k8swatch import stop_aware_watch

from ._interop import Served, served_app, write_kubeconfig


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


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn-trio"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The interop app, served by uvicorn (asyncio) and by hypercorn's trio worker."""
    yield from served_app(request.param)


@pytest.fixture(scope="module")
def kubeconfig(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the served app (with an empty user)."""
    return write_kubeconfig(tmp_path_factory.mktemp("kube"), served.url)
