"""Producing: send, send_batch, insert_event, current_event_table."""

from __future__ import annotations

import psycopg
import pytest

from tests._pg import Sql
from tests.engine._helpers import event_rows, queue_id, raises, snapshot


@pytest.fixture(autouse=True)
def _queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")


def test_jsonb_payload_is_stored_in_canonical_form(sql: Sql) -> None:
    ev_id = sql.one("select pgque.send('q', '{\"order_id\": 42, \"total\": 99.95}'::jsonb)")
    assert event_rows(sql, "q") == [(ev_id, "default", '{"total": 99.95, "order_id": 42}', None, None)]


def test_text_payload_is_stored_verbatim(sql: Sql) -> None:
    odd = '  {"not": "parsed",, } \t%s :name $1 \\x '
    sql.exec("select pgque.send('q', %s::text)", odd)
    sql.exec("select pgque.send('q', 'typed', %s::text)", odd)
    assert [(r[1], r[2]) for r in event_rows(sql, "q")] == [("default", odd), ("typed", odd)]


def test_untyped_literal_resolves_to_the_text_overload(sql: Sql) -> None:
    sql.exec("select pgque.send('q', 'not json at all')")
    assert event_rows(sql, "q")[0][2] == "not json at all"


def test_invalid_json_fails_before_anything_is_written(sql: Sql) -> None:
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        sql.exec("select pgque.send('q', %s::jsonb)", "{broken")
    assert event_rows(sql, "q") == []


def test_null_payload_and_type(sql: Sql) -> None:
    sql.exec("select pgque.send('q', null::text, null::text)")
    sql.exec("select pgque.send('q', null::jsonb)")
    assert [(r[1], r[2]) for r in event_rows(sql, "q")] == [(None, None), ("default", None)]


def test_named_arguments(sql: Sql) -> None:
    sql.exec("select pgque.send(queue_name := 'q', type_name := 't', payload := 'p'::text)")
    sql.exec("select pgque.send_batch(queue_name := 'q', payloads := array['a', 'b'])")
    assert [(r[1], r[2]) for r in event_rows(sql, "q")] == [("t", "p"), ("default", "a"), ("default", "b")]


def test_event_carries_time_and_transaction(sql: Sql) -> None:
    with sql.transaction():
        ev_id = sql.one("select pgque.send('q', 'x')")
        now, txid = sql.row("select now(), pg_current_xact_id()::text")
    qid = queue_id(sql, "q")
    assert sql.row(f"select ev_time, ev_txid::text from pgque.event_{qid} where ev_id = %s", ev_id) == (now, txid)


def test_send_batch_returns_ids_aligned_with_input(sql: Sql) -> None:
    payloads = [f"p{i}" for i in range(500)]
    ids = sql.one("select pgque.send_batch('q', 'bulk', %s::text[])", payloads)
    assert ids == sorted(ids) and len(set(ids)) == 500
    stored = {r[0]: r[2] for r in event_rows(sql, "q")}
    assert [stored[i] for i in ids] == payloads
    assert sql.one(f"select count(distinct ev_time) from pgque.event_{queue_id(sql, 'q')}") == 1


def test_send_batch_jsonb_forms(sql: Sql) -> None:
    ids = sql.one("select pgque.send_batch('q', 'j', array['{\"b\":1,\"a\":2}'::jsonb, null, '[1, 2]'::jsonb])")
    ids2 = sql.one("select pgque.send_batch('q', array['{\"k\":true}'::jsonb])")
    stored = {r[0]: (r[1], r[2]) for r in event_rows(sql, "q")}
    assert [stored[i] for i in ids + ids2] == [
        ("j", '{"a": 2, "b": 1}'),
        ("j", None),
        ("j", "[1, 2]"),
        ("default", '{"k": true}'),
    ]


def test_send_batch_empty_and_null(sql: Sql) -> None:
    assert sql.one("select pgque.send_batch('q', '{}'::text[])") == []
    assert sql.one("select pgque.send_batch('no such queue', 't', '{}'::jsonb[])") == []
    raises(sql, "payloads must not be null", "select pgque.send_batch('q', null::text[])", sqlstate="PQ010")
    raises(sql, "payloads must not be null", "select pgque.send_batch('q', 't', null::jsonb[])", sqlstate="PQ010")
    assert event_rows(sql, "q") == []


def test_unknown_queue(sql: Sql) -> None:
    before = snapshot(sql)
    raises(sql, "queue not found: nope", "select pgque.send('nope', 'x')", sqlstate="PQ001")
    raises(sql, "queue not found: nope", "select pgque.send('nope', 't', '{}'::jsonb)", sqlstate="PQ001")
    raises(sql, "queue not found: nope", "select pgque.send_batch('nope', array['x'])", sqlstate="PQ001")
    raises(sql, "queue not found: nope", "select pgque.insert_event('nope', 't', 'x')", sqlstate="PQ001")
    raises(sql, "queue not found: <NULL>", "select pgque.send(null, 'x')", sqlstate="PQ001")
    assert snapshot(sql) == before


def test_disabled_queue_refuses_inserts_except_for_replicas(sql: Sql) -> None:
    sql.exec("update pgque.queue set queue_disable_insert = true")
    raises(sql, "Insert into queue disallowed", "select pgque.send('q', 'x')", sqlstate="PQ020")
    raises(sql, "Insert into queue disallowed", "select pgque.send_batch('q', array['x'])", sqlstate="PQ020")
    raises(sql, "Writing to queue disabled", "select pgque.current_event_table('q')", sqlstate="PQ020")
    assert event_rows(sql, "q") == []
    sql.exec("set session_replication_role = replica")
    sql.exec("select pgque.send('q', 'x')")
    sql.exec("select pgque.send_batch('q', array['y'])")
    sql.exec("set session_replication_role = origin")
    assert [r[2] for r in event_rows(sql, "q")] == ["x", "y"]


def test_insert_event_with_extras(sql: Sql) -> None:
    sql.exec("select pgque.insert_event('q', 't', 'd', 'e1', 'e2', 'e3', 'e4')")
    sql.exec("select pgque.insert_event('q', 't', 'd')")
    qid = queue_id(sql, "q")
    assert sql.rows(f"select ev_extra1, ev_extra2, ev_extra3, ev_extra4 from pgque.event_{qid} order by ev_id") == [
        ("e1", "e2", "e3", "e4"),
        (None, None, None, None),
    ]


def test_current_event_table(sql: Sql) -> None:
    qid = queue_id(sql, "q")
    assert sql.one("select pgque.current_event_table('q')") == f"pgque.event_{qid}_0"
    raises(sql, "Event queue not found", "select pgque.current_event_table('nope')", sqlstate="PQ001")


def test_rolled_back_send_leaves_only_a_gap(sql: Sql) -> None:
    with pytest.raises(RuntimeError), sql.transaction():
        sql.exec("select pgque.send('q', 'lost')")
        raise RuntimeError("abort")
    kept = sql.one("select pgque.send('q', 'kept')")
    assert [(r[0], r[2]) for r in event_rows(sql, "q")] == [(kept, "kept")]
