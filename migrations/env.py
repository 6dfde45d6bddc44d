"""Alembic environment of sa_pgque's engine revisions.

Used by :mod:`sa_pgque.migrate` (which passes a live connection in
``config.attributes["connection"]``) and by ``alembic`` run with an ini file
that points ``script_location`` here. Online runs need a connection or a URL
(``sqlalchemy.url``, or the ``SA_PGQUE_DSN`` / ``DATABASE_URL`` environment
variables); offline runs (``--sql``) write the engine's SQL as a script and
need no database.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from sa_pgque.migrate import VERSION_TABLE

config = context.config
version_table = config.get_main_option("version_table") or VERSION_TABLE


def _configured_url() -> str | None:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("SA_PGQUE_DSN") or os.environ.get("DATABASE_URL")


def _url() -> str:
    url = _configured_url()
    if not url:
        raise RuntimeError("sa_pgque migrations need a database: set sqlalchemy.url, SA_PGQUE_DSN or DATABASE_URL")
    return url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, version_table=version_table)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    # A script needs only the dialect; a configured URL is used when there is one.
    url = _configured_url()
    context.configure(
        url=url,
        dialect_name=None if url else "postgresql",
        literal_binds=True,
        version_table=version_table,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
