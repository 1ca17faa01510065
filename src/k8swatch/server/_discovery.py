"""Discovery documents: ``/version``, ``/api``, ``/apis`` and aggregated discovery.

Both the legacy documents (``APIVersions``, ``APIGroupList``, ``APIGroup``,
``APIResourceList``) and aggregated discovery
(``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``, which kubectl asks for
first) are built from the same [`ResourceSpec`][k8swatch.server.ResourceSpec]s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._resource import ResourceSpec

__all__ = [
    "AGGREGATED_CONTENT_TYPE",
    "NAMESPACES",
    "Discovery",
    "MediaRange",
    "parse_accept",
]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@attrs.frozen
class _NamespaceResource:
    """The core ``namespaces`` resource every server offers (get, list and watch)."""

    group: str = ""
    version: str = "v1"
    plural: str = "namespaces"
    singular: str = "namespace"
    kind: str = "Namespace"
    namespaced: bool = False
    verbs: tuple[str, ...] = ("get", "list", "watch")
    short_names: tuple[str, ...] = ("ns",)
    categories: tuple[str, ...] = ()
    status_verbs: tuple[str, ...] = ()


NAMESPACES = _NamespaceResource()


@attrs.frozen
class MediaRange:
    """One entry of an ``Accept`` header: ``type/subtype`` plus parameters."""

    media_type: str
    params: Mapping[str, str]

    def accepts_json(self) -> bool:
        """True for ``application/json``, ``application/*`` and ``*/*``."""
        return self.media_type in ("application/json", "application/*", "*/*")

    def is_as(self, as_kind: str, group: str, version: str) -> bool:
        """True for ``application/json;as=<as_kind>;g=<group>;v=<version>``."""
        return (
            self.media_type == "application/json"
            and self.params.get("as") == as_kind
            and self.params.get("g") == group
            and self.params.get("v") == version
        )


def parse_accept(header: str) -> list[MediaRange]:
    """Split an ``Accept`` header into media ranges, in the client's order.

    Ranges with ``q=0`` are dropped; the rest keep their order (the clients we
    serve list preferences first rather than using ``q``).
    """
    ranges: list[MediaRange] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media_type = pieces[0].lower()
        if not media_type:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, sep, value = piece.partition("=")
            if sep:
                params[key.strip().lower()] = value.strip().strip('"')
        if params.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        ranges.append(MediaRange(media_type, params))
    if not ranges:
        ranges.append(MediaRange("*/*", {}))
    return ranges


def _api_resource(res: ResourceSpec | _NamespaceResource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    return entry


def _api_resources(res: ResourceSpec | _NamespaceResource) -> list[dict[str, Any]]:
    """The resource's ``APIResource`` entries: itself, then ``<plural>/status``."""
    entries = [_api_resource(res)]
    if res.status_verbs:
        entries.append(
            {
                "name": f"{res.plural}/status",
                "singularName": "",
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": list(res.status_verbs),
            }
        )
    return entries


def _aggregated_resource(res: ResourceSpec | _NamespaceResource) -> dict[str, Any]:
    response_kind = {"group": res.group, "version": res.version, "kind": res.kind}
    entry: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": response_kind,
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    if res.status_verbs:
        entry["subresources"] = [
            {
                "subresource": "status",
                "responseKind": dict(response_kind),
                "verbs": list(res.status_verbs),
            }
        ]
    return entry


class Discovery:
    """Discovery documents for a set of resources."""

    def __init__(
        self, resources: Sequence[ResourceSpec], server_version: Mapping[str, str]
    ) -> None:
        self.resources = resources
        self.server_version = server_version
        self._groups: dict[str, list[str]] = {}
        for res in self.resources:
            if res.group:
                versions = self._groups.setdefault(res.group, [])
                if res.version not in versions:
                    versions.append(res.version)

    # -- legacy documents -------------------------------------------------

    def version(self) -> dict[str, Any]:
        """The ``/version`` document."""
        return dict(self.server_version)

    def api_versions(self) -> dict[str, Any]:
        """The ``/api`` document (``APIVersions``)."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }

    def core_resources(self) -> dict[str, Any]:
        """The ``/api/v1`` document: ``namespaces`` plus core-group resources."""
        resources = _api_resources(NAMESPACES)
        for res in self.resources:
            if res.group == "" and res.version == "v1":
                resources += _api_resources(res)
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}

    def _group(self, group: str) -> dict[str, Any]:
        versions = self._groups[group]
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def group_list(self) -> dict[str, Any]:
        """The ``/apis`` document (``APIGroupList``)."""
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group(g) for g in self._groups],
        }

    def group(self, group: str) -> dict[str, Any] | None:
        """The ``/apis/<group>`` document, or None for an unknown group."""
        if group not in self._groups:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group(group)}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """The ``/apis/<group>/<version>`` document, or None if nothing is served there."""
        if version not in self._groups.get(group, ()):
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}",
            "resources": [
                entry
                for r in self.resources
                if r.group == group and r.version == version
                for entry in _api_resources(r)
            ],
        }

    # -- aggregated discovery ---------------------------------------------

    def aggregated(self, *, core: bool) -> dict[str, Any]:
        """``APIGroupDiscoveryList`` for ``/api`` (*core*) or ``/apis``."""
        items: list[dict[str, Any]] = []
        if core:
            resources = [_aggregated_resource(NAMESPACES)]
            resources += [
                _aggregated_resource(r)
                for r in self.resources
                if r.group == "" and r.version == "v1"
            ]
            items.append(
                {
                    "metadata": {"creationTimestamp": None},
                    "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
                }
            )
        else:
            for group, versions in self._groups.items():
                items.append(
                    {
                        "metadata": {"name": group, "creationTimestamp": None},
                        "versions": [
                            {
                                "version": version,
                                "resources": [
                                    _aggregated_resource(r)
                                    for r in self.resources
                                    if r.group == group and r.version == version
                                ],
                                "freshness": "Current",
                            }
                            for version in versions
                        ],
                    }
                )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }
