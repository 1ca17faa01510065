"""A Redis Streams event log, so several server replicas serve one consistent watch stream.

Needs the ``redis`` extra (``pip install 'k8swatch[redis]'``, which installs
[coredis](https://coredis.readthedocs.io), an anyio-native Redis client that
runs on asyncio and trio).
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._lease import RedisLease as RedisLease

__all__ = ("RedisLease",)

_fix_module_metadata(__name__, globals())
