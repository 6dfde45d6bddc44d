"""The AsyncConsumer: the main behaviours of the sync consumer, on asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

import sa_pgque as pgque
from sa_pgque import AsyncConsumer, Message, RetryPolicy
from tests._pg import Database
from tests.consumer.conftest import Processed, processed, send


def run(db: Database, scenario: Callable[[AsyncEngine], Awaitable[None]]) -> None:
    async def main() -> None:
        engine = create_async_engine(db.url, poolclass=NullPool)
        try:
            await scenario(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())


def recording(engine: AsyncEngine, queue: str, name: str = "worker", **options: object) -> AsyncConsumer:
    consumer = AsyncConsumer(engine, queue=queue, name=name, **options)  # type: ignore[arg-type]

    @consumer.default_handler
    async def record(message: Message, session: AsyncSession) -> None:
        session.add(Processed(consumer=name, msg_id=message.msg_id, payload=message.payload_text))
        if message.payload_text == "poison":
            raise ValueError("poison")

    return consumer


def test_batches_commit_with_handler_writes_and_failures_are_isolated(
    db: Database, sessions: sessionmaker[Session], queue: str
) -> None:
    ids: list[int] = []

    async def scenario(engine: AsyncEngine) -> None:
        consumer = recording(engine, queue, retry=RetryPolicy(base=timedelta(0)), page_size=2)
        assert (await consumer.run_once()).empty
        ids.extend(send(sessions, queue, "a", "poison", "b", "c", "d"))
        outcome = await consumer.run_once()  # five messages in pages of two
        assert outcome.committed
        assert outcome.handled == [ids[0], *ids[2:]] and outcome.retried == [ids[1]]

    run(db, scenario)
    assert [m for _, m in processed(sessions)] == [ids[0], *ids[2:]]
    with sessions() as session:
        assert session.scalar(text("select ev_id from pgque.retry_queue")) == ids[1]


def test_cooperative_members_split_and_fan_out_stays(db: Database, sessions: sessionmaker[Session], queue: str) -> None:
    sent: list[int] = []

    async def scenario(engine: AsyncEngine) -> None:
        members = [recording(engine, queue, "pool", subconsumer=f"w{i}") for i in range(2)]
        audit = recording(engine, queue, "audit")
        for consumer in (*members, audit):
            await consumer.run_once()
        for round_no in range(20):
            sent.extend(send(sessions, queue, *[f"{round_no}.{i}" for i in range(3)]))
        await asyncio.gather(*(m.run() for m in members), audit.run())

    run(db, scenario)
    pool = [m for c, m in processed(sessions) if c == "pool"]
    assert sorted(pool) == sorted(sent) and len(pool) == len(set(pool))
    assert sorted(m for c, m in processed(sessions) if c == "audit") == sorted(sent)


def test_run_forever_wakes_on_notify_and_stops(db: Database, sessions: sessionmaker[Session], queue: str) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        consumer = recording(engine, queue, poll_interval=60)
        await consumer.run_once()
        task = asyncio.create_task(consumer.run_forever())
        await asyncio.sleep(0.5)  # let it go to sleep on LISTEN
        await asyncio.to_thread(send, sessions, queue, "wake up")  # the tick NOTIFYs the channel
        for _ in range(200):
            if await asyncio.to_thread(processed, sessions):
                break
            await asyncio.sleep(0.05)
        consumer.stop()
        consumer.stop()
        await asyncio.wait_for(task, 10)

    run(db, scenario)
    assert len(processed(sessions)) == 1


def test_empty_windows_are_passed_over_without_a_wait(
    db: Database, sessions: sessionmaker[Session], queue: str
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        consumer = recording(engine, queue)
        assert (await consumer.run_once()).empty  # subscribes
        for _ in range(4):
            with sessions.begin() as session:
                pgque.tick(session, queue)
        ids = send(sessions, queue, "after the idle ticks")
        assert (await consumer.run_once()).handled == ids
        assert (await consumer.run_once()).empty

    run(db, scenario)
