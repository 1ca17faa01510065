"""An ASGI serving layer: discovery, REST verbs and streaming watch for k8swatch storages.

[`create_app`][k8swatch.server.create_app] turns
[`ResourceSpec`][k8swatch.server.ResourceSpec]s into an ASGI application that
kubectl and the Kubernetes client libraries accept. It needs no web framework
(mount it under Starlette or FastAPI if you like) and runs under any ASGI
server, on asyncio or trio.
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._app import App as App
from ._app import create_app as create_app
from ._patch import PatchFunction as PatchFunction
from ._patch import apply_merge_patch as apply_merge_patch
from ._resource import ResourceSpec as ResourceSpec
from ._resource import storage_verbs as storage_verbs
from ._stream import EventEncoder as EventEncoder
from ._table import human_duration as human_duration

__all__ = (
    "App",
    "EventEncoder",
    "PatchFunction",
    "ResourceSpec",
    "apply_merge_patch",
    "create_app",
    "human_duration",
    "storage_verbs",
)

_fix_module_metadata(__name__, globals())
