"""PrometheusMetrics: the server's MetricsRecorder on prometheus_client, apiserver names."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from typing_extensions import final

from k8swatch._cache import WatchCache
from k8swatch._events import Event, EventType
from k8swatch._status import Status, StatusError
from k8swatch.server import RequestLabels, ResourceSpec

if TYPE_CHECKING:
    import httpx

__all__ = ["REQUEST_DURATION_BUCKETS", "PrometheusMetrics"]

REQUEST_DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
)
"""The buckets of kube-apiserver's ``apiserver_request_duration_seconds``."""

_BACKEND_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

_REQUEST_LABELS = (
    "verb",
    "dry_run",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
)
_GVR = ("group", "version", "resource")


def _cache_of(storage: object) -> WatchCache[Any] | None:
    """The watch cache of a storage that shows one (``MemoryStorage.cache``,
    the Coder storages' ``watch_cache``)."""
    for attribute in ("watch_cache", "cache"):
        cache: WatchCache[Any] | None = getattr(storage, attribute, None)
        if isinstance(cache, WatchCache):
            return cache
    return None


def _status_code(obj: object) -> int:
    if isinstance(obj, Status):
        return obj.code
    if isinstance(obj, StatusError):
        return obj.status.code
    if isinstance(obj, dict):
        code: object = cast("dict[str, object]", obj).get("code")
        return code if isinstance(code, int) else 0
    return 0


class _WatchCounts:
    """The watch counters of one resource: plain integers, bumped on the event loop."""

    __slots__ = ("expired", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.expired = 0


class _WatchCollector(Collector):
    """Reports the watch counters and the watch caches' sizes at scrape time.

    The watch hot path only adds to integers (`_WatchCounts`); no lock, no
    label lookup per batch.
    """

    def __init__(self) -> None:
        self.resources: tuple[ResourceSpec, ...] = ()
        self.counts: dict[int, tuple[ResourceSpec, _WatchCounts]] = {}

    def counts_of(self, res: ResourceSpec) -> _WatchCounts:
        entry = self.counts.get(id(res))
        if entry is None:
            entry = self.counts[id(res)] = (res, _WatchCounts())
        return entry[1]

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        sent = CounterMetricFamily(
            "apiserver_watch_events",
            "Number of events sent in watch clients",
            labels=_GVR,
        )
        expired = CounterMetricFamily(
            "k8swatch_watch_expired",
            "Number of watch streams ended by a 410 ERROR event",
            labels=_GVR,
        )
        for res, counts in list(self.counts.values()):
            gvr = [res.group, res.version, res.plural]
            sent.add_metric(gvr, float(counts.sent))
            expired.add_metric(gvr, float(counts.expired))
        yield sent
        yield expired
        yield from self._caches()

    def _caches(self) -> Iterator[GaugeMetricFamily]:
        capacity = GaugeMetricFamily(
            "apiserver_watch_cache_capacity",
            "Total capacity of the watch cache (events kept for resuming) by resource.",
            labels=["group", "resource"],
        )
        objects = GaugeMetricFamily(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check, split by kind "
            "(here: objects held by the watch cache).",
            labels=["resource"],
        )
        seen: set[int] = set()
        for res in self.resources:
            cache = _cache_of(res.storage)
            if cache is None or id(cache) in seen:
                continue
            seen.add(id(cache))
            capacity.add_metric([res.group, res.plural], float(cache.window))
            qualified = f"{res.plural}.{res.group}" if res.group else res.plural
            objects.add_metric([qualified], float(len(cache)))
        yield capacity
        yield objects


@final
class PrometheusMetrics:
    """A [`MetricsRecorder`][k8swatch.server.MetricsRecorder] on ``prometheus_client``.

    Pass it to [`create_app(metrics=...)`][k8swatch.server.create_app] and
    ``/metrics`` serves, in Prometheus text format, kube-apiserver's names
    where they map:

    * ``apiserver_request_total`` (counter): ``verb``, ``dry_run``, ``group``,
      ``version``, ``resource``, ``subresource``, ``scope``, ``component``,
      ``code``; verbs as the apiserver reports them (``LIST`` vs ``GET``,
      ``WATCH``, ``APPLY``, ``DELETECOLLECTION``...). Watches count when
      they end.
    * ``apiserver_request_duration_seconds`` (histogram, the apiserver's
      buckets): the same labels less ``code``; watches are left out, as the
      apiserver leaves them out.
    * ``apiserver_longrunning_requests`` (gauge): open watch streams.
    * ``apiserver_watch_events_total`` (counter, ``group``, ``version``,
      ``resource``): events sent to watch clients, bookmarks and errors included.
    * ``k8swatch_watch_expired_total`` (counter, same labels): watch streams
      ended by a 410 ``ERROR`` event (resourceVersion too old, or a watcher too
      slow to keep up); a 410 answer to a list shows in
      ``apiserver_request_total{code="410"}``.
    * ``apiserver_watch_cache_capacity`` (gauge, ``group``, ``resource``) and
      ``apiserver_storage_objects`` (gauge, ``resource`` as ``plural.group``):
      the window and the object count of each storage's watch cache, read at
      scrape time.
    * ``k8swatch_coder_request_duration_seconds`` (histogram, ``method``,
      ``code``): Coder API calls made through `coder_transport()`.
    * ``k8swatch_redis_command_duration_seconds`` (histogram, ``command``,
      ``outcome``): Redis commands, with `observe_redis_command` given to
      ``open_redis_backend(observe_command=...)``.
    * ``process_*`` from prometheus_client's process collector (with *process*).

    The watch counters are plain integers bumped on the app's event loop and
    read at scrape time, so a watch stream pays about a tenth of a microsecond
    per batch for them; share one recorder between apps on one event loop, not
    across threads.

    Args:
        registry: Where the metrics live; a new registry by default, so that
            several apps in one process do not collide.
        process: Also export the ``process_*`` metrics (CPU, memory, open files).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry: CollectorRegistry = registry if registry is not None else CollectorRegistry()
        """The registry ``/metrics`` exposes."""
        reg = self.registry
        self._requests = Counter(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, dry run value, group, "
            "version, resource, scope, component, and HTTP response code.",
            [*_REQUEST_LABELS, "code"],
            registry=reg,
        )
        self._durations = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, "
            "version, resource, subresource, scope and component.",
            _REQUEST_LABELS,
            buckets=REQUEST_DURATION_BUCKETS,
            registry=reg,
        )
        self._longrunning = Gauge(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, "
            "version, resource, scope and component.",
            ("verb", "group", "version", "resource", "subresource", "scope", "component"),
            registry=reg,
        )
        self._coder = Histogram(
            "k8swatch_coder_request_duration_seconds",
            "Latency of Coder API requests (until the response headers), by method and code",
            ("method", "code"),
            buckets=_BACKEND_BUCKETS,
            registry=reg,
        )
        self._redis = Histogram(
            "k8swatch_redis_command_duration_seconds",
            "Latency of Redis commands (blocking reads excluded), by command and outcome",
            ("command", "outcome"),
            buckets=_BACKEND_BUCKETS,
            registry=reg,
        )
        self._watches = _WatchCollector()
        reg.register(self._watches)
        if process:
            ProcessCollector(registry=reg)

    def __repr__(self) -> str:
        return f"PrometheusMetrics(resources={len(self._watches.resources)})"

    # -- MetricsRecorder ------------------------------------------------------

    def attach(self, resources: Sequence[ResourceSpec]) -> None:
        """Remember *resources* (their watch caches are read at scrape time)."""
        self._watches.resources = (*self._watches.resources, *resources)
        for res in resources:
            self._watches.counts_of(res)

    def request_done(self, labels: RequestLabels, code: int, seconds: float) -> None:
        """Count the request; time it unless it was a watch."""
        values = labels.values()
        self._requests.labels(*values, str(code)).inc()
        if labels.verb != "WATCH":
            self._durations.labels(*values).observe(seconds)

    def _longrunning_child(self, labels: RequestLabels) -> Any:
        return self._longrunning.labels(
            labels.verb,
            labels.group,
            labels.version,
            labels.resource,
            labels.subresource,
            labels.scope,
            labels.component,
        )

    def watch_opened(self, labels: RequestLabels) -> None:
        """One more open watch."""
        self._longrunning_child(labels).inc()

    def watch_closed(self, labels: RequestLabels) -> None:
        """One open watch fewer."""
        self._longrunning_child(labels).dec()

    def watch_events_sent(self, resource: ResourceSpec, events: Sequence[Event[Any]]) -> None:
        """Count a batch of events; a final 410 ``ERROR`` counts an expired watch."""
        counts = self._watches.counts_of(resource)
        counts.sent += len(events)
        if events and events[-1].type is EventType.ERROR and _status_code(events[-1].object) == 410:
            counts.expired += 1

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of the registry."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- backends -------------------------------------------------------------

    def observe_coder_request(self, method: str, code: int, seconds: float) -> None:
        """Record one Coder API call (*code* 0: no response, e.g. connection refused)."""
        self._coder.labels(method, str(code)).observe(seconds)

    def observe_redis_command(self, command: str, seconds: float, ok: bool) -> None:
        """Record one Redis command (the ``observe_command`` hook of ``open_redis_backend``)."""
        self._redis.labels(command, "success" if ok else "error").observe(seconds)

    def coder_transport(
        self, inner: httpx.AsyncBaseTransport | None = None
    ) -> httpx.AsyncBaseTransport:
        """An httpx transport that times each request for
        ``k8swatch_coder_request_duration_seconds``.

        Hand it to ``StaticClientProvider(transport=...)`` or
        ``CoderClient(transport=...)``. *inner* is the transport doing the
        work (default: httpx's own). Needs httpx (the ``coder`` extra).
        """
        import httpx

        observe = self.observe_coder_request
        # httpx applies a client's pool limits only to the transport it makes
        # itself: give the default one CoderClient's (20 connections).
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
        wrapped = inner if inner is not None else httpx.AsyncHTTPTransport(limits=limits)

        class _TimedTransport(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                started = time.perf_counter()
                code = 0
                try:
                    response = await wrapped.handle_async_request(request)
                    code = response.status_code
                    return response
                finally:
                    observe(request.method, code, time.perf_counter() - started)

            async def aclose(self) -> None:
                await wrapped.aclose()

        return _TimedTransport()
