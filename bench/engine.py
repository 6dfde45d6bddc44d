"""Throughput of the queue engine's hot paths against the server's physical insert limit.

Run from the repository root (see bench/README.md):

    python -m bench.engine                               # embedded PostgreSQL 18
    python -m bench.engine --dsn postgresql:///postgres  # an existing server

Everything is measured in one run on one server, in a fresh database with the
engine installed (dropped afterwards):

* ``raw insert``: the physical limit, ``INSERT INTO t (ev_id, ev_time, ev_type,
  ev_data) SELECT nextval(s), now(), $1, x FROM unnest($2::text[]) x`` into a
  table shaped like an event child table (same columns and defaults, ev_txid
  index, fillfactor 100, autovacuum off), one statement and commit per batch;
* ``send_batch text`` / ``send_batch jsonb``: ``pgque.send_batch(q, type,
  payloads)`` with the same payloads and batch size, one call and commit each;
* ``send single`` (and ``raw single insert`` for context): one event per
  transaction;
* ``drain``: a backlog produced in ticks (send_batch + force_next_tick +
  ticker), read by a consumer with ``select * from pgque.receive(q, c,
  2147483647)`` (every row fetched and decoded by the client), then
  ``pgque.ack(batch_id)`` and commit, one transaction per batch, until
  receive returns no row.

The publishing measurements are interleaved in rounds (the order rotates each
round, every table is truncated before each block); the drain is repeated by
several consumers subscribed to the same backlog, after one warm-up consumer.
Medians are reported, ratios are medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench._cpu import backend_cpu
from bench._server import engine_database

RAW_TABLE = "public.bench_raw"
RAW_SEQ = "public.bench_raw_id_seq"
EVENT_TYPE = "bench"


@dataclass
class Sample:
    """Seconds of wall time, server backend CPU (None when unknown) and client CPU."""

    wall: float
    server: float | None
    client: float


@dataclass
class Result:
    """Events per second of one measurement, one value per round (plus CPU per event when known)."""

    name: str
    rates: list[float] = field(default_factory=list)
    server_us: list[float] = field(default_factory=list)
    client_us: list[float] = field(default_factory=list)

    def add(self, n_events: int, sample: Sample) -> float:
        rate = n_events / sample.wall
        self.rates.append(rate)
        if sample.server is not None:
            self.server_us.append(sample.server / n_events * 1e6)
        self.client_us.append(sample.client / n_events * 1e6)
        return rate

    @staticmethod
    def _med(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}" if values else "-"

    @property
    def cpu(self) -> str:
        """Median server and client CPU microseconds per event."""
        return f"{self._med(self.server_us):>7} {self._med(self.client_us):>7}"

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def best(self) -> float:
        return max(self.rates)


def payloads(n: int) -> list[str]:
    """``n`` distinct JSON documents of about 100 bytes, already in jsonb's canonical text form."""
    return [
        f'{{"id": {i}, "sku": "SKU-{i % 9973:05d}", "note": "benchmark payload", '
        f'"total": {(i * 37) % 10000}.25, "customer": "customer-{i % 1013:04d}"}}'
        for i in range(n)
    ]


def setup(conn: psycopg.Connection[Any], queues: Sequence[str]) -> None:
    """Queues, and the raw event-shaped table with its sequence."""
    for queue in queues:
        conn.execute("select pgque.create_queue(%s)", (queue,))
    conn.execute(f"create sequence {RAW_SEQ} as bigint")
    conn.execute(
        f"create table {RAW_TABLE} (like pgque.event_template including defaults)"
        " with (fillfactor = 100, autovacuum_enabled = off, toast.autovacuum_enabled = off)"
    )
    conn.execute(f"alter table {RAW_TABLE} alter column ev_id set default nextval('{RAW_SEQ}')")
    conn.execute(f"create index bench_raw_txid_idx on {RAW_TABLE} (ev_txid)")


def current_table(conn: psycopg.Connection[Any], queue: str) -> str:
    row = conn.execute("select pgque.current_event_table(%s)", (queue,)).fetchone()
    assert row is not None
    return str(row[0])


def try_checkpoint(conn: psycopg.Connection[Any]) -> None:
    """CHECKPOINT when allowed, so that no block pays for a checkpoint started by another."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("checkpoint")


def timed(conn: psycopg.Connection[Any], body: Callable[[], None]) -> Sample:
    """Run ``body``, measuring wall time and the CPU of this process and of ``conn``'s backend."""
    server = backend_cpu(conn)
    s0, c0, t0 = server(), time.process_time(), time.perf_counter()
    body()
    wall, client, s1 = time.perf_counter() - t0, time.process_time() - c0, server()
    return Sample(wall, None if s0 is None or s1 is None else s1 - s0, client)


# --- publishing -------------------------------------------------------------


def batch_block(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...], calls: int) -> Callable[[], None]:
    """``calls`` executions of ``query``, each in its own (autocommit) transaction."""

    def body() -> None:
        cur = conn.cursor(binary=True)
        for _ in range(calls):
            cur.execute(query, params, prepare=True)
            if cur.description is not None:
                cur.fetchall()

    return body


def measure_publish(conn: psycopg.Connection[Any], args: argparse.Namespace) -> dict[str, Result]:
    """The five publishing blocks, warmed up, then measured in interleaved rounds."""
    data = payloads(args.batch_size)
    q_text, q_jsonb, q_single = "bench_text", "bench_jsonb", "bench_single"
    raw_insert = (
        f"insert into {RAW_TABLE} (ev_id, ev_time, ev_type, ev_data)"
        f" select nextval('{RAW_SEQ}'), now(), %b, x from unnest(%b::text[]) x"
    )
    raw_single = (
        f"insert into {RAW_TABLE} (ev_id, ev_time, ev_type, ev_data) values (nextval('{RAW_SEQ}'), now(), %b, %b)"
    )
    one = data[0]
    blocks: dict[str, tuple[str, int, Callable[[], None]]] = {
        # name: (table to truncate first, events, body)
        "raw insert": (
            RAW_TABLE,
            args.batch_size * args.calls,
            batch_block(conn, raw_insert, (EVENT_TYPE, data), args.calls),
        ),
        "send_batch text": (
            current_table(conn, q_text),
            args.batch_size * args.calls,
            batch_block(conn, "select pgque.send_batch(%b, %b, %b::text[])", (q_text, EVENT_TYPE, data), args.calls),
        ),
        "send_batch jsonb": (
            current_table(conn, q_jsonb),
            args.batch_size * args.calls,
            batch_block(conn, "select pgque.send_batch(%b, %b, %b::jsonb[])", (q_jsonb, EVENT_TYPE, data), args.calls),
        ),
        "send single": (
            current_table(conn, q_single),
            args.single,
            batch_block(conn, "select pgque.send(%b, %b::text)", (q_single, one), args.single),
        ),
        "raw single insert": (RAW_TABLE, args.single, batch_block(conn, raw_single, (EVENT_TYPE, one), args.single)),
    }
    names = list(blocks)

    # Warm-up: every statement prepared and run a few times, caches filled.
    for table, _, _ in blocks.values():
        conn.execute(f"truncate {table}")
    for query, params in [
        (raw_insert, (EVENT_TYPE, data)),
        ("select pgque.send_batch(%b, %b, %b::text[])", (q_text, EVENT_TYPE, data)),
        ("select pgque.send_batch(%b, %b, %b::jsonb[])", (q_jsonb, EVENT_TYPE, data)),
    ]:
        batch_block(conn, query, params, max(10, args.calls // 10))()
    batch_block(conn, "select pgque.send(%b, %b::text)", (q_single, one), 200)()
    batch_block(conn, raw_single, (EVENT_TYPE, one), 200)()

    results = {name: Result(name) for name in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            table, n_events, body = blocks[name]
            conn.execute(f"truncate {table}")
            try_checkpoint(conn)
            rate = results[name].add(n_events, timed(conn, body))
            print(f"  round {rnd + 1} {name:<18} {rate:>12,.0f} events/s", flush=True)
    return results


# --- draining ---------------------------------------------------------------


def produce_backlog(conn: psycopg.Connection[Any], queue: str, events: int, tick_events: int, batch_size: int) -> int:
    """``events`` events in ticks of ``tick_events`` (send_batch calls of ``batch_size``); ticks written."""
    data = payloads(batch_size)
    cur = conn.cursor(binary=True)
    ticks = 0
    sent = 0
    while sent < events:
        in_tick = 0
        while in_tick < tick_events and sent < events:
            n = min(batch_size, tick_events - in_tick, events - sent)
            cur.execute("select pgque.send_batch(%b, %b, %b::text[])", (queue, EVENT_TYPE, data[:n]), prepare=True)
            in_tick += n
            sent += n
        conn.execute("select pgque.force_next_tick(%s)", (queue,))
        tick = conn.execute("select pgque.ticker(%s)", (queue,)).fetchone()
        assert tick is not None and tick[0] is not None, "the ticker wrote no tick"
        ticks += 1
    return ticks


def drain(conninfo: str, queue: str, consumer: str, decode: bool = True) -> tuple[int, int, Sample]:
    """Receive and ack every batch as a client would; (events, batches, timings).

    Every row is transferred to the client. With ``decode`` (the measurement)
    psycopg turns every row into a Python tuple (``fetchall``); without it
    the rows stay in libpq's result and only the batch id is read, which
    shows what the Python layer costs.
    """
    with psycopg.connect(conninfo) as conn:
        cur = conn.cursor(binary=True)
        events = batches = 0

        def body() -> None:
            nonlocal events, batches
            while True:
                cur.execute("select * from pgque.receive(%b, %b, 2147483647)", (queue, consumer), prepare=True)
                if decode:
                    rows = cur.fetchall()
                    n, batch_id = len(rows), rows[0][1] if rows else None
                else:
                    result = cur.pgresult
                    assert result is not None
                    n = result.ntuples
                    value = result.get_value(0, 1) if n else None
                    batch_id = int.from_bytes(value, "big", signed=True) if value is not None else None
                if not n:
                    conn.commit()
                    break
                cur.execute("select pgque.ack(%b)", (batch_id,), prepare=True)
                conn.commit()
                events += n
                batches += 1

        sample = timed(conn, body)
        return events, batches, sample


def measure_drain(conn: psycopg.Connection[Any], conninfo: str, args: argparse.Namespace) -> list[Result]:
    """Decoded drains, undecoded drains (interleaved) and the warm-up drain, as Results."""
    queue = "bench_drain"
    runs = [("warm-up", "warmup", True)]
    for i in range(args.drain_rounds):
        runs += [("drain", f"d{i + 1}", True), ("drain, rows not decoded", f"r{i + 1}", False)]
    for _, consumer, _ in runs:
        conn.execute("select pgque.subscribe(%s, %s)", (queue, consumer))
    start = time.perf_counter()
    ticks = produce_backlog(conn, queue, args.drain_events, args.tick_events, args.batch_size)
    print(f"  produced {args.drain_events:,} events in {ticks} ticks ({time.perf_counter() - start:.1f} s)", flush=True)
    try_checkpoint(conn)

    results: dict[str, Result] = {}
    for name, consumer, decode in runs:
        events, batches, sample = drain(conninfo, queue, consumer, decode)
        assert events == args.drain_events, f"{consumer} drained {events} events, expected {args.drain_events}"
        rate = results.setdefault(name, Result(name)).add(events, sample)
        print(f"  {name:<24} {consumer:<7} {batches} batches {rate:>12,.0f} events/s", flush=True)
    return [results["drain"], results["drain, rows not decoded"], results["warm-up"]]


# --- report -----------------------------------------------------------------


def paired_ratio(a: Result, b: Result) -> tuple[float, float, float]:
    """Median, min and max of the per-round ratios a/b."""
    ratios = [x / y for x, y in zip(a.rates, b.rates, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def report(server: str, args: argparse.Namespace, pub: dict[str, Result], drains: list[Result]) -> None:
    print()
    print(f"== {server}")
    print(
        f"   batch size {args.batch_size}, {args.calls} calls per block, {args.single} single sends per block,"
        f" {args.rounds} interleaved rounds; drain of {args.drain_events:,} events in ticks of {args.tick_events:,},"
        f" {args.drain_rounds} rounds after a warm-up drain"
    )
    print(f"   {'measurement':<34}{'median ev/s':>13}{'best ev/s':>13}   cpu us/ev: server client")
    for res in [*pub.values(), *drains]:
        print(f"   {res.name:<34}{res.median:>13,.0f}{res.best:>13,.0f}   {'':>10}{res.cpu}")
    if not pub:
        return
    raw = pub["raw insert"]
    print("   ratios (median of per-round ratios [min..max]):")
    for name in ["send_batch text", "send_batch jsonb"]:
        med, lo, hi = paired_ratio(pub[name], raw)
        print(f"   {name + ' / raw insert':<34}{med:>8.3f}   [{lo:.3f}..{hi:.3f}]")
    med, lo, hi = paired_ratio(pub["send single"], pub["raw single insert"])
    print(f"   {'send single / raw single insert':<34}{med:>8.3f}   [{lo:.3f}..{hi:.3f}]")
    print(f"   {'drain / raw insert (medians)':<34}{drains[0].median / raw.median:>8.3f}")
    print(f"   {'drain, not decoded / raw insert':<34}{drains[1].median / raw.median:>8.3f}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dsn", help="server to benchmark on (libpq DSN or URL); default: an embedded PostgreSQL")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per send_batch / raw insert (1000)")
    parser.add_argument("--calls", type=int, default=200, help="batch calls per measured block (200)")
    parser.add_argument("--single", type=int, default=5000, help="single-event transactions per block (5000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the publishing blocks (5)")
    parser.add_argument("--drain-events", type=int, default=1_000_000, help="backlog size for the drain (1,000,000)")
    parser.add_argument("--tick-events", type=int, default=20_000, help="events per tick in the backlog (20,000)")
    parser.add_argument("--drain-rounds", type=int, default=3, help="measured drains (consumers) (3)")
    parser.add_argument("--skip-publish", action="store_true", help="measure the drain only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with engine_database(args.dsn) as conninfo, psycopg.connect(conninfo, autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()
        settings = conn.execute(
            "select string_agg(name || '=' || setting, ', ' order by name) from pg_settings"
            " where name in ('shared_buffers', 'synchronous_commit', 'fsync', 'work_mem', 'jit')"
        ).fetchone()
        server = f"{version[0] if version else '?'}\n   settings: {settings[0] if settings else '?'}"
        print(f"server: {server}", flush=True)
        setup(conn, ["bench_text", "bench_jsonb", "bench_single", "bench_drain"])
        if args.skip_publish:
            pub: dict[str, Result] = {}
        else:
            print("publishing:", flush=True)
            pub = measure_publish(conn, args)
        print("draining:", flush=True)
        drains = measure_drain(conn, conninfo, args)
        report(server, args, pub, drains)


if __name__ == "__main__":
    main()
