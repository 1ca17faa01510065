"""The apimachinery ``meta/v1`` schemas every OpenAPI document carries.

ObjectMeta, ListMeta, Status, DeleteOptions and WatchEvent, with the short
field descriptions ``kubectl explain`` prints.
"""

from __future__ import annotations

from typing import Any

__all__ = ["META", "meta_definitions", "object_meta_schema"]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
"""The package prefix of the meta/v1 definition names."""

_OBJECT_META_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "name": (
        {"type": "string"},
        "Name must be unique within a namespace. Required when creating resources; "
        "cannot be updated.",
    ),
    "generateName": (
        {"type": "string"},
        "Optional prefix the server uses to generate a unique name when name is empty.",
    ),
    "namespace": (
        {"type": "string"},
        "Namespace defines the space within which the name must be unique.",
    ),
    "uid": (
        {"type": "string"},
        "UID is the unique identifier of this object, set by the server; read-only.",
    ),
    "resourceVersion": (
        {"type": "string"},
        "An opaque value that represents the internal version of this object, used "
        "for optimistic concurrency, change detection and watches; read-only.",
    ),
    "generation": (
        {"type": "integer", "format": "int64"},
        "A sequence number representing a specific generation of the desired state.",
    ),
    "creationTimestamp": (
        {"type": "string", "format": "date-time"},
        "The server time when this object was created (RFC 3339, UTC); read-only.",
    ),
    "deletionTimestamp": (
        {"type": "string", "format": "date-time"},
        "The time after which this resource will be deleted; read-only.",
    ),
    "deletionGracePeriodSeconds": (
        {"type": "integer", "format": "int64"},
        "Seconds allowed for this object to gracefully terminate; read-only.",
    ),
    "labels": (
        {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
        "Map of string keys and values used to organize and select objects.",
    ),
    "annotations": (
        {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
        "Unstructured key value map stored with a resource by external tools.",
    ),
    "finalizers": (
        {"type": "array", "items": {"type": "string", "default": ""}},
        "Must be empty before the object is deleted from the registry.",
    ),
    "ownerReferences": (
        {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "Objects depended on by this object.",
    ),
    "managedFields": (
        {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "Maps workflow-id and version to the set of fields managed by that workflow.",
    ),
    "selfLink": ({"type": "string"}, "Deprecated; not set by this server."),
}


def object_meta_schema() -> dict[str, Any]:
    """The ``ObjectMeta`` schema (field types and short descriptions)."""
    return {
        "description": (
            "ObjectMeta is metadata that all persisted resources must have, which "
            "includes all objects users must create."
        ),
        "type": "object",
        "properties": {
            name: {**schema, "description": text}
            for name, (schema, text) in _OBJECT_META_FIELDS.items()
        },
    }


def _list_meta_schema() -> dict[str, Any]:
    return {
        "description": "ListMeta describes metadata that synthetic resources must have.",
        "type": "object",
        "properties": {
            "resourceVersion": {
                "type": "string",
                "description": "The version of the list; start a watch from it.",
            },
            "continue": {
                "type": "string",
                "description": "Set when more items are available; pass it back to continue.",
            },
            "remainingItemCount": {
                "type": "integer",
                "format": "int64",
                "description": "Number of items after this page, when known.",
            },
            "selfLink": {"type": "string", "description": "Deprecated; not set."},
        },
    }


def _status_schema() -> dict[str, Any]:
    return {
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "Always v1."},
            "kind": {"type": "string", "description": "Always Status."},
            "metadata": {"type": "object", "description": "Standard list metadata."},
            "status": {"type": "string", "description": "Success or Failure."},
            "message": {"type": "string", "description": "Human-readable description."},
            "reason": {"type": "string", "description": "Machine-readable reason."},
            "details": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "Extended data associated with the reason.",
            },
            "code": {"type": "integer", "format": "int32", "description": "HTTP code."},
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
    }


def _watch_event_schema() -> dict[str, Any]:
    return {
        "description": "Event represents a single event to a watched resource.",
        "type": "object",
        "required": ["type", "object"],
        "properties": {
            "type": {
                "type": "string",
                "description": "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.",
            },
            "object": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "The object (or a Status for ERROR).",
            },
        },
    }


def _delete_options_schema() -> dict[str, Any]:
    return {
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "dryRun": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "description": "When present, modifications are not persisted.",
            },
            "gracePeriodSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "Seconds before the object should be deleted.",
            },
            "propagationPolicy": {
                "type": "string",
                "description": "Orphan, Background or Foreground.",
            },
            "preconditions": {
                "type": "object",
                "properties": {
                    "resourceVersion": {"type": "string", "description": "Target RV."},
                    "uid": {"type": "string", "description": "Target UID."},
                },
                "description": "Must be fulfilled before a deletion is carried out.",
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": "meta.k8s.io", "kind": "DeleteOptions", "version": "v1"}
        ],
    }


def meta_definitions() -> dict[str, Any]:
    """The meta/v1 definitions by name, in the order the documents list them."""
    return {
        f"{META}.ObjectMeta": object_meta_schema(),
        f"{META}.ListMeta": _list_meta_schema(),
        f"{META}.Status": _status_schema(),
        f"{META}.DeleteOptions": _delete_options_schema(),
        f"{META}.WatchEvent": _watch_event_schema(),
    }
