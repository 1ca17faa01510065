"""metav1.Status errors, built the way kube-apiserver builds them.

Constructors *return* a [`StatusError`][k8swatch.StatusError]; the caller writes
``raise`` so the traceback points at the decision.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from typing_extensions import Self, final

__all__ = [
    "Status",
    "StatusCause",
    "StatusDetails",
    "StatusError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "gone",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "method_not_supported",
    "not_acceptable",
    "not_found",
    "path_not_found",
    "request_entity_too_large",
    "service_unavailable",
    "timeout",
    "too_many_requests",
    "unauthorized",
    "unprocessable_entity",
    "unsupported_media_type",
]

_errors_logger = logging.getLogger("k8swatch.errors")


@final
@attrs.frozen
class StatusCause:
    """One cause of a failure (``details.causes[]``), e.g. a field that is invalid."""

    reason: str = ""
    message: str = ""
    field: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the cause as metav1.StatusCause JSON (empty members omitted)."""
        out: dict[str, Any] = {}
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        if self.field:
            out["field"] = self.field
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build a cause from metav1.StatusCause JSON."""
        return cls(
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            field=str(data.get("field", "")),
        )


@final
@attrs.frozen
class StatusDetails:
    """``details`` of a Status: which object failed, why, and when to retry."""

    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: tuple[StatusCause, ...] = ()
    retry_after_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return metav1.StatusDetails JSON (empty members omitted, Go's key order)."""
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.group:
            out["group"] = self.group
        if self.kind:
            out["kind"] = self.kind
        if self.uid:
            out["uid"] = self.uid
        if self.causes:
            out["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds:
            out["retryAfterSeconds"] = self.retry_after_seconds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build details from metav1.StatusDetails JSON."""
        return cls(
            name=str(data.get("name", "")),
            group=str(data.get("group", "")),
            kind=str(data.get("kind", "")),
            uid=str(data.get("uid", "")),
            causes=tuple(StatusCause.from_dict(c) for c in data.get("causes") or ()),
            retry_after_seconds=int(data.get("retryAfterSeconds", 0) or 0),
        )


@final
@attrs.frozen
class Status:
    """A Kubernetes ``metav1.Status``: the body of every API error.

    Attributes:
        code: The HTTP status code (also the HTTP status of an error response).
        reason: The machine-readable reason (``NotFound``, ``Expired``, ...).
        message: The human-readable message, worded as kube-apiserver words it.
        status: ``"Failure"`` or ``"Success"``.
        details: Extra data: the object, the causes, ``retryAfterSeconds``.
    """

    code: int
    reason: str = ""
    message: str = ""
    status: str = "Failure"
    details: StatusDetails | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the Status as metav1.Status JSON, keys in kube-apiserver's order."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": self.status,
        }
        if self.message:
            out["message"] = self.message
        if self.reason:
            out["reason"] = self.reason
        if self.details is not None:
            details = self.details.to_dict()
            if details:
                out["details"] = details
        if self.code:
            out["code"] = self.code
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build a Status from metav1.Status JSON (as found in an ERROR event)."""
        details = data.get("details")
        return cls(
            code=int(data.get("code", 0) or 0),
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            status=str(data.get("status", "Failure")),
            details=StatusDetails.from_dict(details) if details else None,
        )

    @classmethod
    def success(cls) -> Self:
        """The ``{"status": "Success"}`` Status returned by a successful delete."""
        return cls(code=0, status="Success")


class StatusError(Exception):
    """An error that carries a Kubernetes [`Status`][k8swatch.Status].

    Storages, the watch cache and option validation raise it; the HTTP layer
    sends ``status`` as the response body with ``status.code`` as the HTTP
    status (or, inside a watch stream, as one ``ERROR`` event). ``str(err)`` is
    ``status.message``. The reason is data: test ``err.status.reason``.
    """

    def __init__(self, status: Status) -> None:
        super().__init__(status.message)
        self.status = status

    @property
    def code(self) -> int:
        """Shortcut for ``status.code``."""
        return self.status.code

    @property
    def reason(self) -> str:
        """Shortcut for ``status.reason``."""
        return self.status.reason

    def __repr__(self) -> str:
        return f"StatusError({self.status.code}, {self.status.reason!r}, {self.status.message!r})"


def _quote(text: str) -> str:
    # Go's %q for the strings we quote (names): a JSON string is the same for ASCII.
    return json.dumps(text, ensure_ascii=False)


def qualified_resource(resource: str, group: str = "") -> str:
    """Return ``resource.group`` (``pods`` for the core group), as Go's GroupResource."""
    return f"{resource}.{group}" if group else resource


def bad_request(message: str, *, causes: Iterable[StatusCause] = ()) -> StatusError:
    """400 BadRequest with *message* verbatim, and *causes* as ``details.causes`` when given."""
    causes = tuple(causes)
    details = StatusDetails(causes=causes) if causes else None
    return StatusError(Status(code=400, reason="BadRequest", message=message, details=details))


def unauthorized(message: str = "") -> StatusError:
    """401 Unauthorized (message defaults to ``not authorized``)."""
    return StatusError(Status(code=401, reason="Unauthorized", message=message or "not authorized"))


def forbidden(resource: str, name: str, err: str, *, group: str = "") -> StatusError:
    """403 Forbidden: ``<resource>[.<group>] "<name>" is forbidden: <err>``."""
    qualified = qualified_resource(resource, group)
    subject = f"{qualified} {_quote(name)}" if name else qualified
    return StatusError(
        Status(
            code=403,
            reason="Forbidden",
            message=f"{subject} is forbidden: {err}",
            details=StatusDetails(name=name, group=group, kind=resource),
        )
    )


def not_found(resource: str, name: str, *, group: str = "") -> StatusError:
    """404 NotFound: ``<resource>[.<group>] "<name>" not found``."""
    return StatusError(
        Status(
            code=404,
            reason="NotFound",
            message=f"{qualified_resource(resource, group)} {_quote(name)} not found",
            details=StatusDetails(name=name, group=group, kind=resource),
        )
    )


def path_not_found() -> StatusError:
    """404 NotFound for a path the server does not serve.

    The message is kube-apiserver's ``the server could not find the requested
    resource``; for a missing object, use [`not_found`][k8swatch.not_found].
    """
    return StatusError(
        Status(
            code=404, reason="NotFound", message="the server could not find the requested resource"
        )
    )


def method_not_allowed(message: str) -> StatusError:
    """405 MethodNotAllowed with *message* verbatim: the path does not serve the HTTP method.

    For a verb a resource's storage does not implement, use
    [`method_not_supported`][k8swatch.method_not_supported].
    """
    return StatusError(Status(code=405, reason="MethodNotAllowed", message=message))


def not_acceptable(message: str) -> StatusError:
    """406 NotAcceptable with *message* verbatim: no media type in ``Accept`` can be served."""
    return StatusError(Status(code=406, reason="NotAcceptable", message=message))


def method_not_supported(resource: str, action: str, *, group: str = "") -> StatusError:
    """405 MethodNotAllowed: ``<action> is not supported on resources of kind "<r.g>"``."""
    return StatusError(
        Status(
            code=405,
            reason="MethodNotAllowed",
            message=(
                f"{action} is not supported on resources of kind "
                f"{_quote(qualified_resource(resource, group))}"
            ),
            details=StatusDetails(group=group, kind=resource),
        )
    )


def already_exists(resource: str, name: str, *, group: str = "") -> StatusError:
    """409 AlreadyExists: ``<resource>[.<group>] "<name>" already exists``."""
    return StatusError(
        Status(
            code=409,
            reason="AlreadyExists",
            message=f"{qualified_resource(resource, group)} {_quote(name)} already exists",
            details=StatusDetails(name=name, group=group, kind=resource),
        )
    )


def conflict(resource: str, name: str, err: str, *, group: str = "") -> StatusError:
    """409 Conflict: ``Operation cannot be fulfilled on <r.g> "<name>": <err>``."""
    return StatusError(
        Status(
            code=409,
            reason="Conflict",
            message=(
                f"Operation cannot be fulfilled on {qualified_resource(resource, group)} "
                f"{_quote(name)}: {err}"
            ),
            details=StatusDetails(name=name, group=group, kind=resource),
        )
    )


def expired(message: str) -> StatusError:
    """410 Expired, e.g. ``too old resource version: 5 (10)``: the client must relist."""
    return StatusError(Status(code=410, reason="Expired", message=message))


def gone(message: str) -> StatusError:
    """410 Gone with *message* verbatim."""
    return StatusError(Status(code=410, reason="Gone", message=message))


def request_entity_too_large(message: str) -> StatusError:
    """413 RequestEntityTooLarge: ``Request entity too large: <message>``."""
    return StatusError(
        Status(
            code=413,
            reason="RequestEntityTooLarge",
            message=f"Request entity too large: {message}",
        )
    )


def unsupported_media_type(message: str) -> StatusError:
    """415 UnsupportedMediaType with *message* verbatim: a body the server cannot decode."""
    return StatusError(Status(code=415, reason="UnsupportedMediaType", message=message))


def invalid(
    kind: str,
    name: str,
    causes: Iterable[StatusCause],
    *,
    group: str = "",
) -> StatusError:
    """422 Invalid: ``<Kind>.<group> "<name>" is invalid: <errors>``.

    Each cause renders as ``<field>: <message>``; one error is shown bare,
    several as ``[e1, e2]`` with duplicates removed, as apimachinery's
    aggregate does.
    """
    cause_list = tuple(causes)
    rendered: list[str] = []
    for cause in cause_list:
        text = f"{cause.field}: {cause.message}" if cause.field else cause.message
        if text not in rendered:
            rendered.append(text)
    errors = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    qualified_kind = f"{kind}.{group}" if group else kind
    return StatusError(
        Status(
            code=422,
            reason="Invalid",
            message=f"{qualified_kind} {_quote(name)} is invalid: {errors}",
            details=StatusDetails(name=name, group=group, kind=kind, causes=cause_list),
        )
    )


def unprocessable_entity(causes: Iterable[StatusCause]) -> StatusError:
    """422 Invalid for a request that cannot be carried out (not for an invalid object).

    The message is kube-apiserver's generic ``the server rejected our request due
    to an error in our request``; *causes* say what went wrong. For an object
    that fails validation, use [`invalid`][k8swatch.invalid].
    """
    return StatusError(
        Status(
            code=422,
            reason="Invalid",
            message="the server rejected our request due to an error in our request",
            details=StatusDetails(causes=tuple(causes)),
        )
    )


def too_many_requests(message: str, retry_after_seconds: int = 1) -> StatusError:
    """429 TooManyRequests with ``details.retryAfterSeconds``."""
    return StatusError(
        Status(
            code=429,
            reason="TooManyRequests",
            message=message,
            details=StatusDetails(retry_after_seconds=retry_after_seconds),
        )
    )


def internal_error(err: str | BaseException, *, context: str = "") -> StatusError:
    """500 InternalError: ``Internal error occurred: <err>``.

    A *str* is the message, as written by the code that chose it. An exception
    is never shown to the client (its text can hold paths, URLs or data): the
    message is fixed and carries a short error id, and the exception with its
    traceback is logged under that id to the ``k8swatch.errors`` logger (with
    *context*, e.g. the request's method and path), where an operator finds it.
    """
    if isinstance(err, str):
        return StatusError(
            Status(
                code=500,
                reason="InternalError",
                message=f"Internal error occurred: {err}",
                details=StatusDetails(causes=(StatusCause(message=err),)),
            )
        )
    error_id = secrets.token_hex(4)
    _errors_logger.error(
        "internal error %s%s",
        error_id,
        f" in {context}" if context else "",
        exc_info=(type(err), err, err.__traceback__),
    )
    text = f"an unexpected error; the server log has the details under error id {error_id}"
    return StatusError(
        Status(code=500, reason="InternalError", message=f"Internal error occurred: {text}")
    )


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable with *message* verbatim: the client should retry."""
    return StatusError(Status(code=503, reason="ServiceUnavailable", message=message))


def timeout(
    message: str,
    retry_after_seconds: int = 0,
    *,
    causes: Sequence[StatusCause] = (),
) -> StatusError:
    """504 Timeout: ``Timeout: <message>`` with ``details.retryAfterSeconds``."""
    details = (
        StatusDetails(causes=tuple(causes), retry_after_seconds=retry_after_seconds)
        if causes or retry_after_seconds
        else None
    )
    return StatusError(
        Status(code=504, reason="Timeout", message=f"Timeout: {message}", details=details)
    )
