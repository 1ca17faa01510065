"""Server test fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._interop import Served, served_app, write_kubeconfig


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn-trio"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The interop app, served by uvicorn (asyncio) and by hypercorn's trio worker."""
    yield from served_app(request.param)


@pytest.fixture(scope="module")
def kubeconfig(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the served app (with an empty user)."""
    return write_kubeconfig(tmp_path_factory.mktemp("kube"), served.url)
