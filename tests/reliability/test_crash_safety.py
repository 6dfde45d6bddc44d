"""Crash safety: producers and consumers in processes, killed and cut off at random, one server restart.

Producers (``tests.reliability._producer``) record every event they publish
in ``produced``, in the publishing transaction, so the expected set is exact
even for a producer killed mid-COMMIT. Consumers (``tests.consumer._worker``)
insert one ``processed`` row per message in the batch's transaction. Two
normal consumers fan out (one of them run by two processes at once, one on
asyncio), and a cooperative consumer splits the queue between three members.

While the producers run, the test keeps doing one of: ``kill -9`` of a random
consumer process (restarted at once, a cooperative member sometimes under a
new name, so its batch must be taken over), ``pg_terminate_backend`` of a
random worker or ticker connection, ``kill -9`` of a producer (restarted, it
resumes after its last committed event); and once, halfway, a PostgreSQL
restart (fast shutdown + start; on an external server every backend of the
database is terminated instead). Some events make every consumer's handler
fail once or twice, so retries run through the chaos too.

At the end every committed event was processed exactly once by each of the
three consumers (count per (consumer, msg_id) == 1, with the payload the
producer committed), nothing else was processed, and the engine's invariants
hold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL, func, select, text
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from tests._pg import Database, Server
from tests.consumer.conftest import Base as ConsumerBase
from tests.consumer.conftest import Processed
from tests.reliability._invariants import violations
from tests.reliability._producer import Base as ProducerBase
from tests.reliability._producer import Produced
from tests.reliability._scale import scale

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "rel"
FAN_OUT = ("fan_a", "fan_b")
COOP = "coop"
DEAD_INTERVAL = 3.0

PRODUCERS = scale(3, 6)
EVENTS_PER_PRODUCER = scale(700, 4000)
PRODUCE_SECONDS = scale(25, 600)
"""How long the producers take (they pace themselves), i.e. how long the chaos lasts."""
CHAOS_PAUSE = (0.3, 1.2)
DRAIN_TIMEOUT = scale(180.0, 900.0)


@dataclass
class Proc:
    """One worker or producer process and how to start it again."""

    label: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    log: Path | None = None

    def start(self, url: URL, logs: Path) -> None:
        """Start (again); output goes to ``logs/<label>.log`` (a pipe could fill up and block the process)."""
        named = url.update_query_dict({"application_name": f"rel:{self.label}"}).render_as_string(hide_password=False)
        self.log = logs / f"{self.label}.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.args[0], named, *self.args[1:]],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(20)

    def output_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log is not None and self.log.exists() else ""


@dataclass
class Chaos:
    consumer_kills: int = 0
    producer_kills: int = 0
    terminations: int = 0
    restarts: int = 0
    renamed_members: int = 0
    log: list[str] = field(default_factory=list)


def worker(label: str, name: str, *extra: str) -> Proc:
    return Proc(
        label,
        [
            "tests.consumer._worker",
            "--queue",
            QUEUE,
            "--name",
            name,
            "--fail-from-payload",
            "--retry-base",
            "0",
            *extra,
        ],
    )


def producer(number: int) -> Proc:
    return Proc(
        f"producer{number}",
        [
            "tests.reliability._producer",
            "--queue",
            QUEUE,
            "--producer",
            str(number),
            "--count",
            str(EVENTS_PER_PRODUCER),
            "--fail-rate",
            "0.03",
            "--pause",
            f"{PRODUCE_SECONDS / (EVENTS_PER_PRODUCER / 4.5):.3f}",  # 4.5 events per transaction on average
        ],
    )


def committed_events(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Produced)) or 0)


def settled(sessions: sessionmaker[Session], expected: int) -> bool:
    """Every consumer has a processed row per committed event and nothing is left to retry."""
    with sessions() as session:
        counts = {
            c: n for c, n in session.execute(select(Processed.consumer, func.count()).group_by(Processed.consumer))
        }
        retries = session.scalar(text("select count(*) from pgque.retry_queue"))
    return all(counts.get(c, 0) >= expected for c in (*FAN_OUT, COOP)) and retries == 0


def connected(db: Database) -> set[str]:
    """Labels of the processes with a connection to the database."""
    with db.server.admin() as admin:
        rows = admin.execute(
            "select substr(application_name, 5) from pg_stat_activity"
            " where datname = %s and application_name like 'rel:%%'",
            (db.name,),
        ).fetchall()
    return {name for (name,) in rows}


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def terminate_random_backend(db: Database, rng: random.Random) -> str | None:
    with db.server.admin() as admin:
        rows = admin.execute(
            "select pid, application_name from pg_stat_activity"
            " where datname = %s and application_name like 'rel:%%' and application_name <> 'rel:ticker'",
            (db.name,),
        ).fetchall()
        if not rows:
            return None
        pid, name = rng.choice(rows)
        admin.execute("select pg_terminate_backend(%s)", (pid,))
        return str(name)


def test_kill_9_terminations_and_a_restart_lose_and_duplicate_nothing(
    db: Database, pg_server: Server, tmp_path: Path, report: Callable[[str], None]
) -> None:
    started = time.monotonic()
    engine = db.engine()
    ConsumerBase.metadata.create_all(engine)
    ProducerBase.metadata.create_all(engine)
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        pgque.create_queue(session, QUEUE)
        for param, value in (("ticker_max_lag", "100 milliseconds"), ("rotation_period", "2 seconds")):
            pgque.set_queue_config(session, QUEUE, param, value)
        for name in FAN_OUT:
            pgque.subscribe(session, QUEUE, name)
        for member in ("m1", "m2", "m3"):
            pgque.subscribe_subconsumer(session, QUEUE, COOP, member)

    url = db.url
    ticker_engine = db.engine(connect_args={"application_name": "rel:ticker"})
    ticker = pgque.Ticker(
        ticker_engine,
        tick_period=timedelta(milliseconds=50),
        retry_period=timedelta(milliseconds=200),
        maint_period=timedelta(seconds=1),
        step2_period=timedelta(milliseconds=500),
    )
    dead = str(DEAD_INTERVAL)
    consumers = [
        worker("fan_a-1", "fan_a"),
        worker("fan_a-2", "fan_a"),
        worker("fan_b", "fan_b", "--asyncio"),
        *(worker(f"coop-{m}", COOP, "--subconsumer", m, "--dead-interval", dead) for m in ("m1", "m2", "m3")),
    ]
    producers = [producer(n) for n in range(1, PRODUCERS + 1)]
    rng = random.Random(20260502)
    chaos = Chaos()
    renamed = 0
    total = PRODUCERS * EVENTS_PER_PRODUCER
    ticker.start()
    try:
        for proc in (*consumers, *producers):
            proc.start(url, tmp_path)
        while any(p.alive() for p in producers) or committed_events(sessions) < total:
            time.sleep(rng.uniform(*CHAOS_PAUSE))
            for proc in producers:  # a producer only exits by itself when it is done (or broken)
                if not proc.alive() and proc.process is not None and proc.process.returncode not in (0, -9):
                    pytest.fail(f"{proc.label} failed: {proc.output_tail()}")
            if chaos.restarts == 0 and committed_events(sessions) >= total // 2:
                engine.dispose()
                pg_server.interrupt(db.name)
                chaos.restarts += 1
                chaos.log.append("server restart" if pg_server.restartable else "all backends terminated")
                continue
            action = rng.choices(["kill consumer", "terminate", "kill producer"], weights=[4, 4, 1])[0]
            if action == "kill consumer":
                proc = rng.choice(consumers)
                proc.kill9()
                if proc.label.startswith("coop-") and chaos.consumer_kills % 2 == 1:
                    renamed += 1  # a new member: the dead one's batch must be taken over
                    member = f"r{renamed}"
                    proc.args[proc.args.index("--subconsumer") + 1] = member
                    chaos.renamed_members += 1
                proc.start(url, tmp_path)
                chaos.consumer_kills += 1
            elif action == "terminate":
                if terminate_random_backend(db, rng) is not None:
                    chaos.terminations += 1
            else:
                alive = [p for p in producers if p.alive()]
                if alive:
                    proc = rng.choice(alive)
                    proc.kill9()
                    proc.start(url, tmp_path)
                    chaos.producer_kills += 1
        produced_at = time.monotonic()

        expected = committed_events(sessions)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while not settled(sessions, expected):
            for proc in consumers:
                assert proc.alive(), f"{proc.label} died: {proc.output_tail()}"
            assert time.monotonic() < deadline, "consumers did not catch up"
            time.sleep(0.2)
        # a worker restarted a moment ago may still be importing, before its SIGTERM handler exists
        wait_for(lambda: connected(db) >= {p.label for p in consumers}, DRAIN_TIMEOUT)
        for proc in consumers:
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
        for proc in consumers:
            assert proc.process is not None
            assert proc.process.wait(30) == 0, f"{proc.label}: {proc.output_tail()}"
    finally:
        for proc in (*consumers, *producers):
            if proc.alive():
                proc.kill9()
        ticker.stop()

    with sessions() as session:
        produced = {row.msg_id: json.loads(row.payload) for row in session.scalars(select(Produced))}
        seqs = Counter(row.producer for row in session.scalars(select(Produced)))
        rows = session.execute(select(Processed.consumer, Processed.msg_id, Processed.payload)).all()
    assert seqs == dict.fromkeys(range(1, PRODUCERS + 1), EVENTS_PER_PRODUCER), "every producer committed its count"
    assert len(produced) == total
    for name in (*FAN_OUT, COOP):
        got = Counter(msg_id for consumer, msg_id, _ in rows if consumer == name)
        lost = sorted(set(produced) - set(got))
        duplicated = sorted(m for m, n in got.items() if n > 1)
        unknown = sorted(set(got) - set(produced))
        assert (lost[:20], duplicated[:20], unknown[:20]) == ([], [], []), f"{name}: lost, duplicated, unknown"
    corrupted = [(c, m) for c, m, payload in rows if json.loads(payload or "null") != produced[m]]
    assert corrupted == []
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        assert violations(conn) == []

    assert chaos.restarts == 1
    assert chaos.consumer_kills >= scale(5, 50)
    assert chaos.terminations >= scale(5, 50)
    assert chaos.producer_kills >= 1
    report(
        f"{total} events from {PRODUCERS} producer processes, fan-out to 2 normal consumers (3 processes, one"
        f" asyncio) and 1 cooperative consumer (3 members); {chaos.consumer_kills} consumer kill -9"
        f" ({chaos.renamed_members} restarted as new members), {chaos.producer_kills} producer kill -9,"
        f" {chaos.terminations} pg_terminate_backend, {chaos.restarts} {chaos.log[0]};"
        f" {len(rows)} processed rows = 3 x {total}, each (consumer, msg_id) once, payloads intact;"
        f" produce phase {produced_at - started:.0f}s, total {time.monotonic() - started:.0f}s"
    )
