"""The asyncio API against a real database: AsyncSession and AsyncConnection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sa_pgque import aio, errors
from sa_pgque.results import DlqReplayResult, Message, QueueInfo


def run(scenario: Callable[[], Awaitable[None]], engine: AsyncEngine) -> None:
    async def main() -> None:
        try:
            await scenario()
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_async_session_round_trip(async_sessions: async_sessionmaker[AsyncSession], async_engine: AsyncEngine) -> None:
    async def scenario() -> None:
        async with async_sessions.begin() as s:
            assert await aio.create_queue(s, "q", max_retries=0) == 1
            assert await aio.subscribe(s, "q", "c") == 1
            ids = await aio.send_batch(s, "q", [{"i": 1}, {"i": 2}], type="t")
            single = await aio.send(s, "q", "text")
        async with async_sessions.begin() as s:
            assert await aio.tick(s, "q") is not None
        async with async_sessions.begin() as s:
            messages = await aio.receive(s, "q", "c")
            assert [m.msg_id for m in messages] == [*ids, single]
            assert all(isinstance(m, Message) for m in messages)
            assert await aio.nack(s, messages[0], retry_after=timedelta(seconds=5), reason="bad") == 1
            assert await aio.ack(s, messages[0].batch_id) == 1
        async with async_sessions.begin() as s:
            [dead] = await aio.dlq_inspect(s, "q")
            assert (dead.ev_data, dead.dl_reason) == ('{"i": 1}', "bad")
            assert await aio.dlq_replay_all(s, "q") == DlqReplayResult(1, 0, None)
            [info] = await aio.queue_info(s, "q")
            assert isinstance(info, QueueInfo)
            assert [c.consumer_name for c in await aio.consumer_info(s, "q")] == ["c"]
            assert (await aio.status(s))[1].detail == await aio.version(s)
            assert await aio.unsubscribe(s, "q", "c") == 1

    run(scenario, async_engine)


def test_async_connection_and_errors(async_engine: AsyncEngine) -> None:
    async def scenario() -> None:
        async with async_engine.begin() as conn:
            await aio.create_queue(conn, "q")
        async with async_engine.connect() as conn:
            with pytest.raises(errors.QueueNotFound) as caught:
                await aio.send(conn, "missing", "x")
            assert caught.value.sqlstate == "PQ001"
            await conn.rollback()
            with pytest.raises(errors.ConsumerNotFound):
                await aio.receive(conn, "q", "nobody")
            await conn.rollback()
            assert await aio.ticker(conn) == 1  # the new queue's second tick
            assert (await conn.execute(text("select count(*) from pgque.tick"))).scalar_one() == 2

    run(scenario, async_engine)
