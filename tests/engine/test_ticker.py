"""Ticking: when a tick is due, forced and external ticks, NOTIFY, ticker_loop."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest

from tests._pg import Database, Sql, error_text
from tests.engine._helpers import queue_id, raises, tick


def age_ticks(sql: Sql, queue: str, by: str) -> None:
    """Pretend every tick of ``queue`` was taken ``by`` earlier."""
    sql.exec(
        "update pgque.tick set tick_time = tick_time - %s::interval where tick_queue = %s",
        by,
        queue_id(sql, queue),
    )


def set_tick_times(sql: Sql, queue: str, ages: dict[int, str]) -> None:
    for tick_id, age in ages.items():
        sql.exec(
            "update pgque.tick set tick_time = now() - %s::interval where tick_queue = %s and tick_id = %s",
            age,
            queue_id(sql, queue),
            tick_id,
        )


@pytest.fixture
def busy_queue(sql: Sql) -> str:
    """A queue whose latest tick already covers one event (past the first-event quirk)."""
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.send('q', 'first')")
    assert sql.one("select pgque.ticker('q')") == 2  # only the creation tick existed
    return "q"


def test_pending_event_waits_for_max_lag(sql: Sql, busy_queue: str) -> None:
    sql.exec("select pgque.send('q', 'second')")
    assert sql.one("select pgque.ticker('q')") is None
    age_ticks(sql, "q", "2.9 seconds")
    assert sql.one("select pgque.ticker('q')") is None
    age_ticks(sql, "q", "0.2 seconds")
    assert sql.one("select pgque.ticker('q')") == 3


def test_max_count_new_events_tick_at_once(sql: Sql, busy_queue: str) -> None:
    sql.exec("select pgque.send_batch('q', array(select 'x' from generate_series(1, 499)))")
    assert sql.one("select pgque.ticker('q')") is None
    sql.exec("select pgque.send('q', 'the 500th')")
    assert sql.one("select pgque.ticker('q')") == 3
    assert sql.one("select tick_event_seq from pgque.tick where tick_id = 3") == 501


def test_brand_new_queue_ticks_at_the_first_call(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('idle')")
    sql.exec("select pgque.create_queue('used')")
    sql.exec("select pgque.send('used', 'x')")
    assert sql.one("select pgque.ticker('idle')") == 2
    assert sql.one("select pgque.ticker('used')") == 2


def test_idle_queue_backs_off_geometrically(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.ticker('q')")  # tick 2, just after tick 1
    # previous gap 10 s: the next idle tick waits for 2 x 10 s
    set_tick_times(sql, "q", {1: "30 seconds", 2: "19 seconds"})
    assert sql.one("select pgque.ticker('q')") is None
    set_tick_times(sql, "q", {1: "30 seconds", 2: "20.5 seconds"})
    assert sql.one("select pgque.ticker('q')") == 3
    # never sooner than ticker_max_lag / 2, even after a tiny gap
    set_tick_times(sql, "q", {2: "1 second", 3: "1.4 seconds"})
    assert sql.one("select pgque.ticker('q')") is None
    # capped by ticker_idle_period (1 minute) whatever the previous gap
    set_tick_times(sql, "q", {2: "10 minutes", 3: "61 seconds"})
    assert sql.one("select pgque.ticker('q')") == 4


def test_force_next_tick_makes_the_next_ticker_tick(sql: Sql, busy_queue: str) -> None:
    qid = queue_id(sql, "q")
    before = sql.one(f"select last_value from pgque.event_{qid}_id_seq")
    assert sql.one("select pgque.force_next_tick('q')") == 2
    assert sql.one(f"select last_value from pgque.event_{qid}_id_seq") == before + 1 + 2 * 500 + 1000
    assert sql.one("select count(*) from pgque.tick where tick_queue = %s", qid) == 2  # no tick yet
    assert sql.one("select pgque.ticker('q')") == 3
    assert sql.one("select pgque.force_tick('q')") == 3


def test_ticker_errors(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('paused')")
    sql.exec("select pgque.set_queue_config('paused', 'ticker_paused', 'true')")
    sql.exec("select pgque.create_queue('ext')")
    sql.exec("select pgque.set_queue_config('ext', 'external_ticker', 'true')")
    raises(sql, "no such queue", "select pgque.ticker('nope')", sqlstate="PQ001")
    raises(sql, "Ticker has been paused for this queue", "select pgque.ticker('paused')", sqlstate="PQ020")
    raises(sql, "This queue has external tick source.", "select pgque.ticker('ext')", sqlstate="PQ020")
    raises(sql, "queue not found: nope", "select pgque.force_next_tick('nope')", sqlstate="PQ001")
    raises(
        sql,
        "queue paused is paused (queue_ticker_paused = true)",
        "select pgque.force_next_tick('paused')",
        sqlstate="PQ020",
    )
    raises(
        sql,
        "queue ext is configured for external ticker; force_tick is meaningless — push ticks via "
        "pgque.ticker(queue, tick_id, ts, event_seq)",
        "select pgque.force_tick('ext')",
        sqlstate="PQ020",
    )


def test_ticker_all_counts_and_skips_paused_and_external(sql: Sql) -> None:
    for name in ("a", "b", "paused", "ext"):
        sql.exec("select pgque.create_queue(%s)", name)
    sql.exec("select pgque.set_queue_config('paused', 'ticker_paused', 'true')")
    sql.exec("select pgque.set_queue_config('ext', 'external_ticker', 'true')")
    assert sql.one("select pgque.ticker()") == 2  # a and b: second tick of a new queue
    assert sql.one("select pgque.ticker()") == 0
    assert (
        sql.one(
            "select count(*) from pgque.tick t join pgque.queue q on q.queue_id = t.tick_queue"
            " where q.queue_name in ('paused', 'ext')"
        )
        == 2
    )


def test_external_ticker(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('ext')")
    sql.exec("select pgque.create_queue('normal')")
    sql.exec("select pgque.set_queue_config('ext', 'external_ticker', 'true')")
    qid = queue_id(sql, "ext")
    assert sql.one("select pgque.ticker('ext', 10, '2026-01-01 00:00:00+00', 100)") == 10
    assert sql.one("select pgque.ticker('ext', 11, now(), 100)") == 11  # equal event_seq is fine
    assert (
        sql.row("select tick_time, tick_event_seq from pgque.tick where tick_queue = %s and tick_id = 10", qid)[1]
        == 100
    )
    assert sql.one(f"select last_value from pgque.event_{qid}_id_seq") == 100
    assert sql.one(f"select last_value from pgque.event_{qid}_tick_seq") == 11
    raises(
        sql,
        "external ticker tick_id must be strictly greater than current max (11 <= 11)",
        "select pgque.ticker('ext', 11, now(), 200)",
        sqlstate="PQ010",
    )
    raises(
        sql,
        "external ticker event_seq must be >= previous tick (99 < 100)",
        "select pgque.ticker('ext', 12, now(), 99)",
        sqlstate="PQ010",
    )
    raises(sql, "queue not found: nope", "select pgque.ticker('nope', 1, now(), 1)", sqlstate="PQ001")
    raises(
        sql,
        "queue normal is not configured for external ticker (queue_external_ticker = false); "
        "use pgque.ticker(queue) instead",
        "select pgque.ticker('normal', 5, now(), 1)",
        sqlstate="PQ020",
    )
    sql.exec("select pgque.set_queue_config('ext', 'ticker_paused', 'true')")
    raises(
        sql,
        "queue ext is paused (queue_ticker_paused = true)",
        "select pgque.ticker('ext', 12, now(), 200)",
        sqlstate="PQ020",
    )


def test_notify_is_sent_on_commit_only(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    listener = db.connect()
    listener.execute('listen "pgque_q"')
    with pytest.raises(RuntimeError), sql.transaction():
        sql.exec("select pgque.ticker('q')")
        raise RuntimeError("roll back the tick")
    assert list(listener.notifies(timeout=0.3)) == []
    tick_id = sql.one("select pgque.ticker('q')")
    notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [(n.channel, n.payload) for n in notes] == [("pgque_q", str(tick_id))]
    sql.exec("select pgque.force_next_tick('q')")
    assert list(listener.notifies(timeout=0.3)) == []


def test_set_tick_period_ms(sql: Sql) -> None:
    for good in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500, 1000):
        assert sql.one("select pgque.set_tick_period_ms(%s)", good) == good
    for bad, shown in ((0, "0"), (3, "3"), (2000, "2000"), (-5, "-5"), (None, "NULL")):
        raises(
            sql,
            f"tick_period_ms must be an exact divisor of 1000 between 1 and 1000 (got {shown})",
            "select pgque.set_tick_period_ms(%s::integer)",
            bad,
            sqlstate="PQ010",
        )
    assert sql.one("select tick_period_ms from pgque.config") == 1000


def test_ticker_loop_ticks_per_period_and_commits_each(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.set_queue_config('q', 'ticker_max_lag', '1 millisecond')")
    sql.exec("select pgque.set_queue_config('q', 'ticker_idle_period', '1 millisecond')")
    sql.exec("select pgque.set_tick_period_ms(500)")
    # the queue's first tick is a few statements old; make it clearly older than the 1 ms lag
    sql.exec("update pgque.tick set tick_time = tick_time - interval '1 second'")
    first_tick_seen_at: list[float] = []

    def watch() -> None:
        watcher = db.sql()
        while not first_tick_seen_at:
            if watcher.one("select count(*) from pgque.tick") > 1:
                first_tick_seen_at.append(time.monotonic())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    sql.exec("call pgque.ticker_loop()")
    returned_at = time.monotonic()
    watcher.join(5)
    assert sql.one("select count(*) from pgque.tick") == 1 + 2  # two iterations of 500 ms
    # each pass reads the time after its sleep: the ticks are stamped a period apart
    gap = sql.one("select max(tick_time) - min(tick_time) from pgque.tick where tick_id > 1")
    assert gap >= timedelta(milliseconds=450)
    assert first_tick_seen_at and first_tick_seen_at[0] < returned_at - 0.2


def test_ticker_loop_cannot_run_inside_a_transaction(sql: Sql) -> None:
    with pytest.raises(psycopg.Error) as caught, sql.transaction():
        sql.exec("call pgque.ticker_loop()")
    assert "invalid transaction termination" in error_text(caught.value)


def test_tick_records_snapshot_and_sequence(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.send('q', 'a')")
    sql.exec("select pgque.send('q', 'b')")
    tick_id = tick(sql, "q")
    seq, snap = sql.row("select tick_event_seq, tick_snapshot::text from pgque.tick where tick_id = %s", tick_id)
    assert seq == sql.one(f"select last_value from pgque.event_{queue_id(sql, 'q')}_id_seq")
    assert snap.count(":") == 2
