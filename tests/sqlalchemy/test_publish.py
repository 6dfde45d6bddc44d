"""Publishing in the unit of work: an event exists iff the surrounding ORM transaction commits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, String, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import sa_pgque as pgque
from sa_pgque import errors


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(50))


class Line(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))


@pytest.fixture(autouse=True)
def schema(engine: Engine, sessions: sessionmaker[Session]) -> None:
    Base.metadata.create_all(engine)
    with sessions.begin() as session:
        for queue in ("events", "audit"):
            pgque.create_queue(session, queue)
            pgque.subscribe(session, queue, "reader")


def delivered(sessions: sessionmaker[Session], queue: str = "events") -> list[pgque.Message]:
    """Everything the reader can receive from ``queue`` now (ticking first)."""
    with sessions.begin() as session:
        pgque.tick(session, queue)
    received: list[pgque.Message] = []
    while True:
        with sessions.begin() as session:
            batch = pgque.receive(session, queue, "reader")
            if not batch:
                return received
            received += batch
            pgque.ack(session, batch[0].batch_id)


def order_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(text("select count(*) from orders")) or 0)


@pytest.fixture
def send_batch_calls(engine: Engine) -> list[str]:
    """Statements that reached the server calling pgque.send_batch."""
    calls: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pgque.send_batch" in statement:
            calls.append(statement)

    return calls


@pytest.mark.parametrize("buffer", [False, True])
def test_commit_delivers_the_event_with_the_rows(sessions: sessionmaker[Session], buffer: bool) -> None:
    with sessions.begin() as session:
        session.add(Order(id=1, item="book"))
        pgque.publish(session, "events", {"order": 1}, type="order.created", buffer=buffer)  # type: ignore[call-overload]
    assert order_count(sessions) == 1
    assert [(m.type, m.payload) for m in delivered(sessions)] == [("order.created", {"order": 1})]


@pytest.mark.parametrize("buffer", [False, True])
def test_rollback_delivers_nothing(sessions: sessionmaker[Session], buffer: bool) -> None:
    with sessions() as session:
        session.add(Order(id=1, item="book"))
        pgque.publish(session, "events", "lost", buffer=buffer)  # type: ignore[call-overload]
        session.flush()
        session.rollback()
        assert pgque.pending_count(session) == 0
    assert order_count(sessions) == 0
    assert delivered(sessions) == []


@pytest.mark.parametrize("buffer", [False, True])
def test_exception_inside_begin_delivers_nothing(sessions: sessionmaker[Session], buffer: bool) -> None:
    with pytest.raises(RuntimeError), sessions.begin() as session:
        session.add(Order(id=1, item="book"))
        pgque.publish(session, "events", "lost", buffer=buffer)  # type: ignore[call-overload]
        raise RuntimeError("handler failed")
    assert order_count(sessions) == 0
    assert delivered(sessions) == []


@pytest.mark.parametrize("buffer", [False, True])
def test_rolled_back_savepoint_loses_only_its_events(sessions: sessionmaker[Session], buffer: bool) -> None:
    with sessions.begin() as session:
        pgque.publish(session, "events", "outer-before", buffer=buffer)  # type: ignore[call-overload]
        with pytest.raises(RuntimeError), session.begin_nested():
            session.add(Order(id=1, item="inside"))
            pgque.publish(session, "events", "inside", buffer=buffer)  # type: ignore[call-overload]
            raise RuntimeError
        with session.begin_nested():  # released: its event stays
            pgque.publish(session, "events", "kept-savepoint", buffer=buffer)  # type: ignore[call-overload]
            with pytest.raises(RuntimeError), session.begin_nested():
                pgque.publish(session, "events", "inner-lost", buffer=buffer)  # type: ignore[call-overload]
                raise RuntimeError
        pgque.publish(session, "events", "outer-after", buffer=buffer)  # type: ignore[call-overload]
        session.add(Order(id=2, item="outer"))
    assert [m.payload for m in delivered(sessions)] == ["outer-before", "kept-savepoint", "outer-after"]
    assert order_count(sessions) == 1


def test_buffered_publishing_writes_one_send_batch_per_group(
    sessions: sessionmaker[Session], send_batch_calls: list[str]
) -> None:
    with sessions.begin() as session:
        for i in range(10_000):
            pgque.publish(session, "events", {"n": i}, type="tick", buffer=True)
        pgque.publish(session, "events", "text payload", type="tick", buffer=True)
        pgque.publish(session, "audit", {"n": -1}, buffer=True)
        assert pgque.pending_count(session) == 10_002
        assert send_batch_calls == []
    assert len(send_batch_calls) == 3  # (events, tick, json), (events, tick, text), (audit, default, json)
    messages = delivered(sessions)
    assert [m.payload for m in messages[:10_000]] == [{"n": i} for i in range(10_000)]
    assert messages[-1].payload == "text payload"
    ids = [m.msg_id for m in messages]
    assert ids == sorted(ids)
    assert [m.payload for m in delivered(sessions, "audit")] == [{"n": -1}]


def test_failed_flush_at_commit_keeps_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(Order(id=1, item="existing"))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        pgque.publish(session, "events", "with a bad write", buffer=True)
        session.add(Order(id=1, item="duplicate key"))  # fails in the commit's flush
    assert delivered(sessions) == []


def test_failed_buffer_write_fails_the_commit(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(errors.QueueNotFound), sessions.begin() as session:
        session.add(Order(id=1, item="book"))
        pgque.publish(session, "no-such-queue", "x", buffer=True)
    assert order_count(sessions) == 0


def test_event_published_during_the_commit_flush_is_not_lost(sessions: sessionmaker[Session]) -> None:
    def audit_on_flush(session: Session, context: Any) -> None:
        for obj in session.new:
            if isinstance(obj, Order):
                pgque.publish(session, "audit", {"new_order": obj.id}, buffer=True)

    with sessions() as session:
        event.listen(session, "before_flush", lambda s, c, i: audit_on_flush(s, c))
        pgque.publish(session, "events", "first", buffer=True)
        session.add(Order(id=7, item="flushed at commit"))
        session.commit()
    assert [m.payload for m in delivered(sessions, "audit")] == [{"new_order": 7}]
    assert [m.payload for m in delivered(sessions)] == ["first"]


def test_one_session_many_transactions(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        pgque.publish(session, "events", "one", buffer=True)
        session.commit()
        pgque.publish(session, "events", "dropped", buffer=True)
        session.rollback()
        pgque.publish(session, "events", "three", buffer=True)
        session.commit()
    assert [m.payload for m in delivered(sessions)] == ["one", "three"]


def test_immediate_publish_returns_the_id(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ev_id = pgque.publish(session, "events", "x")
        assert pgque.publish(session, "events", "y", buffer=True) is None
    assert delivered(sessions)[0].msg_id == ev_id


def test_buffered_publishing_needs_a_session(engine: Engine) -> None:
    with engine.connect() as connection, pytest.raises(TypeError, match="needs an ORM Session"):
        pgque.publish(connection, "events", "x", buffer=True)  # type: ignore[call-overload]


def test_unserializable_payload_fails_at_publish_time(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(TypeError):
        pgque.publish(session, "events", {"when": object()}, buffer=True)


def test_async_session(
    async_sessions: async_sessionmaker[AsyncSession], async_engine: AsyncEngine, sessions: sessionmaker[Session]
) -> None:
    async def scenario() -> None:
        async with async_sessions.begin() as session:
            session.add(Order(id=1, item="async"))
            await pgque.publish_async(session, "events", {"immediate": True})
            await pgque.publish_async(session, "events", {"buffered": True}, buffer=True)
            assert pgque.pending_count(session) == 1
        async with async_sessions() as session:
            await pgque.publish_async(session, "events", "rolled back", buffer=True)
            await pgque.publish_async(session, "events", "rolled back too")
            await session.rollback()
        async with async_sessions.begin() as session:
            await pgque.publish_async(session, "events", "outer", buffer=True)
            nested = await session.begin_nested()
            await pgque.publish_async(session, "events", "savepoint", buffer=True)
            await nested.rollback()
        await async_engine.dispose()

    asyncio.run(scenario())
    assert [m.payload for m in delivered(sessions)] == [{"immediate": True}, {"buffered": True}, "outer"]
    assert order_count(sessions) == 1


def test_immediate_publish_errors_are_typed(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        with pytest.raises(errors.QueueNotFound) as caught:
            pgque.publish(session, "no-such-queue", {"x": 1})
        assert caught.value.sqlstate == "PQ001"
        session.rollback()
        assert pgque.publish(session, "events", "after the error") > 0
        session.commit()
    assert [m.payload for m in delivered(sessions)] == ["after the error"]


def test_immediate_publish_on_a_fresh_connection_commits_with_it(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with engine.connect() as connection:
        pgque.publish(connection, "events", "via connection", type="core")
        connection.commit()
    with engine.connect() as connection:
        pgque.publish(connection, "events", "never committed")
    assert [(m.type, m.payload) for m in delivered(sessions)] == [("core", "via connection")]
