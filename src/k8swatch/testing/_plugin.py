"""pytest plugin entry point for k8swatch.testing (fixtures are registered here)."""

from __future__ import annotations
