"""Fixtures of the reliability suite: the short/long switch, and the summary of what was verified.

Plain ``pytest`` runs the short version (CI). ``SA_PGQUE_SOAK=1`` runs the long
soak: the same tests and assertions with much larger counts and durations, and
hypothesis with many more (random) examples. Every test reports its numbers
through the ``report`` fixture; they are printed at the end of the run under
"sa_pgque reliability summary".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.reliability._scale import SOAK

_LINES: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``report("...")``: add a line about this test to the end-of-run summary."""

    def add(line: str) -> None:
        _LINES.append(f"{request.node.name}: {line}")

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _LINES:
        return
    mode = "long soak (SA_PGQUE_SOAK=1)" if SOAK else "short (CI) run; SA_PGQUE_SOAK=1 for the long soak"
    terminalreporter.section("sa_pgque reliability summary")
    terminalreporter.write_line(f"mode: {mode}")
    for line in _LINES:
        terminalreporter.write_line(line)
