"""metav1.Status JSON exactly as kube-apiserver produces it."""

from __future__ import annotations

import json

import pytest

import k8swatch
from k8swatch import Status, StatusCause, StatusDetails, StatusError


def test_expired_status_json_matches_apiserver() -> None:
    err = k8swatch.expired("too old resource version: 5 (10)")
    assert json.dumps(err.status.to_dict(), separators=(",", ":")) == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"too old resource version: 5 (10)","reason":"Expired","code":410}'
    )
    assert str(err) == "too old resource version: 5 (10)"
    assert err.code == 410
    assert err.reason == "Expired"


def test_invalid_list_options_example() -> None:
    cause = StatusCause(
        reason="FieldValueForbidden",
        message="Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        field="resourceVersionMatch",
    )
    err = k8swatch.invalid("ListOptions", "", [cause], group="meta.k8s.io")
    assert err.status.to_dict() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided",
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": [
                {
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: resourceVersionMatch is forbidden unless "
                    "resourceVersion is provided",
                    "field": "resourceVersionMatch",
                }
            ],
        },
        "code": 422,
    }


def test_invalid_renders_several_errors_in_brackets_without_duplicates() -> None:
    causes = [
        StatusCause(reason="FieldValueForbidden", message="Forbidden: a", field="x"),
        StatusCause(reason="FieldValueForbidden", message="Forbidden: a", field="x"),
        StatusCause(reason="FieldValueNotSupported", message="Unsupported value: b", field="y"),
    ]
    err = k8swatch.invalid("Widget", "w", causes, group="example.com")
    assert err.status.message == (
        'Widget.example.com "w" is invalid: [x: Forbidden: a, y: Unsupported value: b]'
    )


def test_bad_request_carries_causes_only_when_given() -> None:
    assert k8swatch.bad_request("nope").status.to_dict().get("details") is None
    cause = k8swatch.StatusCause(reason="FieldValueInvalid", message="bad", field="name")
    status = k8swatch.bad_request("invalid body", causes=[cause]).status
    assert (status.code, status.reason, status.message) == (400, "BadRequest", "invalid body")
    assert status.to_dict()["details"] == {
        "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "name"}]
    }


@pytest.mark.parametrize(
    ("err", "code", "reason", "message"),
    [
        (k8swatch.bad_request("nope"), 400, "BadRequest", "nope"),
        (k8swatch.not_found("pods", "p"), 404, "NotFound", 'pods "p" not found'),
        (
            k8swatch.not_found("widgets", "w", group="example.com"),
            404,
            "NotFound",
            'widgets.example.com "w" not found',
        ),
        (
            k8swatch.already_exists("widgets", "w", group="example.com"),
            409,
            "AlreadyExists",
            'widgets.example.com "w" already exists',
        ),
        (
            k8swatch.conflict("widgets", "w", "stale", group="example.com"),
            409,
            "Conflict",
            'Operation cannot be fulfilled on widgets.example.com "w": stale',
        ),
        (
            k8swatch.method_not_supported("widgets", "watch", group="example.com"),
            405,
            "MethodNotAllowed",
            'watch is not supported on resources of kind "widgets.example.com"',
        ),
        (k8swatch.gone("bye"), 410, "Gone", "bye"),
        (k8swatch.too_many_requests("slow down", 2), 429, "TooManyRequests", "slow down"),
        (
            k8swatch.internal_error("boom"),
            500,
            "InternalError",
            "Internal error occurred: boom",
        ),
        (k8swatch.service_unavailable("later"), 503, "ServiceUnavailable", "later"),
        (
            k8swatch.path_not_found(),
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
        (k8swatch.method_not_allowed("no POST here"), 405, "MethodNotAllowed", "no POST here"),
        (k8swatch.not_acceptable("only JSON"), 406, "NotAcceptable", "only JSON"),
        (
            k8swatch.request_entity_too_large("limit is 10"),
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 10",
        ),
        (
            k8swatch.unsupported_media_type("unknown format"),
            415,
            "UnsupportedMediaType",
            "unknown format",
        ),
        (
            k8swatch.unprocessable_entity([StatusCause(message="bad op", field="patch")]),
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
        (k8swatch.timeout("too slow", 1), 504, "Timeout", "Timeout: too slow"),
        (k8swatch.unauthorized(), 401, "Unauthorized", "not authorized"),
    ],
)
def test_constructors(err: StatusError, code: int, reason: str, message: str) -> None:
    assert isinstance(err, StatusError)
    assert err.status.code == code
    assert err.status.reason == reason
    assert err.status.message == message
    data = err.status.to_dict()
    assert data["code"] == code
    assert Status.from_dict(data) == err.status


def test_details_roundtrip_and_retry_after() -> None:
    err = k8swatch.too_many_requests("too many watches", 5)
    data = err.status.to_dict()
    assert data["details"] == {"retryAfterSeconds": 5}
    internal = k8swatch.internal_error("disk on fire").status.to_dict()
    assert internal["details"] == {"causes": [{"message": "disk on fire"}]}
    hidden = k8swatch.internal_error(RuntimeError("disk on fire")).status.to_dict()
    assert "disk on fire" not in json.dumps(hidden)
    details = StatusDetails(name="n", group="g", kind="k", causes=(StatusCause(field="f"),))
    assert StatusDetails.from_dict(details.to_dict()) == details


def test_success_status_has_no_code() -> None:
    assert Status.success().to_dict() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }


async def test_backends_both_run(anyio_backend_name: str) -> None:
    assert anyio_backend_name in {"asyncio", "trio"}


def test_unprocessable_entity_carries_its_causes() -> None:
    cause = StatusCause(reason="FieldValueInvalid", message="no such path", field="patch")
    err = k8swatch.unprocessable_entity([cause])
    assert err.status.details == StatusDetails(causes=(cause,))
