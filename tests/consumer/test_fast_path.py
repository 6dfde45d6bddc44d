"""The Consumer's psycopg hot path (receive/ack on the driver connection) matches the API path."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from sa_pgque import Consumer, Message
from sa_pgque.consumer import _FILL_MESSAGE_DICT, _messages
from sa_pgque.errors import ConsumerNotFound, QueueNotFound
from tests.consumer.conftest import send


def test_messages_built_from_rows_equal_constructed_ones() -> None:
    assert _FILL_MESSAGE_DICT  # the fast construction is in use for the current Message
    rows = [
        (
            1,
            7,
            "job",
            '{"a": [1, 2]}',
            None,
            datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc),
            None,
            "x",
            None,
            "z",
        ),
        (2, 7, None, "not json", 3, datetime(2026, 1, 2, tzinfo=timezone.utc), None, None, None, None),
    ]
    fast = _messages(rows)
    plain = [Message(*row) for row in rows]
    assert fast == plain
    assert [hash(m) for m in fast] == [hash(m) for m in plain]
    assert [repr(m) for m in fast] == [repr(m) for m in plain]
    assert [dataclasses.astuple(m) for m in fast] == [dataclasses.astuple(m) for m in plain]
    assert fast[0].payload == {"a": [1, 2]} and fast[0].is_json
    assert fast[1].payload == "not json" and not fast[1].is_json
    assert pickle.loads(pickle.dumps(fast[0])) == plain[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast[0].msg_id = 5  # type: ignore[misc]


def test_consumer_messages_equal_the_api_receive(sessions: sessionmaker[Session], queue: str) -> None:
    with sessions.begin() as session:
        pgque.subscribe(session, queue, "api")
    received: list[Message] = []
    worker = Consumer(sessions, queue=queue, name="worker")

    @worker.default_handler
    def record(message: Message, session: Session) -> None:
        received.append(message)

    worker.run_once()  # subscribes
    send(sessions, queue, '{"n": 1}', "plain text", "")
    with sessions.begin() as session:  # an extra field and a retry count, to see every column travel
        session.execute(text("update pgque.event_1_0 set ev_extra2 = 'e2', ev_retry = 2 where ev_data = 'plain text'"))
    assert worker.run_once().count == 3
    with sessions.begin() as session:
        expected = pgque.receive(session, queue, "api")

    def without_batch(message: Message) -> tuple[object, ...]:
        return dataclasses.astuple(dataclasses.replace(message, batch_id=0))

    assert [without_batch(m) for m in received] == [without_batch(m) for m in expected]
    assert [m.created_at.tzinfo for m in received] == [m.created_at.tzinfo for m in expected]
    assert received[1].retry_count == 2 and received[1].extra2 == "e2"


def test_receive_errors_are_translated_as_on_the_api_path(sessions: sessionmaker[Session], queue: str) -> None:
    missing_queue = Consumer(sessions, queue="no_such_queue", name="worker", subscribe=False)
    missing_queue.default_handler(lambda message, session: None)
    with pytest.raises((QueueNotFound, ConsumerNotFound)) as raised:
        missing_queue.run_once()
    with sessions.begin() as session, pytest.raises(type(raised.value)) as from_api:
        pgque.receive(session, "no_such_queue", "worker")
    assert str(raised.value) == str(from_api.value)
    assert type(raised.value.__cause__) is type(from_api.value.__cause__)  # the SQLAlchemy wrapper of the driver error

    not_subscribed = Consumer(sessions, queue=queue, name="stranger", subscribe=False)
    not_subscribed.default_handler(lambda message, session: None)
    with pytest.raises(ConsumerNotFound):
        not_subscribed.run_once()
