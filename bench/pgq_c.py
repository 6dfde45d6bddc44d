"""sa_pgque against PgQ, the C extension it re-implements, primitive by primitive.

Run from the repository root (see bench/README.md) against a server that has
the ``pgq`` extension available (Debian: ``apt-get install postgresql-15-pgq3``):

    python -m bench.pgq_c --dsn postgresql:///postgres

Two fresh databases are created on that server, one with ``create extension
pgq`` and one with the sa_pgque engine (both dropped afterwards), and the same
primitives are run in both, side by side, through the same SQL (PgQ's names,
which the engine keeps): ``<schema>.insert_event(queue, type, data)`` and
``next_batch`` / ``get_batch_events`` / ``finish_batch``. Everything goes
through psycopg 3 with binary parameters and results and prepared statements:

* ``insert_event, 1 per tx``: one call per transaction (autocommit);
* ``insert_event, 1000 per tx, client``: a transaction of 1,000 calls, each
  its own round trip;
* ``insert_event, 1000 per tx, server``: the same 1,000 calls made by the
  server in one statement, ``select count(insert_event(...)) from
  generate_series(1, 1000)``, which isolates the function's own cost;
* ``drain``: a backlog (by default 500,000 events in ticks of 10,000, written
  with the server loop above and each engine's own ticker API: PgQ's
  ``pgq.force_tick`` + ``pgq.ticker``, ours ``pgque.force_next_tick`` +
  ``pgque.ticker``) read by a consumer: ``next_batch``, every event fetched
  and decoded by the client (``get_batch_events``), ``finish_batch``, commit,
  one transaction per batch until ``next_batch`` returns NULL.

Both engines run each measurement side by side, so that they see the same
load on a busy machine: a publishing block (e.g. 5,000 single-event
transactions) is cut into pieces (10 by default) run alternately in the two
databases, the engine going first alternating too, and the pieces' times are
added up per engine; the rounds rotate the order of the primitives, and the
queue's current event table is truncated and a CHECKPOINT taken before each
block. The drain is done by one consumer per engine in lockstep, one batch
each in turn; it is repeated by several consumers subscribed to the same
backlog, after one warm-up consumer. Reported per primitive: median events/s,
server backend CPU per event (from ``/proc/<pid>/schedstat``; the server must
run on this machine), and the sa_pgque/PgQ ratios of both (medians of the
per-round ratios; the CPU ratio is PgQ's CPU per event over ours, so above 1
means sa_pgque uses less).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench._server import database, engine_database, server
from bench.engine import Result, Sample, payloads, timed, try_checkpoint

EVENT_TYPE = "bench"
ENGINES = ("pgq", "pgque")
"""Schema names: PgQ's, and sa_pgque's (which keeps PgQ's function names)."""

LABEL = {"pgq": "PgQ (C)", "pgque": "sa_pgque"}

SINGLE = "insert_event, 1 per tx"
CLIENT = "insert_event, 1000 per tx, client"
SERVER = "insert_event, 1000 per tx, server"
DRAIN = "drain (next_batch/get_batch_events/finish_batch)"


@contextmanager
def pgq_database(dsn: str) -> Iterator[str]:
    """Yield the conninfo of a fresh database with ``create extension pgq``; drop it afterwards."""
    server_dsn = server(dsn)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        available = admin.execute("select 1 from pg_available_extensions where name = 'pgq'").fetchone()
    if available is None:
        raise SystemExit(
            "the server has no pgq extension; install PgQ for it (Debian: apt-get install postgresql-15-pgq3)"
        )
    with database(server_dsn, "sa_pgque_bench_pgq") as pgq_dsn:
        with psycopg.connect(pgq_dsn, autocommit=True) as conn:
            conn.execute("create extension pgq")
        yield pgq_dsn


@dataclass
class Pair:
    """One primitive measured in both engines, one value per round each."""

    name: str
    results: dict[str, Result] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.results = {engine: Result(f"{self.name} [{engine}]") for engine in ENGINES}

    def rate_ratios(self) -> list[float]:
        ours, theirs = self.results["pgque"].rates, self.results["pgq"].rates
        return [a / b for a, b in zip(ours, theirs, strict=True)]

    def cpu_ratios(self) -> list[float]:
        ours, theirs = self.results["pgque"].server_us, self.results["pgq"].server_us
        return [b / a for a, b in zip(ours, theirs, strict=True)]


def current_table(conn: psycopg.Connection[Any], schema: str, queue: str) -> str:
    row = conn.execute(f"select {schema}.current_event_table(%s)", (queue,)).fetchone()
    assert row is not None
    return str(row[0])


# --- publishing -------------------------------------------------------------


def single_block(conn: psycopg.Connection[Any], schema: str, queue: str, data: str, n: int) -> Callable[[], None]:
    """``n`` calls of insert_event, each in its own (autocommit) transaction."""
    query = f"select {schema}.insert_event(%b, %b, %b)"

    def body() -> None:
        cur = conn.cursor(binary=True)
        for _ in range(n):
            cur.execute(query, (queue, EVENT_TYPE, data), prepare=True)
            cur.fetchone()

    return body


def client_block(
    conn: psycopg.Connection[Any], schema: str, queue: str, data: str, txs: int, per_tx: int
) -> Callable[[], None]:
    """``txs`` transactions of ``per_tx`` insert_event statements, one round trip each."""
    query = f"select {schema}.insert_event(%b, %b, %b)"

    def body() -> None:
        cur = conn.cursor(binary=True)
        for _ in range(txs):
            with conn.transaction():
                for _ in range(per_tx):
                    cur.execute(query, (queue, EVENT_TYPE, data), prepare=True)
                    cur.fetchone()

    return body


def server_query(schema: str) -> str:
    return f"select count({schema}.insert_event(%b, %b, %b)) from generate_series(1, %b::integer)"


def server_block(
    conn: psycopg.Connection[Any], schema: str, queue: str, data: str, txs: int, per_tx: int
) -> Callable[[], None]:
    """``txs`` statements (transactions), each making the server call insert_event ``per_tx`` times."""
    query = server_query(schema)

    def body() -> None:
        cur = conn.cursor(binary=True)
        for _ in range(txs):
            cur.execute(query, (queue, EVENT_TYPE, data, per_tx), prepare=True)
            row = cur.fetchone()
            assert row is not None and row[0] == per_tx

    return body


def add(a: Sample | None, b: Sample) -> Sample:
    """The sum of two samples (server CPU unknown if unknown in either)."""
    if a is None:
        return b
    server = None if a.server is None or b.server is None else a.server + b.server
    return Sample(a.wall + b.wall, server, a.client + b.client)


def chunks(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` nearly equal positive sizes (fewer parts if total is small)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def measure_publish(conns: dict[str, psycopg.Connection[Any]], args: argparse.Namespace) -> list[Pair]:
    data = payloads(1)[0]
    queues = {SINGLE: "q_single", CLIENT: "q_client", SERVER: "q_server"}

    def block(engine: str, name: str, size: int) -> Callable[[], None]:
        """``size`` units of the primitive: transactions (single, client loop) or statements (server loop)."""
        conn, queue = conns[engine], queues[name]
        if name == SINGLE:
            return single_block(conn, engine, queue, data, size)
        if name == CLIENT:
            return client_block(conn, engine, queue, data, size, args.per_tx)
        return server_block(conn, engine, queue, data, size, args.per_tx)

    units = {SINGLE: args.single, CLIENT: args.txs, SERVER: args.txs}
    per_unit = {SINGLE: 1, CLIENT: args.per_tx, SERVER: args.per_tx}
    for engine in ENGINES:  # warm-up: statements prepared, plans and caches filled
        block(engine, SINGLE, 200)()
        block(engine, CLIENT, 2)()
        block(engine, SERVER, 5)()

    names = [SINGLE, CLIENT, SERVER]
    pairs = {name: Pair(name) for name in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            for engine, conn in conns.items():
                conn.execute(f"truncate {current_table(conn, engine, queues[name])}")
            try_checkpoint(conns["pgque"])
            totals: dict[str, Sample | None] = dict.fromkeys(ENGINES)
            for i, size in enumerate(chunks(units[name], args.chunks)):
                for engine in ENGINES if (rnd + i) % 2 == 0 else ENGINES[::-1]:
                    totals[engine] = add(totals[engine], timed(conns[engine], block(engine, name, size)))
            line = []
            for engine in ENGINES:
                total = totals[engine]
                assert total is not None
                rate = pairs[name].results[engine].add(units[name] * per_unit[name], total)
                line.append(f"{engine} {rate:>10,.0f}")
            print(f"  round {rnd + 1} {name:<34} events/s: {'  '.join(line)}", flush=True)
    return list(pairs.values())


# --- draining ---------------------------------------------------------------


def produce_backlog(conn: psycopg.Connection[Any], schema: str, queue: str, events: int, tick_events: int) -> int:
    """``events`` events in ticks of ``tick_events`` (server-side insert_event loops); ticks written."""
    data = payloads(1)[0]
    cur = conn.cursor(binary=True)
    force = "pgq.force_tick" if schema == "pgq" else "pgque.force_next_tick"
    ticks = sent = 0
    while sent < events:
        n = min(tick_events, events - sent)
        for start in range(0, n, 1000):
            cur.execute(server_query(schema), (queue, EVENT_TYPE, data, min(1000, n - start)), prepare=True)
        sent += n
        conn.execute(f"select {force}(%s)", (queue,))
        tick = conn.execute(f"select {schema}.ticker(%s)", (queue,)).fetchone()
        assert tick is not None and tick[0] is not None, "the ticker wrote no tick"
        ticks += 1
    return ticks


class Drainer:
    """A consumer of one engine, reading its backlog one batch (transaction) at a time."""

    def __init__(self, conninfo: str, schema: str, queue: str, consumer: str) -> None:
        self.conn = psycopg.connect(conninfo)
        self.cur = self.conn.cursor(binary=True)
        self.schema, self.queue, self.consumer = schema, queue, consumer
        self.events = self.batches = 0
        self.done = False
        self.total: Sample | None = None

    def step(self) -> None:
        """next_batch, get_batch_events (every row fetched and decoded), finish_batch, commit; timed."""

        def body() -> None:
            s = self.schema
            self.cur.execute(f"select {s}.next_batch(%b, %b)", (self.queue, self.consumer), prepare=True)
            row = self.cur.fetchone()
            batch_id = row[0] if row else None
            if batch_id is None:
                self.conn.commit()
                self.done = True
                return
            self.cur.execute(f"select * from {s}.get_batch_events(%b)", (batch_id,), prepare=True)
            self.events += len(self.cur.fetchall())
            self.cur.execute(f"select {s}.finish_batch(%b)", (batch_id,), prepare=True)
            self.conn.commit()
            self.batches += 1

        self.total = add(self.total, timed(self.conn, body))


def drain_side_by_side(urls: dict[str, str], consumer: str, first: int) -> dict[str, Drainer]:
    """Both engines' consumers drain in lockstep, one batch each in turn (the engine going first alternating)."""
    drainers = {engine: Drainer(urls[engine], engine, "q_drain", consumer) for engine in ENGINES}
    try:
        step = first
        while not all(d.done for d in drainers.values()):
            for engine in ENGINES if step % 2 == 0 else ENGINES[::-1]:
                if not drainers[engine].done:
                    drainers[engine].step()
            step += 1
    finally:
        for drainer in drainers.values():
            drainer.conn.close()
    return drainers


def measure_drain(conns: dict[str, psycopg.Connection[Any]], urls: dict[str, str], args: argparse.Namespace) -> Pair:
    consumers = ["warmup"] + [f"d{i + 1}" for i in range(args.drain_rounds)]
    for engine, conn in conns.items():
        for consumer in consumers:
            conn.execute(f"select {engine}.register_consumer('q_drain', %s)", (consumer,))
        start = time.perf_counter()
        ticks = produce_backlog(conn, engine, "q_drain", args.drain_events, args.tick_events)
        print(
            f"  {engine}: produced {args.drain_events:,} events in {ticks} ticks ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    try_checkpoint(conns["pgque"])

    pair = Pair(DRAIN)
    for rnd, consumer in enumerate(consumers):
        drainers = drain_side_by_side(urls, consumer, rnd)
        line = []
        for engine, drainer in drainers.items():
            assert drainer.events == args.drain_events, f"{engine}/{consumer} drained {drainer.events} events"
            assert drainer.total is not None
            rate = drainer.events / drainer.total.wall
            if consumer != "warmup":
                pair.results[engine].add(drainer.events, drainer.total)
            line.append(f"{engine} {rate:>10,.0f} ({drainer.batches} batches)")
        print(f"  drain {consumer:<7} events/s: {'  '.join(line)}", flush=True)
    return pair


# --- report -----------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(header: str, args: argparse.Namespace, pairs: list[Pair]) -> None:
    print()
    print(header)
    print(
        f"   insert_event: {args.single} single-event transactions per block, {args.txs} transactions of"
        f" {args.per_tx} per loop block, {args.rounds} rounds of {args.chunks} alternating pieces;"
        f" drain of {args.drain_events:,} events"
        f" in ticks of {args.tick_events:,}, {args.drain_rounds} rounds after a warm-up drain"
    )
    print(
        f"   {'primitive':<50}{'PgQ ev/s':>11}{'ours ev/s':>11}{'ratio':>8}"
        f"   server us/ev: {'PgQ':>6}{'ours':>7}{'ratio':>8}"
    )
    for pair in pairs:
        theirs, ours = pair.results["pgq"], pair.results["pgque"]
        rates = pair.rate_ratios()
        cpus = pair.cpu_ratios() if theirs.server_us and ours.server_us else []
        cpu_ratio = f"{med(cpus):>8.3f}" if cpus else f"{'-':>8}"
        print(
            f"   {pair.name:<50}{theirs.median:>11,.0f}{ours.median:>11,.0f}{med(rates):>8.3f}"
            f"   {'':>14}{med(theirs.server_us):>6.2f}{med(ours.server_us):>7.2f}{cpu_ratio}"
        )
    print("   ratio: sa_pgque/PgQ events/s and PgQ/sa_pgque server CPU per event (medians of per-round ratios),")
    print("   so above 1 means sa_pgque is faster; per-round ranges:")
    for pair in pairs:
        rates = pair.rate_ratios()
        cpus = pair.cpu_ratios() if pair.results["pgq"].server_us and pair.results["pgque"].server_us else []
        cpu_range = f"[{min(cpus):.3f}..{max(cpus):.3f}]" if cpus else "-"
        print(f"   {pair.name:<50}events/s [{min(rates):.3f}..{max(rates):.3f}]   cpu {cpu_range}")


def machine_note() -> str:
    loadavg = Path("/proc/loadavg")
    load = " ".join(loadavg.read_text().split()[:3]) if loadavg.exists() else "?"
    return f"{platform.node()}: {os.cpu_count()} CPUs, load average {load}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--dsn", default="postgresql:///postgres", help="server with the pgq extension (default postgresql:///postgres)"
    )
    parser.add_argument("--single", type=int, default=5000, help="single-event transactions per block (5000)")
    parser.add_argument("--txs", type=int, default=200, help="transactions per loop block (200)")
    parser.add_argument("--per-tx", type=int, default=1000, help="insert_event calls per loop transaction (1000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the publishing blocks (5)")
    parser.add_argument(
        "--chunks", type=int, default=10, help="pieces of each block, run alternately in the two databases (10)"
    )
    parser.add_argument("--drain-events", type=int, default=500_000, help="backlog size for the drain (500,000)")
    parser.add_argument("--tick-events", type=int, default=10_000, help="events per tick in the backlog (10,000)")
    parser.add_argument("--drain-rounds", type=int, default=3, help="measured drains (consumers) per engine (3)")
    parser.add_argument("--skip-publish", action="store_true", help="measure the drain only")
    parser.add_argument("--skip-drain", action="store_true", help="measure publishing only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"machine: {machine_note()}", flush=True)
    with (
        pgq_database(args.dsn) as pgq_url,
        engine_database(args.dsn) as ours_url,
        psycopg.connect(pgq_url, autocommit=True) as pgq_conn,
        psycopg.connect(ours_url, autocommit=True) as ours_conn,
    ):
        urls = {"pgq": pgq_url, "pgque": ours_url}
        conns = {"pgq": pgq_conn, "pgque": ours_conn}
        version = ours_conn.execute("select version()").fetchone()
        pgq_version = pgq_conn.execute("select extversion from pg_extension where extname = 'pgq'").fetchone()
        settings = ours_conn.execute(
            "select string_agg(name || '=' || setting, ', ' order by name) from pg_settings"
            " where name in ('shared_buffers', 'synchronous_commit', 'fsync', 'work_mem', 'jit')"
        ).fetchone()
        header = (
            f"== {version[0] if version else '?'}\n"
            f"   PgQ {pgq_version[0] if pgq_version else '?'} (extension pgq) vs sa_pgque;"
            f" settings: {settings[0] if settings else '?'}"
        )
        print(header, flush=True)
        for engine, conn in conns.items():
            for queue in ("q_single", "q_client", "q_server", "q_drain"):
                conn.execute(f"select {engine}.create_queue(%s)", (queue,))

        pairs: list[Pair] = []
        if not args.skip_publish:
            print("publishing:", flush=True)
            pairs += measure_publish(conns, args)
        if not args.skip_drain:
            print("draining:", flush=True)
            pairs.append(measure_drain(conns, urls, args))
        print(f"machine at the end: {machine_note()}")
        report(header, args, pairs)


if __name__ == "__main__":
    main()
