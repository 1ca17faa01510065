"""A Redis Streams event log, so several server replicas serve one consistent watch stream.

Open a [`RedisBackend`][k8swatch.redis.RedisBackend] with
[`open_redis_backend()`][k8swatch.redis.open_redis_backend], take one
[`RedisEventLog`][k8swatch.redis.RedisEventLog] per resource with
`backend.log_for(...)` and hand it to the storage; use
[`RedisLease`][k8swatch.redis.RedisLease] so that only one replica runs an
out-of-band poller at a time, and `backend.metadata_store_for(...)` (a
[`RedisMetadataStore`][k8swatch.redis.RedisMetadataStore]) so the labels,
annotations and finalizers of Coder objects are shared and survive restarts.

Needs the ``redis`` extra (``pip install 'k8swatch[redis]'``), which installs
[coredis](https://coredis.readthedocs.io): an anyio-native Redis client, so the
backend runs on asyncio and trio alike.
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._backend import RedisBackend as RedisBackend
from ._backend import open_redis_backend as open_redis_backend
from ._lease import RedisLease as RedisLease
from ._log import RedisEventLog as RedisEventLog
from ._metadata import RedisMetadataStore as RedisMetadataStore

__all__ = (
    "RedisBackend",
    "RedisEventLog",
    "RedisLease",
    "RedisMetadataStore",
    "open_redis_backend",
)

_fix_module_metadata(__name__, globals())
