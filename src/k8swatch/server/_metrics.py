"""What the app tells a metrics recorder, and the apiserver's request labels.

The server layer depends on no metrics library: it calls a
[`MetricsRecorder`][k8swatch.server.MetricsRecorder] (``k8swatch.metrics``
ships one on ``prometheus_client``). `request_labels` derives the labels of
``apiserver_request_total`` the way k8s.io/apiserver's request-info and
metrics code derive them: the verb (``GET``, ``LIST``, ``WATCH``, ``POST``,
``PUT``, ``PATCH``, ``APPLY``, ``DELETE``, ``DELETECOLLECTION``), the group,
version, resource, scope (``resource`` for a named object or a create,
``namespace``, ``cluster``; ``""`` for non-resource paths, whose path is the
``subresource`` label), ``dry_run`` and ``component``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
from typing_extensions import final

from k8swatch._events import Event

from ._resource import ResourceSpec
from ._routes import NamespacesRoute, ResourceRoute

__all__ = ["MetricsRecorder", "RequestLabels", "request_labels"]

APPLY_PATCH_TYPES = ("application/apply-patch+yaml", "application/apply-patch+cbor")


@final
@attrs.frozen
class RequestLabels:
    """The labels kube-apiserver puts on ``apiserver_request_total`` and its siblings.

    Attributes:
        verb: ``GET``, ``LIST``, ``WATCH``, ``POST``, ``PUT``, ``PATCH``,
            ``APPLY``, ``DELETE``, ``DELETECOLLECTION`` (resources), or the
            HTTP method (other paths).
        dry_run: ``All``, ``""``, or ``invalid`` for another ``dryRun`` value.
        group: API group (``""`` for the core group and non-resource paths).
        version: API version (``""`` for non-resource paths).
        resource: The resource's plural (``""`` for non-resource paths).
        subresource: The subresource; for a non-resource request, its path.
        scope: ``resource``, ``namespace``, ``cluster``, or ``""`` for
            non-resource paths.
        component: Always ``apiserver``.
    """

    verb: str
    dry_run: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    scope: str = ""
    component: str = "apiserver"

    @property
    def is_resource_request(self) -> bool:
        """True for a resource path (``/api/v1/...``, ``/apis/<g>/<v>/...``)."""
        return self.scope != ""

    def values(self) -> tuple[str, ...]:
        """The label values in the apiserver's order (verb, dry_run, group, version,
        resource, subresource, scope, component)."""
        return (
            self.verb,
            self.dry_run,
            self.group,
            self.version,
            self.resource,
            self.subresource,
            self.scope,
            self.component,
        )


def _dry_run(query: Mapping[str, Sequence[str]]) -> str:
    values = query.get("dryRun")
    if not values:
        return ""
    if any(v != "All" for v in values):
        return "invalid"
    return "All"


def _watching(query: Mapping[str, Sequence[str]]) -> bool:
    values = query.get("watch")
    if not values:
        return False
    value = values[0].lower()
    return value not in ("0", "false")


def request_labels(
    method: str,
    path: str,
    route: ResourceRoute | NamespacesRoute | None,
    query: Mapping[str, Sequence[str]],
    content_type: str = "",
) -> RequestLabels:
    """The labels of one request.

    Args:
        method: The HTTP method.
        path: The request path (the ``subresource`` label of a non-resource request).
        route: The resource route, or ``None`` for a non-resource path.
        query: The decoded query (``watch``, ``dryRun``).
        content_type: The request's ``Content-Type`` (``APPLY`` for apply patches).
    """
    dry_run = _dry_run(query)
    if route is None:
        return RequestLabels(verb=method, dry_run=dry_run, subresource=path)
    if isinstance(route, ResourceRoute):
        res = route.resource
        group, version, resource = res.group, res.version, res.plural
        subresource = route.subresource
    else:
        group, version, resource, subresource = "", "v1", "namespaces", ""
    named = bool(route.name)
    if method in ("GET", "HEAD"):
        watching = route.watch_path or _watching(query)
        verb = "WATCH" if watching else ("GET" if named else "LIST")
    elif method == "PATCH":
        mime = content_type.partition(";")[0].strip().lower()
        verb = "APPLY" if mime in APPLY_PATCH_TYPES else "PATCH"
    elif method == "DELETE" and not named:
        verb = "DELETECOLLECTION"
    else:
        verb = method
    if named or method == "POST":
        scope = "resource"
    elif isinstance(route, ResourceRoute) and route.namespace:
        scope = "namespace"
    else:
        scope = "cluster"
    return RequestLabels(
        verb=verb,
        dry_run=dry_run,
        group=group,
        version=version,
        resource=resource,
        subresource=subresource,
        scope=scope,
    )


@runtime_checkable
class MetricsRecorder(Protocol):
    """What [`create_app(metrics=...)`][k8swatch.server.create_app] reports to.

    The app calls these methods synchronously on the request path (keep them
    cheap: no I/O) and serves `exposition()` at ``/metrics``.
    [`PrometheusMetrics`][k8swatch.metrics.PrometheusMetrics] is the built-in
    implementation.
    """

    def attach(self, resources: Sequence[ResourceSpec]) -> None:
        """Called once by the app with the resources it serves (for gauges read at scrape time)."""
        ...

    def request_done(self, labels: RequestLabels, code: int, seconds: float) -> None:
        """A request ended with HTTP status *code* after *seconds* (watches included)."""
        ...

    def watch_opened(self, labels: RequestLabels) -> None:
        """A watch stream started (a long-running request)."""
        ...

    def watch_closed(self, labels: RequestLabels) -> None:
        """A watch stream ended."""
        ...

    def watch_events_sent(self, resource: ResourceSpec, events: Sequence[Event[Any]]) -> None:
        """*events* were written to one watch stream (once per batch)."""
        ...

    def exposition(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type."""
        ...
