"""mypy --strict on a typed usage sample: the public API reveals precise types."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api as mypy_api

SAMPLE = Path(__file__).parent / "typing" / "usage.py"

EXPECTED = [
    "int",
    "list[int]",
    "list[sa_pgque.results.Message]",
    "str | None",
    "int | None",
    "int",
    "list[sa_pgque.results.QueueInfo]",
    "sa_pgque.results.BatchInfo | None",
    "sa_pgque.results.DlqReplayResult",
    "int | None",
    "int",
    "None",
    "sqlalchemy.sql.selectable.Select[int]",
    "list[sa_pgque.results.Message]",
    "int",
    "sqlalchemy.sql.functions.Function[Any]",
]


def test_public_api_types_under_mypy_strict() -> None:
    stdout, stderr, _ = mypy_api.run(["--strict", "--no-incremental", "--cache-dir=/dev/null", str(SAMPLE)])
    revealed = [name.replace("builtins.", "") for name in re.findall(r'Revealed type is "([^"]+)"', stdout)]
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert errors == [], stdout + stderr
    assert revealed == EXPECTED
