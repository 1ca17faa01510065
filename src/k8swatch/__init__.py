"""k8swatch: Kubernetes watch semantics for custom REST storage, on asyncio and trio.

The core depends only on attrs, anyio and typing-extensions. Subpackages add
an ASGI serving layer (`k8swatch.server`), the Coder reference adapters
(`k8swatch.coder`), a Redis Streams event log (`k8swatch.redis`) and pytest
helpers (`k8swatch.testing`).
"""

from __future__ import annotations

from ._broadcaster import Broadcaster as Broadcaster
from ._broadcaster import BroadcasterStatistics as BroadcasterStatistics
from ._broadcaster import FullChannelBehavior as FullChannelBehavior
from ._cache import WatchCache as WatchCache
from ._eventlog import EventLog as EventLog
from ._eventlog import LogEntry as LogEntry
from ._eventlog import LogSnapshot as LogSnapshot
from ._eventlog import MemoryEventLog as MemoryEventLog
from ._eventlog import PreconditionFailedError as PreconditionFailedError
from ._eventlog import Write as Write
from ._eventlog import WriteOp as WriteOp
from ._eventlog import object_key as object_key
from ._events import Event as Event
from ._events import EventType as EventType
from ._events import FilterFunc as FilterFunc
from ._fields import FieldRequirement as FieldRequirement
from ._fields import FieldSelector as FieldSelector
from ._fields import escape_field_value as escape_field_value
from ._fields import parse_field_selector as parse_field_selector
from ._fields import unescape_field_value as unescape_field_value
from ._filters import SelectionPredicate as SelectionPredicate
from ._filters import default_get_attrs as default_get_attrs
from ._filters import filter_for_list_options as filter_for_list_options
from ._finalizers import DeletePreconditions as DeletePreconditions
from ._label_parser import parse_label_selector as parse_label_selector
from ._labels import LabelRequirement as LabelRequirement
from ._labels import LabelSelector as LabelSelector
from ._memory import MemoryStorage as MemoryStorage
from ._options import ListOptions as ListOptions
from ._options import WatchCapabilities as WatchCapabilities
from ._options import default_list_options as default_list_options
from ._options import parse_resource_version as parse_resource_version
from ._options import parse_watch_resource_version as parse_watch_resource_version
from ._options import validate_field_selector as validate_field_selector
from ._options import validate_list_options as validate_list_options
from ._options import validate_list_resource_version as validate_list_resource_version
from ._options import validate_watch_options as validate_watch_options
from ._selectors import SelectorError as SelectorError
from ._selectors import SelectorOperator as SelectorOperator
from ._status import Status as Status
from ._status import StatusCause as StatusCause
from ._status import StatusDetails as StatusDetails
from ._status import StatusError as StatusError
from ._status import already_exists as already_exists
from ._status import bad_request as bad_request
from ._status import conflict as conflict
from ._status import expired as expired
from ._status import forbidden as forbidden
from ._status import gone as gone
from ._status import internal_error as internal_error
from ._status import invalid as invalid
from ._status import method_not_allowed as method_not_allowed
from ._status import method_not_supported as method_not_supported
from ._status import not_acceptable as not_acceptable
from ._status import not_found as not_found
from ._status import path_not_found as path_not_found
from ._status import request_entity_too_large as request_entity_too_large
from ._status import service_unavailable as service_unavailable
from ._status import timeout as timeout
from ._status import too_many_requests as too_many_requests
from ._status import unauthorized as unauthorized
from ._status import unprocessable_entity as unprocessable_entity
from ._status import unsupported_media_type as unsupported_media_type
from ._storage import Closer as Closer
from ._storage import Creater as Creater
from ._storage import Deleter as Deleter
from ._storage import Getter as Getter
from ._storage import Lister as Lister
from ._storage import ObjectList as ObjectList
from ._storage import Patcher as Patcher
from ._storage import Updater as Updater
from ._storage import Watcher as Watcher
from ._util import fix_module_metadata as _fix_module_metadata
from ._version import __version__ as __version__
from ._warnings import add_warning as add_warning
from ._warnings import collect_warnings as collect_warnings
from ._watch import StopAwareWatch as StopAwareWatch
from ._watch import Watch as Watch
from ._watch import WatchBase as WatchBase
from ._watch import filter_watch as filter_watch
from ._watch import stop_aware_watch as stop_aware_watch
from ._wire import encode_event as encode_event

__all__ = (
    "Broadcaster",
    "BroadcasterStatistics",
    "Closer",
    "Creater",
    "DeletePreconditions",
    "Deleter",
    "Event",
    "EventLog",
    "EventType",
    "FieldRequirement",
    "FieldSelector",
    "FilterFunc",
    "FullChannelBehavior",
    "Getter",
    "LabelRequirement",
    "LabelSelector",
    "ListOptions",
    "Lister",
    "LogEntry",
    "LogSnapshot",
    "MemoryEventLog",
    "MemoryStorage",
    "ObjectList",
    "Patcher",
    "PreconditionFailedError",
    "SelectionPredicate",
    "SelectorError",
    "SelectorOperator",
    "Status",
    "StatusCause",
    "StatusDetails",
    "StatusError",
    "StopAwareWatch",
    "Updater",
    "Watch",
    "WatchBase",
    "WatchCache",
    "WatchCapabilities",
    "Watcher",
    "Write",
    "WriteOp",
    "add_warning",
    "already_exists",
    "bad_request",
    "collect_warnings",
    "conflict",
    "default_get_attrs",
    "default_list_options",
    "encode_event",
    "escape_field_value",
    "expired",
    "filter_for_list_options",
    "filter_watch",
    "forbidden",
    "gone",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "method_not_supported",
    "not_acceptable",
    "not_found",
    "object_key",
    "parse_field_selector",
    "parse_label_selector",
    "parse_resource_version",
    "parse_watch_resource_version",
    "path_not_found",
    "request_entity_too_large",
    "service_unavailable",
    "stop_aware_watch",
    "timeout",
    "too_many_requests",
    "unauthorized",
    "unescape_field_value",
    "unprocessable_entity",
    "unsupported_media_type",
    "validate_field_selector",
    "validate_list_options",
    "validate_list_resource_version",
    "validate_watch_options",
)

_fix_module_metadata(__name__, globals())
