"""What a request asks to do, as kube-apiserver's ``RequestInfoFactory`` reads it.

Authorization judges these attributes, not the route: an unknown resource path
under ``/apis/<group>/<version>/`` is still a resource request (forbidden, or
404 once allowed), exactly as the apiserver authorizes before it routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from k8swatch._fields import parse_field_selector

__all__ = ["RequestInfo", "request_info"]

_API_PREFIXES = frozenset({"api", "apis"})
_GROUPLESS_PREFIXES = frozenset({"api"})
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@attrs.frozen
class RequestInfo:
    """The attributes of one request, as kube-apiserver's ``RequestInfo``.

    Attributes:
        resource_request: Whether the path names a resource (``/api/v1/...``
            or ``/apis/<group>/<version>/...``); ``/apis``, ``/version``,
            ``/metrics`` and the like are non-resource requests.
        path: The URL path.
        verb: ``get``, ``list``, ``watch``, ``create``, ``update``, ``patch``,
            ``delete``, ``deletecollection`` (or ``proxy``) for resource
            requests; the lower-case HTTP method for the others.
        api_prefix: ``api`` or ``apis``.
        api_group: The API group ("" for the core group).
        api_version: The API version.
        namespace: The namespace ("" for cluster scope and all namespaces).
        resource: The resource (plural).
        subresource: The subresource (``status``, ...), or "".
        name: The object name, or "" (a list or watch narrowed to one name by
            ``fieldSelector=metadata.name=...`` carries that name, as in kube).
    """

    resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def request_info(
    method: str, path: str, query: Mapping[str, Sequence[str]] | None = None
) -> RequestInfo:
    """Return what *method* on *path* with *query* asks to do (kube's ``NewRequestInfo``).

    Never raises: a path that is not a well-formed resource path is a
    non-resource request with the lower-case method as its verb.
    """
    query = query or {}
    parts = list(path.strip("/").split("/")) if path.strip("/") else []
    if len(parts) < 1 or parts[0] not in _API_PREFIXES:
        return _non_resource(method, path)
    prefix = parts[0]
    rest = parts[1:]
    group = ""
    if prefix not in _GROUPLESS_PREFIXES:
        if len(rest) < 3:  # /apis, /apis/<group>, /apis/<group>/<version>
            return _non_resource(method, path)
        group = rest[0]
        rest = rest[1:]
    elif len(rest) < 2:  # /api, /api/v1
        return _non_resource(method, path)
    version = rest[0]
    rest = rest[1:]
    verb = ""
    via_prefix = False
    if rest[0] in _SPECIAL_VERBS:
        if len(rest) < 2:
            return _non_resource(method, path)
        verb = rest[0]
        via_prefix = True
        rest = rest[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and not via_prefix else ""
    if not name and verb == "get":
        verb = "watch" if _watch_asked(query) else "list"
        selector = _first(query, "fieldSelector")
        if selector:
            name = _exact_name(selector)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        resource_request=True,
        path=path,
        verb=verb,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


def _non_resource(method: str, path: str) -> RequestInfo:
    return RequestInfo(resource_request=False, path=path, verb=method.lower())


def _first(query: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _watch_asked(query: Mapping[str, Sequence[str]]) -> bool:
    value = _first(query, "watch")
    if value is None:
        return False
    return value.lower() not in ("false", "0")


def _exact_name(selector: str) -> str:
    try:
        parsed = parse_field_selector(selector)
    except ValueError:
        return ""
    name: str | None = parsed.requires_exact_match("metadata.name")
    if not name or "/" in name or "%" in name or name in (".", ".."):
        return ""
    return name
