"""One HTTP exchange: the request as the handlers read it, and the responses they send."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote

import attrs

from k8swatch._status import (
    Status,
    StatusCause,
    StatusError,
    bad_request,
    invalid,
    method_not_allowed,
    request_entity_too_large,
)
from k8swatch._wire import encode_json

from ._discovery import parse_accept
from ._resource import ResourceSpec
from ._stream import with_type_meta
from ._table import INCLUDE_METADATA, INCLUDE_NONE, INCLUDE_OBJECT, build_table
from ._types import Receive, Scope, Send, metadata_of

__all__ = [
    "Request",
    "check_dry_run",
    "disallowed_method",
    "parse_bool",
    "read_body",
    "read_request_body",
    "retry_after_headers",
    "send_bytes",
    "send_object",
    "send_status",
]


def check_dry_run(values: Sequence[object], options_kind: str) -> bool:
    """Whether *values* (``dryRun``) ask for a dry run; 422 for a value other than ``All``."""
    for value in values:
        if value != "All":
            raise invalid(
                options_kind,
                "",
                [
                    StatusCause(
                        reason="FieldValueNotSupported",
                        message=f'Unsupported value: "{value}": supported values: "All"',
                        field="dryRun",
                    )
                ],
                group="meta.k8s.io",
            )
    return bool(values)


def parse_bool(value: str | None) -> bool:
    """The apiserver's query boolean: absent is false; only ``0``/``false`` are false."""
    if value is None:
        return False
    return not (value == "0" or value.lower() == "false")


@attrs.frozen
class Request:
    """An HTTP request: method, path (``root_path`` removed), query and lower-case headers."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    @classmethod
    def from_scope(cls, scope: Scope) -> Request:
        """Decode the ASGI ``http`` *scope*."""
        path: str = scope.get("path", "/")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        raw_query: bytes = scope.get("query_string", b"")
        return cls(
            method=scope.get("method", "GET").upper(),
            path=unquote(path),
            query=parse_qs(raw_query.decode("latin-1"), keep_blank_values=True),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        )

    def first(self, key: str) -> str | None:
        """The first value of the query parameter *key*, or None."""
        values = self.query.get(key)
        return values[0] if values else None

    def flag(self, key: str) -> bool:
        """The query parameter *key* as the apiserver reads a boolean."""
        return parse_bool(self.first(key))

    def dry_run(self, options_kind: str) -> bool:
        """Whether ``dryRun=All`` was asked for (then nothing may be persisted).

        The app then asks the storage for a dry run (``dry_run=True``) when its
        write method takes that keyword, so the answer is exactly what the
        write would store; otherwise it answers with the object as validated
        and patched, without the server-set fields.

        Raises:
            StatusError: 422 Invalid for a value other than ``All``.
        """
        return check_dry_run(self.query.get("dryRun") or [], options_kind)

    def wants_aggregated(self) -> bool:
        """Whether ``Accept`` prefers aggregated discovery (``APIGroupDiscoveryList``)."""
        for media in parse_accept(self.headers.get("accept", "")):
            if media.is_as("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2"):
                return True
            if media.accepts_json() and "as" not in media.params:
                return False
        return False

    def table_include(self) -> str | None:
        """The ``includeObject`` policy when a Table was asked for, else None."""
        for media in parse_accept(self.headers.get("accept", "")):
            if media.is_as("Table", "meta.k8s.io", "v1"):
                include = self.first("includeObject") or INCLUDE_METADATA
                if include not in (INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT):
                    raise bad_request(
                        f'includeObject: Unsupported value: "{include}": supported values: '
                        '"None", "Metadata", "Object"'
                    )
                return include
            if media.accepts_json() and "as" not in media.params:
                return None
        return None


def disallowed_method(method: str) -> StatusError:
    """405 for a path that does not serve *method* at all."""
    return method_not_allowed(
        f"the server does not allow this method on the requested resource ({method})"
    )


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body; 413 once it grows past *limit* bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise request_entity_too_large(f"limit is {limit}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def read_request_body(request: Request, receive: Receive, limit: int) -> bytes:
    """Like `read_body`, but 413 at once when ``Content-Length`` is over *limit*."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise request_entity_too_large(f"limit is {limit}")
    return await read_body(receive, limit)


async def send_bytes(
    send: Send,
    code: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole response: *body* with *content_type* and *headers*."""
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-cache, private"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def retry_after_headers(status: Status) -> list[tuple[bytes, bytes]]:
    """The ``Retry-After`` header a Status with ``retryAfterSeconds`` calls for."""
    if status.details is not None and status.details.retry_after_seconds:
        return [(b"retry-after", str(status.details.retry_after_seconds).encode())]
    return []


async def send_status(
    send: Send, status: Status, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send *status* as the JSON body, with its code as the HTTP status (200 for none)."""
    code = status.code if status.code else 200
    await send_bytes(send, code, encode_json(status.to_dict()), headers=headers)


async def send_object(
    send: Send,
    request: Request,
    obj: dict[str, Any],
    res: ResourceSpec | None,
    code: int,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send *obj* (with *res*'s type meta), or a one-row Table if the request asks for one."""
    if res is not None:
        obj = with_type_meta(obj, res)
    include = request.table_include()
    if include is not None:
        metadata = metadata_of(obj)
        table = build_table(
            [obj],
            resource_version=str(metadata.get("resourceVersion", "")),
            include_object=include,
            columns=res.printer_columns if res is not None else (),
        )
        await send_bytes(send, code, encode_json(table), headers=headers)
        return
    await send_bytes(send, code, encode_json(obj), headers=headers)
