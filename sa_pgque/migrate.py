"""Install, upgrade and remove the engine without an ``alembic.ini``.

These functions run sa_pgque's own Alembic revisions (the script directory
``sa_pgque:migrations``) against a SQLAlchemy engine or connection. The
revision applied is recorded in :data:`VERSION_TABLE`, outside schema
``pgque`` so that the schema stays identical to a PgQue install.

Applications that keep their own Alembic history can instead include the
revisions as a branch (``version_locations``); see the Alembic guide.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

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
