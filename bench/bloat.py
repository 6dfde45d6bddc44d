"""Dead tuples, table sizes and throughput while a transaction holds back the xmin horizon.

Run from the repository root (see bench/README.md):

    python -m bench.bloat                               # embedded PostgreSQL, 2 minutes per run
    python -m bench.bloat --dsn postgresql:///postgres  # an existing server
    python -m bench.bloat --quick                       # 20 s per run

Each run has its own fresh database and lasts ``--duration`` seconds
(default 120; ``--quick``: 20). A producer process and a consumer process
run flat out the whole time: the producer commits ``--batch`` events (100)
per transaction, but pauses while more than ``--max-backlog`` events
(20,000) are produced and not yet consumed, so the queue never holds a large
backlog and throughput is whatever the pair sustains. After ``--before``
seconds (15; ``--quick``: 5) another connection opens a ``REPEATABLE READ``
transaction and keeps it open until the end; it pins the server's xmin
horizon, so VACUUM can remove no row version deleted or updated after it
began. Two kinds of holder:

* ``snapshot``: ``BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1`` -- a
  read-only transaction with a snapshot and no transaction id (a long report
  query, ``pg_dump``);
* ``xid``: the same plus ``SELECT pg_current_xact_id()``, so it also has a
  transaction id, as a transaction that wrote something and was left open
  does. Its id then stays in every later snapshot's list of running
  transactions.

Systems:

* sa_pgque: ``send_batch`` in a Session per transaction; ``Consumer.run()``
  in a loop with a no-op handler; a ``Ticker`` thread in this process
  (100 ms ticks, ``maint`` and rotation step 2 every 2 s) and the queue's
  ``rotation_period`` set to 10 s, so rotation (TRUNCATE of the oldest
  child) is attempted every 10 s;
* a SKIP LOCKED peer (``--peer``, default pgqueuer): ``Queries.enqueue`` with
  lists; ``QueueManager.run()`` (continuous, default batch_size 10) with a
  no-op entrypoint, over asyncpg (pgqueuer's primary driver). pgqueuer deletes a finished job from its queue table and
  inserts a row into its log table.

Every ``--interval`` seconds (5) the script samples the events produced and
consumed, the server CPU of the consumer's backends, and ``n_dead_tup``,
``n_live_tup`` and ``pg_total_relation_size`` of every table of the system
(``pg_stat_user_tables``; its counters lag by up to a second). At the end,
while the holder is still open, exact counts come from ``pgstattuple``
(when the extension can be created). For sa_pgque the holder then counts the
rows of each event child (what a long transaction sees of a table that
rotation truncated under it), the run goes on for ``--after-read`` seconds
(25) to see whether rotation can still truncate a child the holder has read,
and the holder ends.

Default runs: sa_pgque with a ``snapshot`` holder, the peer with a
``snapshot`` holder, sa_pgque with an ``xid`` holder (``--runs`` to choose).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque
from bench._cpu import BackendCpu
from bench._server import database, engine_database, sa_url, server, server_version, with_params
from bench.peers import pgqueuer_queries

QUEUE = "bloat"
EVENT_TYPE = "bench"
CONSUMER_APP = "bench_bloat_consumer"
PRODUCER_APP = "bench_bloat_producer"


def payload(i: int) -> dict[str, Any]:
    return {"order_id": i, "total": 99.95, "items": ["book", "pen"]}


# -- child processes ---------------------------------------------------------------------------


@dataclass
class Shared:
    """Counters and signals shared with the child processes."""

    produced: Any
    consumed: Any
    stop: multiprocessing.synchronize.Event
    ready: multiprocessing.synchronize.Barrier


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("pgqueuer", "sa_pgque", "procrastinate"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _add(counter: Any, n: int) -> None:
    with counter.get_lock():
        counter.value += n


def producer_child(system: str, url: str, batch: int, max_backlog: int, shared: Shared) -> None:
    _quiet()
    url = with_params(url, application_name=PRODUCER_APP)
    shared.ready.wait()
    if system == "sa_pgque":
        engine = create_engine(sa_url(url), pool_size=1)
        sessions = sessionmaker(engine)
        i = 0
        try:
            while not shared.stop.is_set():
                if shared.produced.value - shared.consumed.value > max_backlog:
                    time.sleep(0.002)
                    continue
                with sessions.begin() as session:
                    sa_pgque.send_batch(session, QUEUE, [payload(i + k) for k in range(batch)], type=EVENT_TYPE)
                i += batch
                _add(shared.produced, batch)
        finally:
            engine.dispose()
    else:
        asyncio.run(_pgqueuer_produce(url, batch, max_backlog, shared))


async def _pgqueuer_produce(url: str, batch: int, max_backlog: int, shared: Shared) -> None:
    async with pgqueuer_queries(url) as queries:
        i = 0
        while not shared.stop.is_set():
            if shared.produced.value - shared.consumed.value > max_backlog:
                await asyncio.sleep(0.002)
                continue
            data = [json.dumps(payload(i + k)).encode() for k in range(batch)]
            await queries.enqueue([QUEUE] * batch, list(data), [0] * batch)
            i += batch
            _add(shared.produced, batch)


def consumer_child(system: str, url: str, shared: Shared) -> None:
    _quiet()
    url = with_params(url, application_name=CONSUMER_APP)
    shared.ready.wait()
    if system == "sa_pgque":
        engine = create_engine(sa_url(url), pool_size=2)
        consumer = sa_pgque.Consumer(sessionmaker(engine), queue=QUEUE, name="c", subscribe=False)
        consumed = shared.consumed

        @consumer.default_handler
        def handle(message: sa_pgque.Message, session: Session) -> None:
            with consumed.get_lock():
                consumed.value += 1

        try:
            while not shared.stop.is_set():
                if not consumer.run():
                    time.sleep(0.005)
        finally:
            engine.dispose()
    else:
        asyncio.run(_pgqueuer_consume(url, shared))


async def _pgqueuer_consume(url: str, shared: Shared) -> None:
    from pgqueuer import Job, QueueManager

    consumed = shared.consumed
    async with pgqueuer_queries(url) as queries:
        qm = QueueManager(queries)

        @qm.entrypoint(QUEUE)
        async def handle(job: Job) -> None:
            with consumed.get_lock():
                consumed.value += 1

        async def watch_stop() -> None:
            while not shared.stop.is_set():
                await asyncio.sleep(0.1)
            qm.shutdown.set()

        watcher = asyncio.create_task(watch_stop())
        try:
            await qm.run()
        finally:
            watcher.cancel()


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    phase: str
    """'free' (no holder), 'held', or 'after' (sa_pgque: after the holder read the event children)."""
    produced: int
    consumed: int
    cpu: float | None
    tables: dict[str, tuple[int, int, int]]
    """table -> (n_dead_tup, n_live_tup, total bytes)."""
    rotations: int


@dataclass
class Run:
    system: str
    holder: str
    samples: list[Sample] = field(default_factory=list)
    exact: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """table -> (dead tuples, live tuples, table bytes) from pgstattuple, at the end with the holder open."""
    notes: list[str] = field(default_factory=list)
    at_hold: dict[str, int] = field(default_factory=dict)
    """sa_pgque: rows of each event child as a new transaction saw them when the holder opened."""


def table_stats(conn: psycopg.Connection[Any], schema: str) -> dict[str, tuple[int, int, int]]:
    rows = conn.execute(
        "select relname, n_dead_tup, n_live_tup, pg_total_relation_size(relid) from pg_stat_user_tables"
        " where schemaname = %s order by relname",
        (schema,),
    ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def exact_stats(conn: psycopg.Connection[Any], schema: str, tables: list[str]) -> dict[str, tuple[int, int, int]]:
    result = {}
    for table in tables:
        row = conn.execute(
            "select dead_tuple_count, tuple_count, table_len from pgstattuple(%s::regclass)",
            (f"{schema}.{table}",),
        ).fetchone()
        assert row is not None
        result[table] = (int(row[0]), int(row[1]), int(row[2]))
    return result


def rotation_state(conn: psycopg.Connection[Any]) -> tuple[int, Any]:
    row = conn.execute(
        "select queue_cur_table, queue_switch_time from pgque.queue where queue_name = %s", (QUEUE,)
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def run_one(url: str, system: str, holder_kind: str, args: argparse.Namespace) -> Run:
    run = Run(system, holder_kind)
    schema = "pgque" if system == "sa_pgque" else "public"
    ticker: sa_pgque.Ticker | None = None
    engine = None
    monitor = psycopg.connect(with_params(url, application_name="bench_bloat_monitor"), autocommit=True)
    with suppress(psycopg.Error):
        monitor.execute("create extension if not exists pgstattuple")
    if system == "sa_pgque":
        engine = create_engine(sa_url(url), pool_size=2)
        with sessionmaker(engine).begin() as session:
            sa_pgque.create_queue(session, QUEUE)
            sa_pgque.set_queue_config(session, QUEUE, "rotation_period", timedelta(seconds=args.rotation_period))
            sa_pgque.subscribe(session, QUEUE, "c")
        ticker = sa_pgque.Ticker(engine, maint_period=timedelta(seconds=2), step2_period=timedelta(seconds=2))
        ticker.start()
        if not ticker.active.wait(10):
            raise RuntimeError("the ticker did not become active")
    else:
        asyncio.run(_pgqueuer_install(url))

    ctx = multiprocessing.get_context("spawn")
    shared = Shared(ctx.Value("q", 0), ctx.Value("q", 0), ctx.Event(), ctx.Barrier(3))
    procs = [
        ctx.Process(target=producer_child, args=(system, url, args.batch, args.max_backlog, shared)),
        ctx.Process(target=consumer_child, args=(system, url, shared)),
    ]
    for p in procs:
        p.start()
    cpu = BackendCpu(CONSUMER_APP)
    holder: psycopg.Connection[Any] | None = None
    rotations = 0
    last_rotation = rotation_state(monitor) if system == "sa_pgque" else None

    def sample(phase: str) -> None:
        nonlocal rotations, last_rotation
        if last_rotation is not None:
            state = rotation_state(monitor)
            if state != last_rotation:
                rotations += 1
                last_rotation = state
        run.samples.append(
            Sample(
                time.monotonic() - started,
                phase,
                shared.produced.value,
                shared.consumed.value,
                cpu.read(monitor),
                table_stats(monitor, schema),
                rotations,
            )
        )
        s = run.samples[-1]
        print(
            f"    t={s.at:5.1f}s {phase:<5} produced {s.produced:>9,} consumed {s.consumed:>9,}"
            f" rotations {s.rotations}  dead: "
            + ", ".join(f"{t} {d:,}" for t, (d, _, _) in s.tables.items() if d and _interesting(system, t)),
            flush=True,
        )

    try:
        shared.ready.wait(timeout=120)
        started = time.monotonic()
        sample("free")
        next_at = started + args.interval
        hold_at = started + args.before
        end_at = started + args.duration
        while True:
            now = time.monotonic()
            if holder is None and now >= hold_at:
                holder = open_holder(url, holder_kind)
                if system == "sa_pgque":
                    run.at_hold = child_counts(monitor)
                sample("held")
            if now >= next_at:
                sample("free" if holder is None else "held")
                next_at += args.interval
            if now >= end_at:
                break
            time.sleep(min(0.2, max(0.0, min(next_at, end_at) - time.monotonic())))
        # rotations are counted on change of (cur_table, switch_time); check once more at the end
        tables = sorted(table_stats(monitor, schema))
        with suppress(psycopg.Error):
            run.exact = exact_stats(monitor, schema, [t for t in tables if _interesting(system, t)])
        if system == "sa_pgque" and holder is not None:
            after_read(run, url, monitor, holder, args, sample)
    finally:
        shared.stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        if holder is not None:
            holder.close()
        if ticker is not None:
            ticker.stop()
        if engine is not None:
            engine.dispose()
        monitor.close()
    return run


def _interesting(system: str, table: str) -> bool:
    """Tables worth reporting: the queue's storage and bookkeeping, not empty catalog-like tables."""
    if system != "sa_pgque":
        return True
    return table.startswith("event_") or table in ("subscription", "tick", "queue", "retry_queue")


def child_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        "select queue_data_pfx, queue_ntables from pgque.queue where queue_name = %s", (QUEUE,)
    ).fetchone()
    assert row is not None
    counts = {}
    for i in range(int(row[1])):
        child = f"{row[0]}_{i}"
        counted = conn.execute(f"select count(*) from {child}").fetchone()
        counts[child] = int(counted[0]) if counted else -1
    return counts


def open_holder(url: str, kind: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(with_params(url, application_name="bench_bloat_holder"))
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.execute("select 1")
    if kind == "xid":
        conn.execute("select pg_current_xact_id()")
    return conn


def after_read(
    run: Run,
    url: str,
    monitor: psycopg.Connection[Any],
    holder: psycopg.Connection[Any],
    args: argparse.Namespace,
    sample: Callable[[str], None],
) -> None:
    """What the holder sees of the event children, and whether rotation goes on once it has read them."""
    row = monitor.execute(
        "select queue_data_pfx, queue_cur_table, queue_ntables from pgque.queue where queue_name = %s", (QUEUE,)
    ).fetchone()
    assert row is not None
    prefix, current, ntables = str(row[0]), int(row[1]), int(row[2])
    children = [f"{prefix}_{i}" for i in range(ntables)]
    for child in children:
        fresh = monitor.execute(f"select count(*) from {child}").fetchone()
        try:
            held = holder.execute(f"select count(*) from {child}").fetchone()
            seen = f"{held[0] if held else '?':,}"
        except psycopg.Error as error:
            holder.rollback()
            seen = f"error: {type(error).__name__}: {error}".strip()
            run.notes.append(f"holder reading {child}: {seen}")
            break
        mark = " (current)" if child.endswith(f"_{current}") else ""
        run.notes.append(
            f"{child}{mark}: rows when the holder began {run.at_hold.get(child, -1):,}; now the holder counts {seen},"
            f" a new transaction {fresh[0] if fresh else '?':,}"
        )
    before = run.samples[-1].rotations if run.samples else 0
    end = time.monotonic() + args.after_read
    while time.monotonic() < end:
        time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        sample("after")
    after = run.samples[-1].rotations
    waiting = monitor.execute(
        "select count(*) from pg_locks where not granted and database = (select oid from pg_database"
        " where datname = current_database())"
    ).fetchone()
    since = monitor.execute(
        "select extract(epoch from now() - queue_switch_time) from pgque.queue where queue_name = %s", (QUEUE,)
    ).fetchone()
    run.notes.append(
        f"after the holder read the children: {after - before} rotation(s) in {args.after_read:g} s"
        f" (rotation_period {args.rotation_period:g} s; last switch {float(since[0]) if since else -1:.0f} s ago);"
        f" lock requests waiting now: {waiting[0] if waiting else '?'}"
    )


async def _pgqueuer_install(url: str) -> None:
    async with pgqueuer_queries(url) as queries:
        await queries.install()


@contextmanager
def system_database(system: str, server_dsn: str) -> Iterator[str]:
    if system == "sa_pgque":
        with engine_database(server_dsn, prefix="sa_pgque_bench_bloat") as url:
            yield url
    else:
        with database(server_dsn, prefix=f"sa_pgque_bench_bloat_{system}") as url:
            yield url


# -- report ------------------------------------------------------------------------------------


def phase_rates(run: Run) -> dict[str, tuple[float, float, float | None]]:
    """phase -> (produced/s, consumed/s, consumer server CPU us/event); 'before' ends when the holder opens."""
    free = [s for s in run.samples if s.phase == "free"]
    held = [s for s in run.samples if s.phase == "held"]
    result = {}
    for phase, points in (("before", [*free, *held[:1]]), ("during", held)):
        if len(points) < 2:
            continue
        first, last = points[0], points[-1]
        seconds = last.at - first.at
        consumed = last.consumed - first.consumed
        cpu = None
        if last.cpu is not None and first.cpu is not None and consumed:
            cpu = (last.cpu - first.cpu) / consumed * 1e6
        result[phase] = ((last.produced - first.produced) / seconds, consumed / seconds, cpu)
    return result


def report(runs: list[Run], args: argparse.Namespace, version: str) -> None:
    print(
        f"\n== bloat: {version}; {args.duration:g} s per run, holder from t={args.before:g} s; {args.batch} events"
        f" per producer transaction, backlog <= {args.max_backlog:,}; sa_pgque rotation_period"
        f" {args.rotation_period:g} s"
    )
    for run in runs:
        rates = phase_rates(run)
        print(f"\n  {run.system}, holder '{run.holder}':")
        for phase in ("before", "during"):
            if phase in rates:
                p, c, cpu = rates[phase]
                cpu_text = f"{cpu:7.1f}" if cpu is not None else "      ?"
                print(
                    f"    {phase:<7} produced {p:>9,.0f}/s  consumed {c:>9,.0f}/s  consumer server CPU {cpu_text} us/ev"
                )
        if "before" in rates and "during" in rates:
            before, during = rates["before"], rates["during"]
            cpu_ratio = f"{during[2] / before[2]:.2f}x" if during[2] and before[2] else "?"
            print(
                f"    during/before: consumed {during[1] / before[1]:.2f}x, consumer server CPU per event {cpu_ratio}"
            )
        held = [s for s in run.samples if s.phase == "held"]
        first, base = (held[0], held[-1]) if held else (run.samples[0], run.samples[-1])
        end = base
        if run.system == "sa_pgque":
            print(f"    rotations: {end.rotations} in the run, {end.rotations - first.rotations} with the holder open")
        print(
            f"    {'table':<20}{'n_dead_tup: start':>18}{'at hold':>10}{'end':>10}"
            f"{'size: at hold':>15}{'end':>10}{'pgstattuple at end: dead':>26}{'live':>10}"
        )
        for table, (dead_end, _, size_end) in end.tables.items():
            if not _interesting(run.system, table):
                continue
            dead_start = run.samples[0].tables.get(table, (0, 0, 0))[0]
            dead_hold, _, size_hold = first.tables.get(table, (0, 0, 0))
            exact = run.exact.get(table)
            print(
                f"    {table:<20}{dead_start:>18,}{dead_hold:>10,}{dead_end:>10,}"
                f"{_mb(size_hold):>15}{_mb(size_end):>10}"
                f"{(f'{exact[0]:,}' if exact else '-'):>26}{(f'{exact[1]:,}' if exact else '-'):>10}"
            )
        for note in run.notes:
            print(f"    {note}")


def _mb(n: int) -> str:
    return f"{n / 1048576:.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark databases on (default: embedded PostgreSQL)")
    parser.add_argument("--quick", action="store_true", help="20 s runs, holder from 5 s")
    parser.add_argument("--duration", type=float, help="seconds per run (120; --quick 20)")
    parser.add_argument("--before", type=float, help="seconds before the holder opens (15; --quick 5)")
    parser.add_argument("--after-read", type=float, default=25, help="sa_pgque: seconds after the holder's read (25)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between samples (5)")
    parser.add_argument("--batch", type=int, default=100, help="events per producer transaction (100)")
    parser.add_argument("--max-backlog", type=int, default=20_000, help="producer pauses above this backlog")
    parser.add_argument("--rotation-period", type=float, default=10, help="sa_pgque queue rotation_period, s (10)")
    parser.add_argument("--peer", default="pgqueuer", choices=["pgqueuer"], help="the SKIP LOCKED peer")
    parser.add_argument(
        "--runs",
        default="sa_pgque:snapshot,peer:snapshot,sa_pgque:xid",
        help="comma-separated system:holder pairs (system sa_pgque or peer; holder snapshot or xid)",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (20.0 if args.quick else 120.0)
    args.before = args.before if args.before is not None else (5.0 if args.quick else 15.0)

    server_dsn = server(args.dsn)
    runs: list[Run] = []
    version = ""
    print(f"bloat: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    for spec in args.runs.split(","):
        system, _, holder = spec.partition(":")
        system = args.peer if system == "peer" else system
        with system_database(system, server_dsn) as url:
            version = version or server_version(url)
            print(f"  run: {system}, holder '{holder}' ({version})", flush=True)
            runs.append(run_one(url, system, holder, args))
    report(runs, args, version)
    print(f"  load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
