"""Consuming: snapshot-delimited batches, subscriptions, receive/ack, PgQ primitives."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from tests._pg import Database, Sql
from tests.engine._helpers import drain, raises, receive, receive_ids, snapshot, tick


@pytest.fixture(autouse=True)
def _queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")


def test_send_tick_receive_in_one_transaction_sees_nothing(sql: Sql) -> None:
    with sql.transaction():
        ev_id = sql.one("select pgque.send('q', 'x')")
        sql.exec("select pgque.force_next_tick('q')")
        sql.exec("select pgque.ticker('q')")
        assert receive(sql, "q", "c") == []
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "c")] == [ev_id]
    tick(sql, "q")
    assert drain(sql, "q", "c") == []


def test_rolled_back_event_is_never_delivered(sql: Sql) -> None:
    with pytest.raises(RuntimeError), sql.transaction():
        sql.exec("select pgque.send('q', 'lost')")
        raise RuntimeError
    kept = sql.one("select pgque.send('q', 'kept')")
    tick(sql, "q")
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "c")] == [kept]


def test_event_open_across_a_tick_lands_in_the_next_batch_of_every_consumer(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'd')")
    producer = db.connect(autocommit=False)
    ev_id = producer.execute("select pgque.send('q', 'slow')").fetchone()[0]  # type: ignore[index]
    tick_a = tick(sql, "q")  # the producer is still running at tick A
    for consumer in ("c", "d"):
        assert drain(sql, "q", consumer) == []
    producer.commit()
    tick_b = tick(sql, "q")
    for consumer in ("c", "d"):
        batch = sql.row("select * from pgque.next_batch_info('q', %s)", consumer)
        assert (batch[1], batch[2]) == (tick_b, tick_a)
        assert [r[0] for r in drain(sql, "q", consumer)] == [ev_id]


def test_long_running_transaction_far_below_the_range_is_delivered_once(db: Database, sql: Sql) -> None:
    """The explicit-list path: a transaction much older than everything else."""
    slow = db.connect(autocommit=False)
    slow_id = slow.execute("select pgque.send('q', 'slow')").fetchone()[0]  # type: ignore[index]
    for _ in range(150):  # push later txids more than 100 away from the slow one
        sql.exec("select pgque.send('q', 'filler')")
    tick(sql, "q")
    first = drain(sql, "q", "c")
    assert slow_id not in [r[0] for r in first] and len(first) == 150
    slow.commit()
    sql.exec("select pgque.send('q', 'after')")
    tick(sql, "q")
    second = drain(sql, "q", "c")
    assert [r[3] for r in second] == ["slow", "after"]


def test_new_subscriber_starts_at_the_latest_tick(sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'before')")
    tick(sql, "q")
    assert sql.one("select pgque.subscribe('q', 'late')") == 1
    assert sql.one("select pgque.subscribe('q', 'late')") == 0
    after = sql.one("select pgque.send('q', 'after')")
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "late")] == [after]
    assert [r[3] for r in drain(sql, "q", "c")] == ["before", "after"]


def test_receive_returns_messages_in_order(sql: Sql) -> None:
    ids = sql.one("select pgque.send_batch('q', 'kind', array['a', 'b', 'c'])")
    created = sql.one(f"select ev_time from pgque.event_{sql.one('select queue_id from pgque.queue')} limit 1")
    tick(sql, "q")
    rows = receive(sql, "q", "c")
    assert [r[0] for r in rows] == ids
    assert {r[1] for r in rows} == {rows[0][1]}
    assert all(r[2] == "kind" and r[4] is None and r[5] == created for r in rows)
    assert [r[3] for r in rows] == ["a", "b", "c"]
    assert all(r[6:] == (None, None, None, None) for r in rows)


def test_unacked_batch_is_received_again(sql: Sql) -> None:
    sql.exec("select pgque.send_batch('q', array['a', 'b'])")
    tick(sql, "q")
    first = receive(sql, "q", "c")
    assert receive(sql, "q", "c") == first
    assert sql.one("select pgque.next_batch('q', 'c')") == first[0][1]


def test_aborted_receive_hands_out_the_same_events_again(sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    with pytest.raises(RuntimeError), sql.transaction():
        rows = receive(sql, "q", "c")
        raise RuntimeError
    again = receive(sql, "q", "c")
    assert [r[0] for r in again] == [r[0] for r in rows]
    assert again[0][1] != rows[0][1]  # batch ids come from a sequence


def test_empty_window_is_finished_by_receive(sql: Sql) -> None:
    tick(sql, "q")
    assert receive(sql, "q", "c") == []
    assert sql.row("select sub_batch, sub_next_tick, sub_last_tick from pgque.subscription") == (None, None, 2)


def test_ack_results(sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    batch = receive(sql, "q", "c")[0][1]
    assert sql.one("select pgque.ack(%s)", batch) == 1
    sql.notices.clear()
    assert sql.one("select pgque.ack(%s)", batch) == 0
    assert sql.notices == [f"finish_batch: batch {batch} not found"]
    assert sql.one("select pgque.ack(987654)") == 0
    assert sql.one("select pgque.finish_batch(null)") == 0


def test_max_return_limits_rows_but_ack_finishes_the_batch(sql: Sql) -> None:
    sql.exec("select pgque.send_batch('q', array['a', 'b', 'c'])")
    tick(sql, "q")
    rows = receive(sql, "q", "c", 2)
    assert [r[3] for r in rows] == ["a", "b"]
    assert [r[3] for r in receive(sql, "q", "c", 2)] == ["a", "b"]  # no paging
    assert len(receive(sql, "q", "c", None)) == 3  # NULL means no limit
    sql.exec("select pgque.ack(%s)", rows[0][1])
    sql.exec("select pgque.send('q', 'd')")
    tick(sql, "q")
    assert [r[3] for r in drain(sql, "q", "c")] == ["d"]


def test_receive_argument_errors(sql: Sql) -> None:
    before = snapshot(sql)
    raises(
        sql,
        "pgque.receive: max_return must be >= 1, got 0",
        "select * from pgque.receive('q', 'c', 0)",
        sqlstate="PQ010",
    )
    raises(sql, "Not subscriber to queue: q/nobody", "select * from pgque.receive('q', 'nobody')", sqlstate="PQ002")
    raises(sql, "Not subscriber to queue: nope/c", "select * from pgque.receive('nope', 'c')", sqlstate="PQ002")
    raises(sql, "Not subscriber to queue: NULL/NULL", "select * from pgque.receive(null, null)", sqlstate="PQ002")
    assert snapshot(sql) == before


def test_second_receiver_of_one_consumer_waits_then_sees_the_same_batch(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    first = db.connect(autocommit=False)
    second = db.connect(autocommit=False)
    rows = first.execute("select * from pgque.receive('q', 'c')").fetchall()
    result: list[list[Any]] = []
    worker = threading.Thread(
        target=lambda: result.append(second.execute("select * from pgque.receive('q', 'c')").fetchall())
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()
    first.commit()  # un-acked: the batch stays open
    worker.join(10)
    assert result == [rows]
    second.rollback()


def test_fan_out_each_consumer_gets_every_event_once(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'd')")
    sql.exec("select pgque.subscribe('q', 'e')")
    sent: list[int] = []
    for i in range(5):
        sent += sql.one("select pgque.send_batch('q', %s::text[])", [f"{i}-{j}" for j in range(20)])
        tick(sql, "q")
    assert receive_ids(sql, "q", "d") == sent[:20]
    for consumer in ("c", "d", "e"):
        assert [r[0] for r in drain(sql, "q", consumer)] == sent


def test_unsubscribe(sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    batch = receive(sql, "q", "c")[0]
    sql.exec("select pgque.nack(%s, %s::pgque.message)", batch[1], batch[0:10])
    assert sql.one("select count(*) from pgque.retry_queue") == 1
    assert sql.one("select pgque.unsubscribe('q', 'c')") == 1
    assert sql.one("select pgque.unsubscribe('q', 'c')") == 0
    assert sql.one("select count(*) from pgque.retry_queue") == 0
    assert sql.one("select count(*) from pgque.consumer") == 0


def test_next_batch_info_columns(sql: Sql) -> None:
    assert sql.row("select * from pgque.next_batch_info('q', 'c')") == (None,) * 7
    sql.exec("select pgque.send('q', 'x')")
    cur = tick(sql, "q")
    names = [d.name for d in sql.conn.execute("select * from pgque.next_batch_info('q', 'c')").description or []]
    assert names == [
        "batch_id",
        "cur_tick_id",
        "prev_tick_id",
        "cur_tick_time",
        "prev_tick_time",
        "cur_tick_event_seq",
        "prev_tick_event_seq",
    ]
    info = sql.row("select * from pgque.next_batch_info('q', 'c')")
    ticks = dict(sql.rows("select tick_id, tick_time from pgque.tick"))
    assert info[1:5] == (cur, 1, ticks[cur], ticks[1])


def test_next_batch_custom_min_count_and_min_interval(sql: Sql) -> None:
    for n in (10, 10, 10, 100):
        sql.exec("select pgque.send_batch('q', array(select 'x' from generate_series(1, %s)))", n)
        sql.exec("select pgque.ticker('q')")  # first one is idle-rule tick; others need force
        sql.exec("select pgque.force_next_tick('q'), pgque.ticker('q')")
    # a batch of at least 25 events: the newest tick overshoots 2x, so take the oldest that suffices
    ticks = sql.rows("select tick_id, tick_event_seq from pgque.tick order by tick_id")
    batch = sql.row("select batch_id, cur_tick_id from pgque.next_batch_custom('q', 'c', null, 25, null)")
    start_seq = ticks[0][1]
    expected = next(t for t, s in ticks if s - start_seq >= 25)
    assert batch[1] == expected
    sql.exec("select pgque.ack(%s)", batch[0])
    # min_interval that nothing reaches yet: no batch
    assert sql.row("select batch_id from pgque.next_batch_custom('q', 'c', null, null, '1 hour')") == (None,)
    # min_lag: every tick is younger than an hour
    assert sql.row("select batch_id from pgque.next_batch_custom('q', 'c', '1 hour', null, null)") == (None,)
    assert sql.row("select batch_id from pgque.next_batch_custom('q', 'c', '0 seconds', null, null)")[0] is not None


def test_register_consumer_at_repositions(sql: Sql) -> None:
    ids = []
    for i in range(3):
        ids.append(sql.one("select pgque.send('q', %s)", str(i)))
        tick(sql, "q")
    drain(sql, "q", "c")
    open_batch = sql.one("select pgque.next_batch('q', 'c')")
    assert open_batch is None
    assert sql.one("select pgque.register_consumer_at('q', 'c', 1)") == 0
    assert [r[0] for r in drain(sql, "q", "c")] == ids
    raises(
        sql,
        "cannot reposition, tick not found: 999",
        "select pgque.register_consumer_at('q', 'c', 999)",
        sqlstate="PQ010",
    )
    raises(sql, "Event queue not created yet", "select pgque.register_consumer('nope', 'c')", sqlstate="PQ001")
    raises(sql, "Event queue not created yet", "select pgque.subscribe('nope', 'c')", sqlstate="PQ001")
    raises(sql, "Invalid NULL value", "select pgque.subscribe('q', null)", sqlstate="PQ010")


def test_repositioning_drops_the_open_batch(sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    batch = receive(sql, "q", "c")[0][1]
    assert sql.one("select pgque.register_consumer_at('q', 'c', 1)") == 0
    assert sql.one("select pgque.ack(%s)", batch) == 0
    assert len(drain(sql, "q", "c")) == 1


def test_get_batch_events_and_cursor(sql: Sql) -> None:
    ids = sql.one("select pgque.send_batch('q', 't', array['a', 'b', 'c'])")
    tick(sql, "q")
    batch = sql.one("select pgque.next_batch('q', 'c')")
    events = sql.rows("select * from pgque.get_batch_events(%s)", batch)
    assert [e[0] for e in events] == ids
    assert all(isinstance(e[2], int) for e in events)  # ev_txid as bigint
    assert sql.rows("select * from pgque.get_batch_events(%s)", batch) == events
    with sql.transaction():
        quick = sql.rows("select * from pgque.get_batch_cursor(%s, 'my cursor', 1)", batch)
        assert [q[0] for q in quick] == ids[:1]
        rest = sql.rows('fetch all from "my cursor"')
        assert [r[0] for r in rest] == ids[1:]
    with sql.transaction():
        assert sql.rows("select * from pgque.get_batch_cursor(%s, 'c2', 0, 'ev_data <> ''b''')", batch) == []
        assert [r[0] for r in sql.rows('fetch all from "c2"')] == [ids[0], ids[2]]
    assert sql.rows("select * from pgque.get_batch_cursor(%s, null, 5)", batch) == []
    raises(sql, "batch not found", "select * from pgque.get_batch_events(424242)", sqlstate="PQ003")


def test_get_batch_info(sql: Sql) -> None:
    assert sql.row("select * from pgque.get_batch_info(123)") == (None,) * 9
    sql.exec("select pgque.send('q', 'x')")
    cur = tick(sql, "q")
    batch = sql.one("select pgque.next_batch('q', 'c')")
    info = sql.row("select * from pgque.get_batch_info(%s)", batch)
    assert info[0:2] == ("q", "c")
    assert info[4:6] == (1, cur)


def test_batch_lookups_read_two_ticks_however_many_the_queue_keeps(sql: Sql) -> None:
    """Reading an open batch finds its two ticks by key, not by scanning the queue's ticks."""
    # a consumer at work: 1,500 one-event batches, each in its own transactions
    sql.exec(
        "do $$ declare b bigint; begin for i in 1..1500 loop"
        " perform pgque.send('q', 'x'); commit;"
        " perform pgque.force_next_tick('q'); perform pgque.ticker('q'); commit;"
        " select batch_id into b from pgque.receive('q', 'c', 100) limit 1; perform pgque.ack(b); commit;"
        " end loop; end $$"
    )
    sql.exec("select pgque.send('q', 'x')")
    tick(sql, "q")
    batch = sql.one("select pgque.next_batch('q', 'c')")

    def tick_rows_read() -> int:
        return int(
            sql.one(
                # rows of sequential scans, and index entries returned by the key's index
                "select pg_stat_get_xact_tuples_returned('pgque.tick'::regclass)"
                " + pg_stat_get_xact_tuples_returned('pgque.tick_pkey'::regclass)"
            )
        )

    for _ in range(8):  # past the custom plans: a session's later calls run the cached generic plan
        sql.one("select pgque.batch_event_sql(%s)", batch)
        sql.row("select * from pgque.get_batch_info(%s)", batch)
    with sql.transaction():
        before = tick_rows_read()
        sql.one("select pgque.batch_event_sql(%s)", batch)
        sql.rows("select * from pgque.get_batch_events(%s)", batch)
        sql.row("select * from pgque.get_batch_info(%s)", batch)
        read = tick_rows_read() - before
    assert sql.one("select count(*) from pgque.tick") > 1500
    assert read <= 12, f"{read} tick rows read to look up one batch three times"


def test_batch_cost_follows_the_window_not_the_oldest_transaction(db: Database, sql: Sql) -> None:
    """A long open transaction does not make later batches read older data."""
    old = db.connect(autocommit=False)
    old.execute("select pg_current_xact_id()")  # holds the xmin horizon
    for _ in range(3):
        sql.exec("select pgque.send_batch('q', array(select 'x' from generate_series(1, 50)))")
        tick(sql, "q")
    sql.exec("select pgque.ack(b) from pgque.next_batch('q', 'c') b")
    batch = sql.one("select pgque.next_batch('q', 'c')")
    query = sql.one("select pgque.batch_event_sql(%s)", batch)
    plan = "\n".join(r[0] for r in sql.rows("explain (analyze, costs off, timing off, summary off) " + query))
    assert "Rows Removed by Filter" not in plan or "Rows Removed by Filter: 0" in plan
    assert len(sql.rows(query)) == 50
    old.rollback()


def test_errors_leave_no_trace(sql: Sql) -> None:
    before = snapshot(sql)
    for query in (
        "select pgque.next_batch('q', 'ghost')",
        "select * from pgque.next_batch_custom('nope', 'c', null, null, null)",
    ):
        with pytest.raises(psycopg.Error):
            sql.exec(query)
    assert snapshot(sql) == before


def test_tick_inside_the_producing_transaction_never_swallows_its_events(db: Database, sql: Sql) -> None:
    """Another transaction finishing between the send and the tick must not make the event invisible."""
    producer = db.connect(autocommit=False)
    ev_id = producer.execute("select pgque.send('q', 'mine')").fetchone()[0]  # type: ignore[index]
    sql.exec("select pgque.send('q', 'someone else')")  # a later transaction id, committed now
    producer.execute("select pgque.force_next_tick('q')")
    producer.execute("select pgque.ticker('q')")  # its snapshot is taken inside the producer
    producer.commit()
    tick(sql, "q")
    delivered = [r[0] for r in drain(sql, "q", "c")]
    assert sorted(delivered) == sorted([ev_id, ev_id + 1])
    assert len(delivered) == len(set(delivered))


def test_queue_created_subscribed_and_used_in_one_transaction(db: Database, sql: Sql) -> None:
    setup = db.connect(autocommit=False)
    setup.execute("select pgque.create_queue('fresh')")
    setup.execute("select pgque.subscribe('fresh', 'c')")
    ev_id = setup.execute("select pgque.send('fresh', 'x')").fetchone()[0]  # type: ignore[index]
    sql.exec("select pgque.send('q', 'meanwhile')")  # another transaction finishes in between
    setup.execute("select pgque.force_next_tick('fresh'), pgque.ticker('fresh')")
    setup.commit()
    tick(sql, "fresh")
    assert [r[0] for r in drain(sql, "fresh", "c")] == [ev_id]
