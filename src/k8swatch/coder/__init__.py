"""Reference adapters: Coder workspaces and templates as Kubernetes resources.

`WorkspaceStorage` and `TemplateStorage` serve ``coderworkspaces`` and
``codertemplates`` (``aggregation.coder.com/v1alpha1``) from a Coder deployment
through its REST API (`CoderClient`), with the watch semantics of the Go
original (coder/coder-k8s) plus an optional watch cache and an out-of-band
poller (`CoderPoller`). Needs the ``coder`` extra (httpx).
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._client import CoderClient as CoderClient
from ._client import CoderError as CoderError
from ._client import CoderProtocolError as CoderProtocolError
from ._client import CoderUnavailableError as CoderUnavailableError
from ._client import map_coder_error as map_coder_error
from ._fake import FakeCoder as FakeCoder
from ._fake import FakeCoderChange as FakeCoderChange
from ._fake import FakeCoderChanges as FakeCoderChanges
from ._fake import FakeCoderError as FakeCoderError
from ._metadata import MemoryMetadataStore as MemoryMetadataStore
from ._metadata import MetadataStore as MetadataStore
from ._models import GROUP as GROUP
from ._models import CoderTemplate as CoderTemplate
from ._models import CoderTemplateSpec as CoderTemplateSpec
from ._models import CoderTemplateStatus as CoderTemplateStatus
from ._models import CoderWorkspace as CoderWorkspace
from ._models import CoderWorkspaceSpec as CoderWorkspaceSpec
from ._models import CoderWorkspaceStatus as CoderWorkspaceStatus
from ._names import build_template_name as build_template_name
from ._names import build_workspace_name as build_workspace_name
from ._names import parse_template_name as parse_template_name
from ._names import parse_workspace_name as parse_workspace_name
from ._openapi_schemas import CODER_TEMPLATE_COLUMNS as CODER_TEMPLATE_COLUMNS
from ._openapi_schemas import CODER_WORKSPACE_COLUMNS as CODER_WORKSPACE_COLUMNS
from ._openapi_schemas import coder_template_schema as coder_template_schema
from ._openapi_schemas import coder_workspace_schema as coder_workspace_schema
from ._poller import CoderPoller as CoderPoller
from ._provider import ClientProvider as ClientProvider
from ._provider import NamespaceLister as NamespaceLister
from ._provider import NamespaceResolver as NamespaceResolver
from ._provider import StaticClientProvider as StaticClientProvider
from ._resources import build_resource_specs as build_resource_specs
from ._storage_base import WATCH_QUEUE_LENGTH as WATCH_QUEUE_LENGTH
from ._templates import TemplateStorage as TemplateStorage
from ._workspaces import WorkspaceStorage as WorkspaceStorage

__all__ = (
    "CODER_TEMPLATE_COLUMNS",
    "CODER_WORKSPACE_COLUMNS",
    "ClientProvider",
    "CoderClient",
    "CoderError",
    "CoderPoller",
    "CoderProtocolError",
    "CoderTemplate",
    "CoderTemplateSpec",
    "CoderTemplateStatus",
    "CoderUnavailableError",
    "CoderWorkspace",
    "CoderWorkspaceSpec",
    "CoderWorkspaceStatus",
    "FakeCoder",
    "FakeCoderChange",
    "FakeCoderChanges",
    "FakeCoderError",
    "GROUP",
    "MemoryMetadataStore",
    "MetadataStore",
    "NamespaceLister",
    "NamespaceResolver",
    "StaticClientProvider",
    "TemplateStorage",
    "WATCH_QUEUE_LENGTH",
    "WorkspaceStorage",
    "build_resource_specs",
    "build_template_name",
    "build_workspace_name",
    "coder_template_schema",
    "coder_workspace_schema",
    "map_coder_error",
    "parse_template_name",
    "parse_workspace_name",
)

_fix_module_metadata(__name__, globals())
