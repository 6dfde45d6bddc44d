"""nack, retries, and the dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from tests._pg import Database, Sql
from tests.engine._helpers import drain, raises, receive, snapshot, tick


@pytest.fixture(autouse=True)
def _queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")


def deliver(sql: Sql, *payloads: str, consumer: str = "c") -> list[tuple[Any, ...]]:
    """Send payloads, tick, and return the consumer's open batch."""
    for payload in payloads:
        sql.exec("select pgque.send('q', 'kind', %s)", payload)
    tick(sql, "q")
    return receive(sql, "q", consumer)


def nack(sql: Sql, row: tuple[Any, ...], after: str | None = "60 seconds", reason: str | None = None) -> Any:
    return sql.one("select pgque.nack(%s, %s::pgque.message, %s::interval, %s)", row[1], row[0:10], after, reason)


def move_retries(sql: Sql) -> int:
    """Make every retry due and move them all back into their queues."""
    sql.exec("update pgque.retry_queue set ev_retry_after = now() - interval '1 second'")
    moved = 0
    while (n := sql.one("select pgque.maint_retry_events()")) > 0:
        moved += n
    return moved


def test_nack_parks_the_event_for_a_retry(sql: Sql) -> None:
    [row] = deliver(sql, "x")
    assert nack(sql, row) == 1
    sub_id = sql.one("select sub_id from pgque.subscription")
    retry = sql.row(
        "select ev_owner, ev_retry, ev_txid, ev_id, ev_data, ev_retry_after > now() + interval '59 seconds'"
        " from pgque.retry_queue"
    )
    assert retry == (sub_id, 1, None, row[0], "x", True)
    assert nack(sql, row) == 1  # repeat: nothing new
    assert sql.one("select count(*) from pgque.retry_queue") == 1


def test_retried_event_comes_back_only_to_the_nacking_consumer(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'other')")
    [row] = deliver(sql, "x")
    nack(sql, row, "0 seconds")
    sql.exec("select pgque.ack(%s)", row[1])
    drain(sql, "q", "other")
    assert move_retries(sql) == 1
    tick(sql, "q")
    [again] = drain(sql, "q", "c")
    assert (again[0], again[3], again[4], again[5]) == (row[0], "x", 1, row[5])
    assert drain(sql, "q", "other") == []


def test_retry_after_rounds_half_away_from_zero(sql: Sql) -> None:
    rows = deliver(sql, "a", "b")
    nack(sql, rows[0], "1.5 seconds")
    nack(sql, rows[1], "-3 seconds")
    due = dict(sql.rows("select ev_data, round(extract(epoch from ev_retry_after - now())) from pgque.retry_queue"))
    assert due == {"a": 2, "b": -3}


def test_nack_uses_the_stored_event_not_the_callers_copy(sql: Sql) -> None:
    sql.exec("update pgque.queue set queue_max_retries = 0")
    [row] = deliver(sql, "real")
    forged = (row[0], row[1], "forged-type", "forged-payload", 7, row[5], "e1", None, None, None)
    sql.exec("select pgque.nack(%s, %s::pgque.message)", row[1], forged)
    assert sql.row("select ev_type, ev_data, ev_retry, ev_extra1, dl_reason from pgque.dead_letter") == (
        "kind",
        "real",
        None,
        None,
        "max retries exceeded",
    )


def test_nack_errors(sql: Sql) -> None:
    [row] = deliver(sql, "x")
    batch = row[1]
    before = snapshot(sql)
    raises(
        sql,
        f"msg_id 999 not found in batch {batch}",
        "select pgque.nack(%s, row(999, null, null, null, null, null, null, null, null, null)::pgque.message)",
        batch,
        sqlstate="PQ003",
    )
    raises(
        sql,
        f"msg_id <NULL> not found in batch {batch}",
        "select pgque.nack(%s, row(null, null, null, null, null, null, null, null, null, null)::pgque.message)",
        batch,
        sqlstate="PQ003",
    )
    raises(sql, "batch not found: 31337", "select pgque.nack(31337, %s::pgque.message)", row[0:10], sqlstate="PQ003")
    assert snapshot(sql) == before
    # the spec's quirk: an explicit NULL delay is not defaulted on the retry path
    raises(
        sql,
        'null value in column "ev_retry_after" of relation "retry_queue" violates not-null constraint',
        "select pgque.nack(%s, %s::pgque.message, null, null)",
        batch,
        row[0:10],
        sqlstate="23502",
    )


def test_message_of_another_batch_is_not_found(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'd')")
    [row_c] = deliver(sql, "x")
    [row_d] = receive(sql, "q", "d")
    sql.exec("select pgque.ack(%s)", row_d[1])
    sql.exec("select pgque.send('q', 'y')")
    tick(sql, "q")
    [row_d2] = receive(sql, "q", "d")
    raises(
        sql,
        f"msg_id {row_c[0]} not found in batch {row_d2[1]}",
        "select pgque.nack(%s, %s::pgque.message)",
        row_d2[1],
        row_c[0:10],
        sqlstate="PQ003",
    )


def test_maint_retry_events_moves_at_most_ten(sql: Sql) -> None:
    rows = deliver(sql, *[str(i) for i in range(25)])
    for row in rows:
        nack(sql, row, "0 seconds")
    sql.exec("select pgque.ack(%s)", rows[0][1])
    sql.exec("update pgque.retry_queue set ev_retry_after = now() - interval '1 second'")
    assert [sql.one("select pgque.maint_retry_events()") for _ in range(4)] == [10, 10, 5, 0]
    tick(sql, "q")
    again = drain(sql, "q", "c")
    assert sorted(r[0] for r in again) == [r[0] for r in rows]
    assert {r[4] for r in again} == {1}


def test_not_yet_due_retries_stay(sql: Sql) -> None:
    [row] = deliver(sql, "x")
    nack(sql, row, "1 hour")
    assert sql.one("select pgque.maint_retry_events()") == 0
    assert sql.one("select count(*) from pgque.retry_queue") == 1


def run_until_dead(sql: Sql, max_retries: int | None) -> list[int | None]:
    """nack the same event on every delivery until it lands in the DLQ; return the retry counts seen."""
    if max_retries is not None:
        sql.exec("select pgque.set_queue_config('q', 'max_retries', %s)", str(max_retries))
    [row] = deliver(sql, "doomed")
    seen: list[int | None] = []
    while True:
        seen.append(row[4])
        nack(sql, row, "0 seconds", "it keeps failing")
        sql.exec("select pgque.ack(%s)", row[1])
        if sql.one("select count(*) from pgque.dead_letter") == 1:
            return seen
        move_retries(sql)
        tick(sql, "q")
        [row] = receive(sql, "q", "c")


def test_dead_letter_after_max_retries(sql: Sql) -> None:
    assert run_until_dead(sql, 2) == [None, 1, 2]
    dl = sql.row("select dl_reason, ev_retry, ev_data, dl_consumer_id from pgque.dead_letter")
    assert dl == ("it keeps failing", 2, "doomed", sql.one("select co_id from pgque.consumer"))


def test_default_retry_budget_is_five(sql: Sql) -> None:
    assert run_until_dead(sql, None) == [None, 1, 2, 3, 4, 5]


def test_zero_retries_dead_letters_at_the_first_nack(sql: Sql) -> None:
    assert run_until_dead(sql, 0) == [None]
    assert sql.one("select count(*) from pgque.retry_queue") == 0


def test_repeated_nack_of_a_dead_event_keeps_one_row(sql: Sql) -> None:
    sql.exec("update pgque.queue set queue_max_retries = 0")
    [row] = deliver(sql, "x")
    assert nack(sql, row) == 1
    assert nack(sql, row) == 1
    assert sql.one("select count(*) from pgque.dead_letter") == 1


def dead_letters(sql: Sql, n: int) -> list[int]:
    sql.exec("update pgque.queue set queue_max_retries = 0")
    rows = deliver(sql, *[f"dead-{i}" for i in range(n)])
    for row in rows:
        nack(sql, row)
    sql.exec("select pgque.ack(%s)", rows[0][1])
    return [int(i) for i in sql.col("select dl_id from pgque.dead_letter order by dl_id")]


def test_dlq_inspect_newest_first_with_limit(sql: Sql) -> None:
    ids = dead_letters(sql, 3)
    sql.exec("update pgque.dead_letter set dl_time = now() - (dl_id || ' minutes')::interval")
    assert [r[0] for r in sql.rows("select * from pgque.dlq_inspect('q')")] == ids
    assert [r[0] for r in sql.rows("select * from pgque.dlq_inspect('q', 2)")] == ids[:2]
    assert len(sql.rows("select * from pgque.dlq_inspect('q', null)")) == 3
    assert sql.rows("select * from pgque.dlq_inspect('nope')") == []
    columns = [d.name for d in sql.conn.execute("select * from pgque.dlq_inspect('q')").description or []]
    assert columns[:5] == ["dl_id", "dl_queue_id", "dl_consumer_id", "dl_time", "dl_reason"]


def test_dlq_replay_broadcasts_a_new_event(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'other')")
    [dl_id] = dead_letters(sql, 1)
    drain(sql, "q", "other")
    old_ev = sql.one("select ev_id from pgque.dead_letter")
    new_ev = sql.one("select pgque.dlq_replay(%s)", dl_id)
    assert new_ev > old_ev
    assert sql.one("select count(*) from pgque.dead_letter") == 0
    raises(sql, f"dead letter entry not found: {dl_id}", "select pgque.dlq_replay(%s)", dl_id, sqlstate="PQ004")
    tick(sql, "q")
    for consumer in ("c", "other"):
        [row] = drain(sql, "q", consumer)
        assert (row[0], row[3], row[4]) == (new_ev, "dead-0", None)


def test_dlq_replay_all_and_purge(sql: Sql) -> None:
    assert sql.row("select * from pgque.dlq_replay_all('q')") == (0, 0, None)
    assert sql.row("select * from pgque.dlq_replay_all('nope')") == (0, 0, None)
    dead_letters(sql, 3)
    assert sql.row("select * from pgque.dlq_replay_all('q')") == (3, 0, None)
    tick(sql, "q")
    assert [r[3] for r in drain(sql, "q", "c")] == ["dead-0", "dead-1", "dead-2"]
    ids = dead_letters(sql, 2)
    sql.exec("update pgque.queue set queue_disable_insert = true")
    replayed, failed, first_error = sql.row("select * from pgque.dlq_replay_all('q')")
    assert (replayed, failed) == (0, 2)
    assert first_error == f"dl_id={ids[0]}: Insert into queue disallowed"
    assert f"dlq_replay_all: failed to replay dl_id={ids[1]}, error: Insert into queue disallowed" in sql.notices
    assert sql.one("select count(*) from pgque.dead_letter") == 2
    sql.exec("update pgque.queue set queue_disable_insert = false")
    assert sql.one("select pgque.dlq_purge('q', '1 day')") == 0
    assert sql.one("select pgque.dlq_purge('nope', '0 seconds')") == 0
    sql.exec("update pgque.dead_letter set dl_time = now() - interval '31 days' where dl_id = %s", ids[0])
    assert sql.one("select pgque.dlq_purge('q')") == 1  # default: older than 30 days
    assert sql.one("select pgque.dlq_purge('q', '0 seconds')") == 1  # written by an earlier transaction


def test_concurrent_replays_of_one_row(db: Database, sql: Sql) -> None:
    [dl_id] = dead_letters(sql, 1)
    first = db.connect(autocommit=False)
    first.execute("select pgque.dlq_replay(%s)", (dl_id,))
    second = db.sql()
    import threading

    outcome: list[str] = []

    def replay() -> None:
        try:
            second.exec("select pgque.dlq_replay(%s)", dl_id)
            outcome.append("replayed")
        except Exception as exc:
            outcome.append(str(exc).splitlines()[0])

    worker = threading.Thread(target=replay)
    worker.start()
    worker.join(0.3)
    assert worker.is_alive()
    first.commit()
    worker.join(10)
    assert outcome == [f"dead letter entry not found: {dl_id}"]


def test_event_retry_and_batch_retry(sql: Sql) -> None:
    rows = deliver(sql, "a", "b", "c")
    batch = rows[0][1]
    assert sql.one("select pgque.event_retry(%s, %s, 30)", batch, rows[0][0]) == 1
    assert sql.one("select pgque.event_retry(%s, %s, now() + interval '1 minute')", batch, rows[0][0]) == 0
    assert sql.one("select pgque.batch_retry(%s, 10)", batch) == 2
    assert sql.one("select count(*) from pgque.retry_queue") == 3
    raises(sql, "event not found", "select pgque.event_retry(%s, 777, 1)", batch, sqlstate="PQ003")
    raises(sql, "batch_retry: batch 777 not found", "select pgque.batch_retry(777, 1)", sqlstate="PQ003")
    assert receive(sql, "q", "c") == rows  # the batch stays open


def test_event_retry_raw(sql: Sql) -> None:
    ev_id = sql.one("select pgque.event_retry_raw('q', 'c', now(), null, now(), 3, 't', 'd', null, null, null, null)")
    assert sql.row("select ev_id, ev_retry, ev_type from pgque.retry_queue") == (ev_id, 3, "t")
    raises(
        sql,
        "consumer not registered",
        "select pgque.event_retry_raw('q', 'ghost', now(), null, now(), 0, 't', 'd', null, null, null, null)",
        sqlstate="PQ002",
    )
    move_retries(sql)
    tick(sql, "q")
    assert [(r[0], r[4]) for r in drain(sql, "q", "c")] == [(ev_id, 3)]
