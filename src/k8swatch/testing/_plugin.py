"""pytest plugin for k8swatch.testing (registered through the ``pytest11`` entry point).

Fixtures (each needs an ``asgi_app`` fixture returning your ASGI app):

* ``instrumented_app`` — the ``asgi_app`` wrapped in an
  [`InstrumentedApp`][k8swatch.testing.InstrumentedApp], with the faults of
  the test's ``k8swatch_fault`` markers added.
* ``asgi_client`` — an [`ASGIClient`][k8swatch.testing.ASGIClient] for it.
* ``live_server`` — the base URL of it served by uvicorn on 127.0.0.1.
* ``request_log`` — its [`RequestLog`][k8swatch.testing.RequestLog].
* ``faults`` — its [`Faults`][k8swatch.testing.Faults].

The ``k8swatch_fault`` marker adds one fault rule, e.g.
``@pytest.mark.k8swatch_fault(status=503, path="/apis/*", times=2)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ._asgi import ASGIClient
from ._fault import Fault
from ._faults import Faults
from ._instrumented import InstrumentedApp
from ._requestlog import RequestLog
from ._server import serve_app

_MARKER = "k8swatch_fault"
_MARKER_HELP = (
    f"{_MARKER}(fault=None, *, status=None, message=None, retry_after=None, expired=False, "
    "drop=None, cut=False, stall=False, latency=None, method=None, path=None, watch=None, "
    "where=None, times=1): inject a fault (a k8swatch.testing.Fault, or one built from the "
    "keywords) into the matching requests served by the asgi_client and live_server fixtures"
)
_MATCH_KEYS = ("method", "path", "watch", "where", "times")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``k8swatch_fault`` marker (the repo runs ``--strict-markers``)."""
    config.addinivalue_line("markers", _MARKER_HELP)


def _fault_from_keywords(options: Mapping[str, Any]) -> Fault:
    options = dict(options)
    kinds = [
        key
        for key in ("status", "expired", "drop", "stall", "latency")
        # Identity, not equality: ``drop=0`` (end after 0 events) is a drop, not "none".
        if options.get(key) is not None and options.get(key) is not False
    ]
    if len(kinds) != 1:
        raise TypeError(
            f"{_MARKER} needs exactly one of status=, expired=True, drop=, stall=True "
            f"or latency= (or a Fault), got {kinds or 'none'}"
        )
    (kind,) = kinds
    value = options.pop(kind)
    if kind == "status":
        fault = Fault.status(
            value, options.pop("message", None), retry_after=options.pop("retry_after", None)
        )
    elif kind == "expired":
        fault = Fault.expired(options.pop("message", None))
    elif kind == "drop":
        fault = Fault.drop(0 if value is True else value, cut=options.pop("cut", False))
    elif kind == "stall":
        fault = Fault.stall()
    else:
        fault = Fault.latency(value)
    leftover = sorted(key for key, v in options.items() if v not in (None, False))
    if leftover:
        raise TypeError(f"{_MARKER}: {', '.join(leftover)} does not apply to a {kind} fault")
    return fault


def add_marked_faults(faults: Faults, node: pytest.Item) -> None:
    """Add a rule to *faults* for each ``k8swatch_fault`` marker on *node*, nearest first."""
    for mark in node.iter_markers(_MARKER):
        options = dict(mark.kwargs)
        match = {key: options.pop(key) for key in _MATCH_KEYS if key in options}
        if mark.args:
            (fault,) = mark.args
            if not isinstance(fault, Fault) or options:
                raise TypeError(
                    f"{_MARKER} takes one Fault or keywords describing one, not both: {mark}"
                )
        else:
            fault = _fault_from_keywords(options)
        faults.add(fault, **match)


@pytest.fixture
def instrumented_app(asgi_app: Any, request: pytest.FixtureRequest) -> InstrumentedApp:
    """The ``asgi_app`` fixture, recorded and with the test's ``k8swatch_fault`` markers."""
    app = InstrumentedApp(asgi_app)
    add_marked_faults(app.faults, request.node)
    return app


@pytest.fixture
def request_log(instrumented_app: InstrumentedApp) -> RequestLog:
    """The requests the ``asgi_client`` and ``live_server`` fixtures' app received."""
    return instrumented_app.log


@pytest.fixture
def faults(instrumented_app: InstrumentedApp) -> Faults:
    """The faults the ``asgi_client`` and ``live_server`` fixtures' app injects."""
    return instrumented_app.faults


@pytest.fixture
def asgi_client(instrumented_app: InstrumentedApp) -> ASGIClient:
    """An in-process client for the ``asgi_app`` fixture (through ``instrumented_app``)."""
    return ASGIClient(instrumented_app)


@pytest.fixture
def live_server(instrumented_app: InstrumentedApp) -> Iterator[str]:
    """Serve the ``asgi_app`` fixture (through ``instrumented_app``) with uvicorn; yield the URL."""
    with serve_app(instrumented_app) as url:
        yield url
