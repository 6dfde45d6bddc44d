"""pause_queue / resume_queue and create_queue(queue, options)."""

from __future__ import annotations

import pytest

from tests._pg import Sql
from tests.engine._helpers import drain, raises, snapshot, tick


def test_pause_and_resume(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    assert sql.one("select pgque.pause_queue('q')") == 1
    assert sql.one("select pgque.pause_queue('q')") == 0
    assert sql.one("select queue_ticker_paused from pgque.queue") is True
    # producers are not affected; consumers get nothing new
    sent = sql.one("select pgque.send('q', 'while paused')")
    assert sql.one("select pgque.ticker()") == 0
    raises(sql, "Ticker has been paused for this queue", "select pgque.ticker('q')", sqlstate="PQ020")
    raises(sql, "queue q is paused (queue_ticker_paused = true)", "select pgque.force_next_tick('q')", sqlstate="PQ020")
    assert drain(sql, "q", "c") == []
    assert sql.one("select pgque.resume_queue('q')") == 1
    assert sql.one("select pgque.resume_queue('q')") == 0
    assert sql.one("select queue_ticker_paused from pgque.queue") is False
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "c")] == [sent]


def test_pause_and_resume_unknown_queue(sql: Sql) -> None:
    raises(sql, "queue not found: nope", "select pgque.pause_queue('nope')", sqlstate="PQ001")
    raises(sql, "queue not found: nope", "select pgque.resume_queue('nope')", sqlstate="PQ001")
    raises(sql, "queue not found: <NULL>", "select pgque.pause_queue(null)", sqlstate="PQ001")


def test_pause_is_set_queue_config_ticker_paused(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.set_queue_config('q', 'ticker_paused', 'true')")
    assert sql.one("select pgque.pause_queue('q')") == 0
    assert sql.one("select pgque.resume_queue('q')") == 1
    assert sql.one("select (pgque.get_queue_info('q')).queue_ticker_paused") is False


def test_create_queue_with_options(sql: Sql) -> None:
    options = (
        '{"max_retries": 3, "ticker_max_count": 10, "ticker_max_lag": "250 milliseconds",'
        ' "ticker_idle_period": "30 seconds", "rotation_period": "1 hour", "external_ticker": false,'
        ' "ticker_paused": true}'
    )
    assert sql.one("select pgque.create_queue('q', %s::jsonb)", options) == 1
    row = sql.row(
        "select queue_max_retries, queue_ticker_max_count, queue_ticker_max_lag::text,"
        " queue_ticker_idle_period::text, queue_rotation_period::text, queue_external_ticker,"
        " queue_ticker_paused from pgque.queue where queue_name = 'q'"
    )
    assert row == (3, 10, "00:00:00.25", "00:00:30", "01:00:00", False, True)
    assert sql.col("select tick_id from pgque.tick") == [1]  # created (and ticked) like create_queue(q)


def test_create_queue_options_apply_to_an_existing_queue(sql: Sql) -> None:
    assert sql.one("select pgque.create_queue('q')") == 1
    assert sql.one("""select pgque.create_queue('q', '{"max_retries": 7}')""") == 0
    assert sql.one("select queue_max_retries from pgque.queue") == 7
    # null resets to the column default; an empty object changes nothing
    assert sql.one("""select pgque.create_queue('q', '{"max_retries": null}')""") == 0
    assert sql.one("select queue_max_retries from pgque.queue") is None
    assert sql.one("select pgque.create_queue('q', '{}')") == 0
    assert sql.one("select pgque.create_queue('q2', null)") == 1


def test_create_queue_refuses_unknown_options_before_creating_anything(sql: Sql) -> None:
    before = snapshot(sql)
    next_id = sql.one("select last_value from pgque.queue_queue_id_seq")
    raises(
        sql,
        'cannot change parameter "boguss"',
        """select pgque.create_queue('q', '{"max_retries": 1, "bogus": 1}')""",
        sqlstate="PQ010",
    )
    raises(
        sql,
        'cannot change parameter "queue_max_retriess"',
        """select pgque.create_queue('q', '{"queue_max_retries": 1}')""",
        sqlstate="PQ010",
    )
    for value, kind in (("[]", "array"), ('"x"', "string"), ("1", "number")):
        raises(
            sql,
            f"create_queue: options must be a JSON object, got {kind}",
            "select pgque.create_queue('q', %s::jsonb)",
            value,
            sqlstate="PQ010",
        )
    assert snapshot(sql) == before
    assert sql.one("select last_value from pgque.queue_queue_id_seq") == next_id


@pytest.mark.parametrize(
    ("options", "message", "sqlstate"),
    [
        ('{"max_retries": -1}', "set_queue_config: max_retries must be >= 0, got -1", "PQ010"),
        ('{"ticker_max_lag": "0"}', "set_queue_config: ticker_max_lag must be > 0, got 00:00:00", "PQ010"),
        ('{"max_retries": "abc"}', 'invalid input syntax for type bigint: "abc"', "22P02"),
        ('{"ticker_paused": "maybe"}', 'invalid input syntax for type boolean: "maybe"', "22P02"),
    ],
)
def test_bad_option_values_create_nothing(sql: Sql, options: str, message: str, sqlstate: str) -> None:
    raises(sql, message, "select pgque.create_queue('q', %s::jsonb)", options, sqlstate=sqlstate)
    assert sql.one("select count(*) from pgque.queue") == 0


def test_null_queue_name(sql: Sql) -> None:
    raises(sql, "Invalid NULL value", "select pgque.create_queue(null, '{}')", sqlstate="PQ010")
