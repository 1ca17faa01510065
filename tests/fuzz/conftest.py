"""The fuzz run's budget and its summary line."""

from __future__ import annotations

import os

import pytest

from ._checks import TALLY

# ``nox -s fuzz`` sets K8SWATCH_FUZZ_SCALE for a longer run; the normal test
# run keeps the default budget (well under a minute on 2 cores).
SCALE = max(1, int(os.environ.get("K8SWATCH_FUZZ_SCALE", "1")))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for target in sorted(TALLY.requests):
        terminalreporter.write_line(TALLY.line(target))
        if target in TALLY.first_failure:
            terminalreporter.write_line(f"first failure: {TALLY.first_failure[target]}")
