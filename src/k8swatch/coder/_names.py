"""Object names: ``<org>.<template>`` and ``<org>.<owner>.<workspace>``.

Coder names never contain a dot (they are ``[a-zA-Z0-9]`` groups joined by
``-``), so the dot is a safe separator. Parsing counts dots and rejects empty
segments, with the Go original's messages; the segment alphabet is left to
Coder, which answers 400 "Validation failed." for a bad name.
"""

from __future__ import annotations

from k8swatch._go import go_quote

__all__ = [
    "build_template_name",
    "build_workspace_name",
    "parse_template_name",
    "parse_workspace_name",
]

_SEPARATOR = "."


def _parse_segments(name: str, expected: int, kind: str) -> list[str]:
    if not name:
        raise ValueError(f"invalid {kind} name: name must not be empty")
    separators = expected - 1
    if name.count(_SEPARATOR) != separators:
        raise ValueError(
            f"invalid {kind} name {go_quote(name)}: expected {separators} separators "
            f"({go_quote(_SEPARATOR)})"
        )
    segments = name.split(_SEPARATOR)
    for index, segment in enumerate(segments):
        if not segment:
            raise ValueError(
                f"invalid {kind} name {go_quote(name)}: segment {index} must not be empty"
            )
    return segments


def parse_template_name(name: str) -> tuple[str, str]:
    """Split ``<org>.<template>`` into ``(org, template)``.

    Raises:
        ValueError: the name is empty, has not exactly one dot, or has an empty
            segment; the message is the Go original's.
    """
    org, template = _parse_segments(name, 2, "template")
    return org, template


def parse_workspace_name(name: str) -> tuple[str, str, str]:
    """Split ``<org>.<owner>.<workspace>`` into ``(org, owner, workspace)``.

    Raises:
        ValueError: the name is empty, has not exactly two dots, or has an
            empty segment; the message is the Go original's.
    """
    org, owner, workspace = _parse_segments(name, 3, "workspace")
    return org, owner, workspace


def _check_segment(kind: str, value: str) -> None:
    if not value:
        raise ValueError(f"{kind} must not be empty")
    if _SEPARATOR in value:
        raise ValueError(f"{kind} must not contain {go_quote(_SEPARATOR)}")


def build_template_name(org: str, template: str) -> str:
    """Return ``<org>.<template>``.

    Raises:
        ValueError: a segment is empty or contains a dot.
    """
    _check_segment("organization", org)
    _check_segment("template", template)
    return f"{org}{_SEPARATOR}{template}"


def build_workspace_name(org: str, owner: str, workspace: str) -> str:
    """Return ``<org>.<owner>.<workspace>``.

    Raises:
        ValueError: a segment is empty or contains a dot.
    """
    _check_segment("organization", org)
    _check_segment("user", owner)
    _check_segment("workspace", workspace)
    return f"{org}{_SEPARATOR}{owner}{_SEPARATOR}{workspace}"
