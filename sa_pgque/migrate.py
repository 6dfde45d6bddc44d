"""Install, upgrade and remove the engine without an ``alembic.ini``.

These functions run sa_pgque's own Alembic revisions (the script directory
``sa_pgque:migrations``) against a SQLAlchemy engine or connection. The
revision applied is recorded in :data:`VERSION_TABLE`, outside schema
``pgque`` so that the schema stays identical to a PgQue install.

Applications that keep their own Alembic history can instead include the
revisions as a branch (``version_locations``); see ``docs/alembic.md``.
:func:`adopt` takes over a database where PgQue was installed from its own
script.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from sa_pgque import _adopt
from sa_pgque._adopt import Adoption, IncompatibleSchema

__all__ = [
    "BRANCH",
    "SCRIPT_LOCATION",
    "VERSION_TABLE",
    "Adoption",
    "IncompatibleSchema",
    "adopt",
    "alembic_config",
    "current",
    "downgrade",
    "install",
    "uninstall",
    "upgrade",
    "upgrade_script",
]

SCRIPT_LOCATION = "sa_pgque:migrations"
"""Alembic script directory of the engine, as a package resource."""

VERSION_TABLE = "pgque_alembic_version"
"""Table that records the engine revision installed by these functions."""

BRANCH = "pgque"
"""Branch label carried by the engine's first revision."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for the engine's revisions, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _connected(bind: Engine | Connection) -> Iterator[Connection]:
    """Yield a connection in a transaction.

    An engine gets a transaction of its own, committed at the end. A
    connection's work joins its current transaction (begun here if needed),
    which the caller commits or rolls back, as with any other statement.
    """
    if isinstance(bind, Connection):
        if not bind.in_transaction():
            bind.begin()
        yield bind
    else:
        with bind.begin() as connection:
            yield connection


def upgrade(bind: Engine | Connection, revision: str = "heads") -> None:
    """Apply the engine's revisions up to ``revision`` (default: the latest)."""
    with _connected(bind) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(bind: Engine | Connection, revision: str = "base") -> None:
    """Revert the engine's revisions down to ``revision`` (default: remove it)."""
    with _connected(bind) as connection:
        command.downgrade(alembic_config(connection), revision)


def upgrade_script(revision: str = "heads", from_revision: str | None = None) -> str:
    """The SQL script of an upgrade, for ``psql`` (what ``alembic upgrade --sql`` prints); no database needed.

    From scratch by default (the whole engine, version table included), or
    from ``from_revision`` (the revision the target database is at). The
    script runs in one transaction.
    """
    buffer = io.StringIO()
    config = alembic_config()
    config.output_buffer = buffer
    command.upgrade(config, f"{from_revision}:{revision}" if from_revision else revision, sql=True)
    return buffer.getvalue()


def current(bind: Engine | Connection) -> str | None:
    """The engine revision installed in the database, or ``None``."""
    with _connected(bind) as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def install(bind: Engine | Connection) -> None:
    """Install the engine, or upgrade it to the latest revision."""
    upgrade(bind, "heads")


def uninstall(bind: Engine | Connection) -> None:
    """Remove the engine: schema ``pgque`` and everything in it (roles stay)."""
    downgrade(bind, "base")


def adopt(bind: Engine | Connection) -> Adoption:
    """Bring an existing install of schema ``pgque`` (PgQue's own script) under the engine's revisions.

    Checks that the tables of schema ``pgque`` are those of an engine
    revision (by name, column names and types; functions may differ),
    re-applies the revisions up to that one over them (the SQL keeps every
    row and replaces the functions with sa_pgque's), records it in
    :data:`VERSION_TABLE` and upgrades to the latest revision, all in one
    transaction. Queued events, ticks, consumer positions, open batches,
    retries and dead letters are kept. An incompatible schema raises
    :class:`IncompatibleSchema` and nothing is changed. A database already
    carrying a version record is just upgraded.
    """
    with _connected(bind) as connection:
        config = alembic_config(connection)
        script = ScriptDirectory.from_config(config)
        revisions = [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]
        return _adopt.adopt(connection, config, revisions)
