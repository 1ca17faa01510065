"""The write options every write verb checks: ``fieldManager`` and ``force``."""

from __future__ import annotations

import json

from k8swatch._status import StatusCause, invalid

from ._http import Request
from ._managedfields import manager_from_user_agent

__all__ = [
    "FIELD_MANAGER_MAX_LENGTH",
    "check_write_options",
    "field_manager_for",
    "options_kind",
]

FIELD_MANAGER_MAX_LENGTH = 128
"""The longest ``fieldManager`` kube-apiserver accepts."""

_OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


def options_kind(verb: str) -> str:
    """The kind of *verb*'s options (``CreateOptions``, ``UpdateOptions``, ``PatchOptions``)."""
    return _OPTIONS_KIND.get(verb, "PatchOptions")


def check_write_options(request: Request, verb: str, *, apply: bool = False) -> None:
    """Check ``fieldManager`` and ``force`` as kube-apiserver validates its write options.

    Raises:
        StatusError: 422 Invalid on ``<Verb>Options.meta.k8s.io``: a
            ``fieldManager`` longer than 128 characters or with unprintable
            ones; no ``fieldManager`` on an apply; ``force`` on any other patch.
    """
    manager = request.first("fieldManager") or ""
    causes: list[StatusCause] = []
    if verb == "patch" and not apply and request.first("force") is not None:
        causes.append(
            StatusCause(
                reason="FieldValueForbidden",
                message="Forbidden: may not be specified for non-apply patch",
                field="force",
            )
        )
    if apply and not manager:
        causes.append(
            StatusCause(
                reason="FieldValueRequired",
                message="Required value: is required for apply patch",
                field="fieldManager",
            )
        )
    if len(manager) > FIELD_MANAGER_MAX_LENGTH:
        causes.append(
            StatusCause(
                reason="FieldValueTooLong",
                message=f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes",
                field="fieldManager",
            )
        )
    for position, char in enumerate(manager):
        if not char.isprintable():
            causes.append(
                StatusCause(
                    reason="FieldValueInvalid",
                    message=(
                        f"Invalid value: {json.dumps(manager)}: invalid characters at "
                        f"position {position}"
                    ),
                    field="fieldManager",
                )
            )
            break
    if causes:
        raise invalid(options_kind(verb), "", causes, group="meta.k8s.io")


def field_manager_for(request: Request) -> str:
    """The manager of a write: ``fieldManager``, else the ``User-Agent``'s product name."""
    return request.first("fieldManager") or manager_from_user_agent(
        request.headers.get("user-agent", "")
    )
