"""Building a batch costs what the batch holds, also while an old transaction is open.

Run from the repository root (see bench/README.md):

    python -m bench.batch_cost                               # embedded PostgreSQL
    python -m bench.batch_cost --dsn postgresql:///postgres  # an existing server
    python -m bench.batch_cost --quick

One queue, one consumer, windows of ``--window`` events (1,000): each
window is one ``send_batch`` of that many events (committed), then a tick
(``force_next_tick`` + ``ticker``, committed). Per window the consumer opens
the batch (``next_batch``), the script runs ``EXPLAIN (ANALYZE, BUFFERS)``
on the batch's own query (``pgque.batch_event_sql(batch_id)``), then times
``select * from pgque.receive(queue, consumer, 2147483647)`` (wall time on
this machine's socket and the backend's CPU time from ``/proc``) and acks.
For contrast, each window also gets ``EXPLAIN (ANALYZE, BUFFERS)`` of the
naive form of the same batch, which reads every event whose txid is at least
the *xmin* of the start tick's snapshot::

    select ... from pgque.event_<q> ev
     where ev.ev_txid >= pg_snapshot_xmin(start) and ev.ev_txid < pg_snapshot_xmax(end)
       and pg_visible_in_snapshot(ev.ev_txid, end) and not pg_visible_in_snapshot(ev.ev_txid, start)

(the same rows; it is what a batch costs when its range starts at the oldest
running transaction.)

Conditions, in this order on one database:

1. ``no old tx``: ``--windows`` windows (20);
2. ``old tx``: a transaction takes a transaction id (``pg_current_xact_id()``,
   ``REPEATABLE READ``) and stays open; ``--age-events`` events (200,000) are
   then produced and consumed in windows (not measured), so the open
   transaction is that many events and ticks old; then ``--windows`` windows
   are measured while it is still open (its id is in every tick's snapshot,
   so every start snapshot's xmin is that old);
3. ``no old tx (again)``: the transaction ends, ``--windows`` more windows.

Medians per condition are printed, and the ratios old tx / no old tx.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench._cpu import backend_cpu
from bench._server import engine_database, server_version

QUEUE = "cost"
CONSUMER = "c"


@dataclass
class Window:
    receive_ms: float
    receive_cpu_ms: float | None
    rows: int
    plan_ms: float
    plan_buffers: int
    naive_ms: float
    naive_buffers: int
    naive_rows: int
    xmin_age: int
    """txids between the start snapshot's xmin and its xmax."""


@dataclass
class Condition:
    name: str
    windows: list[Window] = field(default_factory=list)

    def med(self, attr: str) -> float:
        values = [getattr(w, attr) for w in self.windows if getattr(w, attr) is not None]
        return statistics.median(values) if values else float("nan")


def payloads(n: int) -> list[str]:
    return [json.dumps({"order_id": i, "total": 99.95, "items": ["book", "pen"]}) for i in range(n)]


def produce_window(conn: psycopg.Connection[Any], data: list[str]) -> None:
    conn.execute("select pgque.send_batch(%s, 'bench', %s::text[])", (QUEUE, data), prepare=True)
    conn.commit()
    conn.execute("select pgque.force_next_tick(%s)", (QUEUE,))
    conn.execute("select pgque.ticker(%s)", (QUEUE,))
    conn.commit()


def consume_plain(conn: psycopg.Connection[Any]) -> int:
    rows = conn.execute(
        "select batch_id from pgque.receive(%s, %s, 2147483647)", (QUEUE, CONSUMER), prepare=True
    ).fetchall()
    if rows:
        conn.execute("select pgque.ack(%s)", (rows[0][0],))
    conn.commit()
    return len(rows)


def explain(conn: psycopg.Connection[Any], query: str) -> tuple[float, int, int]:
    """(execution ms, shared buffers hit + read, rows) of ``query``."""
    row = conn.execute("explain (analyze, buffers, format json) " + query).fetchone()
    assert row is not None
    doc = row[0] if isinstance(row[0], list) else json.loads(row[0])
    plan = doc[0]
    top = plan["Plan"]
    buffers = int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
    return float(plan["Execution Time"]), buffers, int(top.get("Actual Rows", 0))


def naive_sql(conn: psycopg.Connection[Any], batch_id: int) -> str:
    row = conn.execute(
        "select q.queue_data_pfx, ta.tick_snapshot::text, tb.tick_snapshot::text"
        "  from pgque.subscription s join pgque.queue q on q.queue_id = s.sub_queue"
        "  join pgque.tick ta on ta.tick_queue = s.sub_queue and ta.tick_id = s.sub_last_tick"
        "  join pgque.tick tb on tb.tick_queue = s.sub_queue and tb.tick_id = s.sub_next_tick"
        " where s.sub_batch = %s",
        (batch_id,),
    ).fetchone()
    assert row is not None
    table, start, end = row
    return (
        f"select ev.ev_id, ev.ev_type, ev.ev_data from {table} ev"
        f" where ev.ev_txid >= pg_snapshot_xmin('{start}'::pg_snapshot)"
        f" and ev.ev_txid < pg_snapshot_xmax('{end}'::pg_snapshot)"
        f" and pg_visible_in_snapshot(ev.ev_txid, '{end}'::pg_snapshot)"
        f" and not pg_visible_in_snapshot(ev.ev_txid, '{start}'::pg_snapshot)"
    )


def measure_window(conn: psycopg.Connection[Any], data: list[str]) -> Window:
    produce_window(conn, data)
    row = conn.execute("select pgque.next_batch(%s, %s)", (QUEUE, CONSUMER)).fetchone()
    assert row is not None and row[0] is not None, "no batch"
    batch_id = int(row[0])
    age = conn.execute(
        "select (pg_snapshot_xmax(ta.tick_snapshot)::text::bigint - pg_snapshot_xmin(ta.tick_snapshot)::text::bigint)"
        "  from pgque.subscription s join pgque.tick ta on ta.tick_queue = s.sub_queue and ta.tick_id = s.sub_last_tick"
        " where s.sub_batch = %s",
        (batch_id,),
    ).fetchone()
    sql_row = conn.execute("select pgque.batch_event_sql(%s)", (batch_id,)).fetchone()
    assert sql_row is not None and age is not None
    plan_ms, plan_buffers, _ = explain(conn, str(sql_row[0]))
    naive_ms, naive_buffers, naive_rows = explain(conn, naive_sql(conn, batch_id))
    cpu = backend_cpu(conn)
    c0, t0 = cpu(), time.perf_counter()
    rows = conn.execute("select * from pgque.receive(%s, %s, 2147483647)", (QUEUE, CONSUMER), prepare=True).fetchall()
    wall, c1 = time.perf_counter() - t0, cpu()
    conn.execute("select pgque.ack(%s)", (batch_id,))
    conn.commit()
    if len(rows) != len(data) or naive_rows != len(data):
        raise RuntimeError(f"window of {len(data)}: receive returned {len(rows)}, the naive query {naive_rows}")
    return Window(
        wall * 1000,
        (c1 - c0) * 1000 if c0 is not None and c1 is not None else None,
        len(rows),
        plan_ms,
        plan_buffers,
        naive_ms,
        naive_buffers,
        naive_rows,
        int(age[0]),
    )


def run(url: str, args: argparse.Namespace) -> list[Condition]:
    data = payloads(args.window)
    conditions = [Condition("no old tx"), Condition("old tx"), Condition("no old tx (again)")]
    with psycopg.connect(url) as conn:
        conn.execute("select pgque.create_queue(%s)", (QUEUE,))
        conn.execute("select pgque.subscribe(%s, %s)", (QUEUE, CONSUMER))
        conn.commit()
        for _ in range(3):  # warm-up: plans, caches, hint bits
            produce_window(conn, data)
            while consume_plain(conn):
                pass
        for _ in range(args.windows):
            conditions[0].windows.append(measure_window(conn, data))
        print(f"  {conditions[0].name}: {args.windows} windows measured", flush=True)

        with psycopg.connect(url) as holder:
            holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            holder.execute("select pg_current_xact_id()")
            started = time.perf_counter()
            for _ in range(args.age_events // args.window):
                produce_window(conn, data)
                while consume_plain(conn):
                    pass
            print(
                f"  old tx open; {args.age_events:,} events produced and consumed in"
                f" {args.age_events // args.window} windows ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            for _ in range(args.windows):
                conditions[1].windows.append(measure_window(conn, data))
            print(f"  {conditions[1].name}: {args.windows} windows measured", flush=True)
            holder.rollback()
        for _ in range(args.windows):
            conditions[2].windows.append(measure_window(conn, data))
        print(f"  {conditions[2].name}: {args.windows} windows measured", flush=True)
    return conditions


def report(conditions: list[Condition], args: argparse.Namespace, version: str) -> None:
    print(
        f"\n== batch_cost: {version}; windows of {args.window:,} events, {args.windows} per condition;"
        f" old tx {args.age_events:,} events / {args.age_events // args.window} ticks old; medians"
    )
    print(
        f"  {'condition':<19}{'xmin age':>10}{'receive ms':>12}{'server CPU ms':>15}{'plan ms':>9}{'buffers':>9}"
        f"{'rows':>7}   {'naive ms':>9}{'buffers':>9}"
    )
    for c in conditions:
        print(
            f"  {c.name:<19}{c.med('xmin_age'):>10,.0f}{c.med('receive_ms'):>12.2f}{c.med('receive_cpu_ms'):>15.2f}"
            f"{c.med('plan_ms'):>9.2f}{c.med('plan_buffers'):>9,.0f}{c.med('rows'):>7,.0f}"
            f"   {c.med('naive_ms'):>9.2f}{c.med('naive_buffers'):>9,.0f}"
        )
    base, old, again = conditions
    for reference in (base, again):

        def ratio(attr: str, reference: Condition = reference) -> str:
            return f"{old.med(attr) / reference.med(attr):.2f}x"

        print(
            f"  old tx / {reference.name + ':':<19} receive {ratio('receive_ms')},"
            f" server CPU {ratio('receive_cpu_ms')},"
            f" batch query {ratio('plan_ms')} (buffers {ratio('plan_buffers')});"
            f" naive query {ratio('naive_ms')} (buffers {ratio('naive_buffers')})"
        )
    print(
        "  (xmin age: txids between the start tick's snapshot xmin and xmax; other sessions' transactions on a"
        " shared server count too)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark database on (default: embedded PostgreSQL)")
    parser.add_argument("--quick", action="store_true", help="--windows 10 --age-events 50000")
    parser.add_argument("--window", type=int, default=1000, help="events per window (1,000)")
    parser.add_argument("--windows", type=int, help="measured windows per condition (20; --quick 10)")
    parser.add_argument(
        "--age-events", type=int, help="events produced while the old tx is open (200,000; --quick 50,000)"
    )
    args = parser.parse_args(argv)
    args.windows = args.windows or (10 if args.quick else 20)
    args.age_events = args.age_events or (50_000 if args.quick else 200_000)
    print(f"batch_cost: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with engine_database(args.dsn, prefix="sa_pgque_bench_cost") as url:
        version = server_version(url)
        conditions = run(url, args)
    report(conditions, args, version)


if __name__ == "__main__":
    main()
