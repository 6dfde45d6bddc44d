"""Consumers in subprocesses: kill -9, SIGTERM and a database restart lose and duplicate nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from tests._pg import Database, Server
from tests.consumer.conftest import count_rows, processed, send

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def worker(db: Database, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A consumer process running ``tests.consumer._worker``; killed at the end if still alive."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.consumer._worker", db.url.render_as_string(hide_password=False), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def pending(sessions: sessionmaker[Session], queue: str, consumer: str) -> bool:
    """Whether the consumer still has ticks to go through (or an open batch)."""
    with sessions() as session:
        [info] = pgque.consumer_info(session, queue, consumer)
        [queue_info] = pgque.queue_info(session, queue)
    return info.current_batch is not None or info.last_tick != queue_info.last_tick_id


def in_transaction(sessions: sessionmaker[Session]) -> bool:
    """Whether another session of the database sits in an open transaction (a worker mid-batch)."""
    with sessions() as session:  # a new transaction each time: activity views are snapshotted
        return bool(
            session.scalar(
                text(
                    "select count(*) from pg_stat_activity where datname = current_database()"
                    " and state like 'idle in transaction%' and pid <> pg_backend_pid()"
                )
            )
        )


def subscribe(sessions: sessionmaker[Session], queue: str, consumer: str) -> None:
    with sessions.begin() as session:
        pgque.subscribe(session, queue, consumer)


def test_kill_9_at_random_points_never_loses_or_duplicates(
    db: Database, sessions: sessionmaker[Session], queue: str
) -> None:
    subscribe(sessions, queue, "worker")
    sent: list[int] = []
    for chunk in range(40):  # 2,000 events in 40 ticks
        sent += send(sessions, queue, *[f"{chunk}.{i}" for i in range(50)])
    rng = random.Random(20261124)
    kills = 0
    while kills < 8 and pending(sessions, queue, "worker"):
        with worker(db, "--sleep", "0.002") as process:
            time.sleep(rng.uniform(0.3, 1.2))
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
    with worker(db) as process:
        wait_for(lambda: not pending(sessions, queue, "worker"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    per_message = Counter(m for _, m in processed(sessions))
    assert kills >= 3
    assert sorted(per_message) == sorted(sent)
    assert set(per_message.values()) == {1}


def test_killed_before_commit_leaves_neither_ack_nor_follow_ups(
    db: Database, sessions: sessionmaker[Session], queue: str
) -> None:
    with sessions.begin() as session:
        pgque.create_queue(session, "next")
        pgque.subscribe(session, "next", "reader")
    subscribe(sessions, queue, "worker")
    ids = send(sessions, queue, "a", "b", "hang", "c")
    with worker(db, "--forward", "next", "--hang-on", "hang") as process:
        wait_for(lambda: in_transaction(sessions))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    with sessions.begin() as session:
        pgque.tick(session, "next")
    with sessions.begin() as session:
        assert pgque.receive(session, "next", "reader") == []
    assert count_rows(sessions) == 0
    assert pending(sessions, queue, "worker")

    with sessions.begin() as session:  # let the batch through this time
        session.execute(text("update pgque.event_1_0 set ev_data = 'fine' where ev_data = 'hang'"))
    with worker(db, "--forward", "next") as process:
        wait_for(lambda: not pending(sessions, queue, "worker"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    with sessions.begin() as session:
        pgque.tick(session, "next")
    with sessions.begin() as session:
        follow_ups = [m.payload["from"] for m in pgque.receive(session, "next", "reader")]
    assert sorted(follow_ups) == ids
    assert sorted(m for _, m in processed(sessions)) == ids


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_sigterm_mid_batch_finishes_the_batch_and_exits_0(
    db: Database, sessions: sessionmaker[Session], queue: str, mode: str
) -> None:
    subscribe(sessions, queue, "worker")
    ids = send(sessions, queue, *range(10))
    extra = ["--asyncio"] if mode == "asyncio" else []
    with worker(db, "--sleep", "0.2", *extra) as process:
        wait_for(lambda: in_transaction(sessions))
        time.sleep(0.5)  # a few messages into the batch
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    rows = sorted(m for _, m in processed(sessions))
    assert rows in (ids, [])  # whole batch committed, or whole batch still to come
    assert pending(sessions, queue, "worker") == (rows == [])


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_database_restart_while_consuming(
    db: Database, pg_server: Server, sessions: sessionmaker[Session], queue: str, mode: str
) -> None:
    subscribe(sessions, queue, "worker")
    first = send(sessions, queue, *range(20))
    extra = ["--asyncio"] if mode == "asyncio" else []
    with worker(db, *extra) as process:
        wait_for(lambda: count_rows(sessions) == 20)
        sessions.kw["bind"].dispose()
        pg_server.interrupt(db.name)
        second = send(sessions, queue, *range(20, 40))
        wait_for(lambda: count_rows(sessions) == 40)
        assert process.poll() is None, "the consumer survived the restart"
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    per_message = Counter(m for _, m in processed(sessions))
    assert sorted(per_message) == sorted(first + second)
    assert set(per_message.values()) == {1}
