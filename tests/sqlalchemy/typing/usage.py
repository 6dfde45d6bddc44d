"""A typed usage sample, checked by ``test_typing.py`` with ``mypy --strict``."""

from __future__ import annotations

from sqlalchemy import create_engine, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from typing_extensions import reveal_type

import sa_pgque as pgque
from sa_pgque import aio
from sa_pgque.functions import send

engine = create_engine("postgresql+psycopg://")


def sync_usage(session: Session) -> None:
    reveal_type(pgque.send(session, "orders", {"id": 1}, type="order.created"))
    reveal_type(pgque.send_batch(session, "orders", ["a", "b"]))
    messages = pgque.receive(session, "orders", "billing")
    reveal_type(messages)
    reveal_type(messages[0].payload_text)
    reveal_type(messages[0].retry_count)
    reveal_type(pgque.ack(session, messages[0].batch_id))
    reveal_type(pgque.queue_info(session))
    reveal_type(pgque.batch_info(session, 1))
    reveal_type(pgque.dlq_replay_all(session, "orders"))
    reveal_type(pgque.tick(session, "orders"))
    reveal_type(pgque.publish(session, "orders", "x"))
    reveal_type(pgque.publish(session, "orders", "x", buffer=True))
    reveal_type(select(send("orders", "x")))


async def async_usage(session: AsyncSession) -> None:
    reveal_type(await aio.receive_coop(session, "orders", "billing", "worker-1", dead_interval=30))
    reveal_type(await pgque.publish_async(session, "orders", {"id": 1}))


reveal_type(func.pgque.send("orders", "x"))
