"""Statements sent straight to psycopg on a SQLAlchemy connection, for the hot paths.

``publish()``'s send and the consumer's receive/ack run once per event or per
batch, where SQLAlchemy's statement construction, compilation and result
wrapping cost more than the server's work. These helpers run a fixed SQL
string on the connection's own DBAPI connection instead — same connection,
same transaction — and raise exactly what the SQLAlchemy path would: engine
errors as :mod:`sa_pgque.errors` exceptions, others as ``DBAPIError``, with a
broken connection invalidated first. psycopg's own prepare threshold applies
(so a ``prepare_threshold=None`` set for a pooler is respected). SQLAlchemy's
cursor events do not see these statements.
"""

from __future__ import annotations

from typing import Any, cast

import psycopg
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from sa_pgque.api import raise_translated


def is_psycopg(bind: Engine | Connection | AsyncConnection) -> bool:
    """Whether the fast path applies (other drivers go through SQLAlchemy)."""
    return bind.dialect.driver == "psycopg"


def _raise(
    connection: Connection,
    raw: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
    sql: str,
    params: tuple[Any, ...],
    error: psycopg.Error,
) -> None:
    broken = raw.broken
    if broken:
        connection.invalidate(error)
    wrapped = DBAPIError.instance(sql, params, error, psycopg.Error, connection_invalidated=broken)
    assert isinstance(wrapped, DBAPIError)
    raise_translated(wrapped)


def execute(connection: Connection, sql: str, params: tuple[Any, ...], *, binary: bool = False) -> psycopg.Cursor[Any]:
    """Run ``sql`` on ``connection``'s psycopg connection, in its transaction."""
    raw = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
    try:
        return raw.execute(sql, params, binary=binary)
    except psycopg.Error as error:
        _raise(connection, raw, sql, params, error)
        raise  # unreachable: _raise always raises


async def execute_async(
    connection: AsyncConnection, sql: str, params: tuple[Any, ...], *, binary: bool = False
) -> psycopg.AsyncCursor[Any]:
    """:func:`execute` for an ``AsyncConnection``."""
    raw = cast("psycopg.AsyncConnection[Any]", (await connection.get_raw_connection()).driver_connection)
    try:
        return await raw.execute(sql, params, binary=binary)
    except psycopg.Error as error:
        _raise(connection.sync_connection, raw, sql, params, error)  # type: ignore[arg-type]
        raise
