"""Publishing cost: raw psycopg vs publish() immediate vs publish() buffered.

Each variant publishes N events (default 10,000) inside ONE transaction:

  (a) raw psycopg: ``select pgque.send(%s, %s, %s::jsonb)`` per event, prepared;
  (b) ``sa_pgque.publish(session, ...)``: one statement per event, through the ORM Session;
  (c) ``sa_pgque.publish(session, ..., buffer=True)``: buffered, one send_batch at commit.

Rounds are interleaved (a, b, c, a, b, c, ...) and the best round of each is
kept, so machine noise hits all three alike. Prints events/s and the ratios
the targets are stated in: time(b)/time(a) (target <= 1.2) and
speed(c)/speed(a) (target >= 10).

    python bench/publish.py [--dsn URL] [--events 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sa_pgque as pgque
from bench._server import engine_database, sa_url


def payload(i: int) -> dict[str, object]:
    return {"order_id": i, "total": 99.95, "items": ["book", "pen"]}


def raw_psycopg(url: str, n: int) -> Callable[[], None]:
    conn = psycopg.connect(url)

    def run() -> None:
        with conn.transaction():
            for i in range(n):
                conn.execute(
                    "select pgque.send(%s, %s, %s::jsonb)",
                    ("bench", "order.created", json.dumps(payload(i))),
                    prepare=True,
                )

    return run


def publish_immediate(sessions: sessionmaker[Session], n: int) -> Callable[[], None]:
    def run() -> None:
        with sessions.begin() as session:
            for i in range(n):
                pgque.publish(session, "bench", payload(i), type="order.created")

    return run


def publish_buffered(sessions: sessionmaker[Session], n: int) -> Callable[[], None]:
    def run() -> None:
        with sessions.begin() as session:
            for i in range(n):
                pgque.publish(session, "bench", payload(i), type="order.created", buffer=True)

    return run


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark database on (default: embedded)")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with engine_database(args.dsn) as url:
        engine = create_engine(sa_url(url), poolclass=QueuePool)
        sessions = sessionmaker(engine)
        with sessions.begin() as session:
            pgque.create_queue(session, "bench")
        variants = {
            "(a) raw psycopg send": raw_psycopg(url, args.events),
            "(b) publish immediate": publish_immediate(sessions, args.events),
            "(c) publish buffered": publish_buffered(sessions, args.events),
        }
        for run in variants.values():  # warm up: plan caches, compiled statement cache
            run()
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(args.rounds):
            for name, run in variants.items():
                best[name] = min(best[name], timed(run))
        engine.dispose()

    print(f"{args.events} events per transaction, best of {args.rounds} interleaved rounds")
    for name, seconds in best.items():
        print(f"  {name:<24} {args.events / seconds:>10,.0f} events/s  ({seconds * 1000:.0f} ms)")
    a, b, c = best.values()
    print(f"  time (b) / time (a)      {b / a:>10.2f}   (target <= 1.2)")
    print(f"  speed (c) / speed (a)    {a / c:>10.2f}   (target >= 10)")


if __name__ == "__main__":
    main()
