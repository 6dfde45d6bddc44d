"""sa_pgque against two SKIP LOCKED job queues, pgqueuer and procrastinate.

Run from the repository root (see bench/README.md):

    python -m bench.peers                               # embedded PostgreSQL
    python -m bench.peers --dsn postgresql:///postgres  # an existing server

Every system gets its own fresh database on the same server, with its own
documented schema install: sa_pgque's ``migrate.install`` (through
``bench._server.engine_database``), pgqueuer's ``Queries.install()`` (what
``pgq install`` runs), procrastinate's ``App.schema_manager.apply_schema_async()``
(what ``procrastinate schema --apply`` runs). sa_pgque and procrastinate use
psycopg 3; pgqueuer uses asyncpg, its primary driver (``--pgqueuer-driver
psycopg`` for its psycopg driver, which was ~6x slower at consuming here).

**Single consumer.** ``--events`` messages (default 100,000; a ~55-byte JSON
object each) are enqueued by one producer in chunks of ``--chunk`` (1,000),
one transaction per chunk:

* sa_pgque: ``sa_pgque.send_batch(session, queue, [dict, ...], type=...)`` in
  a ``Session.begin()`` block; a ``Ticker`` (default 100 ms period) runs in a
  thread of the producer process from before the first send to the end, so
  batches form while the producer works, as in production;
* pgqueuer: ``Queries.enqueue([entrypoint] * n, [bytes, ...], [0] * n)`` (the
  list form: one INSERT per chunk);
* procrastinate: ``task.configure(queue=q).batch_defer_async(*[kwargs, ...])``
  (one INSERT per chunk).

Then the database is ANALYZEd (untimed; ``--no-analyze`` to skip): the
peers' dequeue queries plan badly on a freshly filled table that has no
statistics yet (here pgqueuer consumed ~240 jobs/s instead of ~2,500 from a
100,000-job backlog, procrastinate ~30 instead of ~150 from 20,000), which
autovacuum would fix within a minute or so in production. Then one consumer
drains them, each through its own worker API with a no-op handler that only
counts, in a child process started beforehand (timed from a start signal to
the consumer's return, so imports and connecting are not counted):

* sa_pgque: ``Consumer(sessionmaker, queue=, name=)`` (defaults: whole
  batches, pages of 1,000), ``run()`` called in a loop until every message
  was handled (``run()`` processes the ready batches and returns when none
  is left; see ``consume_sa_pgque``);
* pgqueuer: ``QueueManager.run(mode=drain, batch_size=--pgqueuer-batch-size)``
  with an ``@entrypoint`` no-op; returns once the queue is empty and the job
  log is flushed;
* procrastinate: ``App.run_worker_async(queues=[q], wait=False,
  concurrency=1)`` with an ``@app.task`` no-op; returns when caught up. Its
  default ``delete_jobs="never"`` is kept (finished jobs stay as rows with
  status ``succeeded``).

**Fan-out.** ``--fanout-events`` messages (default: ``--events``) must each
reach 3 consumers. sa_pgque: one queue, 3 subscriptions, every message
published once. The peers deliver a job to one worker only, so they enqueue
3 copies: pgqueuer into 3 entrypoints (one enqueue call of 3 x chunk rows
per chunk, one transaction), procrastinate into 3 queues (3 batch_defer calls
per chunk, 3 transactions). Then the 3 consumers run at the same time, each in
its own process. Throughputs: enqueue in messages/s (logical messages, each
reaching 3 consumers), consume in deliveries/s (3 per message).

A consumer that has not finished after ``--consume-limit`` seconds (120) is
stopped (procrastinate's worker by cancelling ``run_worker_async``,
pgqueuer's by its ``shutdown`` event) and its rate is what it handled by then
(marked ``*``). Rounds (``--rounds``) rotate the order of the systems; medians
over rounds and the per-round ratios sa_pgque / peer are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque
from bench._server import database, database_name, engine_database, sa_url, server, server_version
from sa_pgque import _dsn

if TYPE_CHECKING:
    import procrastinate
    from pgqueuer import Queries

SYSTEMS = ("sa_pgque", "pgqueuer", "procrastinate")
PEERS = ("pgqueuer", "procrastinate")
FANOUT = 3
EVENT_TYPE = "bench"
TASK_NAME = "bench_noop"


def payload(i: int) -> dict[str, Any]:
    return {"order_id": i, "total": 99.95, "items": ["book", "pen"]}


def chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


@asynccontextmanager
async def pgqueuer_queries(dsn: str, driver: str = "asyncpg") -> AsyncIterator[Queries]:
    """pgqueuer's ``Queries`` over one connection: asyncpg (its primary driver) or psycopg (autocommit)."""
    from pgqueuer import Queries

    if driver == "asyncpg":
        import asyncpg

        params = _dsn.parameters(dsn)
        conn = await asyncpg.connect(
            host=params.get("host"),
            port=params.get("port"),
            user=params.get("user"),
            password=params.get("password"),
            database=params.get("dbname"),
            server_settings={"application_name": params["application_name"]} if "application_name" in params else None,
        )
        try:
            yield Queries.from_asyncpg_connection(conn)
        finally:
            await conn.close()
    else:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            yield Queries.from_psycopg_connection(aconn)


# -- consumers, one per child process ---------------------------------------------------------


def consume_sa_pgque(url: str, target: str, expected: int, deadline: float) -> int:
    """``Consumer.run()`` (every ready batch, empty tick windows passed over) until all were seen or the deadline.

    ``run()`` rather than ``run_forever()`` so the child returns as soon as
    the last message is handled; between calls it only waits for the
    ticker to close the last window.
    """
    queue, name = target.split("/")
    engine = create_engine(sa_url(url), pool_size=2)
    consumer = sa_pgque.Consumer(sessionmaker(engine), queue=queue, name=name, subscribe=False)
    seen = 0

    @consumer.default_handler
    def handle(message: sa_pgque.Message, session: Session) -> None:
        nonlocal seen
        seen += 1

    try:
        while seen < expected and time.time() < deadline:
            if not consumer.run():
                time.sleep(0.005)
    finally:
        engine.dispose()
    return seen


async def consume_pgqueuer(url: str, target: str, batch_size: int, deadline: float, driver: str) -> int:
    from pgqueuer import Job, QueueManager
    from pgqueuer.domain.types import QueueExecutionMode

    seen = 0
    async with pgqueuer_queries(url, driver) as queries:
        qm = QueueManager(queries)

        @qm.entrypoint(target)
        async def handle(job: Job) -> None:
            nonlocal seen
            seen += 1

        async def stop_at_deadline() -> None:
            await asyncio.sleep(max(0.0, deadline - time.time()))
            qm.shutdown.set()

        stopper = asyncio.create_task(stop_at_deadline())
        try:
            await qm.run(mode=QueueExecutionMode.drain, batch_size=batch_size)
        finally:
            stopper.cancel()
    return seen


def procrastinate_app(url: str) -> procrastinate.App:
    import procrastinate

    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))


async def consume_procrastinate(url: str, target: str, deadline: float) -> int:
    app = procrastinate_app(url)
    seen = 0

    @app.task(name=TASK_NAME)
    async def handle(**kwargs: Any) -> None:
        nonlocal seen
        seen += 1

    async with app.open_async():
        worker = app.run_worker_async(queues=[target], wait=False, concurrency=1, install_signal_handlers=False)
        # cancelling run_worker_async is procrastinate's way to stop a worker gracefully
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(worker, timeout=max(0.0, deadline - time.time()))
    return seen


def consumer_child(
    system: str,
    url: str,
    target: str,
    expected: int,
    pgqueuer_batch_size: int,
    pgqueuer_driver: str,
    limit: float,
    ready: multiprocessing.synchronize.Barrier,
    results: Any,
) -> None:
    """Child process: get ready, wait for the start, consume, report (target, seen, finish time, error)."""
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("procrastinate", "pgqueuer", "sa_pgque"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        # import everything before the start signal
        if system == "pgqueuer":
            import pgqueuer  # noqa: F401
        elif system == "procrastinate":
            import procrastinate  # noqa: F401
        ready.wait()
        deadline = time.time() + limit
        if system == "sa_pgque":
            seen = consume_sa_pgque(url, target, expected, deadline)
        elif system == "pgqueuer":
            seen = asyncio.run(consume_pgqueuer(url, target, pgqueuer_batch_size, deadline, pgqueuer_driver))
        else:
            seen = asyncio.run(consume_procrastinate(url, target, deadline))
        results.put((target, seen, time.time(), None))
    except BaseException as error:
        results.put((target, -1, time.time(), f"{type(error).__name__}: {error}"))
        raise


def run_consumers(
    system: str, url: str, targets: list[str], expected: int, args: argparse.Namespace
) -> tuple[float, int]:
    """One process per target, released together: (seconds until the last finished, messages handled).

    A consumer stops at ``--consume-limit`` seconds even if not done; then
    fewer than ``expected`` messages per target were handled.
    """
    if args.analyze:  # what autovacuum would do to a freshly filled table within a minute or so
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("analyze")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(len(targets) + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=consumer_child,
            args=(
                system,
                url,
                t,
                expected,
                args.pgqueuer_batch_size,
                args.pgqueuer_driver,
                args.consume_limit,
                ready,
                results,
            ),
            name=f"{system}-{t}",
        )
        for t in targets
    ]
    for p in procs:
        p.start()
    ready.wait(timeout=120)
    started = time.time()
    finished = []
    handled = 0
    try:
        for _ in targets:
            target, seen, at, error = results.get(timeout=args.consume_limit + 120)
            if error or seen < 0 or seen > expected:
                raise RuntimeError(f"{system} consumer {target}: saw {seen} of {expected} messages ({error})")
            finished.append(at)
            handled += seen
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
    return max(finished) - started, handled


# -- systems -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One measured case of one system in one round."""

    enqueue_s: float
    consume_s: float
    messages: int
    consumers: int
    handled: int
    """Deliveries made before the consumers stopped (messages x consumers when complete)."""

    @property
    def complete(self) -> bool:
        return self.handled == self.messages * self.consumers

    @property
    def enqueue_rate(self) -> float:
        return self.messages / self.enqueue_s

    @property
    def consume_rate(self) -> float:
        return self.handled / self.consume_s


class System:
    """A queue under test: set up once, then ``run(n, consumers)`` per case."""

    name = ""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args

    def run(self, n: int, consumers: int) -> Case:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SaPgque(System):
    name = "sa_pgque"

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        super().__init__(url, args)
        self.engine = create_engine(sa_url(url), pool_size=4)
        self.sessions = sessionmaker(self.engine)

    def run(self, n: int, consumers: int) -> Case:
        queue = f"q_{uuid.uuid4().hex[:8]}"
        names = [f"c{i}" for i in range(consumers)]
        with self.sessions.begin() as session:
            sa_pgque.create_queue(session, queue)
            for name in names:
                sa_pgque.subscribe(session, queue, name)
        with sa_pgque.Ticker(self.engine) as ticker:
            if not ticker.active.wait(10):
                raise RuntimeError("the ticker did not become active")
            started = time.perf_counter()
            for part in chunks(n, self.args.chunk):
                with self.sessions.begin() as session:
                    sa_pgque.send_batch(session, queue, [payload(i) for i in part], type=EVENT_TYPE)
            enqueue_s = time.perf_counter() - started
            consume_s, handled = run_consumers(self.name, self.url, [f"{queue}/{c}" for c in names], n, self.args)
        with self.sessions.begin() as session:
            sa_pgque.drop_queue(session, queue, force=True)
        return Case(enqueue_s, consume_s, n, consumers, handled)

    def close(self) -> None:
        self.engine.dispose()


class PgQueuer(System):
    name = "pgqueuer"

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        super().__init__(url, args)
        asyncio.run(self._install())

    async def _install(self) -> None:
        async with pgqueuer_queries(self.url, self.args.pgqueuer_driver) as queries:
            await queries.install()

    def run(self, n: int, consumers: int) -> Case:
        entrypoints = [f"ep_{uuid.uuid4().hex[:8]}_{i}" for i in range(consumers)]
        enqueue_s = asyncio.run(self._enqueue(n, entrypoints))
        consume_s, handled = run_consumers(self.name, self.url, entrypoints, n, self.args)
        case = Case(enqueue_s, consume_s, n, consumers, handled)
        if case.complete:
            self._check_empty(entrypoints)
        else:
            asyncio.run(self._clear(entrypoints))
        return case

    async def _clear(self, entrypoints: list[str]) -> None:
        async with pgqueuer_queries(self.url, self.args.pgqueuer_driver) as queries:
            await queries.clear_queue(entrypoints)

    async def _enqueue(self, n: int, entrypoints: list[str]) -> float:
        async with pgqueuer_queries(self.url, self.args.pgqueuer_driver) as queries:
            started = time.perf_counter()
            for part in chunks(n, self.args.chunk):
                data = [json.dumps(payload(i)).encode() for i in part]
                await queries.enqueue(
                    [e for e in entrypoints for _ in data],
                    [d for _ in entrypoints for d in data],
                    [0] * (len(data) * len(entrypoints)),
                )
            return time.perf_counter() - started

    def _check_empty(self, entrypoints: list[str]) -> None:
        with psycopg.connect(self.url) as conn:
            row = conn.execute("select count(*) from pgqueuer where entrypoint = any(%s)", (entrypoints,)).fetchone()
        if row is None or row[0]:
            raise RuntimeError(f"pgqueuer: {row} jobs left in the queue table")


class Procrastinate(System):
    name = "procrastinate"

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        super().__init__(url, args)
        asyncio.run(self._install())

    async def _install(self) -> None:
        app = procrastinate_app(self.url)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    def run(self, n: int, consumers: int) -> Case:
        queues = [f"q_{uuid.uuid4().hex[:8]}_{i}" for i in range(consumers)]
        enqueue_s = asyncio.run(self._enqueue(n, queues))
        consume_s, handled = run_consumers(self.name, self.url, queues, n, self.args)
        case = Case(enqueue_s, consume_s, n, consumers, handled)
        if case.complete:
            self._check_done(queues, n)
        else:
            with psycopg.connect(self.url) as conn:  # what is left would be fetched by the next round's workers
                conn.execute("delete from procrastinate_jobs where queue_name = any(%s)", (queues,))
        return case

    async def _enqueue(self, n: int, queues: list[str]) -> float:
        app = procrastinate_app(self.url)

        @app.task(name=TASK_NAME)
        async def noop(**kwargs: Any) -> None:
            pass

        async with app.open_async():
            started = time.perf_counter()
            for part in chunks(n, self.args.chunk):
                kwargs = [payload(i) for i in part]
                for queue in queues:
                    await noop.configure(queue=queue).batch_defer_async(*kwargs)
            return time.perf_counter() - started

    def _check_done(self, queues: list[str], n: int) -> None:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "select count(*) filter (where status = 'succeeded'), count(*) from procrastinate_jobs"
                " where queue_name = any(%s)",
                (queues,),
            ).fetchone()
        if row is None or row[0] != n * len(queues) or row[1] != n * len(queues):
            raise RuntimeError(f"procrastinate: {row} (succeeded, total) jobs, expected {n * len(queues)}")


FACTORIES: dict[str, Callable[[str, argparse.Namespace], System]] = {
    "sa_pgque": SaPgque,
    "pgqueuer": PgQueuer,
    "procrastinate": Procrastinate,
}


@contextmanager
def system_database(system: str, server_dsn: str, synchronous_commit: str | None) -> Iterator[str]:
    """The system's fresh database; with ``synchronous_commit`` set as its default when given."""
    with (
        engine_database(server_dsn, prefix="sa_pgque_bench_peers")
        if system == "sa_pgque"
        else database(server_dsn, prefix=f"sa_pgque_bench_{system}")
    ) as url:
        if synchronous_commit:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("alter database {} set synchronous_commit = {}").format(
                        sql.Identifier(database_name(url)), sql.Literal(synchronous_commit)
                    )
                )
        yield url


# -- report ------------------------------------------------------------------------------------


@dataclass
class Results:
    cases: dict[tuple[str, str], list[Case]] = field(default_factory=dict)

    def add(self, case_name: str, system: str, case: Case) -> None:
        self.cases.setdefault((case_name, system), []).append(case)


def _values(values: list[float], cases: list[Case] | None, fmt: str) -> str:
    """Per-round values; with ``cases``, a ``*`` marks the rounds whose consumers stopped at the limit."""
    marks = ["" if c.complete else "*" for c in cases] if cases else [""] * len(values)
    return ", ".join(format(v, fmt) + m for v, m in zip(values, marks, strict=True))


def report(results: Results, systems: list[str], case_names: list[str], args: argparse.Namespace, server: str) -> None:
    print(
        f"\n== peers: {server}; {args.events:,} messages (single consumer), {args.fanout_events:,} messages x"
        f" {FANOUT} consumers (fan-out); chunks of {args.chunk:,}; pgqueuer batch_size {args.pgqueuer_batch_size}"
        f" ({args.pgqueuer_driver});"
        f" consume limit {args.consume_limit:g} s; {'ANALYZE' if args.analyze else 'no ANALYZE'} before consuming;"
        f" synchronous_commit {args.synchronous_commit or 'as the server'};"
        f" {args.rounds} round(s); medians [per round; * = stopped at the"
        " limit, rate over what it handled]"
    )
    for case_name in case_names:
        unit = "deliveries/s" if case_name == "fan-out" else "msg/s"
        print(f"\n  {case_name}:")
        print(f"  {'system':<15}{'enqueue msg/s':>15}{'consume ' + unit:>24}")
        for system in systems:
            cases = results.cases.get((case_name, system), [])
            if not cases:
                continue
            enq = [c.enqueue_rate for c in cases]
            con = [c.consume_rate for c in cases]
            print(
                f"  {system:<15}{statistics.median(enq):>15,.0f}{statistics.median(con):>24,.0f}"
                f"     [{_values(enq, None, ',.0f')}]  [{_values(con, cases, ',.0f')}]"
            )
        ours = results.cases.get((case_name, "sa_pgque"))
        for peer in systems:
            theirs = results.cases.get((case_name, peer))
            if peer == "sa_pgque" or not ours or not theirs:
                continue
            enq = [a.enqueue_rate / b.enqueue_rate for a, b in zip(ours, theirs, strict=True)]
            con = [a.consume_rate / b.consume_rate for a, b in zip(ours, theirs, strict=True)]
            print(
                f"  sa_pgque/{peer:<14} enqueue {statistics.median(enq):7.2f}x [{_values(enq, None, '.2f')}]"
                f"   consume {statistics.median(con):7.2f}x [{_values(con, theirs, '.2f')}]"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="server to create the benchmark databases on (default: embedded PostgreSQL)")
    parser.add_argument("--events", type=int, default=100_000, help="messages of the single-consumer case (100,000)")
    parser.add_argument("--fanout-events", type=int, help="messages of the fan-out case (default: --events)")
    parser.add_argument("--chunk", type=int, default=1000, help="messages per enqueue call and transaction (1,000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; the order of the systems rotates (1)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS))
    parser.add_argument("--cases", default="single,fan-out", help="single, fan-out or both (default)")
    parser.add_argument(
        "--pgqueuer-batch-size", type=int, default=10, help="QueueManager.run(batch_size=...) (pgqueuer's default 10)"
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="do not ANALYZE the database between enqueueing and consuming (default: ANALYZE, untimed)",
    )
    parser.add_argument(
        "--pgqueuer-driver",
        choices=["asyncpg", "psycopg"],
        default="asyncpg",
        help="pgqueuer's driver: asyncpg (its primary one, default) or psycopg",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        help="set synchronous_commit for every system's database (default: the server's setting)",
    )
    parser.add_argument(
        "--consume-limit",
        type=float,
        default=120,
        help="seconds a consumer may run; a slower one is stopped and its rate is what it handled by then (120)",
    )
    args = parser.parse_args(argv)
    args.fanout_events = args.fanout_events or args.events
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {sorted(unknown)}")
    case_names = [c for c in args.cases.split(",") if c]

    server_dsn = server(args.dsn)
    results = Results()
    with ExitStack() as stack:
        urls = {s: stack.enter_context(system_database(s, server_dsn, args.synchronous_commit)) for s in systems}
        version = server_version(urls[systems[0]])
        print(
            f"peers: {version}, {'embedded' if not args.dsn else args.dsn};"
            f" load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
            flush=True,
        )
        instances = {s: FACTORIES[s](urls[s], args) for s in systems}
        try:
            for r in range(args.rounds):
                order = systems[r % len(systems) :] + systems[: r % len(systems)]
                for case_name in case_names:
                    n, k = (args.events, 1) if case_name == "single" else (args.fanout_events, FANOUT)
                    for system in order:
                        case = instances[system].run(n, k)
                        results.add(case_name, system, case)
                        partial = "" if case.complete else f"  * stopped at the limit: {case.handled:,} of {n * k:,}"
                        print(
                            f"  round {r + 1} {case_name:<8} {system:<14} enqueue {case.enqueue_rate:>10,.0f} msg/s"
                            f" ({case.enqueue_s:6.2f}s)   consume {case.consume_rate:>10,.0f}"
                            f" {'deliveries' if k > 1 else 'msg'}/s ({case.consume_s:6.2f}s){partial}",
                            flush=True,
                        )
        finally:
            for instance in instances.values():
                instance.close()
    report(results, systems, case_names, args, version)
    print(f"  load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
