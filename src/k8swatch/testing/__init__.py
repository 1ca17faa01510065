"""Test helpers for k8swatch apps and storages.

* [`ASGIClient`][k8swatch.testing.ASGIClient]: drive an ASGI app in-process,
  including streaming watches and client disconnects (asyncio and trio).
* [`serve_app`][k8swatch.testing.serve_app]: run an app under uvicorn or
  hypercorn's trio worker on 127.0.0.1 for real clients such as kubectl.
* [`EventRecorder`][k8swatch.testing.EventRecorder]: record a watch's events
  in the background and wait for them.
* [`InstrumentedApp`][k8swatch.testing.InstrumentedApp]: wrap an app to keep a
  [`RequestLog`][k8swatch.testing.RequestLog] of the requests it gets and to
  inject [`Faults`][k8swatch.testing.Faults] (error statuses, a 410 on the next
  watch, dropped or stalled streams, latency).
* [`WatchConformance`][k8swatch.testing.WatchConformance]: the watch
  conformance suite; subclass it to check a storage behaves like kube-apiserver.
  Its topic groups ([`EventConformance`][k8swatch.testing.EventConformance],
  [`ResumeConformance`][k8swatch.testing.ResumeConformance], ...) and their
  [`ConformanceBase`][k8swatch.testing.ConformanceBase] can be subclassed alone.
* A pytest plugin (registered automatically) with the ``asgi_client``,
  ``live_server``, ``request_log`` and ``faults`` fixtures, all built on an
  ``asgi_app`` fixture you define, and the ``k8swatch_fault`` marker.
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._asgi import ASGIClient as ASGIClient
from ._asgi import ASGIResponse as ASGIResponse
from ._asgi import ASGIStream as ASGIStream
from ._conformance import WatchConformance as WatchConformance
from ._conformance_base import ConformanceBase as ConformanceBase
from ._conformance_bookmarks import BookmarkConformance as BookmarkConformance
from ._conformance_events import EventConformance as EventConformance
from ._conformance_initial_events import InitialEventsConformance as InitialEventsConformance
from ._conformance_lifetime import LifetimeConformance as LifetimeConformance
from ._conformance_objects import ObjectConformance as ObjectConformance
from ._conformance_read_write import ReadWriteConformance as ReadWriteConformance
from ._conformance_resume import ResumeConformance as ResumeConformance
from ._conformance_selectors import SelectorConformance as SelectorConformance
from ._fault import Fault as Fault
from ._faults import FaultRule as FaultRule
from ._faults import Faults as Faults
from ._instrumented import InstrumentedApp as InstrumentedApp
from ._recorder import EventRecorder as EventRecorder
from ._requestlog import PathPattern as PathPattern
from ._requestlog import RecordedRequest as RecordedRequest
from ._requestlog import RequestLog as RequestLog
from ._server import serve_app as serve_app

__all__ = (
    "ASGIClient",
    "ASGIResponse",
    "ASGIStream",
    "EventRecorder",
    "Fault",
    "FaultRule",
    "Faults",
    "InstrumentedApp",
    "PathPattern",
    "RecordedRequest",
    "RequestLog",
    "WatchConformance",
    "ConformanceBase",
    "EventConformance",
    "ResumeConformance",
    "SelectorConformance",
    "BookmarkConformance",
    "InitialEventsConformance",
    "LifetimeConformance",
    "ReadWriteConformance",
    "ObjectConformance",
    "serve_app",
)

_fix_module_metadata(__name__, globals())
