"""The parts of an OpenAPI path operation (parameters, request body, responses), for v2 or v3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DELETE_PARAMS",
    "DRY_RUN",
    "FIELD_MANAGER",
    "FIELD_VALIDATION",
    "FORCE",
    "LIST_PARAMS",
    "PRETTY",
    "Builder",
    "Param",
]

_JSON = "application/json"

Param = tuple[str, str, dict[str, Any], str]  # name, in, schema, description

PRETTY: Param = (
    "pretty",
    "query",
    {"type": "string"},
    "If 'true', then the output is pretty printed.",
)
DRY_RUN: Param = (
    "dryRun",
    "query",
    {"type": "string"},
    "When present, indicates that modifications should not be persisted. Valid value: All.",
)
FIELD_MANAGER: Param = (
    "fieldManager",
    "query",
    {"type": "string"},
    "A name associated with the actor or entity that is making these changes.",
)
FIELD_VALIDATION: Param = (
    "fieldValidation",
    "query",
    {"type": "string"},
    "How the server handles unknown or duplicate fields in the request: Ignore, Warn "
    "(the default: a warning header per unknown field) or Strict (the request fails "
    "with a BadRequest naming the fields).",
)
FORCE: Param = (
    "force",
    "query",
    {"type": "boolean", "uniqueItems": True},
    "Force is only meaningful for apply requests (not supported by this server).",
)
LIST_PARAMS: tuple[Param, ...] = (
    (
        "allowWatchBookmarks",
        "query",
        {"type": "boolean", "uniqueItems": True},
        "Request watch events with type BOOKMARK.",
    ),
    (
        "continue",
        "query",
        {"type": "string", "uniqueItems": True},
        "The continue option from a previous paged list.",
    ),
    (
        "fieldSelector",
        "query",
        {"type": "string", "uniqueItems": True},
        "Restrict the returned objects by their fields (metadata.name, metadata.namespace).",
    ),
    (
        "labelSelector",
        "query",
        {"type": "string", "uniqueItems": True},
        "Restrict the returned objects by their labels.",
    ),
    (
        "limit",
        "query",
        {"type": "integer", "uniqueItems": True},
        "Maximum number of responses to return for a list call.",
    ),
    (
        "resourceVersion",
        "query",
        {"type": "string", "uniqueItems": True},
        "Constrains which resource versions the request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "query",
        {"type": "string", "uniqueItems": True},
        "Determines how resourceVersion is applied to list calls.",
    ),
    (
        "sendInitialEvents",
        "query",
        {"type": "boolean", "uniqueItems": True},
        "Start a watch with synthetic ADDED events for the current state, then a bookmark.",
    ),
    (
        "timeoutSeconds",
        "query",
        {"type": "integer", "uniqueItems": True},
        "Timeout for the list/watch call.",
    ),
    (
        "watch",
        "query",
        {"type": "boolean", "uniqueItems": True},
        "Watch for changes to the described resources and return them as a stream.",
    ),
)
DELETE_PARAMS: tuple[Param, ...] = (
    DRY_RUN,
    (
        "gracePeriodSeconds",
        "query",
        {"type": "integer", "uniqueItems": True},
        "The duration in seconds before the object should be deleted.",
    ),
    (
        "propagationPolicy",
        "query",
        {"type": "string", "uniqueItems": True},
        "Whether and how garbage collection will be performed.",
    ),
)


def _v3_param(param: Param) -> dict[str, Any]:
    name, where, schema, text = param
    out: dict[str, Any] = {"name": name, "in": where, "description": text}
    if where == "path":
        out["required"] = True
    out["schema"] = {k: v for k, v in schema.items() if k != "uniqueItems"}
    if schema.get("uniqueItems"):
        out["schema"]["uniqueItems"] = True
    return out


def _v2_param(param: Param) -> dict[str, Any]:
    name, where, schema, text = param
    out: dict[str, Any] = {"name": name, "in": where, "description": text, **schema}
    if where == "path":
        out["required"] = True
    return out


class Builder:
    """Builds one document; *v2* switches between Swagger 2.0 and OpenAPI 3.0."""

    def __init__(self, v2: bool) -> None:
        self.v2 = v2
        self.prefix = "#/definitions/" if v2 else "#/components/schemas/"

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": self.prefix + name}

    def param(self, param: Param) -> dict[str, Any]:
        return _v2_param(param) if self.v2 else _v3_param(param)

    def responses(self, codes: Mapping[str, str], schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for code, text in codes.items():
            if self.v2:
                out[code] = {"description": text, "schema": schema}
            else:
                out[code] = {
                    "description": text,
                    "content": {
                        _JSON: {"schema": schema},
                        "application/yaml": {"schema": schema},
                    },
                }
        out["401"] = {"description": "Unauthorized"}
        return out

    def body(
        self, schema: dict[str, Any], content_types: Sequence[str], required: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (operation fields, extra v2 parameter) for a request body."""
        if self.v2:
            param = {"name": "body", "in": "body", "required": required, "schema": schema}
            return {"consumes": list(content_types)}, param
        return {
            "requestBody": {
                "content": {ct: {"schema": schema} for ct in content_types},
                "required": required,
            }
        }, {}

    def operation(
        self,
        *,
        operation_id: str,
        description: str,
        action: str,
        gvk: dict[str, str],
        tag: str,
        params: Sequence[Param],
        responses: dict[str, Any],
        body: tuple[dict[str, Any], dict[str, Any]] | None = None,
        produces_stream: bool = False,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "tags": [tag],
            "description": description,
            "operationId": operation_id,
        }
        parameters = [self.param(p) for p in params]
        if body is not None:
            fields, extra = body
            op.update(fields)
            if extra:
                parameters.insert(0, extra)
        if parameters:
            op["parameters"] = parameters
        if self.v2:
            produces = [_JSON, "application/yaml"]
            if produces_stream:
                produces += ["application/json;stream=watch"]
            op["produces"] = produces
            op["schemes"] = ["https"]
        op["responses"] = responses
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = dict(gvk)
        return op
