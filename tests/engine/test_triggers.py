"""Change-capture triggers: pgque.jsontriga, pgque.logutriga, pgque.sqltriga (spec 6.9).

Events are read straight from the queue's event tables; no ticks or consumers
are involved.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from sa_pgque._sqlfiles import read_script
from tests._pg import Sql, error_text

FUNCS = ("jsontriga", "logutriga", "sqltriga")

Event = tuple[Any, ...]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL identifier, always quoted."""
    return '"' + name.replace('"', '""') + '"'


def urlenc(value: str) -> str:
    """Reference URL encoding of spec 6.9 (unreserved: A-Z a-z 0-9 _ . -)."""
    out = []
    for ch in value:
        if ch.isascii() and (ch.isalnum() or ch in "_.-"):
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append("".join(f"%{b:02x}" for b in ch.encode()))
    return "".join(out)


def add_trigger(
    sql: Sql,
    table: str,
    func: str,
    *args: str,
    timing: str = "after",
    events: str = "insert or update or delete",
    level: str = "row",
    name: str | None = None,
    queue: str = "q",
) -> None:
    """Attach ``pgque.<func>(queue, *args)`` to ``table`` (a SQL table reference)."""
    arglist = ", ".join(lit(a) for a in (queue, *args))
    sql.exec(
        f"create trigger {name or 'cap_' + func} {timing} {events} on {table} "
        f"for each {level} execute function pgque.{func}({arglist})"
    )


def events(sql: Sql, queue: str = "q") -> list[Event]:
    """(ev_type, ev_data, ev_extra1..4) of every event of ``queue``, by ev_id."""
    qid = int(sql.one("select queue_id from pgque.queue where queue_name = %s", queue))
    return sql.rows(
        f"select ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4 from pgque.event_{qid} order by ev_id"
    )


def data(sql: Sql, queue: str = "q") -> list[Any]:
    return [ev[1] for ev in events(sql, queue)]


def types(sql: Sql, queue: str = "q") -> list[Any]:
    return [ev[0] for ev in events(sql, queue)]


def expect_error(sql: Sql, message: str, query: str) -> None:
    """``query`` fails with SQLSTATE PQ060 and exactly ``message``."""
    with pytest.raises(psycopg.Error) as caught:
        sql.exec(query)
    assert caught.value.sqlstate == "PQ060"
    assert error_text(caught.value) == message


@pytest.fixture
def q(sql: Sql) -> Sql:
    """The test connection, with queue ``q`` and table ``public.t1(id pk, name, flag)``."""
    sql.exec("set timezone = 'UTC'")
    assert sql.one("select pgque.create_queue('q')") == 1
    sql.exec("create table public.t1 (id integer primary key, name text, flag boolean)")
    return sql


# ---------------------------------------------------------------------------
# the three formats
# ---------------------------------------------------------------------------

JSON_TYPE = '{{"op":"{op}","table":["public","t1"],"pkey":["id"]}}'


def test_worked_example(q: Sql) -> None:
    for func in FUNCS:
        add_trigger(q, "public.t1", func)
    q.exec("insert into public.t1 values (1, 'a b&c', true)")
    got = {ev[0]: ev for ev in events(q)}
    assert got == {
        JSON_TYPE.format(op="INSERT"): (
            JSON_TYPE.format(op="INSERT"),
            '{"id":1,"name":"a b&c","flag":true}',
            "public.t1",
            None,
            None,
            None,
        ),
        "I:id": ("I:id", "id=1&name=a+b%26c&flag=t", "public.t1", None, None, None),
        "I": ("I", "(id,name,flag) values ('1','a b&c','t')", "public.t1", None, None, None),
    }


def test_jsontriga_update_delete(q: Sql) -> None:
    add_trigger(q, "public.t1", "jsontriga")
    q.exec("insert into public.t1 values (1, 'a', true), (2, null, null)")
    q.exec("update public.t1 set name = 'b' where id = 1")
    q.exec("delete from public.t1 where id = 2")
    assert [ev[:2] for ev in events(q)] == [
        (JSON_TYPE.format(op="INSERT"), '{"id":1,"name":"a","flag":true}'),
        (JSON_TYPE.format(op="INSERT"), '{"id":2,"name":null,"flag":null}'),
        (JSON_TYPE.format(op="UPDATE"), '{"id":1,"name":"b","flag":true}'),
        (JSON_TYPE.format(op="DELETE"), '{"id":2,"name":null,"flag":null}'),
    ]


def test_logutriga_update_delete(q: Sql) -> None:
    add_trigger(q, "public.t1", "logutriga")
    q.exec("insert into public.t1 values (1, '', false), (2, null, null)")
    q.exec("update public.t1 set name = 'x y' where id = 1")
    q.exec("delete from public.t1 where id = 2")
    assert [ev[:2] for ev in events(q)] == [
        ("I:id", "id=1&name=&flag=f"),
        ("I:id", "id=2&name&flag"),
        ("U:id", "id=1&name=x+y&flag=f"),
        ("D:id", "id=2&name&flag"),
    ]


def test_sqltriga_update_delete(q: Sql) -> None:
    add_trigger(q, "public.t1", "sqltriga")
    q.exec("insert into public.t1 values (1, 'it''s', true), (2, null, null)")
    q.exec("update public.t1 set name = 'b', flag = null where id = 1")
    q.exec("update public.t1 set name = null where id = 1")
    q.exec("update public.t1 set name = null where id = 1")  # changes nothing
    q.exec("delete from public.t1 where id = 2")
    assert [ev[:2] for ev in events(q)] == [
        ("I", "(id,name,flag) values ('1','it''s','t')"),
        ("I", "(id,name,flag) values ('2',null,null)"),
        ("U", "name='b',flag=null where id='1'"),
        ("U", "name=null where id='1'"),
        ("U", "id='1' where id='1'"),
        ("D", "id='2'"),
    ]


def test_sqltriga_composite_and_null_key(q: Sql) -> None:
    q.exec("create table public.k2 (a integer, b text, v text, primary key (b, a))")
    add_trigger(q, "public.k2", "sqltriga")
    q.exec("insert into public.k2 values (1, 'x', 'v')")
    q.exec("update public.k2 set v = 'w'")
    q.exec("delete from public.k2")
    # key columns in table column order, whatever the order in the constraint
    assert types(q) == ["I", "U", "D"]
    assert data(q)[1:] == ["v='w' where a='1' and b='x'", "a='1' and b='x'"]

    q.exec("create table public.nk (id integer, v text)")
    add_trigger(q, "public.nk", "sqltriga", "pkey=id", name="nk_a_sql")
    add_trigger(q, "public.nk", "logutriga", "pkey=id", name="nk_b_log")
    q.exec("insert into public.nk values (null, 'a')")
    q.exec("update public.nk set v = 'b'")
    q.exec("delete from public.nk")
    assert [ev[:2] for ev in events(q)][3:] == [
        ("I", "(id,v) values (null,'a')"),
        ("I:id", "id&v=a"),
        ("U", "v='b' where id is null"),
        ("U:id", "id&v=b"),
        ("D", "id is null"),
        ("D:id", "id&v=b"),
    ]


def test_sqltriga_literals(q: Sql) -> None:
    add_trigger(q, "public.t1", "sqltriga")
    q.exec("insert into public.t1 values (1, E'back\\\\slash ''q'' ;--', false)")
    (ev,) = events(q)
    assert ev[1] == "(id,name,flag) values ('1',E'back\\\\slash ''q'' ;--','f')"
    # the fragment is valid SQL that reproduces the row
    q.exec("create table public.t1_copy (like public.t1)")
    q.exec(f"insert into public.t1_copy {ev[1]}")
    assert q.rows("table public.t1_copy") == q.rows("table public.t1")


@pytest.mark.parametrize(
    ("func", "ev_type", "ev_data"),
    [
        ("jsontriga", JSON_TYPE.format(op="TRUNCATE"), "{}"),
        ("logutriga", "R", ""),
        ("sqltriga", "R", ""),
    ],
)
def test_truncate(q: Sql, func: str, ev_type: str, ev_data: str) -> None:
    add_trigger(q, "public.t1", func, events="truncate", level="statement")
    q.exec("insert into public.t1 values (1, 'a', true)")
    q.exec("truncate public.t1")
    assert events(q) == [(ev_type, ev_data, "public.t1", None, None, None)]
    assert q.one("select count(*) from public.t1") == 0


# ---------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("skip", ["SKIP", "skip"])
def test_skip_in_before_trigger(q: Sql, skip: str) -> None:
    add_trigger(q, "public.t1", "logutriga", skip, timing="before")
    q.exec("insert into public.t1 values (1, 'a', true)")
    assert q.one("select count(*) from public.t1") == 0
    assert data(q) == ["id=1&name=a&flag=t"]

    # with the change suppressed, UPDATE and DELETE still queue their events
    q.exec("alter table public.t1 disable trigger cap_logutriga")
    q.exec("insert into public.t1 values (2, 'b', false)")
    q.exec("alter table public.t1 enable trigger cap_logutriga")
    q.exec("update public.t1 set name = 'c'")
    q.exec("delete from public.t1")
    assert q.rows("select * from public.t1") == [(2, "b", False)]
    assert data(q) == ["id=1&name=a&flag=t", "id=2&name=c&flag=f", "id=2&name=b&flag=f"]


def test_before_trigger_without_skip_keeps_the_change(q: Sql) -> None:
    for func in FUNCS:
        add_trigger(q, "public.t1", func, timing="before")
    q.exec("insert into public.t1 values (1, 'a', true)")
    q.exec("update public.t1 set name = 'b'")
    assert q.rows("select * from public.t1") == [(1, "b", True)]
    q.exec("delete from public.t1")
    assert q.one("select count(*) from public.t1") == 0
    assert len(events(q)) == 9


def test_backup(q: Sql) -> None:
    for func in FUNCS:
        add_trigger(q, "public.t1", func, "backup")
    q.exec("insert into public.t1 values (1, 'a', true)")
    q.exec("update public.t1 set name = 'b'")
    q.exec("delete from public.t1")
    evs = events(q)
    # only UPDATE carries the old row
    assert [ev[3] for ev in evs[:3] + evs[6:]] == [None] * 6
    assert {ev[0]: (ev[1], ev[3]) for ev in evs[3:6]} == {
        JSON_TYPE.format(op="UPDATE"): (
            '{"id":1,"name":"b","flag":true}',
            '{"id":1,"name":"a","flag":true}',
        ),
        "U:id": ("id=1&name=b&flag=t", "id=1&name=a&flag=t"),
        "U": ("name='b' where id='1'", "(id,name,flag) values ('1','a','t')"),
    }


@pytest.mark.parametrize("func", FUNCS)
def test_deny(q: Sql, func: str) -> None:
    q.exec("insert into public.t1 values (1, 'a', true)")
    add_trigger(q, "public.t1", func, "deny", events="insert or update or delete")
    add_trigger(q, "public.t1", func, "deny", events="truncate", level="statement", name="tr")
    msg = "Table 'public.t1' to queue 'q': change not allowed ({})"
    expect_error(q, msg.format("INSERT"), "insert into public.t1 values (2, 'b', true)")
    expect_error(q, msg.format("UPDATE"), "update public.t1 set name = 'x'")
    expect_error(q, msg.format("DELETE"), "delete from public.t1")
    expect_error(q, msg.format("TRUNCATE"), "truncate public.t1")
    assert q.rows("select * from public.t1") == [(1, "a", True)]
    assert events(q) == []


def test_ignore(q: Sql) -> None:
    q.exec("alter table public.t1 add column note text, add column seen timestamptz")
    for func in FUNCS:
        add_trigger(q, "public.t1", func, "ignore=note,seen")
    q.exec("insert into public.t1 values (1, 'a', true, 'n', now())")
    q.exec("update public.t1 set note = 'm', seen = now() + interval '1 second'")  # ignored only
    assert len(events(q)) == 3
    q.exec("update public.t1 set note = 'n'")  # ignored only
    q.exec("update public.t1 set name = name")  # changes nothing: still reported
    q.exec("update public.t1 set name = 'b', note = 'o'")  # a real change
    assert [ev[:2] for ev in events(q)] == [
        (JSON_TYPE.format(op="INSERT"), '{"id":1,"name":"a","flag":true}'),
        ("I:id", "id=1&name=a&flag=t"),
        ("I", "(id,name,flag) values ('1','a','t')"),
        (JSON_TYPE.format(op="UPDATE"), '{"id":1,"name":"a","flag":true}'),
        ("U:id", "id=1&name=a&flag=t"),
        ("U", "id='1' where id='1'"),
        (JSON_TYPE.format(op="UPDATE"), '{"id":1,"name":"b","flag":true}'),
        ("U:id", "id=1&name=b&flag=t"),
        ("U", "name='b' where id='1'"),
    ]


def test_ignore_repeated_arguments(q: Sql) -> None:
    add_trigger(q, "public.t1", "logutriga", "ignore=name", "ignore=flag")
    q.exec("insert into public.t1 values (1, 'a', true)")
    q.exec("update public.t1 set flag = false, name = 'b'")
    assert data(q) == ["id=1"]


def test_pkey_argument(q: Sql) -> None:
    q.exec("create table public.nk (a integer, b text, v text)")
    for func in FUNCS:
        add_trigger(q, "public.nk", func, "pkey=b,a")
    q.exec("insert into public.nk values (1, 'x', 'v')")
    q.exec("update public.nk set v = 'w'")
    q.exec("delete from public.nk")
    nk_type = '{{"op":"{}","table":["public","nk"],"pkey":["b","a"]}}'
    assert [ev[:2] for ev in events(q)] == [
        (nk_type.format("INSERT"), '{"a":1,"b":"x","v":"v"}'),
        ("I:b,a", "a=1&b=x&v=v"),
        ("I", "(a,b,v) values ('1','x','v')"),
        (nk_type.format("UPDATE"), '{"a":1,"b":"x","v":"w"}'),
        ("U:b,a", "a=1&b=x&v=w"),
        ("U", "v='w' where b='x' and a='1'"),
        (nk_type.format("DELETE"), '{"a":1,"b":"x","v":"w"}'),
        ("D:b,a", "a=1&b=x&v=w"),
        ("D", "b='x' and a='1'"),
    ]


def test_pkey_argument_overrides_primary_key(q: Sql) -> None:
    add_trigger(q, "public.t1", "sqltriga", "pkey=name")
    q.exec("insert into public.t1 values (1, 'a', true)")
    q.exec("update public.t1 set id = 2")  # allowed: id is not the key here
    expect_error(q, "primary key update not allowed", "update public.t1 set name = 'b'")
    assert data(q) == ["(id,name,flag) values ('1','a','t')", "id='2' where name='a'"]


def test_pkey_argument_unknown_column(q: Sql) -> None:
    add_trigger(q, "public.t1", "jsontriga", "pkey=nope")
    expect_error(q, "bad argument: pkey=nope", "insert into public.t1 values (1, 'a', true)")


def test_expression_arguments(q: Sql) -> None:
    add_trigger(
        q,
        "public.t1",
        "logutriga",
        "ev_type='my.' || name",
        "ev_extra1=upper(name)",
        "ev_extra2=id * 10",
        "ev_extra3=t1.flag",
        "ev_extra4=case when flag then 'yes' end",
    )
    q.exec("insert into public.t1 values (1, 'a', true), (2, 'b', false)")
    q.exec("delete from public.t1 where id = 2")  # DELETE: expressions see OLD
    assert events(q) == [
        ("my.a", "id=1&name=a&flag=t", "A", "10", "true", "yes"),
        ("my.b", "id=2&name=b&flag=f", "B", "20", "false", None),
        ("my.b", "id=2&name=b&flag=f", "B", "20", "false", None),
    ]


def test_expression_over_truncate(q: Sql) -> None:
    add_trigger(
        q,
        "public.t1",
        "sqltriga",
        "ev_extra1='app.t1'",
        "ev_extra2=name",
        events="truncate",
        level="statement",
    )
    q.exec("truncate public.t1")
    assert events(q) == [("R", "", "app.t1", None, None, None)]


def test_when(q: Sql) -> None:
    for func in FUNCS:
        add_trigger(q, "public.t1", func, "when=flag and id > 1")
    q.exec("insert into public.t1 values (1, 'a', true), (2, 'b', true), (3, 'c', false)")
    q.exec("insert into public.t1 values (4, 'd', null)")  # NULL: not emitted
    q.exec("update public.t1 set flag = not flag")  # 1 and 3 now match
    q.exec("delete from public.t1 where id in (2, 3)")  # DELETE tests OLD: 3 matches
    assert [ev[:2] for ev in events(q) if ev[0] in ("I", "U", "D")] == [
        ("I", "(id,name,flag) values ('2','b','t')"),
        ("U", "flag='t' where id='3'"),
        ("D", "id='3'"),
    ]
    assert len(events(q)) == 9


def test_pgq_ev_columns(q: Sql) -> None:
    q.exec(
        "create table public.routed (id integer primary key, v text, _pgq_ev_type text,"
        " _pgq_ev_extra1 text, _pgq_ev_extra2 text, _pgq_ev_extra3 text, _pgq_ev_extra4 text)"
    )
    for func in FUNCS:
        add_trigger(q, "public.routed", func)
    q.exec("insert into public.routed values (1, 'a', 'T', 'E1', 'E2', 'E3', 'E4')")
    q.exec("update public.routed set v = 'b', _pgq_ev_type = 'T2'")
    assert events(q) == [
        ("T", '{"id":1,"v":"a"}', "E1", "E2", "E3", "E4"),
        ("T", "id=1&v=a", "E1", "E2", "E3", "E4"),
        ("T", "(id,v) values ('1','a')", "E1", "E2", "E3", "E4"),
        ("T2", '{"id":1,"v":"b"}', "E1", "E2", "E3", "E4"),
        ("T2", "id=1&v=b", "E1", "E2", "E3", "E4"),
        ("T2", "v='b' where id='1'", "E1", "E2", "E3", "E4"),
    ]


def test_pgq_ev_columns_lose_to_arguments(q: Sql) -> None:
    q.exec("create table public.routed (id integer primary key, _pgq_ev_type text, _pgq_ev_extra2 text)")
    add_trigger(q, "public.routed", "logutriga", "ev_type='arg'")
    q.exec("insert into public.routed values (1, 'col', 'x2')")
    assert events(q) == [("arg", "id=1", "public.routed", "x2", None, None)]


# ---------------------------------------------------------------------------
# errors and special cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("func", FUNCS)
def test_table_without_pkey(q: Sql, func: str) -> None:
    q.exec("create table public.nk (a integer, b text)")
    add_trigger(q, "public.nk", func)
    q.exec("insert into public.nk values (1, 'x')")
    expect_error(q, "Update/Delete on table without pkey", "update public.nk set b = 'y'")
    expect_error(q, "Update/Delete on table without pkey", "delete from public.nk")
    assert types(q) == [
        {
            "jsontriga": '{"op":"INSERT","table":["public","nk"],"pkey":[]}',
            "logutriga": "I:",
            "sqltriga": "I",
        }[func]
    ]


@pytest.mark.parametrize("func", FUNCS)
def test_primary_key_update(q: Sql, func: str) -> None:
    add_trigger(q, "public.t1", func)
    q.exec("insert into public.t1 values (1, 'a', true)")
    expect_error(q, "primary key update not allowed", "update public.t1 set id = 2")
    q.exec("update public.t1 set id = 1")  # same value: fine
    assert q.rows("select id from public.t1") == [(1,)]
    assert len(events(q)) == 2


@pytest.mark.parametrize("func", FUNCS)
def test_trigger_needs_queue_name(q: Sql, func: str) -> None:
    q.exec(f"create trigger t after insert on public.t1 for each row execute function pgque.{func}()")
    expect_error(q, "Trigger needs queue name", "insert into public.t1 values (1, 'a', true)")


@pytest.mark.parametrize("arg", ["bogus", "Backup", "SKIP=1", "ignore", "ev_extra5=1", "ev_type", "ev_type=", "when="])
def test_bad_argument(q: Sql, arg: str) -> None:
    add_trigger(q, "public.t1", "jsontriga", "backup", arg)
    expect_error(q, f"bad argument: {arg}", "insert into public.t1 values (1, 'a', true)")


@pytest.mark.parametrize("func", FUNCS)
def test_statement_level_dml_not_supported(q: Sql, func: str) -> None:
    add_trigger(q, "public.t1", func, events="insert or update", level="statement")
    expect_error(q, "TG_OP not supported: INSERT", "insert into public.t1 values (1, 'a', true)")


def test_unknown_queue(q: Sql) -> None:
    add_trigger(q, "public.t1", "jsontriga", queue="nope")
    with pytest.raises(psycopg.Error) as caught:
        q.exec("insert into public.t1 values (1, 'a', true)")
    assert error_text(caught.value) == "queue not found: nope"


def test_replication_role_local(q: Sql) -> None:
    for func in FUNCS:
        add_trigger(q, "public.t1", func, "SKIP", "deny", timing="before")
    q.exec("set session_replication_role = 'local'")
    q.exec("insert into public.t1 values (1, 'a', true)")
    q.exec("update public.t1 set name = 'b'")
    assert q.rows("select * from public.t1") == [(1, "b", True)]
    q.exec("delete from public.t1")
    assert q.one("select count(*) from public.t1") == 0
    assert events(q) == []
    q.exec("set session_replication_role = 'origin'")
    expect_error(
        q,
        "Table 'public.t1' to queue 'q': change not allowed (INSERT)",
        "insert into public.t1 values (1, 'a', true)",
    )


def test_rolled_back_change_queues_nothing(q: Sql) -> None:
    add_trigger(q, "public.t1", "jsontriga")
    with pytest.raises(psycopg.errors.DivisionByZero), q.transaction():
        q.exec("insert into public.t1 values (1, 'a', true)")
        q.exec("select 1 / 0")
    assert events(q) == []


# ---------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------


def test_jsontriga_value_types(q: Sql) -> None:
    q.exec(
        "create table public.ty (id int8 primary key, a int2, b int4, c boolean, d date,"
        " ts timestamp, tz timestamptz, n numeric, t text, j jsonb, arr integer[],"
        " nul integer, f float8, ch char(3), ip inet)"
    )
    add_trigger(q, "public.ty", "jsontriga")
    q.exec(
        "insert into public.ty values (9000000000, -2, 3, false, '2024-02-29',"
        " '2024-02-29 10:11:12.5', '2024-02-29 10:11:12+02', 1.50, 'x\"y\\z',"
        " '{\"k\": [1]}', '{1,2}', null, 1.5, 'a', '10.0.0.1')"
    )
    assert data(q) == [
        '{"id":9000000000,"a":-2,"b":3,"c":false,"d":"2024-02-29",'
        '"ts":"2024-02-29T10:11:12.5","tz":"2024-02-29T08:11:12+00:00",'
        '"n":"1.50","t":"x\\"y\\\\z","j":"{\\"k\\": [1]}","arr":"{1,2}",'
        '"nul":null,"f":"1.5","ch":"a  ","ip":"10.0.0.1"}'
    ]


def test_logutriga_url_encoding(q: Sql) -> None:
    value = "a-b_c.d~e f/g?h=i&j+k%l;m:n'o\"p\té€😀ü\\"
    q.exec(f"create table public.{ident('na me&x')} (id integer primary key, {ident('v=1')} text)")
    add_trigger(q, ident("na me&x"), "logutriga")
    q.exec(f"insert into public.{ident('na me&x')} values (1, {lit(value)})")
    (ev,) = events(q)
    assert ev[1] == f"id=1&v%3d1={urlenc(value)}"
    assert ev[1] == (
        "id=1&v%3d1=a-b_c.d%7ee+f%2fg%3fh%3di%26j%2bk%25l%3bm%3an%27o%22p%09%c3%a9%e2%82%ac%f0%9f%98%80%c3%bc%5c"
    )
    assert q.one("select pgque._urlencode(%s)", value) == urlenc(value)
    assert q.one("select pgque._urlencode('')") == ""
    assert q.one("select pgque._urlencode(null)") is None


def test_hostile_names(q: Sql) -> None:
    schema, table = 'Sch "x";y', 'T a;b"c'
    pk, col, mixed = "I d", 'Na"me;', "MiXed"
    fq = f"{ident(schema)}.{ident(table)}"
    q.exec(f"create schema {ident(schema)}")
    q.exec(f"create table {fq} ({ident(pk)} integer primary key, {ident(col)} text, {ident(mixed)} text)")
    for func in FUNCS:
        add_trigger(
            q,
            fq,
            func,
            f"ev_extra2={ident(col)} || '!'",
            f"ev_extra3={ident(table)}.{ident(mixed)}",
            f"when={ident(pk)} > 0",
            f"ignore={mixed}",
        )
    q.exec(f"insert into {fq} values (1, 'v', 'w'), (-1, 'skip', 'me')")
    q.exec(f"update {fq} set {ident(col)} = 'z'")
    q.exec(f"delete from {fq}")

    extra1 = '"Sch ""x"";y"."T a;b""c"'
    jtype = '{{"op":"{}","table":["Sch \\"x\\";y","T a;b\\"c"],"pkey":["I d"]}}'
    assert events(q) == [
        (jtype.format("INSERT"), '{"I d":1,"Na\\"me;":"v"}', extra1, "v!", "w", None),
        ("I:I d", "I+d=1&Na%22me%3b=v", extra1, "v!", "w", None),
        ("I", '("I d","Na""me;") values (\'1\',\'v\')', extra1, "v!", "w", None),
        (jtype.format("UPDATE"), '{"I d":1,"Na\\"me;":"z"}', extra1, "z!", "w", None),
        ("U:I d", "I+d=1&Na%22me%3b=z", extra1, "z!", "w", None),
        ("U", '"Na""me;"=\'z\' where "I d"=\'1\'', extra1, "z!", "w", None),
        (jtype.format("DELETE"), '{"I d":1,"Na\\"me;":"z"}', extra1, "z!", "w", None),
        ("D:I d", "I+d=1&Na%22me%3b=z", extra1, "z!", "w", None),
        ("D", "\"I d\"='1'", extra1, "z!", "w", None),
    ]
    add_trigger(q, fq, "sqltriga", "deny", timing="before", events="insert", name="d")
    expect_error(
        q,
        f"Table '{extra1}' to queue 'q': change not allowed (INSERT)",
        f"insert into {fq} values (2, 'a', 'b')",
    )


def test_writer_role_fires_triggers(q: Sql) -> None:
    role = f"pgque_trig_w_{uuid.uuid4().hex[:12]}"
    for func in FUNCS:
        add_trigger(q, "public.t1", func, "backup")
    add_trigger(q, "public.t1", "logutriga", events="truncate", level="statement", name="tr")
    q.exec(f"create role {role} login")
    try:
        q.exec(f"grant pgque_writer to {role}")
        q.exec(f"grant select, insert, update, delete, truncate on public.t1 to {role}")
        q.exec(f"set role {role}")
        q.exec("insert into public.t1 values (1, 'a', true)")
        q.exec("update public.t1 set name = 'b'")
        q.exec("delete from public.t1")
        q.exec("truncate public.t1")
        q.exec("reset role")
        assert types(q) == [
            JSON_TYPE.format(op="INSERT"),
            "I:id",
            "I",
            JSON_TYPE.format(op="UPDATE"),
            "U:id",
            "U",
            JSON_TYPE.format(op="DELETE"),
            "D:id",
            "D",
            "R",
        ]
    finally:
        q.exec("reset role")
        q.exec(f"drop owned by {role}")
        q.exec(f"drop role {role}")


def test_file_can_be_reapplied(q: Sql) -> None:
    add_trigger(q, "public.t1", "logutriga")
    q.exec(read_script("pgque_0001", "85_triggers.sql"))
    q.exec("insert into public.t1 values (1, 'a', true)")
    assert data(q) == ["id=1&name=a&flag=t"]
