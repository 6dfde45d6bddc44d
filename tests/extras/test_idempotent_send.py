"""send_idem / maint_idem (spec 6.10, 7.11): dedup within the ttl, races, expiry, reaping."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from tests._pg import Database, Sql, error_text
from tests.engine._helpers import event_rows, queue_id, raises, receive, tick


@pytest.fixture(autouse=True)
def _queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")


def send_idem(sql: Sql, key: str | None, payload: str = "x", *args: Any) -> tuple[int, bool]:
    extra = "".join(", %s" for _ in args)
    return sql.row(f"select * from pgque.send_idem('q', 't', %s, %s{extra})", payload, key, *args)


def test_first_send_appends_and_later_ones_report_it(sql: Sql) -> None:
    event_id, deduped = send_idem(sql, "order-1", "first")
    assert deduped is False
    assert send_idem(sql, "order-1", "second") == (event_id, True)
    assert send_idem(sql, "order-1", "third", "2 hours") == (event_id, True)
    other = send_idem(sql, "order-2", "other")
    assert other[1] is False and other[0] != event_id
    assert [(r[0], r[2]) for r in event_rows(sql, "q")] == [(event_id, "first"), (other[0], "other")]
    tick(sql, "q")
    assert [(r[0], r[3]) for r in receive(sql, "q", "c")] == [(event_id, "first"), (other[0], "other")]


def test_event_carries_the_key_and_the_partition_key(sql: Sql) -> None:
    event_id, _ = sql.row("select * from pgque.send_idem('q', 'kind', 'x', 'k', '1 hour', 'part-7')")
    row = sql.row(f"select ev_type, ev_extra1, ev_extra2, ev_extra3, ev_extra4 from pgque.event_{queue_id(sql, 'q')}")
    assert row == ("kind", "part-7", "k", None, None)
    assert sql.one("select event_id from pgque.idem where idem_key = 'k'") == event_id


def test_jsonb_form_stores_canonical_json_and_dedups_with_the_text_form(sql: Sql) -> None:
    event_id, deduped = sql.row("""select * from pgque.send_idem('q', 't', '{"b": 1, "a": 22}'::jsonb, 'j')""")
    assert deduped is False
    assert sql.one(f"select ev_data from pgque.event_{queue_id(sql, 'q')}") == '{"a": 22, "b": 1}'
    assert send_idem(sql, "j", "text now") == (event_id, True)
    assert sql.row("select * from pgque.send_idem('q', 't', null::jsonb, 'n')")[1] is False
    assert sql.one(f"select ev_data from pgque.event_{queue_id(sql, 'q')} where ev_extra2 = 'n'") is None


def test_default_ttl_is_one_hour(sql: Sql) -> None:
    with sql.transaction():
        send_idem(sql, "k")
        assert sql.one("select expires_at - now() = interval '1 hour' from pgque.idem") is True


def test_argument_errors(sql: Sql) -> None:
    raises(sql, "idem_key must not be null", "select * from pgque.send_idem('q', 't', 'x', null)", sqlstate="PQ010")
    for ttl in ("0 seconds", "-1 second"):
        raises(
            sql,
            "ttl must be a positive interval",
            "select * from pgque.send_idem('q', 't', 'x', 'k', %s::interval)",
            ttl,
            sqlstate="PQ010",
        )
    raises(
        sql,
        "ttl must be a positive interval",
        "select * from pgque.send_idem('q', 't', 'x', 'k', null)",
        sqlstate="PQ010",
    )
    raises(sql, "queue not found: nope", "select * from pgque.send_idem('nope', 't', 'x', 'k')", sqlstate="PQ001")
    raises(
        sql, "queue not found: nope", "select * from pgque.send_idem('nope', 't', '{}'::jsonb, 'k')", sqlstate="PQ001"
    )
    assert sql.one("select count(*) from pgque.idem") == 0


def test_failed_append_releases_the_claim(sql: Sql) -> None:
    sql.exec("update pgque.queue set queue_disable_insert = true")
    raises(sql, "Insert into queue disallowed", "select * from pgque.send_idem('q', 't', 'x', 'k')", sqlstate="PQ020")
    assert sql.one("select count(*) from pgque.idem") == 0
    sql.exec("update pgque.queue set queue_disable_insert = false")
    assert send_idem(sql, "k")[1] is False


def test_rolled_back_send_leaves_the_key_free(sql: Sql) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero), sql.transaction():
        send_idem(sql, "k")
        sql.exec("select 1 / 0")
    event_id, deduped = send_idem(sql, "k")
    assert deduped is False
    assert [r[0] for r in event_rows(sql, "q")] == [event_id]


def test_same_transaction_sees_its_own_claim(sql: Sql) -> None:
    with sql.transaction():
        first = send_idem(sql, "k")
        assert send_idem(sql, "k") == (first[0], True)
    assert len(event_rows(sql, "q")) == 1


def test_expired_key_is_reused_in_place(sql: Sql) -> None:
    first, _ = send_idem(sql, "k", "a", "50 milliseconds")
    time.sleep(0.1)
    second, deduped = send_idem(sql, "k", "b", "1 hour")
    assert deduped is False and second != first
    assert sql.rows("select idem_key, event_id from pgque.idem") == [("k", second)]
    assert send_idem(sql, "k", "c") == (second, True)
    assert [r[2] for r in event_rows(sql, "q")] == ["a", "b"]


def test_duplicate_does_not_extend_the_window(sql: Sql) -> None:
    send_idem(sql, "k", "a", "1 minute")
    expires = sql.one("select expires_at from pgque.idem")
    send_idem(sql, "k", "a", "5 hours")
    assert sql.one("select expires_at from pgque.idem") == expires


def test_maint_idem_hook_is_registered_once(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q2')")
    sql.exec("update pgque.queue set queue_extra_maint = '{pgque.other_hook}' where queue_name = 'q2'")
    assert sql.one("select queue_extra_maint from pgque.queue where queue_name = 'q'") is None
    for key in ("a", "b", "a"):
        send_idem(sql, key)
        sql.exec("select * from pgque.send_idem('q2', 't', 'x', %s)", key)
    assert sql.rows("select queue_name, queue_extra_maint from pgque.queue order by 1") == [
        ("q", ["pgque.maint_idem"]),
        ("q2", ["pgque.other_hook", "pgque.maint_idem"]),
    ]
    assert ("pgque.maint_idem", "q") in sql.rows("select * from pgque.maint_operations()")


def test_maint_reaps_expired_keys_through_the_hook(sql: Sql) -> None:
    send_idem(sql, "old", "x", "10 milliseconds")
    send_idem(sql, "live", "x", "1 hour")
    time.sleep(0.05)
    assert sql.one("select pgque.maint()") == 0
    assert sql.col("select idem_key from pgque.idem") == ["live"]
    assert sql.notices == []  # the hook resolved and ran without warnings


def test_maint_idem_batches_and_scopes(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q2')")
    q1, q2 = queue_id(sql, "q"), queue_id(sql, "q2")
    sql.exec(
        "insert into pgque.idem (queue_id, idem_key, event_id, expires_at)"
        " select %s, 'k' || i, i, now() - interval '1 minute' from generate_series(1, 10001) i",
        q1,
    )
    sql.exec(
        "insert into pgque.idem (queue_id, idem_key, event_id, expires_at)"
        " values (%s, 'expired', 1, now() - interval '1 minute'), (%s, 'live', 2, now() + interval '1 hour')",
        q2,
        q2,
    )
    assert sql.one("select pgque.maint_idem('nope')") == 0
    assert sql.one("select pgque.maint_idem('q2')") == 0
    assert sql.rows("select queue_id, idem_key from pgque.idem where queue_id = %s", q2) == [(q2, "live")]
    assert sql.one("select pgque.maint_idem('q')") == 1  # a full batch: call again
    assert sql.one("select count(*) from pgque.idem where queue_id = %s", q1) == 1
    assert sql.one("select pgque.maint_idem('q')") == 0
    sql.exec(
        "insert into pgque.idem (queue_id, idem_key, event_id, expires_at)"
        " values (%s, 'x', 1, now() - interval '1 minute'), (%s, 'y', 1, now() - interval '1 minute')",
        q1,
        q2,
    )
    assert sql.one("select pgque.maint_idem()") == 0
    assert sql.rows("select idem_key from pgque.idem") == [("live",)]


def test_dropping_the_queue_drops_its_keys(sql: Sql) -> None:
    send_idem(sql, "k")
    sql.exec("select pgque.drop_queue('q', true)")
    assert sql.one("select count(*) from pgque.idem") == 0


def _race(db: Database, workers: int, hold: float, body: Any) -> list[Any]:
    """Run ``body(conn)`` in ``workers`` threads, each in a transaction held ``hold`` seconds."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with psycopg.connect(db.conninfo) as conn:
                barrier.wait(timeout=30)
                results[index] = body(conn, index)
                time.sleep(hold)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results


def test_racing_sends_of_one_key_append_one_event(db: Database, sql: Sql) -> None:
    def send(conn: psycopg.Connection[Any], index: int) -> tuple[int, bool]:
        row = conn.execute("select * from pgque.send_idem('q', 't', %s, 'same')", (f"from {index}",)).fetchone()
        assert row is not None
        return row[0], row[1]

    results = _race(db, 8, 0.2, send)
    ids = {event_id for event_id, _ in results}
    assert len(ids) == 1 and None not in ids
    assert sorted(deduped for _, deduped in results) == [False] + [True] * 7
    rows = event_rows(sql, "q")
    assert [r[0] for r in rows] == list(ids)
    assert sql.rows("select idem_key, event_id from pgque.idem") == [("same", rows[0][0])]
    assert sql.one("select queue_extra_maint from pgque.queue") == ["pgque.maint_idem"]


def test_a_racer_blocks_until_the_first_commits(db: Database, sql: Sql) -> None:
    first = db.connect(autocommit=False)
    claimed = first.execute("select * from pgque.send_idem('q', 't', 'a', 'k')").fetchone()
    assert claimed is not None and claimed[1] is False
    result: list[Any] = []
    second = threading.Thread(
        target=lambda: result.append(sql.row("select * from pgque.send_idem('q', 't', 'b', 'k')")), daemon=True
    )
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first transaction
    first.commit()
    second.join(10)
    assert result == [(claimed[0], True)]


def test_a_racer_claims_the_key_when_the_first_rolls_back(db: Database, sql: Sql) -> None:
    first = db.connect(autocommit=False)
    first.execute("select * from pgque.send_idem('q', 't', 'a', 'k')")
    result: list[Any] = []
    second = threading.Thread(
        target=lambda: result.append(sql.row("select * from pgque.send_idem('q', 't', 'b', 'k')")), daemon=True
    )
    second.start()
    second.join(0.5)
    assert second.is_alive()
    first.rollback()
    second.join(10)
    [(event_id, deduped)] = result
    assert deduped is False
    assert [(r[0], r[2]) for r in event_rows(sql, "q")] == [(event_id, "b")]


def test_repeatable_read_racer_gets_a_serialization_failure(db: Database, sql: Sql) -> None:
    """Documented: under REPEATABLE READ the waiting claim fails (40001) instead of reporting the event."""
    first = db.connect(autocommit=False)
    first.execute("select * from pgque.send_idem('q', 't', 'a', 'k')")
    second = db.connect(autocommit=False)
    second.execute("set transaction isolation level repeatable read")
    second.execute("select 1")  # take the snapshot before the first commits
    failure: list[BaseException] = []

    def claim() -> None:
        try:
            second.execute("select * from pgque.send_idem('q', 't', 'b', 'k')")
        except psycopg.Error as error:
            failure.append(error)

    thread = threading.Thread(target=claim, daemon=True)
    thread.start()
    thread.join(0.5)
    first.commit()
    thread.join(10)
    assert [e.sqlstate for e in failure] == ["40001"]  # type: ignore[attr-defined]
    second.rollback()
    event_id = sql.one("select event_id from pgque.idem")
    assert second.execute("select * from pgque.send_idem('q', 't', 'b', 'k')").fetchone() == (event_id, True)
    second.rollback()
    assert error_text(failure[0]).startswith("could not serialize access")
