"""send_at / maint_deliver_delayed: parked until due, delivered by the retry mover, exactly once."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from tests._pg import Database, Sql
from tests.engine._helpers import drain, event_rows, queue_id, raises, receive, tick


@pytest.fixture(autouse=True)
def _queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.subscribe('q', 'd')")


def send_at(sql: Sql, payload: str, when: str, queue: str = "q") -> int:
    return int(sql.one(f"select pgque.send_at(%s, 't', %s, {when})", queue, payload))


def make_due(sql: Sql) -> None:
    sql.exec("update pgque.delay_queue set ev_deliver_at = now() - interval '1 second'")


def test_future_event_waits_outside_the_queue(sql: Sql) -> None:
    event_id = send_at(sql, "later", "now() + interval '1 hour'")
    assert event_rows(sql, "q") == []
    assert sql.rows("select ev_queue, ev_id, ev_type, ev_data from pgque.delay_queue") == [
        (queue_id(sql, "q"), event_id, "t", "later")
    ]
    for _ in range(3):
        tick(sql, "q")
        assert drain(sql, "q", "c") == []
    assert sql.one("select pgque.maint_deliver_delayed()") == 0  # not due
    assert sql.one("select pgque.maint_retry_events()") == 0
    tick(sql, "q")
    assert drain(sql, "q", "c") == []


def test_due_event_is_delivered_after_the_move_and_a_tick(sql: Sql) -> None:
    sent_at = sql.one("select now()")
    event_id = send_at(sql, "later", "now() + interval '1 hour'")
    make_due(sql)
    tick(sql, "q")
    assert drain(sql, "q", "c") == [] and drain(sql, "q", "d") == []  # due, but not moved yet
    with sql.transaction():
        assert sql.one("select pgque.maint_deliver_delayed()") == 1
        moved_at = sql.one("select now()")
    assert sql.one("select count(*) from pgque.delay_queue") == 0
    tick(sql, "q")
    for consumer in ("c", "d"):
        [row] = drain(sql, "q", consumer)
        assert (row[0], row[2], row[3], row[4]) == (event_id, "t", "later", None)
        assert row[5] == moved_at and row[5] > sent_at  # created_at: when it entered the queue
    tick(sql, "q")
    assert drain(sql, "q", "c") == [] and drain(sql, "q", "d") == []


def test_move_and_tick_in_one_transaction_delivers_only_after_a_later_tick(sql: Sql) -> None:
    send_at(sql, "x", "now() + interval '1 hour'")
    make_due(sql)
    with sql.transaction():
        sql.exec("select pgque.maint_deliver_delayed()")
        tick(sql, "q")
        assert receive(sql, "q", "c") == []
    tick(sql, "q")
    assert [r[3] for r in drain(sql, "q", "c")] == ["x"]


def test_maint_retry_events_delivers_delayed_events_too(sql: Sql) -> None:
    ids = [send_at(sql, f"p{i}", "now() + interval '1 hour'") for i in range(3)]
    make_due(sql)
    assert sql.one("select pgque.maint_retry_events()") == 3
    assert sql.one("select pgque.maint_retry_events()") == 0
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "c")] == ids


def test_past_or_present_delivery_time_appends_at_once(sql: Sql) -> None:
    with sql.transaction():
        now_id = send_at(sql, "now", "now()")
        past_id = send_at(sql, "past", "now() - interval '1 day'")
    assert sql.one("select count(*) from pgque.delay_queue") == 0
    assert [(r[0], r[2]) for r in event_rows(sql, "q")] == [(now_id, "now"), (past_id, "past")]


def test_jsonb_payload_and_null_type(sql: Sql) -> None:
    sql.exec("""select pgque.send_at('q', null, '{"b": 2, "a": 1}'::jsonb, now() + interval '1 hour')""")
    assert sql.row("select ev_type, ev_data from pgque.delay_queue") == (None, '{"a": 1, "b": 2}')


def test_errors(sql: Sql) -> None:
    raises(sql, "deliver_at must not be null", "select pgque.send_at('q', 't', 'x', null)", sqlstate="PQ010")
    raises(
        sql,
        "queue not found: nope",
        "select pgque.send_at('nope', 't', 'x', now() + interval '1 hour')",
        sqlstate="PQ001",
    )
    raises(sql, "queue not found: nope", "select pgque.send_at('nope', 't', 'x', now())", sqlstate="PQ001")
    sql.exec("update pgque.queue set queue_disable_insert = true")
    raises(
        sql,
        "Insert into queue disallowed",
        "select pgque.send_at('q', 't', 'x', now() + interval '1 hour')",
        sqlstate="PQ020",
    )
    for limit in ("0", "-1", "null"):
        raises(
            sql,
            f"maint_deliver_delayed: limit must be >= 1, got {'NULL' if limit == 'null' else limit}",
            f"select pgque.maint_deliver_delayed({limit})",
            sqlstate="PQ010",
        )
    assert sql.one("select count(*) from pgque.delay_queue") == 0


def test_returned_id_is_reserved_in_the_queue_sequence(sql: Sql) -> None:
    delayed = send_at(sql, "later", "now() + interval '1 hour'")
    plain = sql.one("select pgque.send('q', 'now')")
    assert plain > delayed
    make_due(sql)
    sql.exec("select pgque.maint_deliver_delayed()")
    assert [r[0] for r in event_rows(sql, "q")] == [delayed, plain]


def test_disabled_queue_keeps_its_delayed_events_until_enabled(sql: Sql) -> None:
    send_at(sql, "x", "now() + interval '1 hour'")
    make_due(sql)
    sql.exec("update pgque.queue set queue_disable_insert = true")
    assert sql.one("select pgque.maint_deliver_delayed()") == 0
    assert sql.one("select count(*) from pgque.delay_queue") == 1
    sql.exec("update pgque.queue set queue_disable_insert = false")
    assert sql.one("select pgque.maint_deliver_delayed()") == 1


def test_limit_bounds_one_call_earliest_first(sql: Sql) -> None:
    for i in range(5):
        send_at(sql, f"p{i}", f"now() + interval '{i + 1} hours'")
    sql.exec("update pgque.delay_queue set ev_deliver_at = ev_deliver_at - interval '1 day'")
    assert sql.one("select pgque.maint_deliver_delayed(2)") == 2
    assert [r[2] for r in event_rows(sql, "q")] == ["p0", "p1"]
    assert sql.one("select pgque.maint_deliver_delayed(2)") == 2
    assert sql.one("select pgque.maint_deliver_delayed(2)") == 1
    assert sql.one("select pgque.maint_deliver_delayed(2)") == 0


def test_concurrent_movers_never_deliver_twice(db: Database, sql: Sql) -> None:
    ids = sql.col("select pgque.send_at('q', 't', i::text, now() + interval '1 hour') from generate_series(1, 300) i")
    make_due(sql)
    barrier = threading.Barrier(4)
    moved: list[int] = []
    failures: list[BaseException] = []

    def mover() -> None:
        try:
            with psycopg.connect(db.conninfo, autocommit=True) as conn:
                barrier.wait(timeout=30)
                while True:
                    with conn.transaction():
                        row = conn.execute("select pgque.maint_deliver_delayed(7)").fetchone()
                        assert row is not None
                        conn.execute("select pg_sleep(0.002)")
                    moved.append(row[0])
                    if row[0] == 0:
                        return
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=mover) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sum(moved) == 300
    assert sorted(r[0] for r in event_rows(sql, "q")) == sorted(ids)
    tick(sql, "q")
    assert sorted(r[0] for r in drain(sql, "q", "c")) == sorted(ids)


def test_a_locked_row_is_skipped_not_waited_for(db: Database, sql: Sql) -> None:
    send_at(sql, "a", "now() + interval '1 hour'")
    send_at(sql, "b", "now() + interval '2 hours'")
    make_due(sql)
    other = db.connect(autocommit=False)
    assert other.execute("select pgque.maint_deliver_delayed(1)").fetchone() == (1,)
    assert sql.one("select pgque.maint_deliver_delayed()") == 1  # the other row, at once
    other.commit()
    assert sorted(r[2] for r in event_rows(sql, "q")) == ["a", "b"]


def test_retries_and_dead_letters_are_unchanged(sql: Sql) -> None:
    sql.exec("update pgque.queue set queue_max_retries = 1")
    send_at(sql, "delayed", "now() + interval '1 hour'")
    sql.exec("select pgque.send('q', 't', 'plain')")
    tick(sql, "q")
    [row] = receive(sql, "q", "c")
    assert row[3] == "plain"
    sql.one("select pgque.nack(%s, %s::pgque.message, '0 seconds')", row[1], row[0:10])
    sql.exec("select pgque.ack(%s)", row[1])
    make_due(sql)
    assert sql.one("select pgque.maint_retry_events()") == 2  # one retry + one delayed event
    tick(sql, "q")
    got = receive(sql, "q", "c")
    assert sorted((r[3], r[4]) for r in got) == [("delayed", None), ("plain", 1)]
    retried = next(r for r in got if r[3] == "plain")
    sql.one("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'gave up')", retried[1], retried[0:10])
    sql.exec("select pgque.ack(%s)", retried[1])
    assert sql.rows("select ev_id, dl_reason, ev_retry from pgque.dead_letter") == [(row[0], "gave up", 1)]
    assert [r[3] for r in drain(sql, "q", "d")] == ["plain", "delayed"]  # fan-out unaffected


def test_dropping_the_queue_discards_its_delayed_events(sql: Sql) -> None:
    send_at(sql, "x", "now() + interval '1 hour'")
    sql.exec("select pgque.drop_queue('q', true)")
    assert sql.one("select count(*) from pgque.delay_queue") == 0


def test_delay_queue_privileges(db: Database, sql: Sql) -> None:
    roles: list[Any] = sql.rows(
        "select r, has_table_privilege(r, 'pgque.delay_queue', 'SELECT'),"
        " has_table_privilege(r, 'pgque.delay_queue', 'DELETE')"
        " from unnest(array['pgque_reader', 'pgque_writer', 'pgque_admin']) r"
    )
    assert roles == [("pgque_reader", True, False), ("pgque_writer", False, False), ("pgque_admin", True, True)]
