"""pytest plugin for k8swatch.testing (registered through the ``pytest11`` entry point).

Fixtures (each needs an ``asgi_app`` fixture returning your ASGI app):

* ``asgi_client`` — an [`ASGIClient`][k8swatch.testing.ASGIClient] for the app.
* ``live_server`` — the base URL of the app served by uvicorn on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._asgi import ASGIClient
from ._server import serve_app


@pytest.fixture
def asgi_client(asgi_app: Any) -> ASGIClient:
    """An in-process client for the ``asgi_app`` fixture."""
    return ASGIClient(asgi_app)


@pytest.fixture
def live_server(asgi_app: Any) -> Iterator[str]:
    """Serve the ``asgi_app`` fixture with uvicorn; the value is the base URL."""
    with serve_app(asgi_app) as url:
        yield url
