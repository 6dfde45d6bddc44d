"""Every facade call against a real database, through a Session and a Connection."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from sa_pgque import _ops, aio, api, errors
from sa_pgque.results import BatchInfo, ConsumerInfo, DeadLetter, DlqReplayResult, Message, QueueInfo, StatusRow
from sa_pgque.types import Payload
from tests._pg import Database


@pytest.fixture
def orders(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        assert pgque.create_queue(session, "orders") == 1
        assert pgque.subscribe(session, "orders", "billing") == 1
    return "orders"


def deliver(sessions: sessionmaker[Session], *payloads: Payload, type: str | None = None) -> list[int]:
    with sessions.begin() as session:
        ids = [pgque.send(session, "orders", p, type=type) for p in payloads]
    with sessions.begin() as session:
        pgque.tick(session, "orders")
    return ids


def test_sync_and_async_apis_expose_every_operation() -> None:
    names = {op.__name__ for op in _ops.OPERATIONS}
    for module in (api, aio):
        for name in names:
            call = getattr(module, name)
            params = list(inspect.signature(call).parameters)
            assert params[0] == "bind"
            assert params[1:] == list(inspect.signature(getattr(_ops, name)).parameters)
            assert call.__doc__ == getattr(_ops, name).__doc__
    assert names <= set(pgque.__all__)


def test_send_receive_ack(sessions: sessionmaker[Session], orders: str) -> None:
    ids = deliver(sessions, {"order": 1}, "plain text", None, type="order.created")
    with sessions.begin() as session:
        messages = pgque.receive(session, orders, "billing")
        assert [m.msg_id for m in messages] == ids
        assert all(isinstance(m, Message) and m.type == "order.created" for m in messages)
        assert [m.payload for m in messages] == [{"order": 1}, "plain text", None]
        assert [m.payload_text for m in messages] == ['{"order": 1}', "plain text", None]
        assert messages[0].is_json and not messages[1].is_json
        assert pgque.ack(session, messages[0].batch_id) == 1
        assert pgque.ack(session, messages[0].batch_id) == 0
    with sessions.begin() as session:
        assert pgque.receive(session, orders, "billing") == []


def test_send_batch_and_default_type(sessions: sessionmaker[Session], orders: str) -> None:
    with sessions.begin() as session:
        ids = pgque.send_batch(session, orders, [{"n": i} for i in range(5)])
        assert pgque.send_batch(session, orders, []) == []
        assert ids == sorted(ids)
        pgque.send_batch(session, orders, ["a", "b"], type="letters")
    with sessions.begin() as session:
        pgque.tick(session, orders)
    with sessions.begin() as session:
        got = pgque.receive(session, orders, "billing")
    assert [(m.type, m.payload) for m in got] == [("default", {"n": i}) for i in range(5)] + [
        ("letters", "a"),
        ("letters", "b"),
    ]


def test_receive_limit_and_unlimited_default(sessions: sessionmaker[Session], orders: str) -> None:
    with sessions.begin() as session:
        pgque.send_batch(session, orders, [str(i) for i in range(250)])
    with sessions.begin() as session:
        pgque.tick(session, orders)
    with sessions.begin() as session:
        assert len(pgque.receive(session, orders, "billing")) == 250  # the whole batch, not 100
        assert len(pgque.receive(session, orders, "billing", 10)) == 10


def test_nack_retry_and_dead_letters(sessions: sessionmaker[Session], orders: str) -> None:
    with sessions.begin() as session:
        pgque.set_queue_config(session, orders, "max_retries", 1)
    deliver(sessions, "a", "b")
    with sessions.begin() as session:
        a, b = pgque.receive(session, orders, "billing")
        assert pgque.nack(session, a, retry_after=0) == 1
        assert pgque.nack(session, b, retry_after=timedelta(hours=1), reason="ignored on retry") == 1
        pgque.ack(session, a.batch_id)
    with sessions.begin() as session:
        session.execute(text("update pgque.retry_queue set ev_retry_after = now()"))
        assert pgque.maint_retry_events(session) == 2
    with sessions.begin() as session:
        pgque.tick(session, orders)
    with sessions.begin() as session:
        retried = pgque.receive(session, orders, "billing")
        assert [(m.payload, m.retry_count) for m in retried] == [("a", 1), ("b", 1)]
        for m in retried:
            pgque.nack(session, m, reason="still broken")
        pgque.ack(session, retried[0].batch_id)
    with sessions.begin() as session:
        dead = pgque.dlq_inspect(session, orders)
        assert [type(d) for d in dead] == [DeadLetter, DeadLetter]
        assert {(d.ev_data, d.dl_reason, d.ev_retry) for d in dead} == {
            ("a", "still broken", 1),
            ("b", "still broken", 1),
        }
        assert all(isinstance(d.ev_txid, int) for d in dead)
        new_id = pgque.dlq_replay(session, dead[0].dl_id)
        assert new_id > max(d.ev_id for d in dead)
        assert pgque.dlq_replay_all(session, orders) == DlqReplayResult(1, 0, None)
        assert pgque.dlq_purge(session, orders, older_than=0) == 0


def test_queue_management_with_settings(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert (
            pgque.create_queue(
                session, "tuned", max_retries=10, ticker_max_lag=timedelta(milliseconds=100), ticker_paused=True
            )
            == 1
        )
        assert pgque.create_queue(session, "tuned") == 0
        [info] = pgque.queue_info(session, "tuned")
        assert isinstance(info, QueueInfo)
        assert info.queue_ticker_max_lag == timedelta(milliseconds=100)
        assert info.queue_ticker_paused is True
        assert session.scalar(text("select queue_max_retries from pgque.queue")) == 10
        assert pgque.set_queue_config(session, "tuned", "max_retries", None) == 1
        assert pgque.drop_queue(session, "tuned") == 1
        assert pgque.queue_info(session) == []
    with pytest.raises(TypeError, match="unknown queue settings"):
        pgque.create_queue(Session(), "q", bogus=1)


def test_observability(sessions: sessionmaker[Session], orders: str) -> None:
    deliver(sessions, "x")
    with sessions.begin() as session:
        [info] = pgque.consumer_info(session, orders)
        assert isinstance(info, ConsumerInfo) and info.consumer_name == "billing"
        [message] = pgque.receive(session, orders, "billing")
        batch = pgque.batch_info(session, message.batch_id)
        assert isinstance(batch, BatchInfo) and batch.consumer_name == "billing"
        assert pgque.batch_info(session, 999_999) is None
        rows = pgque.status(session)
        assert all(isinstance(r, StatusRow) for r in rows)
        assert rows[1] == StatusRow("pgque", "info", pgque.version(session))
        assert pgque.ticker(session) == 0  # nothing due right after a tick
        assert pgque.maint(session) == 0
        assert pgque.maint_rotate_tables_step2(session) == 0


def test_unsubscribe(sessions: sessionmaker[Session], orders: str) -> None:
    with sessions.begin() as session:
        assert pgque.unsubscribe(session, orders, "billing") == 1
        assert pgque.unsubscribe(session, orders, "billing") == 0


def test_calls_work_on_a_core_connection(engine: Engine) -> None:
    with engine.begin() as connection:
        pgque.create_queue(connection, "core")
        pgque.subscribe(connection, "core", "c")
        pgque.send(connection, "core", {"via": "connection"})
    with engine.begin() as connection:
        pgque.tick(connection, "core")
    with engine.begin() as connection:
        [message] = pgque.receive(connection, "core", "c")
        assert message.payload == {"via": "connection"}


@pytest.mark.parametrize(
    ("call", "error", "sqlstate"),
    [
        (lambda s: pgque.send(s, "nope", "x"), errors.QueueNotFound, "PQ001"),
        (lambda s: pgque.receive(s, "orders", "ghost"), errors.ConsumerNotFound, "PQ002"),
        (lambda s: pgque.receive(s, "orders", "billing", 0), errors.InvalidArgument, "PQ010"),
        (lambda s: pgque.dlq_replay(s, 12345), errors.DeadLetterNotFound, "PQ004"),
        (lambda s: pgque.create_queue(s, "x" * 58), errors.InvalidArgument, "PQ010"),
        (lambda s: pgque.drop_queue(s, "orders"), errors.QueueStateError, "PQ020"),
        (lambda s: pgque.set_queue_config(s, "orders", "bogus", 1), errors.InvalidArgument, "PQ010"),
    ],
)
def test_errors_are_typed_and_chained(
    sessions: sessionmaker[Session], orders: str, call: object, error: type[errors.PgqueError], sqlstate: str
) -> None:
    with sessions() as session:
        assert callable(call)
        with pytest.raises(error) as caught:
            call(session)
        assert caught.value.sqlstate == sqlstate
        assert caught.value.__cause__ is not None
        assert getattr(caught.value.__cause__, "orig", None) is not None
        session.rollback()
        assert pgque.queue_info(session, orders)  # the session is usable again after rollback


def test_nack_of_a_finished_batch_is_batch_not_found(sessions: sessionmaker[Session], orders: str) -> None:
    deliver(sessions, "x")
    with sessions.begin() as session:
        [message] = pgque.receive(session, orders, "billing")
        pgque.ack(session, message.batch_id)
    with sessions() as session, pytest.raises(errors.BatchNotFound, match=f"batch not found: {message.batch_id}"):
        pgque.nack(session, message)


def test_missing_engine_is_reported(empty_db: Database) -> None:
    with Session(empty_db.engine()) as session, pytest.raises(errors.EngineNotInstalled):
        pgque.send(session, "q", "x")


def test_message_composite_reads_back_as_a_message(sessions: sessionmaker[Session], orders: str) -> None:
    deliver(sessions, {"quote": 'he said "hi", (twice)'}, "back\\slash", type="odd,type")
    with sessions.begin() as session:
        expected = pgque.receive(session, orders, "billing")
        receive = pgque.functions.receive(orders, "billing")
        got = session.scalars(select(receive)).all()
    assert got == expected


def test_send_batch_keeps_every_payload_exactly(sessions: sessionmaker[Session], orders: str) -> None:
    texts = ['quo"te', "back\\slash", "ünïcødé ✓ 𝄞", "", None, "{not json", "tab\tnew\nline", "null"]
    documents = [{"nested": {"x": [1, None, "y"]}}, None, [1, 2], 3.5, True, {"s": 'quo"te\\'}]
    with sessions.begin() as session:
        text_ids = pgque.send_batch(session, orders, texts)
        json_ids = pgque.send_batch(session, orders, documents, type="j")
    with sessions.begin() as session:
        pgque.tick(session, orders)
    with sessions.begin() as session:
        got = {m.msg_id: m for m in pgque.receive(session, orders, "billing")}
    assert [got[i].payload_text for i in text_ids] == texts
    assert [got[i].payload for i in json_ids] == documents
    assert got[json_ids[1]].payload_text is None  # None is SQL NULL, not JSON null
