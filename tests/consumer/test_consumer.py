"""The Consumer in-process: transactions, failures, fan-out, cooperative members, wake-ups."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from sa_pgque import Consumer, Message, RetryPolicy, Ticker
from sa_pgque.handlers import UnhandledType
from tests.consumer.conftest import Marker, Processed, count_rows, processed, send

NO_DELAY = RetryPolicy(base=timedelta(0))


def recording_consumer(
    sessions: sessionmaker[Session], queue: str, name: str = "worker", **options: object
) -> Consumer:
    consumer = Consumer(sessions, queue=queue, name=name, **options)  # type: ignore[arg-type]

    @consumer.default_handler
    def record(message: Message, session: Session) -> None:
        session.add(Processed(consumer=name, msg_id=message.msg_id, payload=message.payload_text))

    return consumer


def move_retries(sessions: sessionmaker[Session], queue: str) -> None:
    """Make due every parked retry, move them back, and tick so they are deliverable."""
    with sessions.begin() as session:
        session.execute(text("update pgque.retry_queue set ev_retry_after = now()"))
    with sessions.begin() as session:
        while pgque.maint_retry_events(session):
            pass
    with sessions.begin() as session:
        pgque.tick(session, queue)


def test_handler_writes_commit_with_the_ack(sessions: sessionmaker[Session], queue: str) -> None:
    consumer = recording_consumer(sessions, queue)
    assert consumer.run_once().empty  # subscribes; nothing sent after that yet
    ids = send(sessions, queue, "a", "b", "c")
    outcome = consumer.run_once()
    assert outcome.committed and outcome.handled == ids
    assert processed(sessions) == [("worker", i) for i in ids]
    assert consumer.run_once().empty


def idle_ticks(sessions: sessionmaker[Session], queue: str, count: int) -> None:
    """Tick ``count`` times with nothing sent: empty windows, as an idle ticker leaves them."""
    for _ in range(count):
        with sessions.begin() as session:
            pgque.tick(session, queue)


@pytest.mark.parametrize("subconsumer", [None, "m1"])
def test_empty_windows_are_passed_over_without_a_wait(
    sessions: sessionmaker[Session], queue: str, subconsumer: str | None
) -> None:
    consumer = recording_consumer(sessions, queue, subconsumer=subconsumer)
    assert consumer.run_once().empty  # subscribes
    idle_ticks(sessions, queue, 5)
    ids = send(sessions, queue, "after the idle ticks")
    idle_ticks(sessions, queue, 3)
    outcome = consumer.run_once()
    assert outcome.handled == ids
    assert consumer.run_once().empty  # the trailing empty windows are passed over, then nothing is ready
    with sessions() as session:
        (info,) = pgque.consumer_info(session, queue, "worker")
        latest = session.scalar(
            text("select max(tick_id) from pgque.tick t join pgque.queue q on q.queue_id = t.tick_queue")
        )
    assert info.last_tick == latest


def test_a_crash_before_commit_brings_the_whole_batch_back(sessions: sessionmaker[Session], queue: str) -> None:
    consumer = recording_consumer(sessions, queue)
    consumer.run_once()
    ids = send(sessions, queue, "a", "b")
    crashing = Consumer(sessions, queue=queue, name="worker")

    @crashing.default_handler
    def write_then_die(message: Message, session: Session) -> None:
        session.add(Processed(consumer="worker", msg_id=message.msg_id))
        session.flush()
        raise SystemExit("process dies mid-batch")  # not an Exception: no retry, no ack

    with pytest.raises(SystemExit):
        crashing.run_once()
    assert count_rows(sessions) == 0
    assert consumer.run_once().handled == ids
    assert processed(sessions) == [("worker", i) for i in ids]


def test_failing_message_is_isolated_retried_and_dead_lettered(sessions: sessionmaker[Session], queue: str) -> None:
    with sessions.begin() as session:
        pgque.set_queue_config(session, queue, "max_retries", 2)
    consumer = Consumer(sessions, queue=queue, name="worker", retry=NO_DELAY)
    attempts: Counter[str] = Counter()
    retry_counts: list[int | None] = []

    @consumer.handler("job")
    def handle(message: Message, session: Session) -> None:
        attempts[message.payload_text or ""] += 1
        session.add(Processed(consumer="worker", msg_id=message.msg_id, payload=message.payload_text))
        if message.payload_text == "poison":
            retry_counts.append(message.retry_count)
            raise ValueError("cannot process poison")

    consumer.run_once()
    ids = send(sessions, queue, "ok-1", "poison", "ok-2")
    outcome = consumer.run_once()
    assert outcome.handled == [ids[0], ids[2]] and outcome.retried == [ids[1]]
    assert [m for _, m in processed(sessions)] == [ids[0], ids[2]]  # the poison's write was rolled back
    for _ in range(2):
        move_retries(sessions, queue)
        assert consumer.run_once().retried == [ids[1]]
    assert retry_counts == [None, None, 1, 2]  # optimistic pass + careful pass, then one per retry
    with sessions.begin() as session:
        [dead] = pgque.dlq_inspect(session, queue)
    assert (dead.ev_id, dead.ev_retry, dead.dl_reason) == (ids[1], 2, "ValueError: cannot process poison")
    move_retries(sessions, queue)
    assert consumer.run_once().empty
    assert [m for _, m in processed(sessions)] == [ids[0], ids[2]]


def test_flush_error_is_attributed_to_its_message(sessions: sessionmaker[Session], queue: str) -> None:
    consumer = Consumer(sessions, queue=queue, name="worker", retry=NO_DELAY)

    @consumer.handler("job")
    def mark(message: Message, session: Session) -> None:
        session.add(Marker(name=message.payload_text or ""))

    consumer.run_once()
    ids = send(sessions, queue, "x", "y", "x")  # the second "x" violates the unique constraint at flush
    outcome = consumer.run_once()
    assert outcome.handled == ids[:2] and outcome.retried == [ids[2]]
    with sessions() as session:
        assert sorted(session.scalars(text("select name from markers"))) == ["x", "y"]


def test_savepoint_per_message_mode(sessions: sessionmaker[Session], queue: str, engine: Engine) -> None:
    statements: list[str] = []

    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    consumer = recording_consumer(sessions, queue, savepoint_per_message=True)
    consumer.run_once()
    send(sessions, queue, "a", "b")
    statements.clear()
    assert len(consumer.run_once().handled) == 2
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 2
    statements.clear()
    send(sessions, queue, "c")
    default = recording_consumer(sessions, queue, name="optimistic")
    default.run_once()
    send(sessions, queue, "d")
    statements.clear()
    default.run_once()
    assert not any(s.startswith("SAVEPOINT") for s in statements)


def test_unknown_types(sessions: sessionmaker[Session], queue: str) -> None:
    strict = Consumer(sessions, queue=queue, name="strict", unknown_type="fail")
    lenient = Consumer(sessions, queue=queue, name="lenient", unknown_type="ack")
    default = Consumer(sessions, queue=queue, name="default", retry=NO_DELAY)
    for consumer in (strict, lenient, default):
        consumer.run_once()
    [ev] = send(sessions, queue, "x", type="mystery")
    with pytest.raises(UnhandledType):
        strict.run_once()
    assert lenient.run_once().skipped == [ev]
    assert default.run_once().retried == [ev]
    with sessions() as session:
        owners = session.scalars(text("select ev_owner from pgque.retry_queue")).all()
    assert len(owners) == 1


def test_large_batches_stream_in_pages(sessions: sessionmaker[Session], queue: str) -> None:
    consumer = recording_consumer(sessions, queue, page_size=100)
    consumer.run_once()
    ids = send(sessions, queue, *range(2_500))
    outcome = consumer.run_once()
    assert outcome.handled == ids
    assert [m for _, m in processed(sessions)] == ids


def test_fan_out(sessions: sessionmaker[Session], queue: str) -> None:
    billing, shipping = recording_consumer(sessions, queue, "billing"), recording_consumer(sessions, queue, "shipping")
    billing.run_once()
    shipping.run_once()
    ids = send(sessions, queue, *range(10))
    for consumer in (billing, shipping):
        assert [o.handled for o in consumer.run()] == [ids]
    assert sorted(processed(sessions)) == sorted([("billing", i) for i in ids] + [("shipping", i) for i in ids])


def test_chained_processing_publishes_atomically(sessions: sessionmaker[Session], queue: str) -> None:
    with sessions.begin() as session:
        pgque.create_queue(session, "invoices")
        pgque.subscribe(session, "invoices", "mailer")
    consumer = Consumer(sessions, queue=queue, name="billing")

    @consumer.handler("job")
    def bill(message: Message, session: Session) -> None:
        pgque.publish(session, "invoices", {"for": message.msg_id}, type="invoice", buffer=True)
        if message.payload_text == "boom":
            raise SystemExit("worker killed before commit")

    consumer.run_once()
    ids = send(sessions, queue, "ok", "boom")
    with pytest.raises(SystemExit):
        consumer.run_once()
    with sessions.begin() as session:
        pgque.tick(session, "invoices")
    with sessions.begin() as session:
        assert pgque.receive(session, "invoices", "mailer") == []  # neither the ack nor the invoices
    with sessions.begin() as session:
        session.execute(text("delete from pgque.event_1_0 where ev_data = 'boom'"))  # make the batch succeed
    assert consumer.run_once().handled == [ids[0]]
    with sessions.begin() as session:
        pgque.tick(session, "invoices")
    with sessions.begin() as session:
        invoices = pgque.receive(session, "invoices", "mailer")
    assert [m.payload for m in invoices] == [{"for": ids[0]}]


def test_cooperative_members_split_the_work(sessions: sessionmaker[Session], queue: str) -> None:
    members = [recording_consumer(sessions, queue, "pool", subconsumer=f"w{i}") for i in range(3)]
    for member in members:
        member.run_once()  # registers the member
    sent: list[int] = []
    for round_no in range(30):
        sent += send(sessions, queue, *[f"{round_no}.{k}" for k in range(5)])
    got: dict[str, list[int]] = {f"w{i}": [] for i in range(3)}

    def work(member: Consumer) -> None:
        assert member.subconsumer is not None
        for outcome in member.run():
            got[member.subconsumer] += outcome.handled

    threads = [threading.Thread(target=work, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [m for ids in got.values() for m in ids]
    assert sorted(everything) == sorted(sent)
    assert len(everything) == len(set(everything))
    assert sum(1 for ids in got.values() if ids) >= 2, got


def test_heartbeat_protects_a_slow_member_and_a_dead_one_is_taken_over(
    sessions: sessionmaker[Session], queue: str
) -> None:
    slow_started, finish = threading.Event(), threading.Event()
    slow = Consumer(sessions, queue=queue, name="pool", subconsumer="slow", dead_interval=1.0, heartbeat_interval=0.2)

    @slow.default_handler
    def take_time(message: Message, session: Session) -> None:
        slow_started.set()
        finish.wait(10)
        session.add(Processed(consumer="slow", msg_id=message.msg_id))

    fast = recording_consumer(sessions, queue, "pool", subconsumer="fast", dead_interval=1.0)
    slow.run_once()
    fast.run_once()
    [ev] = send(sessions, queue, "slow one")
    worker = threading.Thread(target=slow.run_once)
    worker.start()
    assert slow_started.wait(10)
    time.sleep(1.5)  # longer than dead_interval: only the heartbeat keeps the batch
    assert fast.run_once().empty
    finish.set()
    worker.join(10)
    assert processed(sessions) == [("slow", ev)]

    # a member that took a batch and died (no heartbeat) loses it after dead_interval
    [ev2] = send(sessions, queue, "orphan")
    with sessions.begin() as session:
        [orphan] = pgque.receive_coop(session, queue, "pool", "dead")
    with sessions.begin() as session:
        session.execute(
            text("update pgque.subscription set sub_active = now() - interval '5 seconds' where sub_batch = :b"),
            {"b": orphan.batch_id},
        )
    outcome = fast.run_once()
    assert outcome.handled == [ev2] and outcome.batch_id != orphan.batch_id
    with sessions.begin() as session:
        assert pgque.ack(session, orphan.batch_id) == 0


def test_dead_interval_needs_a_subconsumer(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="dead_interval is only valid for a cooperative consumer"):
        Consumer(sessions, queue="q", name="c", dead_interval=30)


def test_run_forever_wakes_on_ticks_and_stops_cleanly(
    sessions: sessionmaker[Session], queue: str, engine: Engine
) -> None:
    with sessions.begin() as session:
        pgque.set_queue_config(session, queue, "ticker_max_lag", timedelta(milliseconds=100))
    consumer = recording_consumer(sessions, queue, poll_interval=60)  # only a NOTIFY can wake it in time
    consumer.run_once()
    worker = threading.Thread(target=consumer.run_forever)
    worker.start()
    with Ticker(engine) as ticker:
        assert ticker.active.wait(10)
        with sessions.begin() as session:
            ids = [pgque.publish(session, queue, f"live-{i}") for i in range(5)]
        deadline = time.monotonic() + 20
        while count_rows(sessions) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    consumer.stop()
    consumer.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert [m for _, m in processed(sessions)] == ids


def test_unsubscribe_on_stop(sessions: sessionmaker[Session], queue: str) -> None:
    consumer = recording_consumer(sessions, queue, unsubscribe_on_stop=True, poll_interval=0.1)
    threading.Timer(0.5, consumer.stop).start()
    consumer.run_forever()
    with sessions() as session:
        assert pgque.consumer_info(session, queue) == []


def test_only_one_ticker_is_active(engine: Engine, queue: str) -> None:
    first, second = Ticker(engine), Ticker(engine)
    first.start()
    assert first.active.wait(10)
    second.start()
    time.sleep(1.5)
    assert not second.active.is_set()
    first.stop()
    assert second.active.wait(10)
    second.stop()
