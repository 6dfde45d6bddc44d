"""Offline: every construct is registered under func.pgque and compiles to pgque.<name>(...)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, column, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.compiler import SQLCompiler

from sa_pgque import functions as F
from sa_pgque.results import Message
from sa_pgque.types import MessageType

DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]

CONSTRUCTS = sorted(F.__all__)


def compiled(statement: Any) -> SQLCompiler:
    return statement.compile(dialect=DIALECT)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", CONSTRUCTS)
def test_func_pgque_resolves_to_the_typed_class_and_renders_qualified(name: str) -> None:
    cls = getattr(F, name)
    construct = getattr(func.pgque, name)()
    assert type(construct) is cls
    sql = str(compiled(select(construct)))
    assert f"pgque.{name}()" in sql
    assert construct.type._type_affinity is cls.type._type_affinity


@pytest.mark.parametrize("name", [n for n in CONSTRUCTS if issubclass(getattr(F, n), F.SetReturningFunction)])
def test_set_returning_constructs_are_table_valued_with_typed_columns(name: str) -> None:
    construct = getattr(func.pgque, name)()
    rows = construct.table_valued()
    expected = construct.columns_for_call()
    assert [c.name for c in rows.c] == [n for n, _ in expected]
    assert [type(c.type) for c in rows.c] == [type(t) for _, t in expected]
    assert f"FROM pgque.{name}() AS anon_1" in str(compiled(select(rows)))


def test_return_types() -> None:
    assert isinstance(func.pgque.send("q", "x").type, BigInteger)
    assert isinstance(func.pgque.send_batch("q", ["x"]).type, ARRAY)
    assert isinstance(func.pgque.ack(1).type, Integer)
    assert isinstance(func.pgque.receive("q", "c").type, MessageType)


def test_text_payload_goes_to_the_text_overload() -> None:
    c = compiled(select(func.pgque.send("q", "t", "hello")))
    assert "JSONB" not in str(c)
    assert list(c.params.values()) == ["q", "t", "hello"]


@pytest.mark.parametrize("payload", [{"a": 1}, [1, 2], 42, 1.5, True])
def test_json_values_go_to_the_jsonb_overload(payload: object) -> None:
    c = compiled(select(func.pgque.send("q", payload)))
    assert "AS JSONB)" in str(c)
    import json

    assert json.dumps(payload) in c.params.values()


def test_null_payload_is_a_typed_null() -> None:
    assert "CAST(NULL AS TEXT)" in str(compiled(select(func.pgque.send("q", None))))


def test_expression_payload_keeps_its_own_type() -> None:
    doc = column("doc", postgresql.JSONB)
    assert re.search(r"pgque\.send\(%\(\w+\)s::VARCHAR, doc\)", str(compiled(select(func.pgque.send("q", doc)))))


def test_batches_pick_text_or_jsonb_arrays() -> None:
    text_batch = compiled(select(func.pgque.send_batch("q", ["a", None, 'quo"te'])))
    assert "jsonb_array_elements_text(" in str(text_batch) and "AS TEXT[]" in str(text_batch)
    assert '["a", null, "quo\\"te"]' in text_batch.params.values()
    json_batch = compiled(select(func.pgque.send_batch("q", "t", [{"a": 1}, None, [2]])))
    assert "jsonb_array_elements(" in str(json_batch) and "AS JSONB[]" in str(json_batch)
    assert '[{"a": 1},null,[2]]' in json_batch.params.values()


@pytest.mark.parametrize("bad", [["a", {"b": 1}], "abc", [object()], [{"x": object()}]])
def test_ambiguous_or_unserializable_batches_are_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        func.pgque.send_batch("q", bad)


def test_bad_payload_type_is_refused() -> None:
    with pytest.raises(TypeError, match="a payload must be str, a JSON value or None, not bytes"):
        func.pgque.send("q", b"raw")


def test_bigint_interval_and_timestamptz_arguments() -> None:
    sql = str(compiled(select(func.pgque.ack(5))))
    assert "pgque.ack(%(param_1)s::BIGINT)" in sql
    nack = str(compiled(select(func.pgque.nack(5, column("m"), "60 seconds", None))))
    assert "CAST(%(param_2)s::VARCHAR AS INTERVAL)" in nack
    coop = compiled(select(func.pgque.receive_coop("q", "c", "s", None, timedelta(seconds=30)).table_valued()))
    assert "::INTERVAL" in str(coop)
    assert timedelta(seconds=30) in coop.params.values()
    tick = str(compiled(select(func.pgque.ticker("q", 10, datetime.now(timezone.utc), 20))))
    assert "::BIGINT, %(param_2)s::TIMESTAMP WITH TIME ZONE, %(param_3)s::BIGINT" in tick
    # receive's max_return is an integer parameter: a Python int stays INTEGER
    assert re.search(r"::VARCHAR, %\(\w+\)s::INTEGER\)", str(compiled(select(func.pgque.receive("q", "c", 10)))))


def test_cooperative_next_batch_custom_has_three_columns() -> None:
    seven = func.pgque.next_batch_custom("q", "c", "s", None, None, None, None).table_valued()
    five = func.pgque.next_batch_custom("q", "c", None, None, None).table_valued()
    assert [c.name for c in seven.c] == ["batch_id", "prev_tick_id", "next_tick_id"]
    assert len(five.c) == 7
    assert "CAST(NULL AS INTERVAL), NULL, CAST(NULL AS INTERVAL), CAST(NULL AS INTERVAL)" in str(
        compiled(select(seven))
    )


def test_a_message_binds_as_a_typed_row() -> None:
    message = Message(7, 3, "t", '{"a": 1}', None, datetime(2026, 1, 1, tzinfo=timezone.utc))
    c = compiled(select(func.pgque.nack(3, message)))
    assert "CAST((%(param_2)s::BIGINT, %(param_3)s::BIGINT, %(param_4)s::VARCHAR" in str(c)
    assert "AS pgque.message)" in str(c)
    assert list(c.params.values())[:4] == [3, 7, 3, "t"]


def test_constructs_are_cacheable() -> None:
    first = select(func.pgque.send("q", {"a": 1}))
    second = select(func.pgque.send("other", {"b": 2}))
    assert first._generate_cache_key() == second._generate_cache_key()
