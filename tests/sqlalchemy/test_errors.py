"""Error mapping: every SQLSTATE the engine raises, and PgQue's texts under P0001."""

from __future__ import annotations

import re

import pytest

from sa_pgque import errors
from sa_pgque._sqlfiles import sql_step
from sa_pgque.migrate import alembic_config


def engine_sqlstates() -> set[str]:
    from alembic.script import ScriptDirectory

    steps = [rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    codes: set[str] = set()
    for step in steps:
        for script in sql_step(step):
            codes |= set(re.findall(r"errcode\s*=\s*'([0-9A-Z]{5})'", script.read_text(encoding="utf-8")))
    return codes


def test_every_sqlstate_the_engine_raises_has_an_exception_class() -> None:
    codes = engine_sqlstates()
    assert codes, "expected the engine to declare SQLSTATEs"
    unmapped = {code for code in codes if errors.error_class(code, "x") in (None, errors.PgqueError)}
    assert unmapped == set()


# Messages exactly as PgQue raises them (SQLSTATE P0001), per the engine's error catalogue.
PGQUE_MESSAGES = [
    ("queue not found: orders", errors.QueueNotFound),
    ("Event queue not created yet", errors.QueueNotFound),
    ("No such event queue", errors.QueueNotFound),
    ("no such queue", errors.QueueNotFound),
    ("Not subscriber to queue: orders/billing", errors.ConsumerNotFound),
    ("consumer not registered", errors.ConsumerNotFound),
    ("cooperative subconsumer not found: q/c/s", errors.ConsumerNotFound),
    ("batch not found: 17", errors.BatchNotFound),
    ("msg_id 5 not found in batch 17", errors.BatchNotFound),
    ("event not found", errors.BatchNotFound),
    ("dead letter entry not found: 3", errors.DeadLetterNotFound),
    ("Invalid NULL value", errors.InvalidArgument),
    ("pgque.receive: max_return must be >= 1, got 0", errors.InvalidArgument),
    ('cannot change parameter "boguss"', errors.InvalidArgument),
    ("Insert into queue disallowed", errors.QueueStateError),
    ("Ticker has been paused for this queue", errors.QueueStateError),
    ("cannot drop queue, consumers still attached", errors.QueueStateError),
    ("consumer c on queue q is already a normal consumer; explicit conversion is required", errors.NotCooperative),
    (
        "consumer c on queue q is a cooperative main consumer; use cooperative receive/next_batch with a subconsumer",
        errors.NotCooperative,
    ),
    ("cannot unregister active cooperative subconsumer q/c/s without batch_handling = 1", errors.ActiveBatch),
    ("cannot unregister cooperative main consumer with registered subconsumers", errors.ActiveBatch),
    ("PgQ corruption: Consumer c on queue q does not see tick 5", errors.EngineStateError),
    ("pg_cron extension is not installed. PgQue itself works without pg_cron, ...", errors.SchedulerUnavailable),
    ("Trigger needs queue name", errors.TriggerError),
    ("something else entirely", errors.PgqueError),
]


@pytest.mark.parametrize(("message", "cls"), PGQUE_MESSAGES)
def test_pgque_texts_map_like_pgques_own_clients(message: str, cls: type[errors.PgqueError]) -> None:
    assert errors.error_class("P0001", message) is cls


def test_non_queue_errors_are_left_alone() -> None:
    assert errors.error_class("23505", "duplicate key value") is None
    assert errors.error_class("42883", "function public.f() does not exist") is None
    assert errors.error_class("42883", "function pgque.send(unknown) does not exist") is errors.EngineNotInstalled
    assert errors.error_class(None, "connection refused") is None
    original = RuntimeError("not a database error")
    assert errors.translate(original) is original


def test_invalid_argument_is_also_a_value_error() -> None:
    assert issubclass(errors.InvalidArgument, ValueError)
    assert all(issubclass(cls, errors.PgqueError) for _, cls in PGQUE_MESSAGES)
