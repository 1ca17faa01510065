"""URL routing: discovery paths and Kubernetes resource paths.

Resource paths (``/api/v1/...`` for the core group, ``/apis/<g>/<v>/...``
otherwise)::

    [watch/]namespaces/<ns>/<plural>[/<name>]   namespaced
    [watch/]<plural>[/<name>]                   all namespaces / cluster-scoped
    namespaces/<ns>/<plural>/<name>/status      the status subresource
    <plural>/<name>/status                      (when the resource has it)
    [watch/]namespaces[/<name>]                  the core namespaces resource

A trailing slash is ignored everywhere (``/apis/g/v/widgets/`` is the
collection), a doubled slash matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._resource import ResourceSpec

__all__ = ["DiscoveryRoute", "NamespacesRoute", "ResourceRoute", "Route", "match_path"]


@attrs.frozen
class DiscoveryRoute:
    """A discovery document: ``root``, ``version``, ``api``, ``core``, ``apis``,
    ``group`` (with *group*) or ``group_version`` (with *group* and *version*)."""

    document: str
    group: str = ""
    version: str = ""


@attrs.frozen
class NamespacesRoute:
    """``/api/v1/namespaces[/<name>]``."""

    name: str = ""
    watch_path: bool = False


@attrs.frozen
class ResourceRoute:
    """A resource path.

    Attributes:
        resource: The resource.
        namespace: Namespace from the path ("" for all namespaces / cluster scope).
        name: Object name ("" for the collection).
        watch_path: The legacy ``/watch/`` form (forces a watch).
        subresource: ``"status"`` for the status subresource, else ``""``.
    """

    resource: ResourceSpec
    namespace: str = ""
    name: str = ""
    watch_path: bool = False
    subresource: str = ""


Route = DiscoveryRoute | NamespacesRoute | ResourceRoute | None


def match_path(path: str, resources: Mapping[tuple[str, str, str], ResourceSpec]) -> Route:
    """Return the route for *path*, or None when nothing is served there."""
    parts = path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if any(p == "" for p in parts):
        return None
    if not parts:
        return DiscoveryRoute("root")
    head = parts[0]
    if parts == ["version"]:
        return DiscoveryRoute("version")
    if head == "api":
        if len(parts) == 1:
            return DiscoveryRoute("api")
        if parts[1] != "v1":
            return None
        if len(parts) == 2:
            return DiscoveryRoute("core")
        return _match_resource("", "v1", parts[2:], resources)
    if head == "apis":
        if len(parts) == 1:
            return DiscoveryRoute("apis")
        if len(parts) == 2:
            return DiscoveryRoute("group", group=parts[1])
        if len(parts) == 3:
            return DiscoveryRoute("group_version", group=parts[1], version=parts[2])
        return _match_resource(parts[1], parts[2], parts[3:], resources)
    return None


def _match_resource(
    group: str,
    version: str,
    rest: list[str],
    resources: Mapping[tuple[str, str, str], ResourceSpec],
) -> Route:
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
        if not rest:
            return None
    if rest[0] == "namespaces":
        if len(rest) <= 2:
            if group == "" and version == "v1":
                return NamespacesRoute(rest[1] if len(rest) == 2 else "", watch_path)
            return None
        if len(rest) > 5:
            return None
        resource = resources.get((group, version, rest[2]))
        if resource is None or not resource.namespaced:
            return None
        name = rest[3] if len(rest) >= 4 else ""
        subresource = rest[4] if len(rest) == 5 else ""
        if subresource and not _serves(resource, subresource, watch_path):
            return None
        return ResourceRoute(resource, rest[1], name, watch_path, subresource)
    if len(rest) > 3:
        return None
    resource = resources.get((group, version, rest[0]))
    if resource is None:
        return None
    name = rest[1] if len(rest) >= 2 else ""
    if name and resource.namespaced:
        return None
    subresource = rest[2] if len(rest) == 3 else ""
    if subresource and not _serves(resource, subresource, watch_path):
        return None
    return ResourceRoute(resource, "", name, watch_path, subresource)


def _serves(resource: ResourceSpec, subresource: str, watch_path: bool) -> bool:
    return subresource == "status" and resource.status_subresource and not watch_path
