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

Two options change what is written, immediate or buffered alike:

* ``dedupe_key=...`` (``dedupe_ttl``, default one hour) sends with
  ``pgque.send_idem``: the event is appended only if no event with that key
  was published on the queue within the ttl. Buffered keyed events are
  written at commit too, all of them with one statement, and a key repeated
  inside one buffer keeps only its first event.
* ``deliver_at=<aware datetime>`` or ``delay=<seconds | timedelta>`` sends
  with ``pgque.send_at``: the event waits outside the queue until it is due.
  A delay counts on the server's clock from when the event is written (for
  buffered events, the commit).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, overload

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from sa_pgque import _driver, _ops, aio, api
from sa_pgque._ops import DEFAULT_DEDUPE_TTL, Seconds, interval
from sa_pgque.errors import EngineStateError
from sa_pgque.types import Payload, encode_payload

_BUFFER_KEY = "sa_pgque.buffer"

_SEND_SQL = {
    (False, False): "select pgque.send(%s, %s::text)",
    (False, True): "select pgque.send(%s, %s::jsonb)",
    (True, False): "select pgque.send(%s, %s, %s::text)",
    (True, True): "select pgque.send(%s, %s, %s::jsonb)",
}
_SEND_IDEM_SQL = "select event_id from pgque.send_idem(%s, %s, %s::{kind}, %s, %s::interval)"
_SEND_AT_SQL = "select pgque.send_at(%s, %s, %s::{kind}, %s::timestamptz)"
_SEND_IN_SQL = "select pgque.send_at(%s, %s, %s::{kind}, clock_timestamp() + %s::interval)"

# Buffered keyed and delayed events: one statement per payload kind, calling
# the engine function once per array element, in order.
_SEND_IDEM_MANY = (
    "select count(*) from unnest(cast(:queues as text[]), cast(:types as text[]), cast(:payloads as text[]),"
    " cast(:keys as text[]), cast(:ttls as interval[])) as u(q, t, p, k, ttl)"
    " cross join lateral pgque.send_idem(u.q, u.t, cast(u.p as {kind}), u.k, u.ttl) as s"
)
_SEND_AT_MANY = (
    "select count(*) from unnest(cast(:queues as text[]), cast(:types as text[]), cast(:payloads as text[]),"
    " cast(:ats as timestamptz[]), cast(:delays as interval[])) as u(q, t, p, at, delay)"
    " cross join lateral pgque.send_at(u.q, u.t, cast(u.p as {kind}),"
    " coalesce(u.at, clock_timestamp() + u.delay)) as s"
)


class _Options:
    """How one event is sent: plainly, with a dedupe key, or for later delivery."""

    __slots__ = ("delay", "deliver_at", "key", "ttl")

    def __init__(
        self,
        dedupe_key: str | None,
        dedupe_ttl: Seconds | None,
        deliver_at: datetime | None,
        delay: Seconds | None,
    ) -> None:
        if dedupe_key is None and dedupe_ttl is not None:
            raise TypeError("sa_pgque: dedupe_ttl needs a dedupe_key")
        if deliver_at is not None and delay is not None:
            raise TypeError("sa_pgque: give deliver_at or delay, not both")
        if dedupe_key is not None and (deliver_at is not None or delay is not None):
            raise TypeError("sa_pgque: a dedupe_key cannot be combined with deliver_at or delay")
        if deliver_at is not None and (deliver_at.tzinfo is None or deliver_at.utcoffset() is None):
            raise ValueError("sa_pgque: deliver_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
        self.key = dedupe_key
        self.ttl: timedelta = interval(dedupe_ttl) or DEFAULT_DEDUPE_TTL
        self.deliver_at = deliver_at
        self.delay = interval(delay)

    @property
    def plain(self) -> bool:
        return self.key is None and self.deliver_at is None and self.delay is None


class _Pending:
    """One buffered event, already encoded."""

    __slots__ = ("is_json", "options", "queue", "text", "transaction", "type")

    def __init__(
        self,
        transaction: SessionTransaction | None,
        queue: str,
        type: str | None,
        is_json: bool,
        text: str | None,
        options: _Options,
    ) -> None:
        self.transaction = transaction
        self.queue = queue
        self.type = type
        self.is_json = is_json
        self.text = text
        self.options = options


class _Buffer:
    """Events waiting for their session's commit."""

    def __init__(self) -> None:
        self.pending: list[_Pending] = []
        self.committing = False

    def write(self, session: Session) -> None:
        """Send every pending event: one send_batch per group, then keyed and delayed ones, in order."""
        groups: dict[tuple[str, str | None, bool], list[str | None]] = {}
        keyed: dict[bool, list[_Pending]] = {}
        delayed: dict[bool, list[_Pending]] = {}
        for item in self.pending:
            if item.options.plain:
                groups.setdefault((item.queue, item.type, item.is_json), []).append(item.text)
            elif item.options.key is not None:
                keyed.setdefault(item.is_json, []).append(item)
            else:
                delayed.setdefault(item.is_json, []).append(item)
        self.pending.clear()
        for (queue, type_, is_json), texts in groups.items():
            api.run(session, _ops.send_encoded_batch(queue, texts, is_json=is_json, type=type_))
        for is_json, items in keyed.items():
            _execute(
                session,
                _SEND_IDEM_MANY,
                is_json,
                items,
                keys=[i.options.key for i in items],
                ttls=[i.options.ttl for i in items],
            )
        for is_json, items in delayed.items():
            _execute(
                session,
                _SEND_AT_MANY,
                is_json,
                items,
                ats=[i.options.deliver_at for i in items],
                delays=[i.options.delay for i in items],
            )

    def holds_key(self, queue: str, key: str) -> bool:
        """Whether a pending event of ``queue`` already carries dedupe ``key``."""
        return any(item.options.key == key and item.queue == queue for item in self.pending)

    def discard_inside(self, transaction: SessionTransaction) -> None:
        """Drop the events published inside ``transaction`` (or one nested in it)."""
        self.pending = [item for item in self.pending if not _inside(item.transaction, transaction)]


def _execute(session: Session, template: str, is_json: bool, items: list[_Pending], **columns: list[Any]) -> None:
    """Run one of the per-element statements for ``items`` (all of one payload kind)."""
    statement = text(template.format(kind="jsonb" if is_json else "text"))
    params = {
        "queues": [i.queue for i in items],
        "types": [i.type or "default" for i in items],
        "payloads": [i.text for i in items],
        **columns,
    }
    api.run(session, _ops.Op((statement.bindparams(**params),), lambda result: result.scalar_one()))


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


def _enqueue(session: Session, queue: str, payload: Payload, type: str | None, options: _Options) -> bool:
    """Buffer an event; False when a commit is under way and it must be sent now.

    A dedupe key already pending for the queue keeps its first event: the
    engine would dedupe the repeat anyway, and it can only have been published
    in the same transaction or one enclosing it, so both commit or roll back
    together.
    """
    buffer = _buffer(session)
    if buffer.committing:
        return False
    is_json, text = encode_payload(payload)  # refuse what cannot be sent now, not at commit time
    if options.key is not None and buffer.holds_key(queue, options.key):
        return True
    current = session.get_nested_transaction() or session.get_transaction()
    buffer.pending.append(_Pending(current, queue, type, is_json, text, options))
    return True


def pending_count(session: Session | AsyncSession) -> int:
    """How many buffered events the session holds (not yet written)."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    buffer: _Buffer | None = sync_session.info.get(_BUFFER_KEY)
    return len(buffer.pending) if buffer is not None else 0


def _statement(queue: str, payload: Payload, type: str | None, options: _Options) -> tuple[str, tuple[Any, ...]]:
    is_json, text = encode_payload(payload)
    if options.plain:
        params = (queue, text) if type is None else (queue, type, text)
        return _SEND_SQL[type is not None, is_json], params
    kind = "jsonb" if is_json else "text"
    type = type or "default"
    if options.key is not None:
        return _SEND_IDEM_SQL.format(kind=kind), (queue, type, text, options.key, options.ttl)
    if options.deliver_at is not None:
        return _SEND_AT_SQL.format(kind=kind), (queue, type, text, options.deliver_at)
    return _SEND_IN_SQL.format(kind=kind), (queue, type, text, options.delay)


def _event_id(value: Any) -> int:
    if value is None:  # send_idem's claim row vanished: cannot happen with this engine's send_idem
        raise EngineStateError("sa_pgque: send_idem reported no event id")
    return int(value)


def _op(queue: str, payload: Payload, type: str | None, options: _Options) -> _ops.Op[int]:
    """The facade operation sending one event with ``options`` (drivers other than psycopg)."""
    if options.key is not None:
        op = _ops.send_idem(queue, payload, key=options.key, ttl=options.ttl, type=type)
        return _ops.Op(op.statements, lambda result: _event_id(op.decode(result).event_id))
    if not options.plain:
        return _ops.send_at(queue, payload, deliver_at=options.deliver_at, delay=options.delay, type=type)
    return _ops.send(queue, payload, type=type)


def _connection(bind: api.Bind) -> Connection:
    """The SQLAlchemy connection of ``bind``, inside its (auto-begun) transaction."""
    if isinstance(bind, Connection):
        if not bind.in_transaction():
            bind.begin()
        return bind
    return bind.connection()


def _send_now(bind: api.Bind, queue: str, payload: Payload, type: str | None, options: _Options) -> int:
    connection = _connection(bind)
    if not _driver.is_psycopg(connection):
        return api.run(bind, _op(queue, payload, type, options))
    row = _driver.execute(connection, *_statement(queue, payload, type, options)).fetchone()
    assert row is not None
    return _event_id(row[0])


async def _send_now_async(
    bind: aio.AsyncBind, queue: str, payload: Payload, type: str | None, options: _Options
) -> int:
    connection = bind if isinstance(bind, AsyncConnection) else await bind.connection()
    if not connection.in_transaction():
        await connection.begin()
    if not _driver.is_psycopg(connection):
        return await aio.run(bind, _op(queue, payload, type, options))
    cursor = await _driver.execute_async(connection, *_statement(queue, payload, type, options))
    row = await cursor.fetchone()
    assert row is not None
    return _event_id(row[0])


@overload
def publish(
    session: api.Bind,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: Literal[False] = False,
    dedupe_key: str | None = None,
    dedupe_ttl: Seconds | None = None,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
) -> int: ...


@overload
def publish(
    session: Session,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: Literal[True],
    dedupe_key: str | None = None,
    dedupe_ttl: Seconds | None = None,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
) -> None: ...


def publish(
    session: api.Bind,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: bool = False,
    dedupe_key: str | None = None,
    dedupe_ttl: Seconds | None = None,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
) -> int | None:
    """Publish an event that commits or rolls back with the session's transaction.

    Returns the event id, or ``None`` when buffered (ids are assigned at commit).
    With ``dedupe_key`` the id is the first event's when the key was already
    used (nothing new is appended); with ``deliver_at`` / ``delay`` it is the id
    the event will have when it is delivered.
    """
    options = _Options(dedupe_key, dedupe_ttl, deliver_at, delay)
    if not buffer:
        return _send_now(session, queue, payload, type, options)
    if not isinstance(session, Session):
        raise TypeError("sa_pgque: buffered publishing needs an ORM Session (its commit writes the buffer)")
    if session.get_transaction() is None:
        session.connection()  # begin now, so the event belongs to this transaction
    if not _enqueue(session, queue, payload, type, options):
        _send_now(session, queue, payload, type, options)
    return None


@overload
async def publish_async(
    session: aio.AsyncBind,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: Literal[False] = False,
    dedupe_key: str | None = None,
    dedupe_ttl: Seconds | None = None,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
) -> int: ...


@overload
async def publish_async(
    session: AsyncSession,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: Literal[True],
    dedupe_key: str | None = None,
    dedupe_ttl: Seconds | None = None,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
) -> None: ...


async def publish_async(
    session: aio.AsyncBind,
    queue: str,
    payload: Payload,
    *,
    type: str | None = None,
    buffer: bool = False,
    dedupe_key: str | None = None,
    dedupe_ttl: Seconds | None = None,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
) -> int | None:
    """:func:`publish` for an ``AsyncSession`` / ``AsyncConnection``."""
    options = _Options(dedupe_key, dedupe_ttl, deliver_at, delay)
    if not buffer:
        return await _send_now_async(session, queue, payload, type, options)
    if not isinstance(session, AsyncSession):
        raise TypeError("sa_pgque: buffered publishing needs an ORM AsyncSession")
    if session.sync_session.get_transaction() is None:
        await session.connection()
    if not _enqueue(session.sync_session, queue, payload, type, options):
        await _send_now_async(session, queue, payload, type, options)
    return None
