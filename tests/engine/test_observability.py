"""Observability and lifecycle: queue/consumer info, status, start/stop, uninstall."""

from __future__ import annotations

import pytest

from tests._pg import Database, Sql
from tests.engine._helpers import drain, queue_id, raises, tick


def columns(sql: Sql, query: str) -> list[str]:
    return [d.name for d in sql.conn.execute(query).description or []]


def test_get_queue_info(sql: Sql) -> None:
    for name in ("b", "a"):
        sql.exec("select pgque.create_queue(%s)", name)
    assert columns(sql, "select * from pgque.get_queue_info()") == [
        "queue_name",
        "queue_ntables",
        "queue_cur_table",
        "queue_rotation_period",
        "queue_switch_time",
        "queue_external_ticker",
        "queue_ticker_paused",
        "queue_ticker_max_count",
        "queue_ticker_max_lag",
        "queue_ticker_idle_period",
        "ticker_lag",
        "ev_per_sec",
        "ev_new",
        "last_tick_id",
    ]
    assert [r[0] for r in sql.rows("select * from pgque.get_queue_info()")] == ["a", "b"]
    with sql.transaction():  # one now() for both, so ticker_lag agrees
        assert sql.rows("select * from pgque.get_queue_info(null)") == sql.rows("select * from pgque.get_queue_info()")
    assert sql.rows("select * from pgque.get_queue_info('nope')") == []
    only_tick = sql.row("select ev_per_sec, ev_new, last_tick_id from pgque.get_queue_info('a')")
    assert only_tick == (None, 0, 1)

    qid = queue_id(sql, "a")
    sql.exec("select pgque.send_batch('a', array(select 'x' from generate_series(1, 30)))")
    tick(sql, "a")  # tick 2 covers the 30 events (and the forced sequence jump)
    sql.exec(
        "update pgque.tick set tick_time = tick_time - interval '10 seconds' where tick_queue = %s and tick_id = 1", qid
    )
    sql.exec("select pgque.send_batch('a', array(select 'x' from generate_series(1, 7)))")
    per_sec, ev_new, last_tick = sql.row("select ev_per_sec, ev_new, last_tick_id from pgque.get_queue_info('a')")
    assert last_tick == 2
    assert ev_new == 7
    seqs = sql.col("select tick_event_seq from pgque.tick where tick_queue = %s order by tick_id", qid)
    span = sql.one(
        "select extract(epoch from max(tick_time) - min(tick_time)) from pgque.tick where tick_queue = %s", qid
    )
    assert per_sec == pytest.approx((seqs[1] - seqs[0]) / float(span))


def test_get_consumer_info(sql: Sql) -> None:
    for name in ("q2", "q1"):
        sql.exec("select pgque.create_queue(%s)", name)
    sql.exec("select pgque.subscribe('q1', 'zed')")
    sql.exec("select pgque.subscribe('q1', 'amy')")
    sql.exec("select pgque.subscribe('q2', 'amy')")
    assert columns(sql, "select * from pgque.get_consumer_info()") == [
        "queue_name",
        "consumer_name",
        "lag",
        "last_seen",
        "last_tick",
        "current_batch",
        "next_tick",
        "pending_events",
    ]
    assert [r[:2] for r in sql.rows("select * from pgque.get_consumer_info()")] == [
        ("q1", "amy"),
        ("q1", "zed"),
        ("q2", "amy"),
    ]
    assert [r[1] for r in sql.rows("select * from pgque.get_consumer_info('q1')")] == ["amy", "zed"]
    assert [r[0] for r in sql.rows("select * from pgque.get_consumer_info(null, 'amy')")] == ["q1", "q2"]
    assert sql.rows("select * from pgque.get_consumer_info('q1', 'nobody')") == []

    sql.exec("select pgque.send_batch('q1', array(select 'x' from generate_series(1, 40)))")
    tick(sql, "q1")
    batch = sql.one("select pgque.next_batch('q1', 'amy')")
    row = sql.row(
        "select last_tick, current_batch, next_tick, pending_events from pgque.get_consumer_info('q1', 'amy')"
    )
    latest_seq = sql.one(
        "select max(tick_event_seq) from pgque.tick t join pgque.queue q on q.queue_id = t.tick_queue"
        " where q.queue_name = 'q1'"
    )
    first_seq = sql.one(
        "select tick_event_seq from pgque.tick t join pgque.queue q on q.queue_id = t.tick_queue"
        " where q.queue_name = 'q1' and tick_id = 1"
    )
    assert row == (1, batch, 2, latest_seq - first_seq)
    drain(sql, "q1", "amy")
    assert sql.row("select last_tick, current_batch, pending_events from pgque.get_consumer_info('q1', 'amy')") == (
        2,
        None,
        0,
    )


def test_status_without_a_scheduler(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    rows = sql.rows("select * from pgque.status()")
    version = sql.one("select version()")
    assert rows == [
        ("postgresql", "info", version),
        ("pgque", "info", sql.one("select pgque.version()")),
        ("scheduler", "manual", "ticker_job_id=NULL, maint_job_id=NULL, tick_period_ms=100 (10.00 ticks/sec)"),
        ("ticker", "stopped", "not scheduled (tick_period_ms=100)"),
        ("maintenance", "stopped", "not scheduled"),
        (
            "pg_cron",
            "unavailable",
            "use pgque.start_timetable() for pg_timetable, or call pgque.ticker() / pgque.maint() manually",
        ),
        ("pg_timetable", "unavailable", "run pg_timetable against this database, then call pgque.start_timetable()"),
        ("queues", "info", "1 queues configured"),
        ("consumers", "info", "1 active subscriptions"),
    ]
    sql.exec("select pgque.set_tick_period_ms(40)")
    assert sql.row("select detail from pgque.status() where component = 'scheduler'") == (
        "ticker_job_id=NULL, maint_job_id=NULL, tick_period_ms=40 (25.00 ticks/sec)",
    )


def test_start_needs_pg_cron_and_stop_is_safe_without_it(sql: Sql) -> None:
    raises(
        sql,
        "pg_cron extension is not installed. PgQue itself works without pg_cron, but pgque.start() schedules "
        "cron jobs. Install pg_cron first, or run pgque.ticker() and pgque.maint() manually.",
        "select pgque.start()",
        sqlstate="PQ050",
    )
    sql.exec("update pgque.config set ticker_job_id = 7, maint_job_id = 8, scheduler = 'pg_cron'")
    sql.exec("select pgque.stop()")
    sql.exec("select pgque.stop()")
    assert sql.row("select ticker_job_id, maint_job_id, scheduler from pgque.config") == (None, None, None)
    raises(
        sql,
        "pg_timetable schema/API is not installed. Run pg_timetable against this database first, or use "
        "pgque.start() for pg_cron.",
        "select pgque.start_timetable()",
        sqlstate="PQ050",
    )
    sql.exec("select pgque.stop_timetable()")


def test_uninstall_drops_the_schema_and_keeps_the_roles(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("create table public.t (id int primary key)")
    sql.exec("create trigger t_cdc after insert on public.t for each row execute procedure pgque.jsontriga('q')")
    sql.exec("select pgque.uninstall()")
    assert (
        "pgque uninstalled. Run DROP ROLE IF EXISTS pgque_reader, pgque_writer, pgque_admin; manually if needed."
        in sql.notices
    )
    assert sql.one("select count(*) from pg_namespace where nspname = 'pgque'") == 0
    assert sql.one("select count(*) from pg_trigger where tgname = 't_cdc'") == 0
    assert sql.one("select count(*) from pg_roles where rolname like 'pgque\\_%'") == 3
