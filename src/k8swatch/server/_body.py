"""Request bodies into objects: JSON decoding and the checks kube-apiserver makes first."""

from __future__ import annotations

from typing import Any

from k8swatch._status import bad_request

from ._decode import decode_json
from ._http import Request, read_request_body
from ._resource import ResourceSpec
from ._routes import ResourceRoute
from ._types import Receive, as_object

__all__ = ["check_name", "check_namespace", "check_type_meta", "read_object"]


async def read_object(request: Request, receive: Receive, limit: int) -> dict[str, Any]:
    """Read the body as a JSON object (413 past *limit* bytes, 400 when not an object).

    The body goes through the strict decoder: 400 for invalid UTF-8, lone
    surrogates and nesting past ``MAX_NESTING_DEPTH``.
    """
    body = await read_request_body(request, receive, limit)
    obj = decode_json(body, "the request body is not valid JSON")
    found = as_object(obj)
    if found is None:
        raise bad_request("the request body must be a JSON object")
    return found


def check_type_meta(res: ResourceSpec, obj: dict[str, Any]) -> dict[str, Any]:
    """*obj* with *res*'s ``apiVersion``, ``kind`` (400 if it names others) and metadata dict."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if api_version not in (None, "", res.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected "
            f"API version ({res.api_version})"
        )
    if kind not in (None, "", res.kind):
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
        )
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be a JSON object")
    return {**obj, "apiVersion": res.api_version, "kind": res.kind, "metadata": metadata}


def check_namespace(route: ResourceRoute, metadata: dict[str, Any]) -> dict[str, Any]:
    """*metadata* with the URL's namespace (400 if it names another one)."""
    if not route.resource.namespaced:
        return metadata
    namespace = metadata.get("namespace")
    if namespace and namespace != route.namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return {**metadata, "namespace": route.namespace}


def check_name(route: ResourceRoute, metadata: dict[str, Any]) -> dict[str, Any]:
    """*metadata* with the URL's namespace and name (400 if it names others)."""
    name = metadata.get("name")
    if name and name != route.name:
        raise bad_request(
            f"the name of the object ({name}) does not match the name on the URL ({route.name})"
        )
    return {**check_namespace(route, metadata), "name": route.name}
