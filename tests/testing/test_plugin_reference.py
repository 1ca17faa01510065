"""The reference's table of the pytest plugin's fixtures matches the plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _pytest.fixtures import getfixturemarker

from k8swatch.testing import _plugin

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "testing.md"
ROW = re.compile(r"^\| `(?P<name>\w+)` \| .+ \| (?P<scope>\w+) \| .+ \|$")


def documented_fixtures() -> dict[str, str]:
    """Name and scope of each row of the reference's fixture table."""
    text = REFERENCE.read_text(encoding="utf-8")
    table = text.split("### Fixtures", 1)[1].split("###", 1)[0]
    return {row["name"]: row["scope"] for row in map(ROW.match, table.splitlines()) if row}


def plugin_fixtures() -> dict[str, str]:
    """Name and scope of each fixture the plugin module defines."""
    found: dict[str, str] = {}
    for name in dir(_plugin):
        marker = getfixturemarker(getattr(_plugin, name))
        if marker is not None:
            found[marker.name or name] = str(marker.scope)
    return found


def test_the_reference_lists_every_fixture_with_its_scope() -> None:
    assert documented_fixtures() == plugin_fixtures()


def test_the_documented_marker_is_registered(pytestconfig: pytest.Config) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    documented = set(re.findall(r"pytest\.mark\.(\w+)\(", text))
    registered = {line.split("(")[0].split(":")[0] for line in pytestconfig.getini("markers")}
    assert documented == {"k8swatch_fault"}
    assert documented <= registered
