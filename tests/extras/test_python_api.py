"""The Python side of the extras: facade calls (sync and async), publish options, constructs, the Ticker."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

import sa_pgque as pgque
from sa_pgque import aio, errors
from sa_pgque.results import ConsumerStats, HealthCheck, MetricPoint, QueueStats, SendIdemResult, StuckConsumer
from tests._pg import Database


@pytest.fixture
def engine(db: Database) -> Engine:
    return db.engine()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    with engine.begin() as connection:
        pgque.create_queue(connection, "q")
        pgque.subscribe(connection, "q", "c")
    return sessionmaker(engine)


def delivered(sessions: sessionmaker[Session]) -> list[pgque.Message]:
    with sessions.begin() as session:
        pgque.tick(session, "q")
    with sessions.begin() as session:
        messages = pgque.receive(session, "q", "c")
        if messages:
            pgque.ack(session, messages[0].batch_id)
    return messages


def move_due(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(func.pgque.maint_retry_events().select())  # typed construct, any bind


def test_send_idem_facade(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = pgque.send_idem(session, "q", {"n": 1}, key="k", ttl=60, partition_key="p")
        assert isinstance(first, SendIdemResult) and first.deduped is False and first.event_id is not None
        assert pgque.send_idem(session, "q", {"n": 2}, key="k") == SendIdemResult(first.event_id, True)
    [message] = delivered(sessions)
    assert (message.msg_id, message.type, message.payload, message.extra1, message.extra2) == (
        first.event_id,
        "default",
        {"n": 1},
        "p",
        "k",
    )
    with sessions.begin() as session, pytest.raises(errors.InvalidArgument, match="ttl must be a positive"):
        pgque.send_idem(session, "q", "x", key="k2", ttl=0)
    with sessions.begin() as session, pytest.raises(errors.QueueNotFound):
        pgque.send_idem(session, "nope", "x", key="k")
    with sessions.begin() as session:
        assert pgque.maint_idem(session) == 0
        assert pgque.maint_idem(session, "q") == 0


def test_send_at_facade(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        at = pgque.send_at(session, "q", "at", deliver_at=datetime.now(timezone.utc) + timedelta(seconds=0.3))
        later = pgque.send_at(session, "q", {"x": 1}, delay=timedelta(hours=1), type="later")
        now = pgque.send_at(session, "q", "now", delay=-1)
    assert [m.msg_id for m in delivered(sessions)] == [now]
    time.sleep(0.35)
    with sessions.begin() as session:
        assert pgque.maint_deliver_delayed(session) == 1
        assert pgque.maint_deliver_delayed(session, 5) == 0
    assert [m.msg_id for m in delivered(sessions)] == [at]
    with sessions.begin() as session:
        [stats] = pgque.queue_stats(session, "q")
        assert stats.delayed_pending == 1 and later
    with pytest.raises(TypeError, match="exactly one of deliver_at and delay"):
        pgque.send_at(sessions(), "q", "x")
    with pytest.raises(TypeError, match="exactly one of deliver_at and delay"):
        pgque.send_at(sessions(), "q", "x", delay=1, deliver_at=datetime.now(timezone.utc))
    with pytest.raises(ValueError, match="timezone-aware"):
        pgque.send_at(sessions(), "q", "x", deliver_at=datetime.now())


def test_pause_resume_facade(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert pgque.pause_queue(session, "q") == 1
        assert pgque.pause_queue(session, "q") == 0
        assert pgque.queue_stats(session, "q")[0].ticker_paused is True
        assert pgque.resume_queue(session, "q") == 1
    with sessions.begin() as session, pytest.raises(errors.QueueNotFound):
        pgque.pause_queue(session, "nope")


def test_stats_facade(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        pgque.send(session, "q", "x")
    with sessions.begin() as session:
        [queue] = pgque.queue_stats(session)
        assert isinstance(queue, QueueStats) and (queue.depth, queue.unticked_events, queue.consumers) == (1, 1, 1)
        [consumer] = pgque.consumer_stats(session, "q")
        assert isinstance(consumer, ConsumerStats) and consumer.pending_events == 1
        assert pgque.stuck_consumers(session) == []
        assert pgque.stuck_consumers(session, "q", threshold=timedelta(seconds=1)) == []
        checks = pgque.queue_health(session, "q")
        assert all(isinstance(c, HealthCheck) for c in checks)
        assert [c.check_name for c in checks] == ["ticker", "consumers", "dead_letters", "rotation", "delayed_delivery"]
        assert all(c.ok for c in checks)
        points = pgque.metric_points(session)
        assert all(isinstance(p, MetricPoint) for p in points)
        depth = next(p for p in points if p.metric_name == "pgque.queue.depth")
        assert (depth.metric_value, depth.attributes) == (1.0, {"queue": "q"})
    with sessions.begin() as session:
        pgque.tick(session, "q")
    with sessions.begin() as session:
        session.execute(select(func.pgque.receive("q", "c").table_valued()))  # opens a batch
        session.execute(text("update pgque.subscription set sub_active = now() - interval '1 minute'"))
    with sessions.begin() as session:
        [stuck] = pgque.stuck_consumers(session, threshold=30)
        assert isinstance(stuck, StuckConsumer) and (stuck.consumer_name, stuck.reason) == ("c", "open_batch")


def test_create_queue_construct_takes_options(engine: Engine) -> None:
    statement = select(func.pgque.create_queue("opts", {"max_retries": 2, "ticker_paused": True}))
    assert "CAST(%(param_1)s::VARCHAR AS JSONB)" in str(statement.compile(dialect=postgresql.psycopg.dialect()))  # type: ignore[no-untyped-call]
    with engine.begin() as connection:
        assert connection.scalar(statement) == 1
        [stats] = pgque.queue_stats(connection, "opts")
        assert stats.ticker_paused is True


def test_publish_with_dedupe_key(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = pgque.publish(session, "q", {"n": 1}, dedupe_key="k")
        assert pgque.publish(session, "q", {"n": 2}, dedupe_key="k") == first
        other = pgque.publish(session, "q", "text", dedupe_key="k2", dedupe_ttl=timedelta(minutes=1), type="t")
    assert [(m.msg_id, m.payload) for m in delivered(sessions)] == [(first, {"n": 1}), (other, "text")]
    with sessions.begin() as session:
        assert pgque.publish(session, "q", "again", dedupe_key="k") == first
    assert delivered(sessions) == []


def test_buffered_publish_with_dedupe_keys(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        earlier = pgque.publish(session, "q", "earlier", dedupe_key="seen")
    with sessions.begin() as session:
        pgque.publish(session, "q", {"n": 1}, dedupe_key="a", buffer=True)
        pgque.publish(session, "q", {"n": 2}, dedupe_key="a", buffer=True)  # repeat inside the buffer
        pgque.publish(session, "q", "text a", dedupe_key="b", buffer=True)
        pgque.publish(session, "q", "dup of earlier", dedupe_key="seen", buffer=True)
        pgque.publish(session, "q", "plain", buffer=True)
        assert pgque.pending_count(session) == 4
    payloads = [m.payload for m in delivered(sessions)]
    assert sorted(map(str, payloads)) == sorted(map(str, ["earlier", "plain", {"n": 1}, "text a"]))
    with sessions.begin() as session:
        pgque.publish(session, "q", "a again", dedupe_key="a", buffer=True)
    assert delivered(sessions) == []
    assert earlier


def test_buffered_keys_follow_savepoints(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        nested = session.begin_nested()
        pgque.publish(session, "q", "rolled back", dedupe_key="k", buffer=True)
        nested.rollback()
        pgque.publish(session, "q", "kept", dedupe_key="k", buffer=True)
    assert [m.payload for m in delivered(sessions)] == ["kept"]


def test_buffered_publish_rollback_frees_the_key(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), sessions.begin() as session:
        pgque.publish(session, "q", "lost", dedupe_key="k", buffer=True)
        raise RuntimeError
    with sessions.begin() as session:
        pgque.publish(session, "q", "second", dedupe_key="k")
    assert [m.payload for m in delivered(sessions)] == ["second"]


def test_publish_delayed(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        in_a_moment = pgque.publish(session, "q", "soon", delay=0.3)
        pgque.publish(session, "q", {"at": 1}, deliver_at=datetime.now(timezone.utc) + timedelta(hours=1))
        pgque.publish(session, "q", "buffered soon", delay=timedelta(seconds=0.3), buffer=True, type="b")
        pgque.publish(
            session, "q", "buffered later", deliver_at=datetime.now(timezone.utc) + timedelta(hours=1), buffer=True
        )
        pgque.publish(session, "q", "now", buffer=True)
    assert [m.payload for m in delivered(sessions)] == ["now"]
    time.sleep(0.35)
    move_due(sessions)
    got = delivered(sessions)
    assert sorted((m.payload, m.type) for m in got) == [("buffered soon", "b"), ("soon", "default")]
    assert in_a_moment in [m.msg_id for m in got]
    with sessions.begin() as session:
        assert pgque.queue_stats(session, "q")[0].delayed_pending == 2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dedupe_ttl": 5}, TypeError),
        ({"delay": 1, "deliver_at": datetime.now(timezone.utc)}, TypeError),
        ({"dedupe_key": "k", "delay": 1}, TypeError),
        ({"deliver_at": datetime.now()}, ValueError),
    ],
)
def test_publish_option_errors(sessions: sessionmaker[Session], kwargs: dict[str, object], error: type) -> None:
    with sessions() as session, pytest.raises(error):
        pgque.publish(session, "q", "x", **kwargs)  # type: ignore[call-overload]


def test_async_facade_and_publish(db: Database, sessions: sessionmaker[Session]) -> None:
    async def main(engine: AsyncEngine) -> None:
        async_sessions = async_sessionmaker(engine)
        async with async_sessions.begin() as session:
            result = await aio.send_idem(session, "q", "a", key="ak")
            assert result.deduped is False
            assert await pgque.publish_async(session, "q", "b", dedupe_key="ak") == result.event_id
            await pgque.publish_async(session, "q", "c", dedupe_key="bk", buffer=True)
            await pgque.publish_async(session, "q", "d", delay=3600)
            await pgque.publish_async(session, "q", "e", delay=3600, buffer=True)
            await aio.send_at(session, "q", "f", delay=3600)
            assert await aio.pause_queue(session, "q") == 1
            assert await aio.resume_queue(session, "q") == 1
        async with AsyncSession(engine) as session:
            [stats] = await aio.queue_stats(session, "q")
            assert (stats.depth, stats.delayed_pending) == (2, 3)
            assert len(await aio.consumer_stats(session)) == 1
            assert await aio.stuck_consumers(session) == []
            assert len(await aio.queue_health(session)) == 5
            assert await aio.metric_points(session)
            assert await aio.maint_deliver_delayed(session) == 0
            assert await aio.maint_idem(session, "q") == 0

    engine = create_async_engine(db.url, poolclass=NullPool)
    try:
        asyncio.run(main(engine))
    finally:
        asyncio.run(engine.dispose())
    assert sorted(m.payload for m in delivered(sessions)) == ["a", "c"]


def test_ticker_delivers_delayed_events_without_user_action(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        pgque.set_queue_config(session, "q", "ticker_max_lag", timedelta(milliseconds=50))
        event_id = pgque.publish(session, "q", "delayed", delay=0.3)
    ticker = pgque.Ticker(engine, retry_period=timedelta(milliseconds=100), tick_period=timedelta(milliseconds=50))
    received: list[pgque.Message] = []
    with ticker:
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            with sessions.begin() as session:
                received = pgque.receive(session, "q", "c")
                if received:
                    pgque.ack(session, received[0].batch_id)
            time.sleep(0.05)
    assert [(m.msg_id, m.payload) for m in received] == [(event_id, "delayed")]
