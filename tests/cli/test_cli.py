"""The ``sa-pgque`` command, run as a subprocess (``python -m sa_pgque``) against a real database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import sa_pgque as pgque
from sa_pgque import _upgrade
from tests._pg import Database, Server, Sql

HEAD = _upgrade.head()
REVISIONS = _upgrade.pending_revisions(None)
"""Every engine revision, oldest first."""

DEADLINE = 60.0
"""Seconds a background command gets to show the expected effect (a bound, not a measurement)."""


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SA_PGQUE_DSN", "DATABASE_URL")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sa_pgque", *args],
        capture_output=True,
        text=True,
        env=env or environment(),
        input=input,
        timeout=180,
    )


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sa_pgque", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or environment(),
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sa-pgque"), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=DEADLINE)
    return process.returncode, stdout, stderr


@pytest.fixture
def dsn(db: Database) -> str:
    return db.conninfo


@pytest.fixture
def engine(db: Database) -> Engine:
    return db.engine()


@pytest.fixture
def orders(engine: Engine) -> str:
    """Queue ``orders`` with consumers ``billing`` and ``shipping``."""
    with Session(engine) as session, session.begin():
        pgque.create_queue(session, "orders")
        pgque.subscribe(session, "orders", "billing")
        pgque.subscribe(session, "orders", "shipping")
    return "orders"


def send(engine: Engine, queue: str, *payloads: str, tick: bool = True) -> list[int]:
    with Session(engine) as session, session.begin():
        ids = pgque.send_batch(session, queue, list(payloads), type="t")
    if tick:
        with Session(engine) as session, session.begin():
            pgque.tick(session, queue)
    return ids


def dead_letters(engine: Engine, queue: str, consumer: str, *payloads: str) -> None:
    """Dead-letter ``payloads`` for ``consumer`` the normal way: max_retries 0, then a nack."""
    with Session(engine) as session, session.begin():
        pgque.set_queue_config(session, queue, "max_retries", 0)
    send(engine, queue, *payloads)
    with Session(engine) as session, session.begin():
        messages = pgque.receive(session, queue, consumer)
        for message in messages:
            pgque.nack(session, message, reason="broken")
        pgque.ack(session, messages[0].batch_id)


# -- configuration and errors common to every command ------------------------------------------


def test_no_dsn_is_a_usage_error_naming_the_options() -> None:
    result = cli("status")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "--dsn" in line and "SA_PGQUE_DSN" in line


@pytest.mark.parametrize("variable", ["SA_PGQUE_DSN", "DATABASE_URL"])
def test_dsn_comes_from_the_environment(db: Database, variable: str) -> None:
    result = cli("current", env=environment(**{variable: db.conninfo}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{HEAD} (latest)"


def test_dsn_option_is_accepted_after_the_command_and_as_a_sqlalchemy_url(db: Database) -> None:
    url = db.url.render_as_string(hide_password=False)
    assert url.startswith("postgresql+psycopg://")
    result = cli("current", "--dsn", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(HEAD)


def test_malformed_dsn_is_a_usage_error() -> None:
    result = cli("--dsn", "mysql://u@h/db", "status")
    assert result.returncode == 2
    assert "not a PostgreSQL URL" in one_error_line(result)


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://127.0.0.1:1/postgres?connect_timeout=5", "host=/nonexistent/socket/dir dbname=postgres"],
)
def test_server_down_is_one_line_and_exit_1(dsn: str) -> None:
    result = cli("--dsn", dsn, "status")
    assert result.returncode == 1
    assert "cannot connect to" in one_error_line(result)


def test_engine_not_installed_says_how_to_install(empty_db: Database) -> None:
    result = cli("--dsn", empty_db.conninfo, "status")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "not installed" in line and "sa-pgque upgrade" in line


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        [],
        ["peek", "orders", "--limit", "many"],
        ["peek", "orders", "--limit", "0"],
        ["queue", "config", "orders", "colour", "blue"],
        ["queue", "create", "orders", "--max-retries", "lots"],
        ["send", "orders"],
        ["dlq", "replay", "orders", "x"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(dsn: str, args: list[str]) -> None:
    result = cli("--dsn", dsn, *args)
    assert result.returncode == 2
    assert "error" in one_error_line(result)


def test_debug_shows_the_traceback(dsn: str) -> None:
    result = cli("--dsn", dsn, "--debug", "send", "nosuch", "x")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "sa-pgque: error: queue not found: nosuch"


# -- engine revisions -------------------------------------------------------------------------------


def test_upgrade_current_and_downgrade_walk_the_revisions(empty_db: Database) -> None:
    dsn = empty_db.conninfo
    sql = empty_db.sql()
    first, before_head = REVISIONS[0], REVISIONS[-2]
    assert cli("--dsn", dsn, "current").stdout.startswith("none")

    result = cli("--dsn", dsn, "upgrade", first)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"engine upgraded: none -> {first}"
    assert first in result.stderr  # the final progress line, even without a terminal
    assert cli("--dsn", dsn, "current").stdout.strip() == f"{first} (upgrade available: {HEAD})"

    assert cli("--dsn", dsn, "upgrade").stdout.strip() == f"engine upgraded: {first} -> {HEAD}"
    assert cli("--dsn", dsn, "upgrade").stdout.strip() == f"engine already at {HEAD}"
    assert sql.one("select pgque.version()")

    assert cli("--dsn", dsn, "downgrade").stdout.strip() == f"engine downgraded: {HEAD} -> {before_head}"
    assert cli("--dsn", dsn, "current").stdout.startswith(before_head)
    result = cli("--dsn", dsn, "downgrade", "base")
    assert result.stdout.strip() == f"engine downgraded: {before_head} -> none (engine removed)"
    assert sql.one("select to_regnamespace('pgque')") is None

    result = cli("--dsn", dsn, "downgrade")
    assert result.returncode == 1
    assert "not installed" in one_error_line(result)


def test_unknown_revision_is_one_line(empty_db: Database) -> None:
    result = cli("--dsn", empty_db.conninfo, "upgrade", "pgque_9999")
    assert result.returncode == 1
    assert "pgque_9999" in one_error_line(result)


# -- queues -------------------------------------------------------------------------------------------


def test_queue_create_applies_settings(dsn: str, sql: Sql) -> None:
    result = cli("--dsn", dsn, "queue", "create", "jobs", "--max-retries", "2", "--ticker-max-lag", "100ms")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("queue jobs created")
    assert sql.row("select queue_max_retries, queue_ticker_max_lag from pgque.queue where queue_name = 'jobs'") == (
        2,
        timedelta(milliseconds=100),
    )
    assert cli("--dsn", dsn, "queue", "create", "jobs").stdout.strip() == "queue jobs already exists"


def test_queue_config_sets_and_resets_a_parameter(dsn: str, sql: Sql, orders: str) -> None:
    assert cli("--dsn", dsn, "queue", "config", "orders", "ticker_max_count", "7").returncode == 0
    assert sql.one("select queue_ticker_max_count from pgque.queue where queue_name = 'orders'") == 7
    assert cli("--dsn", dsn, "queue", "config", "orders", "ticker_max_count", "default").returncode == 0
    assert sql.one("select queue_ticker_max_count from pgque.queue where queue_name = 'orders'") == 500

    result = cli("--dsn", dsn, "queue", "config", "orders", "ticker_max_lag", "soon")
    assert result.returncode == 1
    assert "invalid value" in one_error_line(result)
    result = cli("--dsn", dsn, "queue", "config", "nosuch", "ticker_max_count", "7")
    assert result.returncode == 1
    assert one_error_line(result) == "sa-pgque: error: queue not found: nosuch"


def test_queue_drop_needs_force_while_consumers_are_attached(dsn: str, sql: Sql, orders: str) -> None:
    result = cli("--dsn", dsn, "queue", "drop", "orders")
    assert result.returncode == 1
    assert "consumers still attached" in one_error_line(result)
    assert cli("--dsn", dsn, "queue", "drop", "orders", "--force").stdout.strip() == "queue orders dropped"
    assert sql.one("select count(*) from pgque.queue") == 0
    result = cli("--dsn", dsn, "queue", "drop", "orders")
    assert result.returncode == 1
    assert one_error_line(result) == "sa-pgque: error: queue not found: orders"


# -- send and peek ----------------------------------------------------------------------------------


def test_send_text_json_and_stdin(dsn: str, sql: Sql, orders: str) -> None:
    text_id = int(cli("--dsn", dsn, "send", "orders", "not {json", "--type", "note").stdout)
    json_id = int(cli("--dsn", dsn, "send", "orders", '{"b": 2,  "a": [1]}', "--json").stdout)
    string_id = int(cli("--dsn", dsn, "send", "orders", '"quoted"', "--json").stdout)
    stdin_id = int(cli("--dsn", dsn, "send", "orders", "-", input="from stdin").stdout)
    rows = sql.rows("select ev_id, ev_type, ev_data from pgque.event_1 order by ev_id")
    assert (text_id, "note", "not {json") in rows
    assert (json_id, "default", '{"a": [1], "b": 2}') in rows  # jsonb's canonical text
    assert (string_id, "default", '"quoted"') in rows  # a JSON string stays JSON
    assert (stdin_id, "default", "from stdin") in rows


def test_send_rejects_invalid_json_and_unknown_queues(dsn: str, sql: Sql, orders: str) -> None:
    result = cli("--dsn", dsn, "send", "orders", "{nope", "--json")
    assert result.returncode == 2
    assert "not valid JSON" in one_error_line(result)
    result = cli("--dsn", dsn, "send", "nosuch", "x")
    assert result.returncode == 1
    assert one_error_line(result) == "sa-pgque: error: queue not found: nosuch"
    assert sql.one("select count(*) from pgque.event_1") == 0


def peek(dsn: str, *args: str) -> list[dict[str, Any]]:
    result = cli("--dsn", dsn, "peek", *args, "--json")
    assert result.returncode == 0, result.stderr
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


def test_peek_shows_what_a_consumer_has_not_consumed_without_consuming_it(
    dsn: str, engine: Engine, orders: str
) -> None:
    first = send(engine, orders, "one", "two")
    with Session(engine) as session, session.begin():
        batch = pgque.receive(session, orders, "billing")
        pgque.ack(session, batch[0].batch_id)
    later = send(engine, orders, "three", tick=False)
    with Session(engine) as session:  # an event that never commits
        pgque.send(session, orders, "rolled back")
        session.rollback()

    billing = peek(dsn, "orders", "--consumer", "billing")
    assert [(e["ev_id"], e["ev_data"], e["state"]) for e in billing] == [(later[0], "three", "not ticked")]
    shipping = peek(dsn, "orders", "--consumer", "shipping")
    assert [e["ev_id"] for e in shipping] == [*first, *later]
    assert [e["state"] for e in shipping] == ["ticked", "ticked", "not ticked"]

    # peeking consumed nothing: shipping still receives the first batch
    with Session(engine) as session, session.begin():
        assert [m.msg_id for m in pgque.receive(session, orders, "shipping")] == first


def test_peek_marks_the_open_batch_and_pending_retries(dsn: str, engine: Engine, orders: str) -> None:
    ids = send(engine, orders, "a", "b")
    with Session(engine) as session, session.begin():
        messages = pgque.receive(session, orders, "billing")
    batch_id = messages[0].batch_id
    states = {e["ev_id"]: e["state"] for e in peek(dsn, "orders", "--consumer", "billing")}
    assert states == {ids[0]: f"batch {batch_id}", ids[1]: f"batch {batch_id}"}

    with Session(engine) as session, session.begin():
        pgque.nack(session, messages[0], retry_after=3600)
        pgque.ack(session, batch_id)
    [retry] = peek(dsn, "orders", "--consumer", "billing")
    assert retry["ev_id"] == ids[0] and retry["ev_retry"] == 1
    assert retry["state"].startswith("retry due ")
    assert [e["ev_id"] for e in peek(dsn, "orders", "--consumer", "shipping")] == ids  # retries are billing's


def test_peek_covers_the_cooperative_members_batches(dsn: str, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        pgque.create_queue(session, "mail")
        pgque.subscribe_subconsumer(session, "mail", "emails", "w1")
    ids = send(engine, "mail", "x", "y")
    with Session(engine) as session, session.begin():
        batch_id = pgque.receive_coop(session, "mail", "emails", "w1")[0].batch_id
    later = send(engine, "mail", "z", tick=False)
    pending = peek(dsn, "mail", "--consumer", "emails")
    assert [(e["ev_id"], e["state"]) for e in pending] == [
        (ids[0], f"batch {batch_id}"),
        (ids[1], f"batch {batch_id}"),
        (later[0], "not ticked"),
    ]
    assert [e["ev_id"] for e in peek(dsn, "mail", "--consumer", "emails.w1")] == ids


def test_peek_without_consumer_lists_the_newest_events(dsn: str, engine: Engine, orders: str) -> None:
    ids = send(engine, orders, "a", "b", "c")
    assert [e["ev_id"] for e in peek(dsn, "orders", "--limit", "2")] == [ids[2], ids[1]]
    result = cli("--dsn", dsn, "peek", "orders")
    assert result.returncode == 0
    assert "ev_id" in result.stdout and "ticked" in result.stdout and " c" in result.stdout


def test_peek_errors(dsn: str, orders: str) -> None:
    result = cli("--dsn", dsn, "peek", "nosuch")
    assert (result.returncode, one_error_line(result)) == (1, "sa-pgque: error: queue not found: nosuch")
    result = cli("--dsn", dsn, "peek", "orders", "--consumer", "nobody")
    assert result.returncode == 1
    assert "nobody is not subscribed" in one_error_line(result)


# -- status -------------------------------------------------------------------------------------------


def test_status_reports_queues_consumers_and_dead_letters(dsn: str, engine: Engine, orders: str) -> None:
    dead_letters(engine, orders, "billing", "bad")
    send(engine, orders, "pending")

    result = cli("--dsn", dsn, "status")
    assert result.returncode == 0, result.stderr
    assert "ticker   NOT RUNNING" in result.stdout
    for heading in ("queues", "consumers", "dead letters", "depth", "ticker_lag", "ev_per_sec", "pending_events"):
        assert heading in result.stdout
    assert "billing" in result.stdout and "shipping" in result.stdout

    document = json.loads(cli("--dsn", dsn, "status", "--json").stdout)
    assert document["revision"] == HEAD
    assert document["ticker"] == {"runner": None, "late_queues": [], "healthy": False}
    [queue] = document["queues"]
    assert queue["queue_name"] == "orders" and "ev_new" in queue and "ticker_lag" in queue
    consumers = {c["consumer_name"]: c for c in document["consumers"]}
    assert set(consumers) == {"billing", "shipping"}
    assert consumers["shipping"]["pending_events"] >= 2
    assert [(d["queue_name"], d["dead_letters"]) for d in document["dead_letters"]] == [("orders", 1)]


# -- dead letters ----------------------------------------------------------------------------------------


def test_dlq_list_replay_and_purge(dsn: str, engine: Engine, sql: Sql, orders: str) -> None:
    dead_letters(engine, orders, "billing", "p1", "p2", "p3")
    listed = json.loads(cli("--dsn", dsn, "dlq", "list", "orders", "--json").stdout)
    assert sorted(d["ev_data"] for d in listed) == ["p1", "p2", "p3"]
    assert {d["consumer"] for d in listed} == {"billing"}
    text = cli("--dsn", dsn, "dlq", "list", "orders").stdout
    assert "dl_id" in text and "broken" in text and "p2" in text

    ids = sorted(d["dl_id"] for d in listed)
    result = cli("--dsn", dsn, "dlq", "replay", "orders", str(ids[0]))
    assert result.returncode == 0, result.stderr
    event_id = int(result.stdout.split()[-1])
    assert sql.one("select ev_data from pgque.event_1 where ev_id = %s", event_id) == "p1"

    result = cli("--dsn", dsn, "dlq", "replay", "orders", str(ids[1]), "999999")
    assert result.returncode == 1
    assert "999999 not found in queue orders" in one_error_line(result)
    assert sql.one("select count(*) from pgque.dead_letter") == 2  # nothing replayed

    result = cli("--dsn", dsn, "dlq", "replay", "orders", str(ids[1]), "--all")
    assert result.returncode == 2
    assert cli("--dsn", dsn, "dlq", "purge", "orders").stdout.startswith("purged 0 ")
    assert cli("--dsn", dsn, "dlq", "purge", "orders", "--older-than", "0").stdout.startswith("purged 2 ")
    assert sql.one("select count(*) from pgque.dead_letter") == 0


def test_dlq_replay_all_goes_in_chunks_and_reports(dsn: str, engine: Engine, sql: Sql, orders: str) -> None:
    dead_letters(engine, orders, "billing", "seed")
    sql.exec(
        """
        insert into pgque.dead_letter (dl_queue_id, dl_consumer_id, dl_reason, ev_id, ev_time, ev_data)
        select dl_queue_id, dl_consumer_id, 'bulk', 1000 + n, now(), 'bulk ' || n
          from pgque.dead_letter, generate_series(1, 1200) as n
        """
    )
    result = cli("--dsn", dsn, "dlq", "replay", "orders", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "replayed 1201, failed 0"
    assert result.stderr.strip() == "replayed 1201 of 1201 dead letters of orders"  # no TTY: the final line only
    assert sql.one("select count(*) from pgque.dead_letter") == 0
    assert sql.one("select count(*) from pgque.event_1 where ev_data like 'bulk %'") == 1200


def test_dlq_commands_on_unknown_queue(dsn: str) -> None:
    for args in (["list", "nosuch"], ["replay", "nosuch", "--all"], ["purge", "nosuch"]):
        result = cli("--dsn", dsn, "dlq", *args)
        assert (result.returncode, one_error_line(result)) == (1, "sa-pgque: error: queue not found: nosuch")


# -- long-running commands --------------------------------------------------------------------------


def test_ticker_ticks_until_sigterm_then_exits_0(dsn: str, engine: Engine, sql: Sql, orders: str) -> None:
    with Session(engine) as session, session.begin():
        pgque.set_queue_config(session, orders, "ticker_max_lag", "100ms")
    [event_id] = send(engine, orders, "tick me", tick=False)
    before = sql.one("select max(tick_id) from pgque.tick")
    process = start("--dsn", dsn, "ticker")
    try:
        wait_for(lambda: sql.one("select max(tick_id) from pgque.tick") > before, "a tick")
    finally:
        code, _, stderr = stop(process)
    assert code == 0, stderr
    assert "ticker stopped after" in stderr
    with Session(engine) as session, session.begin():
        assert [m.msg_id for m in pgque.receive(session, orders, "billing")] == [event_id]


def test_ticker_on_a_database_without_engine_fails_at_once(empty_db: Database) -> None:
    result = cli("--dsn", empty_db.conninfo, "ticker")
    assert result.returncode == 1
    assert "not installed" in one_error_line(result)


WORKER_MODULE = """
    import os
    from sqlalchemy import text
    {imports}

    import sa_pgque
    from sa_pgque import _dsn

    def make_consumer():
        engine = {create}(_dsn.to_url(os.environ["SA_PGQUE_DSN"]))
        consumer = sa_pgque.{cls}(engine, queue="orders", name="billing", poll_interval=0.2)

        @consumer.handler("t")
        {define} handle(message, session):
            {wait}session.execute(text("insert into handled values (:p)"), {{"p": message.payload}})

        return consumer
"""

WORKER_KINDS = {
    "sync": {
        "imports": "from sqlalchemy import create_engine",
        "create": "create_engine",
        "cls": "Consumer",
        "define": "def",
        "wait": "",
    },
    "async": {
        "imports": "from sqlalchemy.ext.asyncio import create_async_engine",
        "create": "create_async_engine",
        "cls": "AsyncConsumer",
        "define": "async def",
        "wait": "await ",
    },
}


@pytest.mark.parametrize("kind", sorted(WORKER_KINDS))
def test_work_runs_a_consumer_from_a_module_until_sigterm(
    dsn: str, engine: Engine, sql: Sql, orders: str, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "shop_worker.py").write_text(textwrap.dedent(WORKER_MODULE.format(**WORKER_KINDS[kind])))
    sql.exec("create table handled (payload text)")
    send(engine, orders, "a", "b")

    env = environment(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    process = start("--dsn", dsn, "work", "shop_worker:make_consumer", env=env)
    try:
        wait_for(lambda: sql.one("select count(*) from handled") == 2, "the worker to handle both events")
    finally:
        code, _, stderr = stop(process)
    assert code == 0, stderr
    assert "worker billing stopped" in stderr
    assert sorted(sql.col("select payload from handled")) == ["a", "b"]


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("shop_worker", 2, "expected MODULE:ATTR"),
        ("no_such_module_xyz:consumer", 1, "cannot import no_such_module_xyz"),
        ("shop_worker:missing", 1, "has no attribute 'missing'"),
        ("shop_worker:not_a_consumer", 1, "not a Consumer or AsyncConsumer"),
    ],
)
def test_work_rejects_bad_targets(dsn: str, tmp_path: Path, target: str, code: int, message: str) -> None:
    (tmp_path / "shop_worker.py").write_text("not_a_consumer = 42\n")
    env = environment(PYTHONPATH=str(tmp_path))
    result = cli("--dsn", dsn, "work", target, env=env)
    assert result.returncode == code
    assert message in one_error_line(result)


# -- demo ------------------------------------------------------------------------------------------------


def report_row(report: str, first: str) -> list[str]:
    """The cells (split on spaces) of the report's table row that starts with ``first``."""
    return next(line.split() for line in report.splitlines() if line.split()[:1] == [first])


def check_demo_report(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert "published  41 order events" in report
    assert "40 committed, 1 rolled back" in report
    assert "never delivered; orders stored: 40" in report
    assert report_row(report, "billing")[:3] == ["billing", "fan-out", "39"]
    assert report_row(report, "shipping")[:3] == ["shipping", "fan-out", "40"]
    assert report_row(report, "emails")[:3] == ["emails", "cooperative", "40"]
    assert "reached billing 3 times (first delivery + 2 retries" in report
    assert "PaymentDeclined" in report
    assert "median" in report and "p95" in report


def demo_databases(server: Server) -> list[str]:
    with server.admin() as conn:
        return [r[0] for r in conn.execute("select datname from pg_database where datname like 'sa_pgque_demo_%'")]


def test_demo_on_an_embedded_server() -> None:
    result = cli("demo", "--orders", "40")
    check_demo_report(result)
    assert "starting an embedded PostgreSQL" in result.stderr


def test_demo_on_a_given_server_drops_its_database(pg_server: Server) -> None:
    before = demo_databases(pg_server)
    result = cli("demo", "--orders", "40", "--dsn", pg_server.conninfo())
    check_demo_report(result)
    assert demo_databases(pg_server) == before


@pytest.fixture
def kept_demo_databases(pg_server: Server) -> Iterator[list[str]]:
    before = set(demo_databases(pg_server))
    kept: list[str] = []
    yield kept
    for name in set(demo_databases(pg_server)) - before:
        pg_server.drop_database(name)


def test_demo_keep_leaves_the_database(pg_server: Server, kept_demo_databases: list[str]) -> None:
    before = set(demo_databases(pg_server))
    result = cli("demo", "--orders", "40", "--keep", "--dsn", pg_server.url().render_as_string(hide_password=False))
    check_demo_report(result)
    kept = set(demo_databases(pg_server)) - before
    assert len(kept) == 1
    assert f"kept database {next(iter(kept))}" in result.stderr


def test_demo_keep_needs_a_dsn() -> None:
    result = cli("demo", "--keep")
    assert result.returncode == 2
    assert "--keep needs --dsn" in one_error_line(result)


# -- metrics -------------------------------------------------------------------------------------


def test_metrics_prints_prometheus_text(dsn: str, engine: Engine, orders: str) -> None:
    send(engine, orders, "a", "b")
    result = cli("metrics", "--dsn", dsn)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("# TYPE ") for line in lines)
    assert any('queue="orders"' in line and not line.startswith("#") for line in lines)


def test_metrics_serve_answers_scrapes_and_stops_on_sigterm(dsn: str, orders: str) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start("metrics", "--dsn", dsn, "--serve", f"127.0.0.1:{port}")
    body: list[str] = []

    def scraped() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                body.append(response.read().decode())
                return True
        except OSError:
            return False

    try:
        wait_for(scraped, "the metrics endpoint")
    finally:
        code, _, stderr = stop(process)
    assert code == 0, stderr
    assert 'queue="orders"' in body[0]


def test_metrics_serve_rejects_a_bad_address(dsn: str) -> None:
    result = cli("metrics", "--dsn", dsn, "--serve", "nowhere:notaport")
    assert result.returncode == 2
    one_error_line(result)
