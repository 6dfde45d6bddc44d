"""Per-batch cost of the engine's bookkeeping while a snapshot is held: it grows with every batch.

Run from the repository root (see bench/README.md):

    python -m bench.held_bookkeeping                               # embedded PostgreSQL
    python -m bench.held_bookkeeping --dsn postgresql:///postgres  # an existing server

The event tables never get dead tuples, but each batch updates the
consumer's ``pgque.subscription`` row (``next_batch`` opens the batch,
``ack`` finishes it). While a ``REPEATABLE READ`` transaction holds the xmin
horizon, none of those row versions can be pruned, so every lookup of the
row walks all the versions made since the hold began.

The script runs ``--cycles`` (10,000) tiny batches on one psycopg connection,
each ``send`` (1 event), ``force_next_tick`` + ``ticker``, then ``receive`` +
``ack`` in one transaction; first on a queue with no holder, then on a fresh
queue while another connection holds ``BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT 1``. Every fifth of the run it prints wall time and the backend's CPU
time per cycle (from ``/proc``, when the server runs on this machine).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import psycopg

from bench._cpu import backend_cpu
from bench._server import engine_database, server_version


def cycles(url: str, queue: str, count: int, held: bool) -> list[tuple[int, float, float | None]]:
    """(cycles done, wall ms per cycle, server CPU ms per cycle) for every fifth of ``count``."""
    points: list[tuple[int, float, float | None]] = []
    step = max(1, count // 5)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pgque.create_queue(%s)", (queue,))
        conn.execute("select pgque.subscribe(%s, 'c')", (queue,))
        holder: psycopg.Connection[Any] | None = None
        if held:
            holder = psycopg.connect(url)
            holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            holder.execute("select 1")
        try:
            cpu = backend_cpu(conn)
            t0, c0 = time.perf_counter(), cpu()
            for i in range(1, count + 1):
                conn.execute("select pgque.send(%s, 'x')", (queue,), prepare=True)
                conn.execute("select pgque.force_next_tick(%s)", (queue,), prepare=True)
                conn.execute("select pgque.ticker(%s)", (queue,), prepare=True)
                with conn.transaction():
                    rows = conn.execute(
                        "select batch_id from pgque.receive(%s, 'c', 100)", (queue,), prepare=True
                    ).fetchall()
                    if rows:
                        conn.execute("select pgque.ack(%s)", (rows[0][0],), prepare=True)
                if i % step == 0:
                    t1, c1 = time.perf_counter(), cpu()
                    server = (c1 - c0) / step * 1000 if c0 is not None and c1 is not None else None
                    points.append((i, (t1 - t0) / step * 1000, server))
                    print(
                        f"  {'held' if held else 'free'} {i:>7,} cycles: {points[-1][1]:7.2f} ms/cycle,"
                        f" server CPU {server if server is not None else float('nan'):7.2f} ms/cycle",
                        flush=True,
                    )
                    t0, c0 = t1, c1
        finally:
            if holder is not None:
                holder.close()
    return points


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark database on (default: embedded PostgreSQL)")
    parser.add_argument("--cycles", type=int, default=10_000, help="batches per condition (10,000)")
    args = parser.parse_args(argv)
    print(f"held_bookkeeping: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with engine_database(args.dsn, prefix="sa_pgque_bench_held") as url:
        version = server_version(url)
        free = cycles(url, "free", args.cycles, held=False)
        held = cycles(url, "held", args.cycles, held=True)
    print(f"\n== held_bookkeeping: {version}; one-event batches; ms per batch cycle (wall / server CPU)")
    print(f"  {'cycles':>8}{'no holder':>22}{'snapshot held':>22}")
    for (n, fw, fs), (_, hw, hs) in zip(free, held, strict=True):
        print(f"  {n:>8,}{fw:>12.2f} / {fs or float('nan'):5.2f}{hw:>12.2f} / {hs or float('nan'):5.2f}")


if __name__ == "__main__":
    main()
