"""Consumer throughput and end-to-end latency: sa_pgque's Consumer vs pgque-py's Consumer.

Run from the repository root (see bench/README.md):

    python -m bench.consumer                               # embedded PostgreSQL
    python -m bench.consumer --dsn postgresql:///postgres  # an existing server

**Drain.** Per round, fresh consumer names are subscribed to a queue, then a
backlog of ``--events`` events (default 100,000) is built in chunks of 1,000:
``send_batch`` of 1,000 events, commit, then ``force_next_tick`` + ``ticker``,
so every batch holds 1,000 events. An extra subscriber reads the backlog once,
untimed (the first reader of new rows sets their hint bits, i.e. writes
pages). Each consumer then drains the same backlog to the end, one after the
other, timed from start to the last ack:

* ours: ``Consumer(...).run()`` (batches until none is ready);
* pgque-py: ``pgque.Consumer(url, ..., poll_interval=0,
  max_messages=2147483647).start()`` in a thread, stopped from its handler
  once it has seen every event (the loop then acks that batch and returns).
  ``poll_interval=0`` because pgque-py's loop waits for a NOTIFY (or
  ``poll_interval``, default 30 s) after *every* batch, even a full one, and
  a backlog built before it LISTENs sends none: with the default it drains
  one batch per 30 s.

Two handlers: a no-op (counts the message) and a one-row ORM insert per
message. Ours does ``session.add(Row(...))`` in the batch's session, so the
rows commit with the ack (exactly once). pgque-py hands its handler no
session, so the handler opens a SQLAlchemy Session, inserts and commits per
message, which is what a pgque-py user gets (and the row is not atomic with
the ack). The no-op variant runs in each of ``--rounds`` rounds (default 9),
the ORM one in the first ``--orm-rounds`` (default 2: pgque-py's commit per
message makes it take minutes). Rounds alternate which consumer goes first.
Printed: events/s (median and best round), the median of the per-round
ratios ours / pgque-py, and the CPU time of the consuming thread per event
(``time.thread_time()``; steadier than wall time on a busy machine, and it
leaves out the server, which does the same work for both).

**Latency.** ``Ticker(engine)`` (default 100 ms period) runs in a thread; the
queue's ``ticker_max_lag`` is 100 ms. A producer publishes one event every
20-50 ms (random) for ``--seconds`` (default 15) with ``sa_pgque.publish`` in
its own Session and records ``time.monotonic()`` right after each commit; the
handler records ``time.monotonic()`` when it starts. The latency of an event is
handler start - send commit. Phases alternate between our
``Consumer.run_forever()`` (default settings) and pgque-py's ``start()`` (its
LISTEN loop, default settings), each alone with the ticker and the producer,
``--latency-rounds`` times (default 3); the first second of each phase is a
warm-up and not counted. Median, p95 and max are printed per consumer over
all rounds pooled, with the per-round medians.

At the end the script checks that no thread and no database connection of
the run is left.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pgque  # type: ignore[import-untyped]  # pgque-py, the reference client
import psycopg
from sqlalchemy import BigInteger, Engine, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import sa_pgque
from bench._server import engine_database, sa_url
from sa_pgque.results import Message

CHUNK = 1000
PGQUE_PY_MAX_MESSAGES = 2_147_483_647  # pgque-py's default: take the whole batch
VARIANTS = ("no-op", "orm insert")
KINDS = ("ours", "pgque-py")


class Base(DeclarativeBase):
    pass


class Row(Base):
    """One row per handled message (the ORM-insert variant)."""

    __tablename__ = "bench_consumer_row"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100))
    msg_id: Mapped[int] = mapped_column(BigInteger)


def payload(i: int) -> dict[str, object]:
    return {"order_id": i, "total": 99.95, "items": ["book", "pen"]}


# -- drain ------------------------------------------------------------------


def build_backlog(sessions: sessionmaker[Session], queue: str, events: int) -> None:
    """``events`` events in batches of CHUNK: send_batch, commit, then tick in a transaction of its own."""
    for start in range(0, events, CHUNK):
        with sessions.begin() as session:
            sa_pgque.send_batch(
                session, queue, [payload(i) for i in range(start, min(start + CHUNK, events))], type="order.created"
            )
        with sessions.begin() as session:
            sa_pgque.tick(session, queue)


@dataclass(frozen=True)
class Drain:
    """One timed drain: wall seconds, and CPU seconds of the consuming thread."""

    seconds: float
    cpu: float


def drain_ours(sessions: sessionmaker[Session], queue: str, name: str, events: int, variant: str) -> Drain:
    consumer = sa_pgque.Consumer(sessions, queue=queue, name=name)
    seen = 0

    @consumer.handler("order.created")
    def handle(message: Message, session: Session) -> None:
        nonlocal seen
        seen += 1
        if variant == "orm insert":
            session.add(Row(consumer=name, msg_id=message.msg_id))

    started, cpu = time.perf_counter(), time.thread_time()
    outcomes = consumer.run()
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    handled = sum(len(o.handled) for o in outcomes)
    if seen != events or handled != events:
        raise RuntimeError(f"ours/{variant}: handled {handled} (handler saw {seen}), expected {events}")
    return Drain(elapsed, cpu)


def drain_pgque_py(
    url: str, sessions: sessionmaker[Session], queue: str, name: str, events: int, variant: str
) -> Drain:
    # poll_interval=0: after every batch, even a full one, pgque-py's loop waits for a NOTIFY or
    # poll_interval (default 30 s); a backlog built before it LISTENs sends none, so with the
    # default it drains one batch per 30 s. With 0 it fetches the next batch at once, as ours does.
    consumer = pgque.Consumer(url, queue=queue, name=name, poll_interval=0, max_messages=PGQUE_PY_MAX_MESSAGES)
    seen = 0

    @consumer.on("order.created")  # type: ignore[untyped-decorator]
    def handle(message: Any) -> None:
        nonlocal seen
        if variant == "orm insert":
            with sessions.begin() as session:
                session.add(Row(consumer=name, msg_id=message.msg_id))
        seen += 1
        if seen >= events:
            consumer.stop()  # the loop acks this batch, then returns

    errors: list[BaseException] = []
    cpu = 0.0

    def run() -> None:
        nonlocal cpu
        started = time.thread_time()
        try:
            consumer.start()
        except BaseException as error:
            errors.append(error)
        cpu = time.thread_time() - started

    thread = threading.Thread(target=run, name=f"pgque-py-{name}")
    started = time.perf_counter()
    thread.start()
    thread.join(600)
    elapsed = time.perf_counter() - started
    if thread.is_alive():
        consumer.stop()
        thread.join()
        raise RuntimeError(f"pgque-py/{variant}: timed out after {seen} of {events} events")
    if errors:
        raise errors[0]
    if seen != events:
        raise RuntimeError(f"pgque-py/{variant}: handler saw {seen}, expected {events}")
    return Drain(elapsed, cpu)


def warm_up(sessions: sessionmaker[Session], queue: str, name: str) -> None:
    """Drain the backlog once, untimed: its first reader sets the rows' hint bits (page writes)."""
    while True:
        with sessions.begin() as session:
            messages = sa_pgque.receive(session, queue, name)
            if not messages:
                return
            sa_pgque.ack(session, messages[0].batch_id)


def bench_drain(
    url: str, sessions: sessionmaker[Session], events: int, rounds: int, orm_rounds: int, variants: list[str]
) -> dict[tuple[str, str], list[Drain]]:
    """The drains of each (variant, kind), one per round that ran it."""
    queue = "drain"
    with sessions.begin() as session:
        sa_pgque.create_queue(session, queue)
    drains: dict[tuple[str, str], list[Drain]] = {(v, k): [] for v in variants for k in KINDS}
    for r in range(rounds):
        this_round = [v for v in variants if v == "no-op" or r < orm_rounds]
        names = {
            (v, k): f"{k.replace('-', '_')}_{v.replace(' ', '_').replace('-', '')}_{r}"
            for v in this_round
            for k in KINDS
        }
        with sessions.begin() as session:
            for name in [*names.values(), f"warm_up_{r}"]:
                sa_pgque.subscribe(session, queue, name)
        started = time.perf_counter()
        build_backlog(sessions, queue, events)
        warm_up(sessions, queue, f"warm_up_{r}")
        print(f"  round {r + 1}: backlog of {events:,} built and read once in {time.perf_counter() - started:.1f}s")
        kinds = KINDS if r % 2 == 0 else KINDS[::-1]
        for variant in this_round:
            for kind in kinds:
                name = names[variant, kind]
                if kind == "ours":
                    drain = drain_ours(sessions, queue, name, events, variant)
                else:
                    drain = drain_pgque_py(url, sessions, queue, name, events, variant)
                drains[variant, kind].append(drain)
                print(
                    f"    {variant:<11} {kind:<9} {events / drain.seconds:>10,.0f} events/s  ({drain.seconds:.2f}s, "
                    f"client CPU {drain.cpu / events * 1e6:.2f} us/event)",
                    flush=True,
                )
        with sessions.begin() as session:
            for name in [*names.values(), f"warm_up_{r}"]:
                sa_pgque.unsubscribe(session, queue, name)
    with sessions.begin() as session:
        sa_pgque.drop_queue(session, queue, force=True)
    return drains


# -- latency ----------------------------------------------------------------


@dataclass
class Samples:
    """Send-commit and handler-start instants by event id."""

    sent: dict[int, float] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)

    def latencies(self, since: float) -> list[float]:
        """Milliseconds from commit to handler start of the events sent at or after ``since``."""
        return sorted((self.started[i] - t) * 1000 for i, t in self.sent.items() if t >= since and i in self.started)


def run_ours_forever(sessions: sessionmaker[Session], queue: str, name: str, samples: Samples) -> Callable[[], None]:
    """Start our consumer's run_forever() in a thread; return its stop function."""
    consumer = sa_pgque.Consumer(sessions, queue=queue, name=name)

    @consumer.handler("latency")
    def handle(message: Message, session: Session) -> None:
        samples.started.setdefault(message.msg_id, time.monotonic())

    thread = threading.Thread(target=consumer.run_forever, name=f"ours-{name}")
    thread.start()

    def stop() -> None:
        consumer.stop()
        thread.join()

    return stop


def run_pgque_py_forever(url: str, queue: str, name: str, samples: Samples) -> Callable[[], None]:
    """Start pgque-py's start() loop in a thread; return its stop function."""
    consumer = pgque.Consumer(url, queue=queue, name=name)

    @consumer.on("latency")  # type: ignore[untyped-decorator]
    def handle(message: Any) -> None:
        samples.started.setdefault(message.msg_id, time.monotonic())

    thread = threading.Thread(target=consumer.start, name=f"pgque-py-{name}")
    thread.start()

    def stop() -> None:
        consumer.stop()
        thread.join()

    return stop


def latency_phase(
    url: str, sessions: sessionmaker[Session], queue: str, kind: str, name: str, seconds: float, warmup: float
) -> list[float]:
    samples = Samples()
    with sessions.begin() as session:
        sa_pgque.subscribe(session, queue, name)
    if kind == "ours":
        stop = run_ours_forever(sessions, queue, name, samples)
    else:
        stop = run_pgque_py_forever(url, queue, name, samples)
    try:
        time.sleep(0.3)  # let the consumer LISTEN
        rng = random.Random(1)
        begin = time.monotonic()
        while time.monotonic() - begin < seconds:
            with sessions.begin() as session:
                event_id = sa_pgque.publish(session, queue, {"at": time.time()}, type="latency")
            samples.sent[event_id] = time.monotonic()
            time.sleep(rng.uniform(0.020, 0.050))
        deadline = time.monotonic() + 5.0
        while len(samples.started) < len(samples.sent) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop()
    with sessions.begin() as session:
        sa_pgque.unsubscribe(session, queue, name)
    missing = len(samples.sent) - len(samples.started)
    if missing:
        print(f"    {kind}: {missing} of {len(samples.sent)} events not handled within 5 s of the last send")
    return samples.latencies(begin + warmup)


def bench_latency(
    url: str, engine: Engine, sessions: sessionmaker[Session], seconds: float, rounds: int
) -> dict[str, list[list[float]]]:
    """Latencies (ms) of each kind, one list per round."""
    queue = "latency"
    with sessions.begin() as session:
        sa_pgque.create_queue(session, queue)
        sa_pgque.set_queue_config(session, queue, "ticker_max_lag", timedelta(milliseconds=100))
    result: dict[str, list[list[float]]] = {k: [] for k in KINDS}
    with sa_pgque.Ticker(engine) as ticker:
        if not ticker.active.wait(10):
            raise RuntimeError("the ticker did not become active")
        for r in range(rounds):
            kinds = KINDS if r % 2 == 0 else KINDS[::-1]
            for kind in kinds:
                values = latency_phase(url, sessions, queue, kind, f"lat_{kind.replace('-', '_')}_{r}", seconds, 1.0)
                result[kind].append(values)
                print(f"  round {r + 1}: {kind:<9} {describe(values)}", flush=True)
    with sessions.begin() as session:
        sa_pgque.drop_queue(session, queue, force=True)
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"n={len(values):>4}  median {statistics.median(values):6.1f} ms  "
        f"p95 {percentile(values, 0.95):6.1f} ms  max {max(values):6.1f} ms"
    )


# -- main -------------------------------------------------------------------


def leftover_connections(url: str) -> int:
    """Connections to the benchmark database other than the one asking."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark database on (default: embedded PostgreSQL)")
    parser.add_argument("--events", type=int, default=100_000, help="backlog drained per consumer and round")
    parser.add_argument("--rounds", type=int, default=9, help="drain rounds (each with a fresh backlog)")
    parser.add_argument("--orm-rounds", type=int, default=2, help="the first N drain rounds also run the ORM variant")
    parser.add_argument("--latency-rounds", type=int, default=3, help="latency phases per consumer")
    parser.add_argument("--seconds", type=float, default=15.0, help="publishing time of one latency phase")
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="drain variant (default: all)")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    variants = args.variant or list(VARIANTS)
    if args.events % CHUNK:
        parser.error(f"--events must be a multiple of {CHUNK}")

    with engine_database(args.dsn) as url:
        engine = create_engine(sa_url(url))
        sessions = sessionmaker(engine)
        with psycopg.connect(url) as conn:
            server = conn.info.server_version
        print(f"PostgreSQL {server // 10000}.{server % 10000}, {'embedded' if not args.dsn else args.dsn}")
        Base.metadata.create_all(engine)
        try:
            if not args.skip_drain:
                print(
                    f"drain: {args.events:,} events in batches of {CHUNK:,}, {args.rounds} rounds "
                    f"(the ORM variant in the first {min(args.orm_rounds, args.rounds)})",
                    flush=True,
                )
                drains = bench_drain(url, sessions, args.events, args.rounds, args.orm_rounds, variants)
            if not args.skip_latency:
                print(
                    f"latency: ticker period 100 ms, ticker_max_lag 100 ms, one event every 20-50 ms, "
                    f"{args.seconds:g} s per phase, {args.latency_rounds} rounds",
                    flush=True,
                )
                latencies = bench_latency(url, engine, sessions, args.seconds, args.latency_rounds)
        finally:
            engine.dispose()
        connections = leftover_connections(url)
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]

    if not args.skip_drain:
        print(f"\ndrain summary ({args.events:,} events; medians of the rounds, best rate in brackets)")
        for variant in variants:
            ours, theirs = drains[variant, "ours"], drains[variant, "pgque-py"]
            if not ours:
                continue
            ratios = [b.seconds / a.seconds for a, b in zip(ours, theirs, strict=True)]
            cpu_ratios = [b.cpu / a.cpu for a, b in zip(ours, theirs, strict=True)]
            target = "   (target >= 1.0)" if variant == "no-op" else ""
            for kind, runs in (("ours", ours), ("pgque-py", theirs)):
                rates = [args.events / d.seconds for d in runs]
                print(
                    f"  {variant:<11} {kind:<9} {statistics.median(rates):>10,.0f} events/s [{max(rates):>9,.0f}]"
                    f"   client CPU {statistics.median(d.cpu for d in runs) / args.events * 1e6:6.2f} us/event"
                )
            print(
                f"  {variant:<11} ours/pgque-py: events/s {statistics.median(ratios):.2f} "
                f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}){target}"
            )
            print(
                f"  {variant:<11} ours/pgque-py: client CPU per event {1 / statistics.median(cpu_ratios):.2f} "
                f"(lower is better; rounds: {', '.join(f'{1 / x:.2f}' for x in cpu_ratios)})"
            )
    if not args.skip_latency:
        print(f"\nlatency summary (send commit -> handler start, all {args.latency_rounds} rounds pooled)")
        for kind in KINDS:
            pooled = [v for values in latencies[kind] for v in values]
            medians = ", ".join(f"{statistics.median(v):.1f}" for v in latencies[kind] if v)
            target = "   (target: median <= 60 ms)" if kind == "ours" else ""
            print(f"  {kind:<9} {describe(pooled)}   per-round medians: {medians}{target}")
    print(f"\nleftover connections: {connections}, leftover threads: {threads or 0}")


if __name__ == "__main__":
    main()
