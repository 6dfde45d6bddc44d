"""queue_stats, consumer_stats, stuck_consumers, queue_health and otel_metrics on a constructed state."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests._pg import Sql
from tests.engine._helpers import drain, queue_id, raises, receive, tick


def stats(sql: Sql, queue: str | None = None) -> dict[str, Any]:
    row = sql.conn.execute("select * from pgque.queue_stats(%s)", (queue,))
    names = [c.name for c in row.description or ()]
    got = row.fetchone()
    assert got is not None
    return dict(zip(names, got, strict=True))


def consumers(sql: Sql, queue: str = "q") -> dict[str, dict[str, Any]]:
    cursor = sql.conn.execute("select * from pgque.consumer_stats(%s)", (queue,))
    names = [c.name for c in cursor.description or ()]
    return {row[1]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def health(sql: Sql, queue: str = "q", threshold: str = "5 minutes") -> dict[str, tuple[str, str]]:
    rows = sql.rows("select check_name, status, detail from pgque.queue_health(%s, %s::interval)", queue, threshold)
    return {name: (status, detail) for name, status, detail in rows}


@pytest.fixture
def state(sql: Sql) -> dict[str, Any]:
    """Queue q: consumers fast (caught up to tick 2), slow (at tick 1), r (retry + dead letter);
    3 events in the tick-1..2 window, 2 committed events after tick 2, 2 delayed events (1 due)."""
    sql.exec("""select pgque.create_queue('q', '{"max_retries": 0}')""")
    for name in ("fast", "slow", "r"):
        sql.exec("select pgque.subscribe('q', %s)", name)
    first = [sql.one("select pgque.send('q', 't', %s)", f"e{i}") for i in range(3)]
    tick(sql, "q")
    assert len(drain(sql, "q", "fast")) == 3
    batch = receive(sql, "q", "r")
    sql.exec("select pgque.event_retry(%s, %s, 3600)", batch[0][1], batch[0][0])
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'bad')", batch[1][1], batch[1][0:10])
    sql.exec("select pgque.ack(%s)", batch[0][1])
    later = [sql.one("select pgque.send('q', 't', %s)", f"l{i}") for i in range(2)]
    sql.exec("select pgque.send_at('q', 't', 'due', now() + interval '1 hour')")
    sql.exec("select pgque.send_at('q', 't', 'future', now() + interval '1 hour')")
    sql.exec("update pgque.delay_queue set ev_deliver_at = now() - interval '5 seconds' where ev_data = 'due'")
    return {"first": first, "later": later}


def test_queue_stats_counts_exactly(sql: Sql, state: dict[str, Any]) -> None:
    with sql.transaction():
        got = stats(sql, "q")
        expected_age, tick_lag, rotation_age = sql.row(
            f"select now() - min(ev_time), now() - (select tick_time from pgque.tick where tick_id = 2),"
            f" now() - (select queue_switch_time from pgque.queue) from pgque.event_{queue_id(sql, 'q')}"
        )
    assert got == {
        "queue_name": "q",
        "depth": 5,  # slow has finished nothing
        "oldest_pending_age": expected_age,
        "unticked_events": 2,
        "ev_per_sec": got["ev_per_sec"],
        "ticker_lag": tick_lag,
        "last_tick_id": 2,
        "consumers": 3,
        "retry_pending": 1,
        "dead_letters": 1,
        "delayed_pending": 2,
        "delayed_due": 1,
        "rotation_age": rotation_age,
        "ticker_paused": False,
    }
    assert got["ev_per_sec"] == sql.one("select ev_per_sec from pgque.get_queue_info('q')")
    # once slow catches up, depth is what the fast consumers have left: the unticked events
    drain(sql, "q", "slow")
    assert stats(sql, "q")["depth"] == 2
    tick(sql, "q")
    for name in ("fast", "slow", "r"):
        drain(sql, "q", name)
    assert (stats(sql, "q")["depth"], stats(sql, "q")["unticked_events"], stats(sql, "q")["oldest_pending_age"]) == (
        0,
        0,
        None,
    )


def test_queue_stats_without_consumers_counts_what_no_tick_covers(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('empty')")
    assert (stats(sql, "empty")["depth"], stats(sql, "empty")["consumers"]) == (0, 0)
    sql.exec("select pgque.send('empty', 'x')")
    sql.exec("select pgque.send('empty', 'y')")
    assert (stats(sql, "empty")["depth"], stats(sql, "empty")["unticked_events"]) == (2, 2)
    tick(sql, "empty")
    assert (stats(sql, "empty")["depth"], stats(sql, "empty")["unticked_events"]) == (0, 0)


def test_queue_stats_ignores_uncommitted_and_rolled_back_events(db: Any, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    other = db.connect(autocommit=False)
    other.execute("select pgque.send('q', 'open')")
    with pytest.raises(psycopg.errors.DivisionByZero), sql.transaction():
        sql.exec("select pgque.send('q', 'rolled back')")
        sql.exec("select 1 / 0")
    assert stats(sql, "q")["depth"] == 0
    other.commit()
    assert stats(sql, "q")["depth"] == 1


def test_queue_stats_all_queues_and_unknown(sql: Sql) -> None:
    for name in ("b", "a"):
        sql.exec("select pgque.create_queue(%s)", name)
    assert sql.col("select queue_name from pgque.queue_stats()") == ["a", "b"]
    assert sql.rows("select * from pgque.queue_stats('nope')") == []


def test_consumer_stats(sql: Sql, state: dict[str, Any]) -> None:
    open_batch = receive(sql, "q", "slow")[0][1]
    with sql.transaction():
        got = consumers(sql)
        tick1, tick2 = sql.row(
            "select now() - (select tick_time from pgque.tick where tick_id = 1),"
            " now() - (select tick_time from pgque.tick where tick_id = 2)"
        )
    assert list(got) == ["fast", "r", "slow"]
    assert {n: (c["consumer_role"], c["last_tick"], c["pending_events"], c["batch_id"]) for n, c in got.items()} == {
        "fast": ("normal", 2, 2, None),
        "r": ("normal", 2, 2, None),
        "slow": ("normal", 1, 5, open_batch),
    }
    assert (got["fast"]["lag"], got["slow"]["lag"]) == (tick2, tick1)
    assert got["slow"]["batch_age"] >= timedelta(0) and got["fast"]["batch_age"] is None
    assert sql.rows("select consumer_name from pgque.consumer_stats('q', 'r')") == [("r",)]
    assert sql.rows("select * from pgque.consumer_stats('nope')") == []


def test_consumer_stats_counts_retries_for_their_owner_only(sql: Sql, state: dict[str, Any]) -> None:
    tick(sql, "q")
    for name in ("fast", "slow", "r"):
        drain(sql, "q", name)
    sql.exec("update pgque.retry_queue set ev_retry_after = now()")
    assert sql.one("select pgque.maint_retry_events()") == 2  # the retry and the due delayed event
    pending = {n: c["pending_events"] for n, c in consumers(sql).items()}
    assert pending == {"fast": 1, "r": 2, "slow": 1}
    assert stats(sql, "q")["depth"] == 2


def test_cooperative_members(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe_subconsumer('q', 'g', 'm1')")
    sql.exec("select pgque.subscribe_subconsumer('q', 'g', 'm2')")
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    batch = sql.one("select batch_id from pgque.receive_coop('q', 'g', 'm1')")
    got = consumers(sql)
    assert {n: (c["consumer_role"], c["pending_events"], c["batch_id"]) for n, c in got.items()} == {
        "g": ("coop_main", 0, None),
        "g.m1": ("coop_member", 1, batch),
        "g.m2": ("coop_member", None, None),
    }
    assert stats(sql, "q")["consumers"] == 1
    assert stats(sql, "q")["depth"] == 1  # m1's batch is not finished


def test_stuck_consumers(sql: Sql, state: dict[str, Any]) -> None:
    assert sql.rows("select * from pgque.stuck_consumers()") == []
    receive(sql, "q", "slow")  # slow opens a batch ...
    sql.exec(
        "update pgque.subscription set sub_active = now() - interval '10 minutes'"
        " where sub_consumer = (select co_id from pgque.consumer where co_name = 'slow')"
    )
    tick(sql, "q")  # ... and fast falls behind the latest tick, whose predecessor is old
    sql.exec("update pgque.tick set tick_time = now() - interval '6 minutes' where tick_id = 2")
    rows = sql.rows("select queue_name, consumer_name, reason, pending_events from pgque.stuck_consumers()")
    assert rows == [("q", "fast", "lag", 2), ("q", "r", "lag", 2), ("q", "slow", "open_batch", 5)]
    assert sql.col("select consumer_name from pgque.stuck_consumers('7 minutes')") == ["slow"]
    assert sql.col("select consumer_name from pgque.stuck_consumers('1 hour', 'q')") == []
    assert sql.rows("select * from pgque.stuck_consumers('1 second', 'nope')") == []
    drain(sql, "q", "fast")
    assert sql.col("select consumer_name from pgque.stuck_consumers()") == ["r", "slow"]
    for bad in ("0", "-1 second"):
        raises(
            sql,
            "stuck_consumers: threshold must be a positive interval",
            "select * from pgque.stuck_consumers(%s::interval)",
            bad,
            sqlstate="PQ010",
        )
    raises(
        sql,
        "stuck_consumers: threshold must be a positive interval",
        "select * from pgque.stuck_consumers(null)",
        sqlstate="PQ010",
    )


def test_idle_caught_up_consumer_on_a_paused_queue_is_not_stuck(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("update pgque.tick set tick_time = now() - interval '1 hour'")
    assert sql.rows("select * from pgque.stuck_consumers()") == []  # at the latest tick


def test_health_of_a_fresh_queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    got = health(sql)
    assert list(got) == ["ticker", "consumers", "dead_letters", "rotation", "delayed_delivery"]
    assert got["ticker"][0] == "ok"
    assert re.fullmatch(
        r"latest tick [0-9:.]+ ago, 0 events waiting for a tick, a tick is due within 00:01:00", got["ticker"][1]
    )
    assert got["consumers"] == ("warn", "no consumers: events are delivered to nobody")
    assert got["dead_letters"] == ("ok", "no dead letters")
    assert got["rotation"][0] == "ok"
    assert re.fullmatch(r"last table rotation [0-9:.]+ ago \(period 02:00:00\)", got["rotation"][1])
    assert got["delayed_delivery"] == ("ok", "0 delayed events parked, 0 due")


def test_health_of_the_constructed_state(sql: Sql, state: dict[str, Any]) -> None:
    got = health(sql)
    assert got["consumers"] == ("ok", "3 consumers, none stuck for more than 00:05:00")
    assert got["dead_letters"] == (
        "warn",
        "1 dead letters: inspect with pgque.dlq_inspect(), replay with pgque.dlq_replay()",
    )
    assert got["delayed_delivery"] == ("ok", "2 delayed events parked, 1 due")
    assert got["ticker"][0] == "ok"
    assert ", 2 events waiting for a tick, a tick is due within 00:00:03" in got["ticker"][1]


@pytest.mark.parametrize(("age", "status"), [("5 seconds", "ok"), ("7 seconds", "warn"), ("31 seconds", "fail")])
def test_health_ticker_with_events_waiting(sql: Sql, age: str, status: str) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.send('q', 'x')")
    sql.exec(f"update pgque.tick set tick_time = now() - interval '{age}'")
    ticker = health(sql)["ticker"]  # due within ticker_max_lag (3 s): warn after 6 s, fail after 30 s
    assert ticker[0] == status
    if status != "ok":
        assert ticker[1].endswith(": is the ticker running (pgque.start() or the Ticker)?")


@pytest.mark.parametrize(("age", "status"), [("1 minute", "ok"), ("3 minutes", "warn"), ("11 minutes", "fail")])
def test_health_ticker_of_an_idle_queue(sql: Sql, age: str, status: str) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec(f"update pgque.tick set tick_time = now() - interval '{age}'")
    assert health(sql)["ticker"][0] == status


def test_health_ticker_paused(sql: Sql) -> None:
    sql.exec("""select pgque.create_queue('q', '{"ticker_paused": true}')""")
    assert health(sql)["ticker"] == ("warn", "ticker paused: no new batches until pgque.resume_queue()")


def test_health_stuck_consumers_fail(sql: Sql, state: dict[str, Any]) -> None:
    receive(sql, "q", "slow")
    sql.exec(
        "update pgque.subscription set sub_active = now() - interval '10 minutes'"
        " where sub_consumer = (select co_id from pgque.consumer where co_name = 'slow')"
    )
    assert health(sql)["consumers"] == ("fail", "1 stuck for more than 00:05:00: slow (open_batch)")
    assert health(sql, threshold="1 hour")["consumers"][0] == "ok"
    raises(
        sql,
        "queue_health: stuck threshold must be a positive interval",
        "select * from pgque.queue_health('q', '0')",
        sqlstate="PQ010",
    )


def test_health_rotation(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("update pgque.queue set queue_switch_time = now() - interval '5 hours'")

    def rotation() -> tuple[str, str]:
        status, detail = health(sql)["rotation"]
        return status, re.sub(r"(\d\d:\d\d:\d\d)\.\d+", r"\1", detail)  # the milliseconds it took

    assert rotation() == ("warn", "no table rotation for 05:00:00 (period 02:00:00): is pgque.maint() scheduled?")
    sql.exec("select pgque.subscribe('q', 'laggard')")  # at tick 1, from before the last switch
    assert rotation() == (
        "warn",
        "no table rotation for 05:00:00 (period 02:00:00): consumer laggard at tick 1 holds it back",
    )
    assert sql.one("select pgque.maint_rotate_tables_step1('q')") == 0  # really blocked
    sql.exec("update pgque.queue set queue_switch_step2 = null, queue_switch_time = now() - interval '2 minutes'")
    assert rotation() == (
        "warn",
        "rotation step 2 has not run for 00:02:00: is pgque.maint_rotate_tables_step2() scheduled?",
    )


def test_health_delayed_delivery_overdue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.send_at('q', 't', 'x', now() + interval '1 hour')")
    sql.exec("update pgque.delay_queue set ev_deliver_at = now() - interval '30 seconds'")
    assert health(sql)["delayed_delivery"] == ("ok", "1 delayed events parked, 1 due")
    sql.exec("update pgque.delay_queue set ev_deliver_at = now() - interval '2 minutes'")
    sql.exec("update pgque.queue set queue_disable_insert = true")
    status, detail = health(sql)["delayed_delivery"]
    assert status == "warn"
    assert re.fullmatch(
        r"1 delayed events due but not delivered, the oldest for 00:02:[0-9.]+: is pgque.maint_retry_events\(\)"
        r" scheduled\? \(inserts into the queue are disabled\)",
        detail,
    )


def test_health_of_all_queues(sql: Sql) -> None:
    for name in ("b", "a"):
        sql.exec("select pgque.create_queue(%s)", name)
    assert [r[0] for r in sql.rows("select * from pgque.queue_health()")] == ["a"] * 5 + ["b"] * 5


def test_otel_metrics(sql: Sql, state: dict[str, Any]) -> None:
    points = {
        (name, tuple(sorted(attrs.items()))): (unit, value)
        for name, unit, value, attrs in sql.rows("select * from pgque.otel_metrics()")
    }
    q = (("queue", "q"),)

    def c(name: str) -> tuple[tuple[str, str], ...]:
        return (("consumer", name), ("queue", "q"))

    exact = {
        ("pgque.queue.depth", q): ("{event}", 5.0),
        ("pgque.queue.unticked_events", q): ("{event}", 2.0),
        ("pgque.queue.consumers", q): ("{consumer}", 3.0),
        ("pgque.queue.retry_pending", q): ("{event}", 1.0),
        ("pgque.queue.dead_letters", q): ("{event}", 1.0),
        ("pgque.queue.delayed_pending", q): ("{event}", 2.0),
        ("pgque.queue.delayed_due", q): ("{event}", 1.0),
        ("pgque.queue.paused", q): ("1", 0.0),
        ("pgque.consumer.pending_events", c("fast")): ("{event}", 2.0),
        ("pgque.consumer.pending_events", c("r")): ("{event}", 2.0),
        ("pgque.consumer.pending_events", c("slow")): ("{event}", 5.0),
        ("pgque.queue.health", (("check", "consumers"), ("queue", "q"))): ("1", 0.0),
        ("pgque.queue.health", (("check", "dead_letters"), ("queue", "q"))): ("1", 1.0),
    }
    for key, value in exact.items():
        assert points[key] == value, key
    timed = {key for key, (unit, _) in points.items() if unit == "s"}
    assert {name for name, _ in timed} == {
        "pgque.queue.oldest_pending_age",
        "pgque.queue.ticker_lag",
        "pgque.queue.rotation_age",
        "pgque.consumer.lag",
        "pgque.consumer.last_seen",
    }  # no batch is open, so no batch_age point
    assert all(points[key][1] >= 0 for key in timed)
    names = [row[0] for row in sql.rows("select * from pgque.otel_metrics()")]
    assert names == sorted(names)


def test_monitoring_runs_as_reader_only(sql: Sql, state: dict[str, Any]) -> None:
    with sql.transaction():
        sql.exec("set local role pgque_reader")
        assert sql.one("select depth from pgque.queue_stats('q')") == 5
        assert sql.one("select count(*) from pgque.consumer_stats()") == 3
        assert sql.one("select count(*) from pgque.stuck_consumers()") == 0
        assert sql.one("select count(*) from pgque.queue_health()") == 5
        assert sql.one("select count(*) > 0 from pgque.otel_metrics()") is True
    with pytest.raises(psycopg.errors.InsufficientPrivilege), sql.transaction():
        sql.exec("set local role pgque_writer")
        sql.exec("select * from pgque.queue_stats()")
