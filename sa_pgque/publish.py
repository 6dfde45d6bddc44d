"""Publishing inside the unit of work: the event exists iff the transaction commits.

``publish(session, queue, payload)`` sends the event right away, in the
session's transaction. ``publish(..., buffer=True)`` keeps it in the session
and writes all buffered events just before the outermost commit, with one
``send_batch`` per (queue, type, payload kind), so a thousand publishes cost
one round trip.

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

from dataclasses import dataclass, field
from typing import Literal, overload

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from sa_pgque import aio, api
from sa_pgque.types import Payload, check_payload, is_json_value

_BUFFER_KEY = "sa_pgque.buffer"


@dataclass
class _Pending:
    transaction: SessionTransaction | None
    queue: str
    type: str | None
    payload: Payload

    @property
    def group(self) -> tuple[str, str | None, bool]:
        return (self.queue, self.type, is_json_value(self.payload))


@dataclass
class _Buffer:
    """Events waiting for their session's commit."""

    pending: list[_Pending] = field(default_factory=list)
    committing: bool = False

    def add(self, session: Session, queue: str, payload: Payload, type: str | None) -> None:
        check_payload(payload)  # refuse what cannot be sent now, not at commit time
        current = session.get_nested_transaction() or session.get_transaction()
        self.pending.append(_Pending(current, queue, type, payload))

    def write(self, session: Session) -> None:
        """Send every pending event, one send_batch per group, in first-publish order."""
        groups: dict[tuple[str, str | None, bool], list[Payload]] = {}
        for item in self.pending:
            groups.setdefault(item.group, []).append(item.payload)
        self.pending.clear()
        for (queue, type_, _), payloads in groups.items():
            api.send_batch(session, queue, payloads, type=type_)

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
    buffer = session.info.get(_BUFFER_KEY)
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


def pending_count(session: Session | AsyncSession) -> int:
    """How many buffered events the session holds (not yet written)."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    buffer = sync_session.info.get(_BUFFER_KEY)
    return len(buffer.pending) if buffer is not None else 0


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
        return api.send(session, queue, payload, type=type)
    if not isinstance(session, Session):
        raise TypeError("sa_pgque: buffered publishing needs an ORM Session (its commit writes the buffer)")
    pending = _buffer(session)
    if pending.committing:
        api.send(session, queue, payload, type=type)
        return None
    if session.get_transaction() is None:
        session.connection()  # begin now, so the event belongs to this transaction
    pending.add(session, queue, payload, type)
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
        return await aio.send(session, queue, payload, type=type)
    if not isinstance(session, AsyncSession):
        raise TypeError("sa_pgque: buffered publishing needs an ORM AsyncSession")
    if session.sync_session.get_transaction() is None:
        await session.connection()
    pending = _buffer(session.sync_session)
    if pending.committing:
        await aio.send(session, queue, payload, type=type)
        return None
    pending.add(session.sync_session, queue, payload, type)
    return None
