"""The Swagger 2.0 document as protobuf (gnostic's ``openapi.v2.Document``).

kubectl asks for ``/openapi/v2`` only as
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` (for instance
``kubectl explain --output plaintext-openapiv2``). This module encodes the JSON
document built by [`build_openapi_v2`][k8swatch.server.build_openapi_v2] into
that message, by hand: the handful of protobuf wire rules needed (varints and
length-delimited fields) fit in a few lines, so no protobuf runtime is needed.

Only what the builder emits is encoded: paths with their operations,
parameters and responses, and schemas (``$ref``, ``type``, ``format``,
``description``, ``required``, ``properties``, ``items``, ``allOf``,
``additionalProperties``, ``default``) with their ``x-`` vendor extensions,
whose values travel as YAML text (JSON, a subset of YAML).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from k8swatch.server._jsontypes import is_array, is_mapping

__all__ = ["PROTOBUF_V2_CONTENT_TYPE", "encode_openapi_v2"]

PROTOBUF_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
"""The media type kubectl asks for (and the server answers with) on ``/openapi/v2``."""


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative ints are ten-byte two's complement
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Message:
    """A protobuf message under construction (fields appended in order)."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def bytes_field(self, number: int, data: bytes) -> None:
        self._parts.append(_varint(number << 3 | 2) + _varint(len(data)) + data)

    def string(self, number: int, value: object) -> None:
        if isinstance(value, str) and value:
            self.bytes_field(number, value.encode())

    def strings(self, number: int, values: object) -> None:
        if is_array(values):
            for value in values:
                if isinstance(value, str):
                    self.bytes_field(number, value.encode())

    def boolean(self, number: int, value: object, *, always: bool = False) -> None:
        if value is True or (always and value is False):
            self._parts.append(_varint(number << 3) + (b"\x01" if value else b"\x00"))

    def message(self, number: int, message: _Message) -> None:
        self.bytes_field(number, message.encode())

    def encode(self) -> bytes:
        return b"".join(self._parts)


def _any(value: Any) -> _Message:
    message = _Message()
    message.string(2, json.dumps(value, separators=(",", ":")))  # Any.yaml
    return message


def _named(name: str, value: _Message) -> _Message:
    message = _Message()
    message.string(1, name)
    message.message(2, value)
    return message


def _vendor_extensions(message: _Message, number: int, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if key.startswith("x-"):
            message.message(number, _named(key, _any(value)))


def _schema(data: Mapping[str, Any]) -> _Message:
    message = _Message()
    message.string(1, data.get("$ref"))
    message.string(2, data.get("format"))
    message.string(3, data.get("title"))
    message.string(4, data.get("description"))
    if "default" in data:
        message.message(5, _any(data["default"]))
    message.boolean(16, data.get("uniqueItems"))
    message.strings(19, data.get("required"))
    additional = data.get("additionalProperties")
    if is_mapping(additional):
        item = _Message()
        item.message(1, _schema(additional))
        message.message(21, item)
    elif isinstance(additional, bool):
        item = _Message()
        item.boolean(2, additional, always=True)  # a set oneof member is always sent
        message.message(21, item)
    kind = data.get("type")
    if isinstance(kind, str) and kind:
        type_item = _Message()
        type_item.string(1, kind)
        message.message(22, type_item)
    items = data.get("items")
    if is_mapping(items):
        items_item = _Message()
        items_item.message(1, _schema(items))
        message.message(23, items_item)
    all_of = data.get("allOf")
    if is_array(all_of):
        for sub in all_of:
            if is_mapping(sub):
                message.message(24, _schema(sub))
    properties = data.get("properties")
    if is_mapping(properties):
        props = _Message()
        for name, sub in properties.items():
            if is_mapping(sub):
                props.message(1, _named(name, _schema(sub)))
        message.message(25, props)
    _vendor_extensions(message, 31, data)
    return message


def _parameter(data: Mapping[str, Any]) -> _Message:
    parameter = _Message()
    where = data.get("in")
    if where == "body":
        body = _Message()
        body.string(1, data.get("description"))
        body.string(2, data.get("name"))
        body.string(3, where)
        body.boolean(4, data.get("required"))
        schema = data.get("schema")
        if is_mapping(schema):
            body.message(5, _schema(schema))
        parameter.message(1, body)
    else:
        # Query and path sub-schemas share their first fields; "type" and
        # "uniqueItems" sit one number further in the query variant.
        query = where != "path"
        sub = _Message()
        sub.boolean(1, data.get("required"))
        sub.string(2, where)
        sub.string(3, data.get("description"))
        sub.string(4, data.get("name"))
        sub.string(6 if query else 5, data.get("type"))
        sub.boolean(20 if query else 19, data.get("uniqueItems"))
        non_body = _Message()
        non_body.message(3 if query else 4, sub)
        parameter.message(2, non_body)
    item = _Message()
    item.message(1, parameter)
    return item


def _operation(data: Mapping[str, Any]) -> _Message:
    message = _Message()
    message.strings(1, data.get("tags"))
    message.string(2, data.get("summary"))
    message.string(3, data.get("description"))
    message.string(5, data.get("operationId"))
    message.strings(6, data.get("produces"))
    message.strings(7, data.get("consumes"))
    parameters = data.get("parameters")
    if is_array(parameters):
        for parameter in parameters:
            if is_mapping(parameter):
                message.message(8, _parameter(parameter))
    responses = data.get("responses")
    if is_mapping(responses):
        codes = _Message()
        for code, response in responses.items():
            if not is_mapping(response):
                continue
            body = _Message()
            body.string(1, response.get("description"))
            schema = response.get("schema")
            if is_mapping(schema):
                schema_item = _Message()
                schema_item.message(1, _schema(schema))
                body.message(2, schema_item)
            value = _Message()
            value.message(1, body)
            codes.message(1, _named(code, value))
        message.message(9, codes)
    message.strings(10, data.get("schemes"))
    _vendor_extensions(message, 13, data)
    return message


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(data: Mapping[str, Any]) -> _Message:
    message = _Message()
    for method, number in _METHODS.items():
        operation = data.get(method)
        if is_mapping(operation):
            message.message(number, _operation(operation))
    parameters = data.get("parameters")
    if is_array(parameters):
        for parameter in parameters:
            if is_mapping(parameter):
                message.message(9, _parameter(parameter))
    _vendor_extensions(message, 10, data)
    return message


def encode_openapi_v2(document: Mapping[str, Any]) -> bytes:
    """Encode a Swagger 2.0 JSON document as an ``openapi.v2.Document`` message."""
    message = _Message()
    message.string(1, document.get("swagger"))
    info = document.get("info")
    if is_mapping(info):
        info_message = _Message()
        info_message.string(1, info.get("title"))
        info_message.string(2, info.get("version"))
        info_message.string(3, info.get("description"))
        message.message(2, info_message)
    paths = document.get("paths")
    if is_mapping(paths):
        paths_message = _Message()
        for path, item in paths.items():
            if is_mapping(item):
                paths_message.message(2, _named(path, _path_item(item)))
        message.message(8, paths_message)
    definitions = document.get("definitions")
    if is_mapping(definitions):
        defs = _Message()
        for name, schema in definitions.items():
            if is_mapping(schema):
                defs.message(1, _named(name, _schema(schema)))
        message.message(9, defs)
    return message.encode()
