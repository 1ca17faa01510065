"""pytest helpers and a conformance suite for watch semantics (filled by later issues)."""

from __future__ import annotations

__all__ = ()
