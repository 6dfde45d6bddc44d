"""Queue management: create_queue, drop_queue, set_queue_config."""

from __future__ import annotations

import psycopg
import pytest

from tests._pg import Database, Sql, error_text
from tests.engine._helpers import drain, queue_id, raises, snapshot, tick


def test_create_queue_creates_storage_and_first_tick(sql: Sql) -> None:
    assert sql.one("select pgque.create_queue('orders')") == 1
    assert sql.one("select pgque.create_queue('orders')") == 0
    qid = queue_id(sql, "orders")
    assert sql.rows("select tick_id from pgque.tick where tick_queue = %s", qid) == [(1,)]
    tables = sql.col(
        "select c.relname from pg_class c join pg_inherits i on i.inhrelid = c.oid"
        " where i.inhparent = %s::regclass order by 1",
        f"pgque.event_{qid}",
    )
    assert tables == [f"event_{qid}_0", f"event_{qid}_1", f"event_{qid}_2"]
    assert sql.one("select to_regclass(%s) is not null", f"pgque.event_{qid}_id_seq")
    assert sql.one("select to_regclass(%s) is not null", f"pgque.event_{qid}_tick_seq")
    assert sql.row(
        "select queue_data_pfx, queue_event_seq, queue_tick_seq from pgque.queue where queue_id = %s",
        qid,
    ) == (f"pgque.event_{qid}", f"pgque.event_{qid}_id_seq", f"pgque.event_{qid}_tick_seq")


def test_child_tables_never_autovacuum(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    qid = queue_id(sql, "q")
    for part in range(3):
        options = sql.one("select reloptions from pg_class where oid = %s::regclass", f"pgque.event_{qid}_{part}")
        assert set(options) == {"fillfactor=100", "autovacuum_enabled=off"}
        toast = sql.one(
            "select t.reloptions from pg_class c join pg_class t on t.oid = c.reltoastrelid where c.oid = %s::regclass",
            f"pgque.event_{qid}_{part}",
        )
        assert toast == ["autovacuum_enabled=off"]


def test_queue_name_of_57_bytes_is_the_limit(sql: Sql) -> None:
    ok = "q" * 57
    assert sql.one("select pgque.create_queue(%s)", ok) == 1
    too_long = "é" * 29  # 58 bytes in UTF-8, 29 characters
    before = snapshot(sql)
    next_id = sql.one("select last_value from pgque.queue_queue_id_seq")
    raises(
        sql,
        "queue name too long: 58 bytes (max 57). pg_notify channel 'pgque_<queue_name>' must fit in 63 bytes.",
        "select pgque.create_queue(%s)",
        too_long,
        sqlstate="PQ010",
    )
    assert snapshot(sql) == before
    assert sql.one("select last_value from pgque.queue_queue_id_seq") == next_id


def test_null_queue_name_is_rejected(sql: Sql) -> None:
    raises(sql, "Invalid NULL value", "select pgque.create_queue(null)", sqlstate="PQ010")
    assert sql.one("select count(*) from pgque.queue") == 0


@pytest.mark.parametrize(
    "name",
    ["it's", 'say "hi"', "a; drop table pgque.queue; --", "with space", "MixedCase", "", "ünïcødé"],
)
def test_hostile_queue_names_work_end_to_end(db: Database, sql: Sql, name: str) -> None:
    listener = db.connect()
    listener.execute(psycopg.sql.SQL("listen {}").format(psycopg.sql.Identifier(f"pgque_{name}")))
    assert sql.one("select pgque.create_queue(%s)", name) == 1
    sql.exec("select pgque.subscribe(%s, %s)", name, name)
    sql.exec("select pgque.send(%s, %s)", name, "payload")
    tick_id = tick(sql, name)
    notified = [n for n in listener.notifies(timeout=2, stop_after=2)]
    assert [(n.channel, n.payload) for n in notified][-1] == (f"pgque_{name}", str(tick_id))
    assert [row[3] for row in drain(sql, name, name)] == ["payload"]
    assert sql.one("select pgque.unsubscribe(%s, %s)", name, name) == 1
    assert sql.one("select pgque.drop_queue(%s)", name) == 1
    assert sql.one("select count(*) from pgque.queue") == 0


def test_concurrent_create_of_one_name_both_succeed(db: Database) -> None:
    first, second = db.connect(autocommit=False), db.connect(autocommit=False)
    assert first.execute("select pgque.create_queue('race')").fetchone() == (1,)
    import threading

    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(second.execute("select pgque.create_queue('race')").fetchone())
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "the second create should wait for the first transaction"
    first.commit()
    worker.join(10)
    second.commit()
    assert result == [(0,)]


def test_drop_queue_refuses_while_consumers_are_attached(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    raises(sql, "cannot drop queue, consumers still attached", "select pgque.drop_queue('q')", sqlstate="PQ020")
    raises(
        sql,
        "cannot drop queue, consumers still attached",
        "select pgque.drop_queue('q', false)",
        sqlstate="PQ020",
    )
    assert sql.one("select count(*) from pgque.queue") == 1


def test_forced_drop_removes_everything_of_the_queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.create_queue('other')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.subscribe('other', 'c')")
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    batch = sql.one("select pgque.next_batch('q', 'c')")
    msg = sql.one("select m from pgque.receive('q', 'c') m")
    sql.exec("update pgque.queue set queue_max_retries = 0 where queue_name = 'q'")
    sql.exec("select pgque.nack(%s, %s::pgque.message)", batch, msg)
    assert sql.one("select count(*) from pgque.dead_letter") == 1
    qid = queue_id(sql, "q")

    assert sql.one("select pgque.drop_queue('q', true)") == 1
    assert sql.one("select count(*) from pgque.queue where queue_name = 'q'") == 0
    assert sql.one("select count(*) from pgque.tick where tick_queue = %s", qid) == 0
    assert sql.one("select count(*) from pgque.dead_letter") == 0
    assert sql.one("select count(*) from pg_class where relname like %s", f"event\\_{qid}%") == 0
    # the consumer still has its other subscription, so it stays
    assert sql.col("select co_name from pgque.consumer") == ["c"]


def test_drop_of_unknown_queue(sql: Sql) -> None:
    raises(sql, "No such event queue", "select pgque.drop_queue('nope')", sqlstate="PQ001")
    raises(sql, "No such event queue", "select pgque.drop_queue('nope', true)", sqlstate="PQ001")
    assert sql.one("select pgque.drop_queue(null)") is None


@pytest.mark.parametrize(
    ("param", "value", "column", "expected"),
    [
        ("ticker_max_count", "42", "queue_ticker_max_count", "42"),
        ("ticker_max_lag", "250 milliseconds", "queue_ticker_max_lag", "00:00:00.25"),
        ("ticker_idle_period", "5 minutes", "queue_ticker_idle_period", "00:05:00"),
        ("rotation_period", "1 day", "queue_rotation_period", "1 day"),
        ("ticker_paused", "true", "queue_ticker_paused", "true"),
        ("external_ticker", "on", "queue_external_ticker", "true"),
        ("max_retries", "0", "queue_max_retries", "0"),
    ],
)
def test_set_queue_config_sets_and_resets(sql: Sql, param: str, value: str, column: str, expected: str) -> None:
    sql.exec("select pgque.create_queue('q')")
    default = sql.one(f"select {column}::text from pgque.queue")
    assert sql.one("select pgque.set_queue_config('q', %s, %s)", param, value) == 1
    assert sql.one(f"select {column}::text from pgque.queue") == expected
    assert sql.one("select pgque.set_queue_config('q', %s, null)", param) == 1
    assert sql.one(f"select {column}::text from pgque.queue") == default


@pytest.mark.parametrize(
    ("param", "value", "message", "sqlstate"),
    [
        ("ticker_max_count", "0", "set_queue_config: ticker_max_count must be > 0, got 0", "PQ010"),
        ("ticker_max_lag", "-1 second", "set_queue_config: ticker_max_lag must be > 0, got -00:00:01", "PQ010"),
        ("ticker_idle_period", "0", "set_queue_config: ticker_idle_period must be > 0, got 00:00:00", "PQ010"),
        ("rotation_period", "0 s", "set_queue_config: rotation_period must be > 0, got 00:00:00", "PQ010"),
        ("max_retries", "-1", "set_queue_config: max_retries must be >= 0, got -1", "PQ010"),
        ("bogus", "1", 'cannot change parameter "boguss"', "PQ010"),
        ("queue_ticker_max_count", "1", 'cannot change parameter "queue_ticker_max_counts"', "PQ010"),
        ("ticker_max_count", "abc", 'invalid input syntax for type bigint: "abc"', "22P02"),
        ("max_retries", "99999999999", 'value "99999999999" is out of range for type integer', "22003"),
        ("ticker_max_lag", "abc", 'invalid input syntax for type interval: "abc"', "22007"),
        ("ticker_paused", "maybe", 'invalid input syntax for type boolean: "maybe"', "22P02"),
    ],
)
def test_set_queue_config_rejects_bad_values(sql: Sql, param: str, value: str, message: str, sqlstate: str) -> None:
    sql.exec("select pgque.create_queue('q')")
    before = snapshot(sql)
    raises(sql, message, "select pgque.set_queue_config('q', %s, %s)", param, value, sqlstate=sqlstate)
    assert snapshot(sql) == before


def test_set_queue_config_argument_errors(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    raises(sql, "Invalid NULL value", "select pgque.set_queue_config(null, 'max_retries', '1')")
    raises(sql, "Invalid NULL value", "select pgque.set_queue_config('q', null, '1')")
    raises(sql, "No such event queue", "select pgque.set_queue_config('nope', 'max_retries', '1')", sqlstate="PQ001")


def test_injection_through_config_values_is_inert(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    with pytest.raises(psycopg.Error) as caught:
        sql.exec(
            "select pgque.set_queue_config('q', 'ticker_max_lag', %s)",
            "1 second'; drop table pgque.queue; --",
        )
    assert "invalid input syntax for type interval" in error_text(caught.value)
    with pytest.raises(psycopg.Error):
        sql.exec("select pgque.set_queue_config('q', %s, '1')", 'max_retries" = 1; drop table pgque.queue; --')
    assert sql.one("select count(*) from pgque.queue") == 1
