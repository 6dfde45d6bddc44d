"""Events/s against the number of producers and of consumers; plots into bench/results/.

Run from the repository root (see bench/README.md):

    python -m bench.scaling                               # embedded PostgreSQL
    python -m bench.scaling --dsn postgresql:///postgres  # an existing server
    python -m bench.scaling --quick

Every producer and consumer is a process of its own (``spawn``), with its own
connections; all of a point's processes start together (a barrier after
imports and connecting) and the point is timed from the start to the last
one's end. Points are repeated ``--rounds`` times (2) and the median is
plotted.

* **Producers** (1, 2, 4, 8): each commits ``sa_pgque.send_batch(session,
  queue, [100 dicts])`` per transaction (``--batch``) in a ``Session.begin()``
  block, as fast as it can, for ``--seconds`` (5) into one queue. Events/s
  is the sum over producers.
* **Cooperative consumers** (1, 2, 4 members of one consumer): a backlog of
  ``--coop-events`` (20,000) events in windows of ``--window`` (500; one
  send_batch and one tick each) is drained by ``Consumer(..., subconsumer=m)``
  members calling ``run()``; handlers cost nothing (``no-op``) or sleep
  ``--handler-ms`` (0.5 ms) per message. Events/s of the group.
* **Fan-out consumers** (1 to 4 independent consumers of one queue): each drains
  the same backlog of ``--fanout-events`` (50,000) events in windows of
  ``--window`` with ``Consumer.run()`` and a no-op handler. Deliveries/s
  (events x consumers).

The plot is written to ``bench/results/scaling_pg<major>.png``
(``scaling_pg<major>_quick.png`` with ``--quick``; ``--plot`` to change).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque
from bench._server import engine_database, sa_url, server_version

RESULTS = Path(__file__).resolve().parent / "results"


def payload(i: int) -> dict[str, Any]:
    return {"order_id": i, "total": 99.95, "items": ["book", "pen"]}


# -- child processes ---------------------------------------------------------------------------


def producer_child(url: str, queue: str, seconds: float, batch: int, ready: Any, results: Any) -> None:
    engine = create_engine(sa_url(url), pool_size=1)
    sessions = sessionmaker(engine)
    with sessions.begin() as session:  # connect before the start
        sa_pgque.queue_info(session)
    ready.wait()
    sent = 0
    end = time.time() + seconds
    while time.time() < end:
        with sessions.begin() as session:
            sa_pgque.send_batch(session, queue, [payload(sent + k) for k in range(batch)], type="bench")
        sent += batch
    results.put((sent, time.time()))
    engine.dispose()


def consumer_child(
    url: str,
    queue: str,
    name: str,
    member: str | None,
    expected: int,
    handler_s: float,
    group_count: Any,
    ready: Any,
    results: Any,
) -> None:
    """Consume with ``Consumer.run()`` until ``expected`` events (of the whole group, for a member)."""
    engine = create_engine(sa_url(url), pool_size=2)
    consumer = sa_pgque.Consumer(
        sessionmaker(engine),
        queue=queue,
        name=name,
        subconsumer=member,
        dead_interval=timedelta(minutes=5) if member else None,
        subscribe=member is None,
    )
    seen = 0

    @consumer.default_handler
    def handle(message: sa_pgque.Message, session: Session) -> None:
        nonlocal seen
        if handler_s:
            time.sleep(handler_s)
        seen += 1

    def done() -> bool:
        if member is None:
            return seen >= expected
        return bool(group_count.value >= expected)

    ready.wait()
    try:
        consume_until(consumer, member, done, group_count, lambda: seen)
    except BaseException:
        results.put((-1, time.time()))
        raise
    results.put((seen, time.time()))
    engine.dispose()


def consume_until(
    consumer: sa_pgque.Consumer,
    member: str | None,
    done: Callable[[], bool],
    group_count: Any,
    seen: Callable[[], int],
) -> None:
    while not done():
        before = seen()
        consumer.run()
        if member is not None and seen() > before:
            with group_count.get_lock():
                group_count.value += seen() - before
        elif seen() == before:
            time.sleep(0.002)


def run_processes(target: Callable[..., None], arg_lists: list[tuple[Any, ...]]) -> tuple[float, list[int]]:
    """Start one process per argument tuple (each followed by ready, results); seconds from start to last end."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(len(arg_lists) + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, ready, results)) for a in arg_lists]
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=180)
        started = time.time()
        outcomes = [results.get(timeout=600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
    return max(at for _, at in outcomes) - started, [n for n, _ in outcomes]


# -- measurements ------------------------------------------------------------------------------


def new_queue(url: str, consumers: Sequence[str], members: Sequence[str] = ()) -> str:
    """A fresh queue with its consumers subscribed and its cooperative members (of ``group``) registered."""
    queue = f"q_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url) as conn:
        conn.execute("select pgque.create_queue(%s)", (queue,))
        for consumer in consumers:
            conn.execute("select pgque.subscribe(%s, %s)", (queue, consumer))
        for member in members:
            conn.execute("select pgque.register_subconsumer(%s, 'group', %s)", (queue, member))
    return queue


def drop_queue(url: str, queue: str, members: Sequence[str] = ()) -> None:
    """Drop the queue; its cooperative members first (``drop_queue(force)`` refuses a group that has members)."""
    with psycopg.connect(url) as conn:
        for member in members:
            conn.execute("select pgque.unregister_subconsumer(%s, 'group', %s)", (queue, member))
        conn.execute("select pgque.drop_queue(%s, true)", (queue,))


def backlog(url: str, queue: str, events: int, window: int) -> None:
    data = [json.dumps(payload(i)) for i in range(window)]
    with psycopg.connect(url) as conn:
        for _ in range(events // window):
            conn.execute("select pgque.send_batch(%s, 'bench', %s::text[])", (queue, data), prepare=True)
            conn.commit()
            conn.execute("select pgque.force_next_tick(%s)", (queue,))
            conn.execute("select pgque.ticker(%s)", (queue,))
            conn.commit()


def producers_point(url: str, n: int, args: argparse.Namespace) -> float:
    queue = new_queue(url, [])
    seconds, counts = run_processes(producer_child, [(url, queue, args.seconds, args.batch)] * n)
    drop_queue(url, queue)
    return sum(counts) / seconds


def coop_point(url: str, members: int, handler_ms: float, args: argparse.Namespace) -> float:
    names = [f"m{i}" for i in range(members)]
    queue = new_queue(url, [], names)
    backlog(url, queue, args.coop_events, args.window)
    ctx = multiprocessing.get_context("spawn")
    count = ctx.Value("q", 0)
    arg_lists = [(url, queue, "group", f"m{i}", args.coop_events, handler_ms / 1000, count) for i in range(members)]
    seconds, counts = run_processes(consumer_child, arg_lists)
    drop_queue(url, queue, names)
    if sum(counts) != args.coop_events:
        raise RuntimeError(f"cooperative group of {members} handled {sum(counts)} of {args.coop_events}")
    return float(args.coop_events / seconds)


def fanout_point(url: str, consumers: int, args: argparse.Namespace) -> float:
    names = [f"c{i}" for i in range(consumers)]
    queue = new_queue(url, names)
    backlog(url, queue, args.fanout_events, args.window)
    arg_lists = [(url, queue, name, None, args.fanout_events, 0.0, None) for name in names]
    seconds, counts = run_processes(consumer_child, arg_lists)
    drop_queue(url, queue)
    if counts != [args.fanout_events] * consumers:
        raise RuntimeError(f"fan-out of {consumers}: handled {counts}")
    return float(args.fanout_events * consumers / seconds)


def plot(path: Path, title: str, series: dict[str, dict[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels: list[tuple[str, str, list[str]]] = [
        ("producers (send_batch of 100 per transaction)", "events/s", ["producers"]),
        ("cooperative members of one consumer", "events/s of the group", [k for k in series if k.startswith("coop")]),
        ("independent consumers (fan-out)", "deliveries/s (events x consumers)", ["fan-out"]),
    ]
    for ax, (xlabel, ylabel, keys) in zip(axes, panels, strict=True):
        for key in keys:
            points = series.get(key, {})
            if not points:
                continue
            xs = sorted(points)
            ax.plot(xs, [points[x] for x in xs], marker="o", label=key)
            for x in xs:
                ax.annotate(
                    f"{points[x]:,.0f}",
                    (x, points[x]),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=8,
                )
            ax.set_xticks(xs)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark database on (default: embedded PostgreSQL)")
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s producers, smaller backlogs")
    parser.add_argument("--rounds", type=int, help="repetitions of every point (2; --quick 1)")
    parser.add_argument("--producers", default="1,2,4,8")
    parser.add_argument("--members", default="1,2,4", help="cooperative members")
    parser.add_argument("--fanout", default="1,2,3,4", help="independent consumers")
    parser.add_argument("--seconds", type=float, help="producing time per point (5; --quick 2)")
    parser.add_argument("--batch", type=int, default=100, help="events per producer transaction (100)")
    parser.add_argument("--window", type=int, default=500, help="events per tick in the backlogs (500)")
    parser.add_argument("--coop-events", type=int, help="cooperative backlog (20,000; --quick 6,000)")
    parser.add_argument("--handler-ms", type=float, default=0.5, help="handler cost of the second coop curve (0.5)")
    parser.add_argument("--fanout-events", type=int, help="fan-out backlog (50,000; --quick 20,000)")
    parser.add_argument("--plot", type=Path, help="PNG to write (bench/results/scaling_pg<major>[_quick].png)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.coop_events = args.coop_events or (6_000 if args.quick else 20_000)
    args.fanout_events = args.fanout_events or (20_000 if args.quick else 50_000)
    producers = [int(x) for x in args.producers.split(",")]
    members = [int(x) for x in args.members.split(",")]
    fanout = [int(x) for x in args.fanout.split(",")]
    coop_variants = {"coop, no-op handler": 0.0, f"coop, {args.handler_ms:g} ms handler": args.handler_ms}

    print(f"scaling: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    raw: dict[str, dict[int, list[float]]] = {}
    with engine_database(args.dsn, prefix="sa_pgque_bench_scaling") as url:
        version = server_version(url)
        print(f"  {version}", flush=True)
        for r in range(args.rounds):
            for n in producers:
                value = producers_point(url, n, args)
                raw.setdefault("producers", {}).setdefault(n, []).append(value)
                print(f"  round {r + 1} producers {n}: {value:>10,.0f} events/s", flush=True)
            for label, handler_ms in coop_variants.items():
                for m in members:
                    value = coop_point(url, m, handler_ms, args)
                    raw.setdefault(label, {}).setdefault(m, []).append(value)
                    print(f"  round {r + 1} {label}, {m} member(s): {value:>10,.0f} events/s", flush=True)
            for k in fanout:
                value = fanout_point(url, k, args)
                raw.setdefault("fan-out", {}).setdefault(k, []).append(value)
                print(f"  round {r + 1} fan-out {k} consumer(s): {value:>10,.0f} deliveries/s", flush=True)

    series = {key: {x: statistics.median(v) for x, v in points.items()} for key, points in raw.items()}
    print(f"\n== scaling: {version}; medians of {args.rounds} round(s) [rounds]; speed-up against the first point")
    for key, points in series.items():
        unit = "deliveries/s" if key == "fan-out" else "events/s"
        first = points[min(points)]
        print(f"  {key} ({unit}):")
        for x, value in points.items():
            rounds = ", ".join(f"{v:,.0f}" for v in raw[key][x])
            print(f"    {x}: {value:>10,.0f}  {value / first:5.2f}x   [{rounds}]")
    major = version.split()[1].split(".")[0]
    path = args.plot or RESULTS / f"scaling_pg{major}{'_quick' if args.quick else ''}.png"
    plot(path, f"sa_pgque scaling, {version} (2-core machine, {'embedded' if not args.dsn else args.dsn})", series)
    print(f"  plot: {path}")


if __name__ == "__main__":
    main()
