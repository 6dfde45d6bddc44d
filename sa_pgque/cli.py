"""The ``sa-pgque`` command: install the engine, run the ticker and workers, look inside queues.

Every command takes the database from ``--dsn`` (a libpq DSN or a SQLAlchemy
URL), else ``$SA_PGQUE_DSN``, else ``$DATABASE_URL``. A failure prints one
line on stderr and exits 1 (2 for a command line that makes no sense);
``--debug`` shows the traceback instead. Long operations report progress
on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NoReturn

import psycopg
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from psycopg import sql
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from sa_pgque import _demo, _dsn, _embedded, _ops, _peek, _status, _upgrade, api, metrics, migrate
from sa_pgque._progress import Progress
from sa_pgque._tables import clip, duration, table, to_json
from sa_pgque.aio_consumer import AsyncConsumer
from sa_pgque.consumer import Consumer
from sa_pgque.errors import DeadLetterNotFound, EngineNotInstalled, PgqueError, QueueNotFound, translate
from sa_pgque.ticker import DEFAULT_MAINT_PERIOD, DEFAULT_RETRY_PERIOD, DEFAULT_TICK_PERIOD, Ticker

PROG = "sa-pgque"

EXIT_OK = 0
EXIT_ERROR = 1
"""The command failed: unknown queue, server down, engine not installed..."""
EXIT_USAGE = 2
"""The command line (or the configuration it names) makes no sense."""

REPLAY_CHUNK = 500
"""Dead letters replayed per transaction by ``dlq replay --all``."""

PAYLOAD_WIDTH = 60
"""Characters of payload shown per event in tables."""

log = logging.getLogger("sa_pgque.cli")


class CliError(Exception):
    """A failure to report as one line, with the exit code to use."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- plumbing ---------------------------------------------------------------


class Context:
    """A command's arguments and, on demand, its database."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dsn_text: str | None = None

    @property
    def dsn(self) -> str:
        if self.dsn_text is None:
            self.dsn_text = _dsn.resolve(self.args.dsn)
        return self.dsn_text

    def engine(self, **kwargs: Any) -> Engine:
        kwargs.setdefault("poolclass", pool.NullPool)
        return create_engine(_dsn.to_url(self.dsn), **kwargs)

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block succeeds."""
        engine = self.engine()
        try:
            with engine.connect() as connection:
                if readonly:
                    connection = connection.execution_options(postgresql_readonly=True)
                with connection.begin():
                    yield connection
        finally:
            engine.dispose()

    def out(self, line: str = "") -> None:
        print(line)

    def note(self, line: str) -> None:
        """A remark for the person at the terminal (stderr, so stdout stays parseable)."""
        print(line, file=sys.stderr)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


def _driver_message(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    diag = getattr(orig, "diag", None)
    return _first_line(getattr(diag, "message_primary", None) or str(orig))


def _is_connection_failure(error: BaseException) -> bool:
    orig = getattr(error, "orig", None) or error
    if not isinstance(orig, psycopg.OperationalError):
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P", "28", "3D"))


def explain(error: BaseException, context: Context) -> tuple[str, int]:
    """The one line, and the exit code, that report ``error``."""
    where = "the database"
    if context.dsn_text is not None:
        with contextlib.suppress(_dsn.DsnError):
            where = _dsn.describe(context.dsn_text)
    if isinstance(error, CliError):
        return str(error), error.exit_code
    if isinstance(error, _dsn.DsnError):
        return str(error), EXIT_USAGE
    if isinstance(error, DBAPIError | psycopg.Error):
        if _is_connection_failure(error):
            return f"cannot connect to {where}: {_driver_message(error)}", EXIT_ERROR
        mapped = translate(error)
        if mapped is not error:
            return explain(mapped, context)
        sqlstate = getattr(getattr(error, "orig", error), "sqlstate", None)
        message = _driver_message(error)
        if sqlstate in ("42P01", "3F000") and "pgque" in message:
            return explain(EngineNotInstalled(message, sqlstate), context)
        if sqlstate and sqlstate.startswith("22"):
            return f"invalid value: {message}", EXIT_ERROR
        return f"database error: {message}", EXIT_ERROR
    if isinstance(error, EngineNotInstalled):
        return f"the sa_pgque engine is not installed in {where} (run `{PROG} upgrade`): {error}", EXIT_ERROR
    if isinstance(error, QueueNotFound):
        queue = getattr(context.args, "queue", None)
        return (f"queue not found: {queue}" if queue and queue not in str(error) else str(error)), EXIT_ERROR
    if isinstance(error, PgqueError):
        return str(error), EXIT_ERROR
    if isinstance(error, _embedded.EmbeddedUnavailable):
        return str(error), EXIT_ERROR
    if isinstance(error, RevisionError | CommandError):
        return f"revision error: {_first_line(str(error))}", EXIT_ERROR
    return f"{type(error).__name__}: {_first_line(str(error))} (run with --debug for a traceback)", EXIT_ERROR


def _require_queue(connection: Connection, queue: str) -> None:
    """Raise QueueNotFound for an unknown queue (the DLQ functions answer 'nothing' instead)."""
    if not api.queue_info(connection, queue):
        raise QueueNotFound(f"queue not found: {queue}")


def _payload_cell(payload: str | None) -> str:
    return clip(payload, PAYLOAD_WIDTH)


# -- engine revisions -------------------------------------------------------


def cmd_upgrade(ctx: Context) -> int:
    engine = ctx.engine()
    try:
        before, after = _upgrade.upgrade(engine, ctx.args.revision)
    finally:
        engine.dispose()
    if before == after:
        ctx.out(f"engine already at {after}")
    else:
        ctx.out(f"engine upgraded: {before or 'none'} -> {after}")
    return EXIT_OK


def cmd_downgrade(ctx: Context) -> int:
    with ctx.transaction() as connection:
        before = migrate.current(connection)
        if before is None:
            raise CliError("the engine is not installed: nothing to downgrade")
        migrate.downgrade(connection, ctx.args.revision)
        after = migrate.current(connection)
    ctx.out(f"engine downgraded: {before} -> {after or 'none (engine removed)'}")
    return EXIT_OK


def cmd_current(ctx: Context) -> int:
    with ctx.transaction(readonly=True) as connection:
        revision = migrate.current(connection)
    head = _upgrade.head()
    if revision is None:
        ctx.out(f"none (engine not installed; `{PROG} upgrade` installs {head})")
    elif revision == head:
        ctx.out(f"{revision} (latest)")
    else:
        ctx.out(f"{revision} (upgrade available: {head})")
    return EXIT_OK


# -- ticker and workers ------------------------------------------------------


@contextmanager
def _stopped_by_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on SIGTERM / SIGINT while the block runs."""

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_ticker(ctx: Context) -> int:
    engine = ctx.engine(poolclass=pool.QueuePool, pool_size=1)
    try:
        with engine.connect() as connection:
            version = api.version(connection)  # fail now, with one line, if the database is not usable
        ticker = Ticker(
            engine,
            tick_period=_seconds(ctx.args.tick_period),
            retry_period=_seconds(ctx.args.retry_period),
            maint_period=_seconds(ctx.args.maint_period),
        )
        ctx.note(f"ticker running on {_dsn.describe(ctx.dsn)} (pgque {version}); stop with Ctrl-C or SIGTERM")
        with _stopped_by_signals(lambda: ticker.stop(timeout=0)):
            ticker.run_forever()
        ctx.note(f"ticker stopped after {ticker.ticks} ticks")
    finally:
        engine.dispose()
    return EXIT_OK


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def load_worker(target: str) -> Consumer | AsyncConsumer:
    """The consumer named by ``MODULE:ATTR`` (an instance, or a zero-argument factory of one)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"expected MODULE:ATTR (like myapp.workers:consumer), got {target!r}", EXIT_USAGE)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise CliError(f"cannot import {module_name}: no module named {error.name!r}") from error
        raise
    value: Any = module
    for name in attribute.split("."):
        try:
            value = getattr(value, name)
        except AttributeError:
            raise CliError(f"{module_name} has no attribute {attribute!r}") from None
    if not isinstance(value, Consumer | AsyncConsumer) and callable(value):
        value = value()
    if not isinstance(value, Consumer | AsyncConsumer):
        raise CliError(f"{target} is a {type(value).__name__}, not a Consumer or AsyncConsumer (or a factory of one)")
    return value


def cmd_work(ctx: Context) -> int:
    if ctx.args.dsn:
        os.environ["SA_PGQUE_DSN"] = ctx.args.dsn  # for the application's own configuration
    consumer = load_worker(ctx.args.target)
    member = f" (member {consumer.subconsumer})" if consumer.subconsumer else ""
    ctx.note(f"worker {consumer.name}{member} consuming {consumer.queue}; stop with Ctrl-C or SIGTERM")
    if isinstance(consumer, AsyncConsumer):
        asyncio.run(consumer.run_forever())
    else:
        consumer.run_forever()
    ctx.note(f"worker {consumer.name}{member} stopped")
    return EXIT_OK


# -- status -------------------------------------------------------------------


def _postgres_version(snapshot: _status.Snapshot) -> str:
    for row in snapshot.engine_status:
        if row.component == "postgresql":
            return " ".join(row.detail.split()[:2])
    return "PostgreSQL"


def cmd_status(ctx: Context) -> int:
    with ctx.transaction(readonly=True) as connection:
        snapshot = _status.snapshot(connection)
    if ctx.args.json:
        document = {
            "version": snapshot.version,
            "revision": snapshot.revision,
            "postgresql": _postgres_version(snapshot),
            "ticker": {
                "runner": snapshot.ticker.runner,
                "late_queues": snapshot.ticker.late_queues,
                "healthy": snapshot.ticker.healthy,
            },
            "engine_status": snapshot.engine_status,
            "queues": snapshot.queues,
            "consumers": snapshot.consumers,
            "dead_letters": snapshot.dead_letters,
        }
        ctx.out(to_json(document))
        return EXIT_OK
    ticker = snapshot.ticker
    if ticker.runner is None:
        health = f"NOT RUNNING: start `{PROG} ticker` (or pgque.start() with pg_cron)"
    elif ticker.late_queues:
        health = f"LATE on {', '.join(ticker.late_queues)}: {ticker.runner}"
    else:
        health = f"ok: {ticker.runner}"
    ctx.out(f"engine   pgque {snapshot.version} (revision {snapshot.revision}), {_postgres_version(snapshot)}")
    ctx.out(f"ticker   {health}")
    ctx.out("\nqueues")
    ctx.out(
        table(
            ["queue", "depth", "ticker_lag", "ev_per_sec", "last_tick", "max_lag", "max_retries", "paused"],
            [
                (
                    q.queue_name,
                    q.ev_new,
                    duration(q.ticker_lag),
                    q.ev_per_sec,
                    q.last_tick_id,
                    duration(q.queue_ticker_max_lag),
                    snapshot.max_retries.get(q.queue_name),
                    q.queue_ticker_paused,
                )
                for q in snapshot.queues
            ],
        )
    )
    ctx.out("\nconsumers")
    ctx.out(
        table(
            ["queue", "consumer", "lag", "pending_events", "last_seen", "batch"],
            [
                (
                    c.queue_name,
                    c.consumer_name,
                    duration(c.lag),
                    c.pending_events,
                    duration(c.last_seen),
                    c.current_batch,
                )
                for c in snapshot.consumers
            ],
        )
    )
    ctx.out("\ndead letters")
    ctx.out(
        table(["queue", "count", "newest"], [(d.queue_name, d.dead_letters, d.newest) for d in snapshot.dead_letters])
    )
    return EXIT_OK


# -- queues ---------------------------------------------------------------------

QUEUE_OPTIONS = (
    ("max_retries", "--max-retries", "N", "nacks before a message is dead-lettered (engine default 5)"),
    ("ticker_max_count", "--ticker-max-count", "N", "tick as soon as this many events wait (default 500)"),
    ("ticker_max_lag", "--ticker-max-lag", "INTERVAL", "tick pending events at least this often ('100ms', '3s')"),
    ("ticker_idle_period", "--ticker-idle-period", "INTERVAL", "tick an idle queue at least this often"),
    ("rotation_period", "--rotation-period", "INTERVAL", "minimum time between event table rotations"),
)


def cmd_queue_create(ctx: Context) -> int:
    settings: dict[str, object] = {
        name: getattr(ctx.args, name) for name, *_ in QUEUE_OPTIONS if getattr(ctx.args, name) is not None
    }
    if ctx.args.paused:
        settings["ticker_paused"] = True
    if ctx.args.external_ticker:
        settings["external_ticker"] = True
    with ctx.transaction() as connection:
        created = api.create_queue(connection, ctx.args.queue, **settings)
    applied = f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else ""
    if created:
        ctx.out(f"queue {ctx.args.queue} created{applied}")
    else:
        ctx.out(f"queue {ctx.args.queue} already exists" + (f"; applied{applied}" if settings else ""))
    return EXIT_OK


def cmd_queue_drop(ctx: Context) -> int:
    with ctx.transaction() as connection:
        api.drop_queue(connection, ctx.args.queue, force=ctx.args.force)
    ctx.out(f"queue {ctx.args.queue} dropped")
    return EXIT_OK


def cmd_queue_config(ctx: Context) -> int:
    value = None if ctx.args.value.lower() in ("default", "null") else ctx.args.value
    with ctx.transaction() as connection:
        api.set_queue_config(connection, ctx.args.queue, ctx.args.param, value)
    ctx.out(f"queue {ctx.args.queue}: {ctx.args.param} = {value if value is not None else '(default)'}")
    return EXIT_OK


# -- events ---------------------------------------------------------------------


def cmd_send(ctx: Context) -> int:
    payload: str = sys.stdin.read() if ctx.args.payload == "-" else ctx.args.payload
    if ctx.args.json:
        try:
            value = json.loads(payload)
        except ValueError as error:
            raise CliError(f"payload is not valid JSON: {error}", EXIT_USAGE) from None
        if value is None:
            raise CliError("payload is JSON null: send a JSON value, or text without --json", EXIT_USAGE)
        # sent through the jsonb overload whatever the value, a JSON string included
        send = _ops.send_encoded_batch(ctx.args.queue, [json.dumps(value)], is_json=True, type=ctx.args.type)
    else:
        send = _ops.send_encoded_batch(ctx.args.queue, [payload], is_json=False, type=ctx.args.type)
    with ctx.transaction() as connection:
        [event_id] = api.run(connection, send)
    ctx.out(str(event_id))
    return EXIT_OK


def cmd_peek(ctx: Context) -> int:
    with ctx.transaction(readonly=True) as connection:
        if ctx.args.consumer:
            events = _peek.pending(connection, ctx.args.queue, ctx.args.consumer, ctx.args.limit)
        else:
            events = _peek.newest(connection, ctx.args.queue, ctx.args.limit)
    if ctx.args.json:
        ctx.out(to_json(events))
        return EXIT_OK
    if ctx.args.consumer:
        ctx.note(f"events of {ctx.args.queue} not yet consumed by {ctx.args.consumer} (oldest first, not consumed now)")
    else:
        ctx.note(f"newest events of {ctx.args.queue}")
    ctx.out(
        table(
            ["ev_id", "time", "type", "retry", "state", "payload"],
            [(e.ev_id, e.ev_time, e.ev_type, e.ev_retry, e.state, _payload_cell(e.ev_data)) for e in events],
        )
    )
    return EXIT_OK


# -- dead letters -------------------------------------------------------------------

_CONSUMER_NAMES = text("select co_id, co_name from pgque.consumer")

_QUEUE_DEAD_LETTER_IDS = text(
    """
    select d.dl_id
      from pgque.dead_letter d
      join pgque.queue q on q.queue_id = d.dl_queue_id
     where q.queue_name = :queue
     order by d.dl_id
    """
)


def cmd_dlq_list(ctx: Context) -> int:
    with ctx.transaction(readonly=True) as connection:
        _require_queue(connection, ctx.args.queue)
        letters = api.dlq_inspect(connection, ctx.args.queue, limit=ctx.args.limit)
        consumers: dict[int, str] = dict(connection.execute(_CONSUMER_NAMES).tuples().all())
    if ctx.args.json:
        ctx.out(to_json([{**_plain_letter(d), "consumer": consumers.get(d.dl_consumer_id)} for d in letters]))
        return EXIT_OK
    ctx.out(
        table(
            ["dl_id", "ev_id", "consumer", "dead since", "retries", "type", "reason", "payload"],
            [
                (
                    d.dl_id,
                    d.ev_id,
                    consumers.get(d.dl_consumer_id),
                    d.dl_time,
                    d.ev_retry,
                    d.ev_type,
                    clip(d.dl_reason, 40),
                    _payload_cell(d.ev_data),
                )
                for d in letters
            ],
        )
    )
    return EXIT_OK


def _plain_letter(letter: Any) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(to_json(letter))
    return plain


def cmd_dlq_replay(ctx: Context) -> int:
    ids: list[int] = ctx.args.ids
    if bool(ids) == bool(ctx.args.all):
        raise CliError("give dead letter ids, or --all (not both)", EXIT_USAGE)
    if ids:
        with ctx.transaction() as connection:
            _require_queue(connection, ctx.args.queue)
            known = set(connection.scalars(_QUEUE_DEAD_LETTER_IDS, {"queue": ctx.args.queue}))
            missing = [i for i in ids if i not in known]
            if missing:
                raise DeadLetterNotFound(
                    f"dead letter {', '.join(map(str, missing))} not found in queue {ctx.args.queue}; nothing replayed"
                )
            replayed = [(dl_id, api.dlq_replay(connection, dl_id)) for dl_id in ids]
        for dl_id, event_id in replayed:
            ctx.out(f"dead letter {dl_id} replayed as event {event_id}")
        return EXIT_OK
    return _replay_all(ctx)


def _replay_all(ctx: Context) -> int:
    """Replay a whole DLQ in chunks (one transaction each), with progress; failures are counted, not fatal."""
    engine = ctx.engine()
    try:
        with engine.connect() as connection:
            _require_queue(connection, ctx.args.queue)
            ids = list(connection.scalars(_QUEUE_DEAD_LETTER_IDS, {"queue": ctx.args.queue}))
            connection.commit()
            progress = Progress("replaying dead letters", len(ids))
            failures: list[str] = []
            for start in range(0, len(ids), REPLAY_CHUNK):
                chunk = ids[start : start + REPLAY_CHUNK]
                failures += _replay_chunk(connection, chunk)
                progress.advance(len(chunk))
    finally:
        engine.dispose()
    replayed = len(ids) - len(failures)
    progress.done(f"replayed {replayed} of {len(ids)} dead letters of {ctx.args.queue}")
    ctx.out(f"replayed {replayed}, failed {len(failures)}")
    if failures:
        raise CliError(f"{len(failures)} dead letters could not be replayed; first: {failures[0]}")
    return EXIT_OK


def _replay_chunk(connection: Connection, chunk: list[int]) -> list[str]:
    """Replay ``chunk`` in one transaction; on failure, again one savepoint per letter. The failures."""
    try:
        with connection.begin():
            for dl_id in chunk:
                api.dlq_replay(connection, dl_id)
        return []
    except (PgqueError, DBAPIError):
        pass
    failures = []
    with connection.begin():
        for dl_id in chunk:
            try:
                with connection.begin_nested():
                    api.dlq_replay(connection, dl_id)
            except (PgqueError, DBAPIError) as error:
                failures.append(f"dl_id={dl_id}: {_driver_message(error)}")
    return failures


def cmd_dlq_purge(ctx: Context) -> int:
    with ctx.transaction() as connection:
        _require_queue(connection, ctx.args.queue)
        older_than = connection.scalar(text("select cast(:value as interval)"), {"value": ctx.args.older_than})
        purged = api.dlq_purge(connection, ctx.args.queue, older_than=older_than)
    ctx.out(f"purged {purged} dead letters of {ctx.args.queue} older than {ctx.args.older_than}")
    return EXIT_OK


# -- demo -------------------------------------------------------------------------


@contextmanager
def _demo_database(ctx: Context) -> Iterator[tuple[str, str]]:
    """A fresh database for the demo: (its DSN, a description); dropped afterwards unless --keep."""
    server: _embedded.EmbeddedServer | None = None
    if ctx.args.dsn:
        base, where = ctx.dsn, _dsn.describe(ctx.dsn)
    else:
        ctx.note("starting an embedded PostgreSQL in a temporary directory...")
        server = _embedded.start(prefix="sa_pgque_demo_")
        base, where = server.dsn, "an embedded PostgreSQL (temporary)"
    name = f"sa_pgque_demo_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(_dsn.to_conninfo(base), autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        dsn = _dsn.to_conninfo(base, dbname=name)
        try:
            yield dsn, f"{where}, database {name}"
        finally:
            if ctx.args.keep and server is None:
                ctx.note(f"kept database {name}: {_dsn.to_url(dsn).render_as_string(hide_password=True)}")
            else:
                with psycopg.connect(_dsn.to_conninfo(base), autocommit=True) as admin:
                    admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    finally:
        if server is not None:
            server.stop()


def cmd_metrics(ctx: Context) -> int:
    engine = ctx.engine(poolclass=pool.QueuePool, pool_size=2)
    try:
        if ctx.args.serve is None:  # one scrape to stdout
            sys.stdout.write(metrics.prometheus_text(engine))
            return EXIT_OK
        try:
            server = metrics.serve(engine, ctx.args.serve, min_interval=ctx.args.min_interval)
        except ValueError as error:  # a bad [HOST]:PORT
            raise CliError(str(error), EXIT_USAGE) from error
        ctx.note(f"serving metrics at {server.url}; stop with Ctrl-C or SIGTERM")
        with _stopped_by_signals(server.stop):
            server.wait()
    finally:
        engine.dispose()
    return EXIT_OK


def cmd_demo(ctx: Context) -> int:
    if ctx.args.keep and not ctx.args.dsn:
        raise CliError("--keep needs --dsn (the embedded server is temporary)", EXIT_USAGE)
    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM too
    try:
        with _demo_database(ctx) as (dsn, where):
            ok = _demo.run(
                _dsn.to_url(dsn),
                where,
                sys.stdout,
                orders=ctx.args.orders,
                verbose=ctx.args.verbose > 0,
                started=started,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not ok:
        raise CliError("the demo did not complete as expected (see the report above)")
    return EXIT_OK


# -- parser -------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """--dsn, --debug, -v: accepted before and after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    suppress: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument(
        "--dsn",
        help="database: libpq DSN or SQLAlchemy URL (default: $SA_PGQUE_DSN, then $DATABASE_URL)",
        **({"default": None} if defaults else suppress),
    )
    common.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks",
        **({"default": False} if defaults else suppress),
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="log more (-vv: debug)",
        **({"default": 0} if defaults else suppress),
    )
    return common


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="A PgQue-compatible PostgreSQL event queue for SQLAlchemy applications.",
        parents=[_common_options(True)],
    )
    common = _common_options(False)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[[Context], int], help: str, into: Any = commands) -> Parser:
        sub: Parser = into.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    sub = command("upgrade", cmd_upgrade, "install the engine, or upgrade it (to REV, default: latest)")
    sub.add_argument("revision", nargs="?", default="heads", metavar="REV")
    sub = command("downgrade", cmd_downgrade, "revert engine revisions (to REV, default: one back; 'base' removes all)")
    sub.add_argument("revision", nargs="?", default="-1", metavar="REV")
    command("current", cmd_current, "show the installed engine revision")

    sub = command("ticker", cmd_ticker, "tick queues and run maintenance in the foreground (until SIGTERM/Ctrl-C)")
    sub.add_argument("--tick-period", type=float, default=DEFAULT_TICK_PERIOD.total_seconds(), metavar="SECONDS")
    sub.add_argument("--retry-period", type=float, default=DEFAULT_RETRY_PERIOD.total_seconds(), metavar="SECONDS")
    sub.add_argument("--maint-period", type=float, default=DEFAULT_MAINT_PERIOD.total_seconds(), metavar="SECONDS")

    sub = command("status", cmd_status, "engine version, ticker health, queues, consumers and dead letters")
    sub.add_argument("--json", action="store_true", help="machine-readable output")

    queue = command("queue", _missing_subcommand, "create, drop and configure queues")
    queue_commands = queue.add_subparsers(title="queue commands", metavar="COMMAND", required=True)
    sub = command("create", cmd_queue_create, "create a queue (or apply settings to an existing one)", queue_commands)
    sub.add_argument("queue", metavar="NAME")
    for dest, flag, metavar, help in QUEUE_OPTIONS:
        sub.add_argument(flag, dest=dest, metavar=metavar, help=help, type=int if metavar == "N" else str)
    sub.add_argument("--paused", action="store_true", help="create it with its ticker paused")
    sub.add_argument("--external-ticker", action="store_true", help="ticks are pushed from outside")
    sub = command("drop", cmd_queue_drop, "drop a queue and its events", queue_commands)
    sub.add_argument("queue", metavar="NAME")
    sub.add_argument("--force", action="store_true", help="unsubscribe its consumers first")
    sub = command("config", cmd_queue_config, "set one queue parameter ('default' resets it)", queue_commands)
    sub.add_argument("queue", metavar="NAME")
    sub.add_argument("param", choices=_ops.QUEUE_SETTINGS, metavar="PARAM", help=", ".join(_ops.QUEUE_SETTINGS))
    sub.add_argument("value", metavar="VALUE")

    sub = command("send", cmd_send, "publish one event; prints its id")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("payload", metavar="PAYLOAD", help="the payload text ('-': read it from stdin)")
    sub.add_argument("--type", help="event type")
    sub.add_argument("--json", action="store_true", help="parse PAYLOAD as JSON and send it as jsonb")

    sub = command("peek", cmd_peek, "show events without consuming them")
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("--consumer", metavar="NAME", help="events this consumer has not consumed yet (oldest first)")
    sub.add_argument("--limit", type=_positive, default=20, metavar="N")
    sub.add_argument("--json", action="store_true", help="machine-readable output")

    dlq = command("dlq", _missing_subcommand, "inspect, replay and purge dead letters")
    dlq_commands = dlq.add_subparsers(title="dlq commands", metavar="COMMAND", required=True)
    sub = command("list", cmd_dlq_list, "list a queue's dead letters, newest first", dlq_commands)
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("--limit", type=_positive, default=100, metavar="N")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub = command("replay", cmd_dlq_replay, "send dead letters again as new events", dlq_commands)
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("ids", type=int, nargs="*", metavar="ID")
    sub.add_argument("--all", action="store_true", help="replay every dead letter of the queue")
    sub = command("purge", cmd_dlq_purge, "delete dead letters older than an age", dlq_commands)
    sub.add_argument("queue", metavar="QUEUE")
    sub.add_argument("--older-than", default="30 days", metavar="INTERVAL", help="default: 30 days; 0 purges all")

    sub = command("metrics", cmd_metrics, "print the queue metrics in Prometheus format, or serve them over HTTP")
    sub.add_argument("--serve", metavar="[HOST]:PORT", help="serve GET /metrics, e.g. :9187 or 127.0.0.1:9187")
    sub.add_argument(
        "--min-interval",
        type=float,
        default=metrics.DEFAULT_MIN_INTERVAL,
        metavar="SECONDS",
        help="reuse a scrape for this long (default: %(default)s)",
    )

    sub = command("work", cmd_work, "run a Consumer or AsyncConsumer from your code (until SIGTERM/Ctrl-C)")
    sub.add_argument("target", metavar="MODULE:ATTR", help="a consumer instance, or a zero-argument factory of one")

    sub = command(
        "demo",
        cmd_demo,
        "run a small shop on sa_pgque end to end, on a temporary embedded PostgreSQL unless --dsn is given"
        " (the demo ignores SA_PGQUE_DSN and DATABASE_URL: it only touches a server named on its command line)",
    )
    sub.add_argument("--keep", action="store_true", help="keep the demo database (with --dsn)")
    sub.add_argument("--orders", type=_positive, default=_demo.DEFAULT_ORDERS, metavar="N")
    return parser


def _missing_subcommand(ctx: Context) -> int:  # pragma: no cover - argparse requires the subcommand
    raise CliError("missing command", EXIT_USAGE)


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; return the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    context = Context(args)
    try:
        code: int = args.handler(context)
        return code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            import traceback

            traceback.print_exc()
        message, code = explain(error, context)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return code


def run() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
