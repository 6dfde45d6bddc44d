"""Fixtures: a real PostgreSQL, an engine template database, one clone per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sa_pgque import migrate
from tests._pg import Database, Server, Sql


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    yield Server.start()


@pytest.fixture(scope="session")
def engine_template(pg_server: Server) -> Iterator[str]:
    """A database with the engine installed through the Alembic revisions."""
    name = pg_server.create_database(prefix="sa_pgque_tpl")
    template = Database(pg_server, name)
    try:
        migrate.install(template.engine())
        template.close()
        yield name
    finally:
        template.close()
        pg_server.drop_database(name)


@pytest.fixture
def db(pg_server: Server, engine_template: str) -> Iterator[Database]:
    """A fresh database with the engine installed, dropped after the test."""
    database = Database(pg_server, pg_server.create_database(template=engine_template))
    try:
        yield database
    finally:
        database.close()
        pg_server.drop_database(database.name)


@pytest.fixture
def empty_db(pg_server: Server) -> Iterator[Database]:
    """A fresh database without the engine."""
    database = Database(pg_server, pg_server.create_database())
    try:
        yield database
    finally:
        database.close()
        pg_server.drop_database(database.name)


@pytest.fixture
def sql(db: Database) -> Sql:
    """An autocommit connection to the test database, as its owner."""
    return db.sql()
