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
from ._auth import ALL_AUTHENTICATED as ALL_AUTHENTICATED
from ._auth import ALL_UNAUTHENTICATED as ALL_UNAUTHENTICATED
from ._auth import ANONYMOUS as ANONYMOUS
from ._auth import AuthenticationError as AuthenticationError
from ._auth import Authenticator as Authenticator
from ._auth import BearerTokenAuthenticator as BearerTokenAuthenticator
from ._auth import ClientRequest as ClientRequest
from ._auth import StaticTokenAuthenticator as StaticTokenAuthenticator
from ._auth import TokenAuthenticator as TokenAuthenticator
from ._auth import UnionAuthenticator as UnionAuthenticator
from ._auth import UserInfo as UserInfo
from ._authz import ABACAuthorizer as ABACAuthorizer
from ._authz import ABACPolicy as ABACPolicy
from ._authz import AlwaysAllowAuthorizer as AlwaysAllowAuthorizer
from ._authz import Attributes as Attributes
from ._authz import AuthorizationResult as AuthorizationResult
from ._authz import Authorizer as Authorizer
from ._authz import Decision as Decision
from ._authz import PathAuthorizer as PathAuthorizer
from ._authz import UnionAuthorizer as UnionAuthorizer
from ._authz import forbidden_error as forbidden_error
from ._columns import JSONPathError as JSONPathError
from ._columns import PrinterColumn as PrinterColumn
from ._columns import age_column as age_column
from ._columns import evaluate_jsonpath as evaluate_jsonpath
from ._columns import parse_jsonpath as parse_jsonpath
from ._context import current_user as current_user
from ._health import HealthCheck as HealthCheck
from ._jsonpatch import apply_json_patch as apply_json_patch
from ._metrics import MetricsRecorder as MetricsRecorder
from ._metrics import RequestLabels as RequestLabels
from ._metrics import request_labels as request_labels
from ._openapi import OpenAPIResponse as OpenAPIResponse
from ._openapi import OpenAPIService as OpenAPIService
from ._openapi import build_openapi_v2 as build_openapi_v2
from ._openapi import build_openapi_v3 as build_openapi_v3
from ._openapi import build_openapi_v3_index as build_openapi_v3_index
from ._openapi import object_schema as object_schema
from ._patch import PatchFunction as PatchFunction
from ._patch import apply_merge_patch as apply_merge_patch
from ._requestinfo import RequestInfo as RequestInfo
from ._requestinfo import request_info as request_info
from ._resource import ResourceSpec as ResourceSpec
from ._resource import storage_verbs as storage_verbs
from ._stream import EventEncoder as EventEncoder
from ._table import human_duration as human_duration
from ._validation import check_field_validation as check_field_validation
from ._validation import prune_unknown_fields as prune_unknown_fields
from ._validation import validate_object as validate_object

__all__ = (
    "ABACAuthorizer",
    "ABACPolicy",
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS",
    "AlwaysAllowAuthorizer",
    "App",
    "Attributes",
    "AuthenticationError",
    "Authenticator",
    "AuthorizationResult",
    "Authorizer",
    "BearerTokenAuthenticator",
    "ClientRequest",
    "Decision",
    "PathAuthorizer",
    "RequestInfo",
    "StaticTokenAuthenticator",
    "TokenAuthenticator",
    "UnionAuthenticator",
    "UnionAuthorizer",
    "UserInfo",
    "EventEncoder",
    "HealthCheck",
    "JSONPathError",
    "MetricsRecorder",
    "OpenAPIResponse",
    "OpenAPIService",
    "PatchFunction",
    "PrinterColumn",
    "RequestLabels",
    "ResourceSpec",
    "age_column",
    "apply_json_patch",
    "apply_merge_patch",
    "build_openapi_v2",
    "build_openapi_v3",
    "build_openapi_v3_index",
    "check_field_validation",
    "create_app",
    "current_user",
    "evaluate_jsonpath",
    "forbidden_error",
    "human_duration",
    "object_schema",
    "parse_jsonpath",
    "prune_unknown_fields",
    "request_info",
    "request_labels",
    "storage_verbs",
    "validate_object",
)

_fix_module_metadata(__name__, globals())
