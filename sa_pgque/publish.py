"""Publishing inside the unit of work: the event exists iff the transaction commits.

``publish(session, queue, payload)`` sends the event right away, in the
session's transaction. It is the hot path of a producer, so with the psycopg
driver it runs one prepared ``pgque.send`` on the session's own DBAPI
connection instead of compiling a SQLAlchemy statement (same connection,
same transaction; SQLAlchemy's cursor events do not see it). Other drivers
go through :func:`sa_pgque.send`.

``publish(..., buffer=True)`` keeps the event in the session and writes all
buffered events just before the outermost commit, with one ``send_batch``
per (queue, type, payload kind), so a thousand publishes cost one round trip.
Buffered events follow the transaction they were published in:

* commit: they are written inside the committing transaction, before its
  final flush; if writing fails, the commit fails and nothing is kept;
* rollback of the session: they are discarded;
* rollback of a savepoint (``begin_nested``): the events published inside it
  are discarded, the others stay;
* events published while a commit is already under way (e.g. from a flush
  event handler) are written immediately, so none can miss the write.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from sa_pgque import _ops, aio, api
from sa_pgque.errors import translate
from sa_pgque.types import Payload, encode_payload

_BUFFER_KEY = "sa_pgque.buffer"

_SEND_SQL = {
    (False, False): "select pgque.send(%s, %s::text)",
    (False, True): "select pgque.send(%s, %s::jsonb)",
    (True, False): "select pgque.send(%s, %s, %s::text)",
    (True, True): "select pgque.send(%s, %s, %s::jsonb)",
}


class _Pending:
    """One buffered event, already encoded."""

    __slots__ = ("is_json", "queue", "text", "transaction", "type")

    def __init__(
        self, transaction: SessionTransaction | None, queue: str, type: str | None, is_json: bool, text: str | None
    ) -> None:
        self.transaction = transaction
        self.queue = queue
        self.type = type
        self.is_json = is_json
        self.text = text


class _Buffer:
    """Events waiting for their session's commit."""

    def __init__(self) -> None:
        self.pending: list[_Pending] = []
        self.committing = False

    def write(self, session: Session) -> None:
        """Send every pending event, one send_batch per group, in first-publish order."""
        groups: dict[tuple[str, str | None, bool], list[str | None]] = {}
        for item in self.pending:
            groups.setdefault((item.queue, item.type, item.is_json), []).append(item.text)
        self.pending.clear()
        for (queue, type_, is_json), texts in groups.items():
            api.run(session, _ops.send_encoded_batch(queue, texts, is_json=is_json, type=type_))

    def discard_inside(self, transaction: SessionTransaction) -> None:
        """Drop the events published inside ``transaction`` (or one nested in it)."""
        self.pending = [item for item in self.pending if not _inside(item.transaction, transaction)]


def _inside(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _buffer(session: Session) -> _Buffer:
    """The session's buffer, creating it (and its event listeners) on first use."""
    buffer: _Buffer | None = session.info.get(_BUFFER_KEY)
    if buffer is None:
        buffer = session.info[_BUFFER_KEY] = _Buffer()
        event.listen(session, "before_commit", _before_commit)
        event.listen(session, "after_soft_rollback", _after_soft_rollback)
        event.listen(session, "after_transaction_end", _after_transaction_end)
    return buffer


def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint is being released: write at the outermost commit
    buffer: _Buffer = session.info[_BUFFER_KEY]
    buffer.committing = True
    buffer.write(session)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    session.info[_BUFFER_KEY].discard_inside(previous_transaction)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        buffer: _Buffer = session.info[_BUFFER_KEY]
        buffer.pending.clear()
        buffer.committing = False


def _enqueue(session: Session, queue: str, payload: Payload, type: str | None) -> bool:
    """Buffer an event; False when a commit is under way and it must be sent now."""
    buffer = _buffer(session)
    if buffer.committing:
        return False
    is_json, text = encode_payload(payload)  # refuse what cannot be sent now, not at commit time
    current = session.get_nested_transaction() or session.get_transaction()
    buffer.pending.append(_Pending(current, queue, type, is_json, text))
    return True


def pending_count(session: Session | AsyncSession) -> int:
    """How many buffered events the session holds (not yet written)."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    buffer: _Buffer | None = sync_session.info.get(_BUFFER_KEY)
    return len(buffer.pending) if buffer is not None else 0


def _statement(queue: str, payload: Payload, type: str | None) -> tuple[str, tuple[Any, ...]]:
    is_json, text = encode_payload(payload)
    params = (queue, text) if type is None else (queue, type, text)
    return _SEND_SQL[type is not None, is_json], params


def _connection(bind: api.Bind) -> Connection:
    """The SQLAlchemy connection of ``bind``, inside its (auto-begun) transaction."""
    if isinstance(bind, Connection):
        if not bind.in_transaction():
            bind.begin()
        return bind
    return bind.connection()


def _send_now(bind: api.Bind, queue: str, payload: Payload, type: str | None) -> int:
    connection = _connection(bind)
    if connection.dialect.driver != "psycopg":
        return api.send(bind, queue, payload, type=type)
    sql, params = _statement(queue, payload, type)
    raw: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    try:
        row = raw.execute(sql, params).fetchone()
    except psycopg.Error as error:
        raise translate(error) from error
    assert row is not None
    return int(row[0])


async def _send_now_async(bind: aio.AsyncBind, queue: str, payload: Payload, type: str | None) -> int:
    connection = bind if isinstance(bind, AsyncConnection) else await bind.connection()
    if not connection.in_transaction():
        await connection.begin()
    if connection.dialect.driver != "psycopg":
        return await aio.send(bind, queue, payload, type=type)
    sql, params = _statement(queue, payload, type)
    raw: psycopg.AsyncConnection[Any] = (await connection.get_raw_connection()).driver_connection  # type: ignore[assignment]
    try:
        cursor = await raw.execute(sql, params)
        row = await cursor.fetchone()
    except psycopg.Error as error:
        raise translate(error) from error
    assert row is not None
    return int(row[0])


@overload
def publish(
    session: api.Bind, queue: str, payload: Payload, *, type: str | None = None, buffer: Literal[False] = False
) -> int: ...


@overload
def publish(
    session: Session, queue: str, payload: Payload, *, type: str | None = None, buffer: Literal[True]
) -> None: ...


def publish(
    session: api.Bind, queue: str, payload: Payload, *, type: str | None = None, buffer: bool = False
) -> int | None:
    """Publish an event that commits or rolls back with the session's transaction.

    Returns the event id, or ``None`` when buffered (ids are assigned at commit).
    """
    if not buffer:
        return _send_now(session, queue, payload, type)
    if not isinstance(session, Session):
        raise TypeError("sa_pgque: buffered publishing needs an ORM Session (its commit writes the buffer)")
    if session.get_transaction() is None:
        session.connection()  # begin now, so the event belongs to this transaction
    if not _enqueue(session, queue, payload, type):
        _send_now(session, queue, payload, type)
    return None


@overload
async def publish_async(
    session: aio.AsyncBind,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: Literal[False] = False,
) -> int: ...


@overload
async def publish_async(
    session: AsyncSession, queue: str, payload: Payload, *, type: str | None = None, buffer: Literal[True]
) -> None: ...


async def publish_async(
    session: aio.AsyncBind, queue: str, payload: Payload, *, type: str | None = None, buffer: bool = False
) -> int | None:
    """:func:`publish` for an ``AsyncSession`` / ``AsyncConnection``."""
    if not buffer:
        return await _send_now_async(session, queue, payload, type)
    if not isinstance(session, AsyncSession):
        raise TypeError("sa_pgque: buffered publishing needs an ORM AsyncSession")
    if session.sync_session.get_transaction() is None:
        await session.connection()
    if not _enqueue(session.sync_session, queue, payload, type):
        await _send_now_async(session, queue, payload, type)
    return None
