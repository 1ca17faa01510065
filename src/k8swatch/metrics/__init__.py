"""Prometheus metrics for k8swatch servers, named as kube-apiserver names them.

[`PrometheusMetrics`][k8swatch.metrics.PrometheusMetrics] implements the
server's [`MetricsRecorder`][k8swatch.server.MetricsRecorder]: give it to
[`create_app(metrics=...)`][k8swatch.server.create_app] and ``/metrics``
serves ``apiserver_request_total``, ``apiserver_request_duration_seconds``,
``apiserver_longrunning_requests``, the watch and watch-cache metrics, and the
latency of the Coder and Redis calls the server makes.

Needs the ``metrics`` extra (``pip install 'k8swatch[metrics]'``, also part of
``serve``), which installs
[prometheus_client](https://prometheus.github.io/client_python/). The core
and ``k8swatch.server`` never import it.
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._prometheus import REQUEST_DURATION_BUCKETS as REQUEST_DURATION_BUCKETS
from ._prometheus import PrometheusMetrics as PrometheusMetrics

__all__ = (
    "REQUEST_DURATION_BUCKETS",
    "PrometheusMetrics",
)

_fix_module_metadata(__name__, globals())
