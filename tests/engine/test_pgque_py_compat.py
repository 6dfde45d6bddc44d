"""The engine driven only through the real ``pgque-py`` client (spec 9.1).

Reproduces the behaviours the spec says pgque-py's own tests pin. The engine is
reached exclusively through ``pgque.connect`` / ``PgqueClient`` and
``pgque.Consumer``; plain SQL (the ``sql`` fixture, as the superuser, as
pgque-py's tests do) is used only to create queues, to read tables and to run
``maint_retry_events``. Cooperative methods come with a later revision.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pgque  # type: ignore[import-untyped]
import pytest
from psycopg.conninfo import make_conninfo

from tests._pg import Database, Sql

DEADLINE = 30.0
"""Upper bound, in seconds, for anything that waits on the background consumer."""


@pytest.fixture
def client(db: Database) -> Iterator[Any]:
    """A pgque-py client in its default mode (explicit transactions)."""
    c = pgque.connect(db.conninfo)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def auto(db: Database) -> Iterator[Any]:
    """A second pgque-py client, autocommit, used as the ticker."""
    c = pgque.connect(db.conninfo, autocommit=True)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def queue(sql: Sql) -> str:
    assert sql.one("select pgque.create_queue('orders')") == 1
    return "orders"


def tick(ticker: Any, queue: str) -> int:
    """force_next_tick + ticker through pgque-py (autocommit client); the new tick id."""
    ticker.force_next_tick(queue)
    tick_id = ticker.ticker(queue)
    assert tick_id is not None
    return int(tick_id)


# ---------------------------------------------------------------------------
# client: produce, tick, consume
# ---------------------------------------------------------------------------


def test_send_tick_receive_in_one_transaction_then_exactly_once(client: Any, queue: str) -> None:
    """3.1 / 9.1: send + tick + receive in one transaction -> 0 rows; delivered later, once."""
    assert client.subscribe(queue, "c") == 1
    client.conn.commit()

    ev_id = client.send(queue, {"order_id": 42, "total": 99.95})
    assert client.force_next_tick(queue) == 1
    assert client.ticker(queue) is not None
    assert client.receive(queue, "c", 100) == []
    client.conn.commit()

    tick(client, queue)
    client.conn.commit()
    msgs = client.receive(queue, "c", 100)
    assert [(m.msg_id, m.type, m.payload, m.retry_count) for m in msgs] == [
        (ev_id, "default", '{"total": 99.95, "order_id": 42}', None)
    ]
    assert isinstance(msgs[0].created_at, datetime)
    assert client.ack(msgs[0].batch_id) == 1
    client.conn.commit()

    tick(client, queue)
    client.conn.commit()
    assert client.receive(queue, "c", 100) == []
    client.conn.commit()


def test_send_forms_and_types(client: Any, auto: Any, queue: str) -> None:
    """send(queue, payload) uses type 'default'; type= picks the 3-argument form."""
    assert client.subscribe(queue, "c") == 1
    a = client.send(queue, {"k": 1})
    b = client.send(queue, [1, 2], type="order.created")
    c = client.send(queue, None)
    d = client.send(queue, '"hello"', type="default")
    e = client.send(queue, pgque.Event(payload={"x": "y"}, type="evt"))
    client.conn.commit()
    assert a < b < c < d < e
    tick(auto, queue)
    msgs = client.receive(queue, "c", 100)
    assert [(m.msg_id, m.type, m.payload) for m in msgs] == [
        (a, "default", '{"k": 1}'),
        (b, "order.created", "[1, 2]"),
        (c, "default", "null"),
        (d, "default", '"hello"'),
        (e, "evt", '{"x": "y"}'),
    ]
    assert len({m.batch_id for m in msgs}) == 1
    assert client.ack(msgs[0].batch_id) == 1
    assert client.ack(msgs[0].batch_id) == 0  # stale / double ack
    client.conn.commit()


def test_send_batch_ids_ascending_in_input_order(client: Any, auto: Any, queue: str) -> None:
    client.subscribe(queue, "c")
    payloads: list[Any] = [{"i": i} for i in range(25)] + [None, [3, 4], '"s"']
    ids = client.send_batch(queue, "bulk", payloads)
    client.conn.commit()
    assert len(ids) == len(payloads)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    tick(auto, queue)
    msgs = client.receive(queue, "c", 1000)
    assert [m.msg_id for m in msgs] == ids
    expected = [json.dumps(p) if not isinstance(p, str) else p for p in payloads]
    assert [m.payload for m in msgs] == expected
    assert {m.type for m in msgs} == {"bulk"}
    client.ack(msgs[0].batch_id)
    client.conn.commit()


def test_subscribe_and_unsubscribe_return_1_then_0(client: Any, queue: str) -> None:
    assert client.subscribe(queue, "c") == 1
    assert client.subscribe(queue, "c") == 0
    assert client.unsubscribe(queue, "c") == 1
    assert client.unsubscribe(queue, "c") == 0
    assert client.subscribe(queue, "c") == 1
    client.conn.commit()


def test_ticker_helpers(sql: Sql, auto: Any, queue: str) -> None:
    """force_next_tick -> latest existing tick id; ticker -> new id, then None; ticker_all."""
    sql.exec("select pgque.create_queue('second')")
    assert auto.force_next_tick(queue) == 1
    assert auto.ticker(queue) == 2
    assert auto.ticker(queue) is None
    assert auto.force_next_tick(queue) == 2
    assert auto.force_tick("second") == 1
    assert auto.ticker_all() == 2
    assert sql.col(
        "select tick_id from pgque.tick t join pgque.queue q on q.queue_id ="
        " t.tick_queue where q.queue_name = %s order by 1",
        queue,
    ) == [1, 2, 3]


# ---------------------------------------------------------------------------
# client: error mapping (8 / 9.1)
# ---------------------------------------------------------------------------


def test_send_to_unknown_queue_raises_queue_not_found(client: Any) -> None:
    with pytest.raises(pgque.PgqueQueueNotFound, match="queue not found: nope"):
        client.send("nope", {"a": 1})
    client.conn.rollback()
    with pytest.raises(pgque.PgqueQueueNotFound, match="queue not found: nope"):
        client.send("nope", {"a": 1}, type="t")
    client.conn.rollback()
    with pytest.raises(pgque.PgqueQueueNotFound, match="queue not found: nope"):
        client.send_batch("nope", "t", [{"a": 1}])
    client.conn.rollback()
    assert client.send_batch("nope", "t", []) == []  # empty array: queue not looked at


def test_receive_for_unknown_consumer_raises_consumer_not_found(client: Any, queue: str) -> None:
    with pytest.raises(pgque.PgqueConsumerNotFound, match="Not subscriber to queue: orders/who"):
        client.receive(queue, "who", 10)
    client.conn.rollback()
    with pytest.raises(pgque.PgqueConsumerNotFound, match="Not subscriber to queue: nope/who"):
        client.receive("nope", "who", 10)
    client.conn.rollback()


def test_nack_with_unknown_batch_raises_batch_not_found(client: Any, queue: str) -> None:
    msg = pgque.Message(
        msg_id=1, batch_id=987654321, type="t", payload="{}", retry_count=None, created_at=datetime.now(timezone.utc)
    )
    with pytest.raises(pgque.PgqueBatchNotFound, match="batch not found: 987654321"):
        client.nack(987654321, msg)
    client.conn.rollback()


def test_ack_of_unknown_batch_returns_0(client: Any) -> None:
    assert client.ack(987654321) == 0
    client.conn.commit()


# ---------------------------------------------------------------------------
# client: retry and dead letters
# ---------------------------------------------------------------------------


def test_nack_then_redelivery_with_retry_count_1(sql: Sql, client: Any, auto: Any, queue: str) -> None:
    client.subscribe(queue, "c")
    client.subscribe(queue, "other")
    ev_id = client.send(queue, {"n": 1}, type="job")
    client.conn.commit()
    tick(auto, queue)

    first = client.receive(queue, "c", 100)
    assert [m.msg_id for m in first] == [ev_id]
    assert client.nack(first[0].batch_id, first[0], retry_after=0) is None
    assert client.ack(first[0].batch_id) == 1
    client.conn.commit()
    assert sql.rows("select ev_id, ev_retry, ev_txid from pgque.retry_queue") == [(ev_id, 1, None)]
    other = client.receive(queue, "other", 100)
    assert [m.msg_id for m in other] == [ev_id]
    client.ack(other[0].batch_id)
    client.conn.commit()

    assert sql.one("select pgque.maint_retry_events()") == 1
    tick(auto, queue)
    again = client.receive(queue, "c", 100)
    assert [(m.msg_id, m.type, m.payload, m.retry_count, m.created_at) for m in again] == [
        (ev_id, "job", '{"n": 1}', 1, first[0].created_at)
    ]
    client.ack(again[0].batch_id)
    assert client.receive(queue, "other", 100) == []  # the retry is private to "c"
    client.conn.commit()


def test_nack_retry_after_is_sent_as_seconds_and_rounded(client: Any, auto: Any, queue: str) -> None:
    """9.1: pgque-py sends '<n> seconds'; 6.2: whole seconds, half away from zero."""
    client.subscribe(queue, "c")
    ids = client.send_batch(queue, "t", [{"i": i} for i in range(3)])
    client.conn.commit()
    tick(auto, queue)
    msgs = client.receive(queue, "c", 100)
    client.nack(msgs[0].batch_id, msgs[0])  # default 60
    client.nack(msgs[0].batch_id, msgs[1], retry_after=1.5)
    client.nack(msgs[0].batch_id, msgs[2], retry_after=2.4)
    delays = client.conn.execute(
        "select ev_id, extract(epoch from ev_retry_after - now())::int from pgque.retry_queue order by ev_id"
    ).fetchall()
    assert delays == [(ids[0], 60), (ids[1], 2), (ids[2], 2)]
    client.ack(msgs[0].batch_id)
    client.conn.commit()


def test_max_retries_zero_one_nack_lands_in_dead_letter(sql: Sql, client: Any, auto: Any, queue: str) -> None:
    sql.exec("update pgque.queue set queue_max_retries = 0 where queue_name = %s", queue)
    client.subscribe(queue, "c")
    ev_id = client.send(queue, {"bad": True}, type="job")
    client.conn.commit()
    tick(auto, queue)
    msgs = client.receive(queue, "c", 100)
    client.nack(msgs[0].batch_id, msgs[0], retry_after=60, reason="boom")
    client.nack(msgs[0].batch_id, msgs[0], retry_after=60, reason="again")  # idempotent
    assert client.ack(msgs[0].batch_id) == 1
    client.conn.commit()
    qid = sql.one("select queue_id from pgque.queue where queue_name = %s", queue)
    assert sql.rows("select dl_queue_id, ev_id, dl_reason, ev_type, ev_data, ev_retry from pgque.dead_letter") == [
        (qid, ev_id, "boom", "job", '{"bad": true}', None)
    ]
    assert sql.one("select count(*) from pgque.retry_queue") == 0


# ---------------------------------------------------------------------------
# pgque.Consumer in a background thread
# ---------------------------------------------------------------------------


class Running:
    """A ``pgque.Consumer`` running ``start()`` in a thread; errors re-raised on stop."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.consumer.start()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "consumer did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def run_consumer() -> Iterator[Callable[[Any], Running]]:
    started: list[Running] = []

    def run(consumer: Any) -> Running:
        running = Running(consumer)
        started.append(running)
        return running

    try:
        yield run
    finally:
        for running in started:
            if running.thread.is_alive():
                running.consumer.stop()
                running.thread.join(DEADLINE)


def wait_for(condition: Callable[[], bool], what: str, ticker: Callable[[], object]) -> None:
    """Call ``ticker`` and poll ``condition`` until it holds or DEADLINE passes."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        ticker()
        time.sleep(0.2)


def test_consumer_processes_events_sent_after_it_started(
    db: Database, sql: Sql, auto: Any, run_consumer: Callable[[Any], Running]
) -> None:
    """The Consumer wakes up on the tick's NOTIFY (6.11), here for a name that needs quoting.

    Its poll interval (60 s) is longer than the deadline, so only the
    notification can make it poll again after its first, empty, poll.
    """
    queue = 'Mixed "Case"; Q'
    assert sql.one("select pgque.create_queue(%s)", queue) == 1
    assert auto.subscribe(queue, "worker") == 1
    seen: list[tuple[int, str, Any]] = []
    lock = threading.Lock()
    app = f"sa_pgque_consumer_{uuid.uuid4().hex[:12]}"
    consumer = pgque.Consumer(
        make_conninfo(db.conninfo, application_name=app), queue=queue, name="worker", poll_interval=60
    )

    def record(msg: Any) -> None:
        with lock:
            seen.append((msg.msg_id, msg.type, msg.payload))

    consumer.on("order.created")(record)
    consumer.on("*")(record)  # catch-all handler

    started = sql.one("select clock_timestamp()")
    running = run_consumer(consumer)

    def polled_since(since: datetime) -> Callable[[], bool]:
        """The consumer has finished a poll after ``since`` and waits for NOTIFY."""

        def check() -> bool:
            return sql.rows(
                "select state, query from pg_stat_activity where application_name = %s and state_change > %s",
                app,
                since,
            ) == [("idle", "COMMIT")]

        return check

    wait_for(polled_since(started), "the consumer's first poll", lambda: None)
    with lock:
        assert seen == []
    ids = [auto.send(queue, {"n": i}, type="order.created") for i in range(3)]
    ids.append(auto.send(queue, {"n": 3}, type="other"))
    tick(auto, queue)

    def all_seen() -> bool:
        with lock:
            return len(seen) >= len(ids)

    wait_for(all_seen, "the consumer to handle 4 events", lambda: None)
    with lock:
        assert seen == [
            (ids[0], "order.created", '{"n": 0}'),
            (ids[1], "order.created", '{"n": 1}'),
            (ids[2], "order.created", '{"n": 2}'),
            (ids[3], "other", '{"n": 3}'),
        ]
    wait_for(lambda: sql.one("select sub_batch from pgque.subscription") is None, "the batch to be acked", lambda: None)
    last_tick = sql.one("select clock_timestamp()")
    tick(auto, queue)
    wait_for(polled_since(last_tick), "the consumer to poll the empty window", lambda: None)
    running.stop()
    with lock:
        assert len(seen) == 4  # each exactly once
    assert sql.one("select count(*) from pgque.retry_queue") == 0


def test_consumer_nacks_unhandled_type_into_retry_queue(
    db: Database, sql: Sql, auto: Any, queue: str, run_consumer: Callable[[Any], Running]
) -> None:
    auto.subscribe(queue, "worker")
    handled: list[int] = []
    consumer = pgque.Consumer(db.conninfo, queue=queue, name="worker", poll_interval=60)
    consumer.on("known")(lambda msg: handled.append(msg.msg_id))
    running = run_consumer(consumer)

    known = auto.send(queue, {"ok": 1}, type="known")
    unknown = auto.send(queue, {"ok": 0}, type="mystery")
    qid = sql.one("select queue_id from pgque.queue where queue_name = %s", queue)

    def parked() -> bool:
        return bool(sql.rows("select 1 from pgque.retry_queue where ev_queue = %s and ev_id = %s", qid, unknown))

    wait_for(parked, "the unhandled event in retry_queue", lambda: tick(auto, queue))
    wait_for(lambda: sql.one("select sub_batch from pgque.subscription") is None, "the batch to be acked", lambda: None)
    running.stop()
    assert handled == [known]
    assert sql.rows("select ev_id, ev_type, ev_retry from pgque.retry_queue") == [(unknown, "mystery", 1)]
    assert sql.one("select count(*) from pgque.dead_letter") == 0


def test_consumer_unhandled_type_with_max_retries_zero_is_dead_lettered(
    db: Database, sql: Sql, auto: Any, queue: str, run_consumer: Callable[[Any], Running]
) -> None:
    sql.exec("update pgque.queue set queue_max_retries = 0 where queue_name = %s", queue)
    auto.subscribe(queue, "worker")
    consumer = pgque.Consumer(db.conninfo, queue=queue, name="worker", poll_interval=60)
    running = run_consumer(consumer)
    ev_id = auto.send(queue, {"x": 1}, type="mystery")
    qid = sql.one("select queue_id from pgque.queue where queue_name = %s", queue)

    def dead() -> bool:
        return bool(sql.rows("select 1 from pgque.dead_letter where dl_queue_id = %s and ev_id = %s", qid, ev_id))

    wait_for(dead, "the event in dead_letter", lambda: tick(auto, queue))
    running.stop()
    assert sql.rows("select ev_id, dl_reason from pgque.dead_letter") == [(ev_id, "no handler for type=mystery")]
    assert sql.one("select count(*) from pgque.retry_queue") == 0


def test_consumer_failed_handler_is_retried_with_retry_count_1(
    db: Database, sql: Sql, auto: Any, queue: str, run_consumer: Callable[[Any], Running]
) -> None:
    auto.subscribe(queue, "worker")
    deliveries: list[tuple[int, int | None]] = []
    lock = threading.Lock()
    consumer = pgque.Consumer(db.conninfo, queue=queue, name="worker", poll_interval=60, retry_after=0)

    def job(msg: Any) -> None:
        with lock:
            deliveries.append((msg.msg_id, msg.retry_count))
            first = len(deliveries) == 1
        if first:
            raise RuntimeError("transient failure")

    consumer.on("job")(job)
    running = run_consumer(consumer)
    ev_id = auto.send(queue, {"j": 1}, type="job")

    def delivered(times: int) -> Callable[[], bool]:
        def check() -> bool:
            with lock:
                return len(deliveries) >= times

        return check

    wait_for(delivered(1), "the first delivery", lambda: tick(auto, queue))
    wait_for(lambda: sql.one("select count(*) from pgque.retry_queue") == 1, "the retry row", lambda: None)

    def move_and_tick() -> None:
        sql.one("select pgque.maint_retry_events()")
        tick(auto, queue)

    wait_for(delivered(2), "the redelivery", move_and_tick)
    wait_for(lambda: sql.one("select sub_batch from pgque.subscription") is None, "the batch to be acked", lambda: None)
    running.stop()
    with lock:
        assert deliveries == [(ev_id, None), (ev_id, 1)]
    assert sql.one("select count(*) from pgque.retry_queue") == 0
    assert sql.one("select count(*) from pgque.dead_letter") == 0
