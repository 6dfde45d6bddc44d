"""Concurrency soak: 8 producer threads, 4 consumers (one cooperative with 4 members), ticker, rotation, retries.

Everything runs in this process against one database: eight producer threads
publish (each event recorded in ``produced`` in its own transaction, as in the
crash test); three normal consumers and a cooperative consumer of four members
consume with ``sa_pgque.Consumer`` in threads; a ``Ticker`` ticks every 20 ms
and runs retries, ``maint()`` and rotation step 2 every 100-200 ms, with the
queue's ``rotation_period`` at one second, so the event tables rotate (and are
truncated) many times under load. Some events make every handler fail once or
twice (retried), a few always (dead-lettered once ``max_retries`` = 2 is spent).

At the end each consumer processed every non-poison event exactly once, with
the payload committed, every poison event sits in the dead-letter queue once
per consumer (the cooperative group's under its main consumer), nothing waits
for a retry, the tables did rotate (fewer event rows remain than were sent),
and the engine's invariants hold.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import func, pool, select, text
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from tests._pg import Database
from tests.consumer.conftest import Base as ConsumerBase
from tests.consumer.conftest import Processed
from tests.reliability._invariants import violations
from tests.reliability._producer import Base as ProducerBase
from tests.reliability._producer import Produced, publish_some
from tests.reliability._scale import scale

pytestmark = pytest.mark.reliability

QUEUE = "soak"
NORMAL = ("s1", "s2", "s3")
COOP = "sc"
MEMBERS = ("w1", "w2", "w3", "w4")
PRODUCER_THREADS = 8
EVENTS = scale(4000, 24000)
FAIL_RATE = 0.05
POISON_RATE = 0.005
MAX_RETRIES = 2
PRODUCE_SECONDS = scale(15, 240)
"""The producers pace themselves over this long, so that consumers keep up and the tables rotate meanwhile."""
DRAIN_TIMEOUT = scale(240.0, 1200.0)


class InjectedFailure(Exception):
    pass


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def test_producers_consumers_ticker_and_rotation_under_load(db: Database, report: Callable[[str], None]) -> None:
    started = time.monotonic()
    engine = db.engine(poolclass=pool.QueuePool, pool_size=24, max_overflow=8)
    ConsumerBase.metadata.create_all(engine)
    ProducerBase.metadata.create_all(engine)
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        pgque.create_queue(session, QUEUE)
        for param, value in (
            ("max_retries", str(MAX_RETRIES)),
            ("rotation_period", "1 second"),
            ("ticker_max_lag", "50 milliseconds"),
            ("ticker_idle_period", "1 second"),
        ):
            pgque.set_queue_config(session, QUEUE, param, value)
        for name in NORMAL:
            pgque.subscribe(session, QUEUE, name)
        for member in MEMBERS:
            pgque.subscribe_subconsumer(session, QUEUE, COOP, member)

    failures = Counter[str]()
    lock = threading.Lock()

    def consumer(name: str, member: str | None = None) -> pgque.Consumer:
        worker = pgque.Consumer(
            sessions,
            queue=QUEUE,
            name=name,
            subconsumer=member,
            dead_interval=30 if member else None,
            retry=pgque.RetryPolicy(base=timedelta(0)),
            poll_interval=0.2,
            page_size=200,
        )

        @worker.default_handler
        def handle(message: pgque.Message, session: Session) -> None:
            session.add(Processed(consumer=name, msg_id=message.msg_id, payload=message.payload_text))
            payload = message.payload
            if payload.get("poison") or payload.get("fail", 0) > (message.retry_count or 0):
                with lock:
                    failures[name] += 1
                raise InjectedFailure(f"injected failure of message {message.msg_id}")

        return worker

    consumers = [consumer(name) for name in NORMAL] + [consumer(COOP, member) for member in MEMBERS]
    ticker = pgque.Ticker(
        engine,
        tick_period=timedelta(milliseconds=20),
        retry_period=timedelta(milliseconds=100),
        maint_period=timedelta(milliseconds=200),
        step2_period=timedelta(milliseconds=100),
    )
    rotations: set[object] = set()
    stop_monitor = threading.Event()

    def monitor() -> None:
        """Record every rotation seen (queue_switch_time changes at each step 1)."""
        with psycopg.connect(db.conninfo, autocommit=True) as conn:
            while not stop_monitor.wait(0.05):
                row = conn.execute(
                    "select queue_switch_time from pgque.queue where queue_name = %s", (QUEUE,)
                ).fetchone()
                assert row is not None
                rotations.add(row[0])

    per_thread = EVENTS // PRODUCER_THREADS
    pause = PRODUCE_SECONDS / (per_thread / 5.5)  # 5.5 events per transaction on average
    errors: list[BaseException] = []

    def produce(number: int) -> None:
        rng = random.Random(number)
        done = 0
        try:
            while done < per_thread:
                size = min(rng.randint(1, 10), per_thread - done)
                publish_some(sessions, QUEUE, number, done + 1, size, rng, FAIL_RATE, POISON_RATE)
                done += size
                time.sleep(rng.uniform(0, 2 * pause))
        except BaseException as error:
            errors.append(error)
            raise

    threads = [threading.Thread(target=c.run_forever, name=f"consumer-{c.name}-{c.subconsumer}") for c in consumers]
    threads.append(threading.Thread(target=monitor, name="monitor"))
    producers = [threading.Thread(target=produce, args=(n,), name=f"producer-{n}") for n in range(1, 9)]
    ticker.start()
    try:
        for thread in threads + producers:
            thread.start()
        for thread in producers:
            thread.join()
        assert errors == []
        produced_at = time.monotonic()

        with sessions() as session:
            produced = {m: json.loads(p) for m, p in session.execute(select(Produced.msg_id, Produced.payload))}
        poison = {m for m, p in produced.items() if p.get("poison")}
        good = set(produced) - poison
        names = (*NORMAL, COOP)

        def settled() -> bool:
            with sessions() as session:
                done = {c: n for c, n in session.execute(select(Processed.consumer, func.count()).group_by("consumer"))}
                dead = {
                    c: n
                    for c, n in session.execute(
                        text(
                            "select c.co_name, count(*) from pgque.dead_letter d"
                            " join pgque.consumer c on c.co_id = d.dl_consumer_id group by 1"
                        )
                    )
                }
                retries = session.scalar(text("select count(*) from pgque.retry_queue"))
            return retries == 0 and all(done.get(c, 0) >= len(good) and dead.get(c, 0) >= len(poison) for c in names)

        wait_for(settled, DRAIN_TIMEOUT, "every consumer processed or dead-lettered every event")
        consumed_at = time.monotonic()
    finally:
        for worker in consumers:
            worker.stop()
        stop_monitor.set()
        for thread in threads:
            thread.join(60)
        ticker.stop()

    assert not any(t.is_alive() for t in threads)
    with sessions() as session:
        rows = session.execute(select(Processed.consumer, Processed.msg_id, Processed.payload)).all()
        dead_rows = session.execute(
            text(
                "select c.co_name, d.ev_id, d.ev_retry, d.dl_reason from pgque.dead_letter d"
                " join pgque.consumer c on c.co_id = d.dl_consumer_id"
            )
        ).all()
        table = session.scalar(text("select queue_data_pfx from pgque.queue where queue_name = :q"), {"q": QUEUE})
        remaining = session.scalar(text(f"select count(*) from {table}"))
        [info] = pgque.queue_info(session, QUEUE)
    assert len(produced) == PRODUCER_THREADS * per_thread
    for name in names:
        got = Counter(m for c, m, _ in rows if c == name)
        lost = sorted(good - set(got))
        duplicated = sorted(m for m, n in got.items() if n > 1)
        unexpected = sorted(set(got) - good)
        assert (lost[:20], duplicated[:20], unexpected[:20]) == ([], [], []), f"{name}: lost, duplicated, unexpected"
        dead = Counter(ev for c, ev, _, _ in dead_rows if c == name)
        assert dead == dict.fromkeys(poison, 1), f"{name}: dead letters"
    assert {(retry, reason.split(":")[0]) for _, _, retry, reason in dead_rows} == {(MAX_RETRIES, "InjectedFailure")}
    assert [(c, m) for c, m, p in rows if json.loads(p or "null") != produced[m]] == []
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        assert violations(conn) == []
    rotated = len(rotations) - 1
    assert rotated >= scale(5, 50)
    assert remaining < len(produced), "rotation truncated the oldest event tables"
    retried = sum(1 for p in produced.values() if p.get("fail"))
    assert sum(failures.values()) >= 4 * (retried + len(poison) * (MAX_RETRIES + 1))
    report(
        f"{len(produced)} events from {PRODUCER_THREADS} producer threads to 3 normal consumers and 1 cooperative"
        f" consumer of {len(MEMBERS)} members (all threads, Ticker every 20 ms); {retried} events failed 1-2 times"
        f" (retried), {len(poison)} poison events dead-lettered once per consumer; {sum(failures.values())} injected"
        f" handler failures; {rotated} table rotations seen, {remaining} event rows left of {len(produced)};"
        f" last tick {info.last_tick_id}; produce {produced_at - started:.0f}s, drained"
        f" {consumed_at - produced_at:.0f}s later, total {time.monotonic() - started:.0f}s"
    )
