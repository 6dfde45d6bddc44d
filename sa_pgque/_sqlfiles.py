"""Locate and run the engine's versioned ``.sql`` files.

The SQL ships inside the package (``sa_pgque/migrations/sql/<step>/NN_name.sql``)
and is read with :mod:`importlib.resources`, so it works from a wheel, an
editable install or a source checkout alike.

Scripts are sent to the server verbatim. They cannot go through
``op.execute(str)``: that wraps the text in ``text()``, which would turn a
``:word`` inside PL/pgSQL into a bind parameter, and psycopg would treat
``%`` as a placeholder if any parameter sequence were passed. Both are
avoided by executing with ``no_parameters=True`` (online) or by writing the
script unchanged to the output (offline ``--sql`` mode).
"""

from __future__ import annotations

import sys
from importlib.resources import files

from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

_SQL_ROOT = files("sa_pgque") / "migrations" / "sql"


def sql_step(step: str) -> list[Traversable]:
    """The ``.sql`` files of one migration step, in the order they must run."""
    directory = _SQL_ROOT / step
    if not directory.is_dir():
        raise FileNotFoundError(f"sa_pgque: no SQL step named {step!r}")
    scripts = [f for f in directory.iterdir() if f.name.endswith(".sql")]
    return sorted(scripts, key=lambda f: f.name)


def read_script(step: str, name: str) -> str:
    """The text of one script of a step."""
    return (_SQL_ROOT / step / name).read_text(encoding="utf-8")


def execute_script(connection: Connection, script: str) -> None:
    """Send a multi-statement script to the server exactly as written."""
    connection.exec_driver_sql(script, execution_options={"no_parameters": True})


def run_script(context: MigrationContext, script: str) -> None:
    """Run a script inside an Alembic migration, online or offline."""
    if context.as_sql:
        context.impl.static_output(script.rstrip() + "\n")
    else:
        assert context.connection is not None
        execute_script(context.connection, script)


def run_step(context: MigrationContext, step: str) -> None:
    """Run every script of a step, in file-name order."""
    for script in sql_step(step):
        run_script(context, script.read_text(encoding="utf-8"))
