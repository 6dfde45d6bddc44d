"""A producer process for the crash-safety test: ``python -m tests.reliability._producer URL [options]``.

It publishes ``--count`` events to ``--queue``, a few per transaction, and in
the same transaction records each one in ``produced`` (producer, seq, msg_id,
payload). Whatever happens to it (kill -9, a terminated connection, a server
restart, a COMMIT whose outcome it never hears), ``produced`` therefore holds
exactly the events that were committed. After a lost connection, and when
restarted, it resumes after the highest ``seq`` committed for its ``--producer``
id, so a producer id ends up with seqs 1..count, each published once.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from sqlalchemy import BigInteger, Integer, String, create_engine, func, pool, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import sa_pgque as pgque
from sa_pgque.consumer import is_connection_error


class Base(DeclarativeBase):
    pass


class Produced(Base):
    """One row per committed event, written in the event's own transaction."""

    __tablename__ = "produced"
    producer: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    msg_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    payload: Mapped[str] = mapped_column(String(200))


def payload_for(producer: int, seq: int, rng: random.Random, fail_rate: float, poison_rate: float) -> dict[str, object]:
    """The event body: who sent it, and whether consumers should fail on it (see ``tests.consumer._worker``)."""
    payload: dict[str, object] = {"p": producer, "s": seq}
    draw = rng.random()
    if draw < poison_rate:
        payload["poison"] = True
    elif draw < poison_rate + fail_rate:
        payload["fail"] = rng.randint(1, 2)
    return payload


def publish_some(
    sessions: sessionmaker[Session],
    queue: str,
    producer: int,
    first_seq: int,
    count: int,
    rng: random.Random,
    fail_rate: float = 0.0,
    poison_rate: float = 0.0,
) -> None:
    """Publish ``count`` events (seqs ``first_seq``...) and their ``produced`` rows in one transaction."""
    with sessions.begin() as session:
        for seq in range(first_seq, first_seq + count):
            payload = payload_for(producer, seq, rng, fail_rate, poison_rate)
            msg_id = pgque.publish(session, queue, payload, type="rel")
            session.add(Produced(producer=producer, seq=seq, msg_id=msg_id, payload=json.dumps(payload)))


def committed(sessions: sessionmaker[Session], producer: int) -> int:
    """Highest seq committed by ``producer`` (0 when none)."""
    with sessions() as session:
        last = session.scalar(select(func.coalesce(func.max(Produced.seq), 0)).where(Produced.producer == producer))
        return int(last or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--queue", default="rel")
    parser.add_argument("--producer", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.005, help="seconds between transactions")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of events consumers fail on 1-2 times")
    args = parser.parse_args()

    sessions = sessionmaker(create_engine(args.url, poolclass=pool.NullPool))
    rng = random.Random()
    delay = 0.05
    done: int | None = None
    while done is None or done < args.count:
        try:
            if done is None:  # first round, or after a lost connection: ask the database
                done = committed(sessions, args.producer)
                continue
            size = min(rng.randint(1, args.max_batch), args.count - done)
            publish_some(sessions, args.queue, args.producer, done + 1, size, rng, args.fail_rate)
            done += size
            delay = 0.05
            time.sleep(args.pause)
        except Exception as error:
            if not is_connection_error(error):
                raise
            done = None  # the COMMIT may or may not have happened
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


if __name__ == "__main__":
    main()
