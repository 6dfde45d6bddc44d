"""How draining a backlog scales with the number of cooperative subconsumers.

Run from the repository root (see bench/README.md):

    python -m bench.coop_scaling                               # embedded PostgreSQL
    python -m bench.coop_scaling --dsn postgresql:///postgres  # an existing server

A fixed backlog (default 20,000 events in 400 ticks, so 400 windows of 50) is
drained by 1, 2, 4 and 8 members of one cooperative consumer, each a thread
with its own psycopg connection (autocommit off). Per message a handler runs:
``time.sleep`` of the given cost (default 2 ms), and a zero-cost handler for
comparison. Two transaction shapes are measured side by side:

* ``one tx``: ``receive_coop`` -> handler for every message -> ``ack`` ->
  commit, one transaction per batch (the exactly-once recipe of spec 3.4);
* ``split``: ``receive_coop`` and commit (the member now owns the window,
  the group cursor has moved), then handler for every message -> ``ack`` ->
  commit.

Spec 3.7: every cooperative allocation keeps the group's main subscription
row locked until the allocating transaction ends. In the ``one tx`` shape a
sibling therefore cannot allocate while another member's handler runs, and
the group processes one window at a time whatever the number of members. In
the ``split`` shape the lock is held only for the allocation itself, so the
handlers of different members overlap; the price is that a member dying
between its two transactions leaves its window to stale takeover
(``dead_interval``), at least once rather than exactly once.

Every run uses a fresh queue and checks that each event was handled exactly
once. The database is created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from bench._server import engine_database

SHAPES = ("one tx", "split")


@dataclass(frozen=True)
class Run:
    members: int
    handler_ms: float
    shape: str
    seconds: float
    events: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def produce_backlog(url: str, queue: str, members: int, events: int, ticks: int) -> None:
    """Create the queue and its members, then ``events`` events in ``ticks`` ticks."""
    per_tick = events // ticks
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pgque.create_queue(%s)", (queue,))
        for n in range(members):
            conn.execute("select pgque.register_subconsumer(%s, 'group', %s)", (queue, f"m{n}"))
        for t in range(ticks):
            payloads = [f'{{"tick": {t}, "n": {k}}}' for k in range(per_tick)]
            conn.execute("select pgque.send_batch(%s, 'bench', %s::text[])", (queue, payloads))
            conn.execute("select pgque.force_next_tick(%s)", (queue,))
            conn.execute("select pgque.ticker(%s)", (queue,))


def drain(url: str, queue: str, members: int, handler_ms: float, shape: str) -> tuple[float, list[int]]:
    """Members drain the backlog; returns the elapsed seconds and every handled event id."""
    cost = handler_ms / 1000.0
    conns = [psycopg.connect(url, autocommit=False) for _ in range(members)]
    handled: list[list[int]] = [[] for _ in range(members)]
    errors: list[BaseException] = []
    start = threading.Barrier(members + 1)

    def work(n: int) -> None:
        conn = conns[n]
        receive = "select msg_id, batch_id from pgque.receive_coop(%s, 'group', %s, null)"
        try:
            start.wait()
            while True:
                rows = conn.execute(receive, (queue, f"m{n}")).fetchall()
                if not rows:
                    conn.commit()
                    return  # the backlog is fixed: nothing left to allocate
                if shape == "split":
                    conn.commit()
                for msg_id, _batch in rows:
                    if cost:
                        time.sleep(cost)
                    handled[n].append(msg_id)
                conn.execute("select pgque.ack(%s)", (rows[0][1],))
                conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(members)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return elapsed, [i for ids in handled for i in ids]


def measure(url: str, members: int, handler_ms: float, shape: str, events: int, ticks: int) -> Run:
    queue = f"coop_{members}_{int(handler_ms * 1000)}_{shape.replace(' ', '')}"
    produce_backlog(url, queue, members, events, ticks)
    seconds, handled = drain(url, queue, members, handler_ms, shape)
    expected = (events // ticks) * ticks
    if len(handled) != expected or len(set(handled)) != expected:
        raise AssertionError(f"{queue}: handled {len(handled)} ({len(set(handled))} distinct) of {expected}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pgque.unregister_subconsumer(%s, 'group', %s)", (queue, "m0"))
    return Run(members, handler_ms, shape, seconds, expected)


def report(runs: Sequence[Run], handler_ms: float, members: Sequence[int], shapes: Sequence[str]) -> None:
    print(f"\nhandler cost {handler_ms:g} ms per message")
    print(f"{'members':>7} | " + " | ".join(f"{shape + ' ev/s':>13} {'speed-up':>8}" for shape in shapes))
    for n in members:
        cells = []
        for shape in shapes:
            run = next(r for r in runs if (r.members, r.handler_ms, r.shape) == (n, handler_ms, shape))
            base = next(r for r in runs if (r.members, r.handler_ms, r.shape) == (members[0], handler_ms, shape))
            cells.append(f"{run.rate:>13,.0f} {run.rate / base.rate:>7.2f}x")
        print(f"{n:>7} | " + " | ".join(cells))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to use (default: start an embedded PostgreSQL)")
    parser.add_argument("--events", type=int, default=20_000, help="backlog size (default 20000)")
    parser.add_argument("--ticks", type=int, default=400, help="ticks the backlog is spread over (default 400)")
    parser.add_argument("--members", default="1,2,4,8", help="member counts (default 1,2,4,8)")
    parser.add_argument("--handler-ms", type=float, default=2.0, help="handler cost per message (default 2)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="transaction shapes (default: both)")
    args = parser.parse_args(argv)
    members = [int(n) for n in args.members.split(",")]
    shapes = [s.strip() for s in args.shapes.split(",")]
    costs = [args.handler_ms, 0.0] if args.handler_ms else [0.0]

    with engine_database(args.dsn, prefix="sa_pgque_coop") as url:
        with psycopg.connect(url) as conn:
            version = conn.execute("select current_setting('server_version')").fetchone()
        print(
            f"coop_scaling: {args.events} events in {args.ticks} ticks"
            f" ({args.events // args.ticks} per window), PostgreSQL {version[0] if version else '?'}"
        )
        runs = [
            measure(url, n, cost, shape, args.events, args.ticks) for cost in costs for shape in shapes for n in members
        ]
    for cost in costs:
        report(runs, cost, members, shapes)


if __name__ == "__main__":
    main()
