"""insert_event's generated static INSERTs (30_publish.sql, _build_insert_event).

insert_event (7-argument) is written out by _build_insert_event with one
prepared INSERT per child table of each queue (through group functions
_insert_event_g<n> beyond 64 queues). These tests check that the cached plans
never send an event to the wrong table: across rotations while a session
holds them, for queues created or dropped after a session compiled the
function, for a name dropped and created again, for queues the generated code
does not know (they go through insert_event_raw), with many queues, and after
a reinstall over queues created by an engine without the generated code.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from sa_pgque._sqlfiles import execute_script
from tests._pg import Database, Sql
from tests.engine._helpers import drain, queue_id, raises, tick
from tests.engine._spec_catalog import install_scripts
from tests.engine.test_roles import Roles

GROUPS = (
    "select p.proname from pg_proc p where p.pronamespace = 'pgque'::regnamespace"
    " and p.proname ~ '^_insert_event_g[0-9]+$' order by 1"
)

INSERT_EVENT_7 = "pgque.insert_event(text, text, text, text, text, text, text)"

OLD_INSERT_EVENT = """
create or replace function pgque.insert_event(
    queue_name text, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_raw(queue_name, null, now(), null, null,
                                  ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);
end;
$$
"""
"""insert_event as it was before the generated code (every insert through EXECUTE)."""


def rotate(sql: Sql, queue: str) -> None:
    """Rotation step 1 then step 2, each in its own transaction (the queue has no consumer, so it always switches)."""
    sql.exec("update pgque.queue set queue_switch_time = now() - interval '3 hours' where queue_name = %s", queue)
    sql.exec("select pgque.maint_rotate_tables_step1(%s)", queue)
    sql.exec("select pgque.maint_rotate_tables_step2()")


def cur_table(sql: Sql, queue: str) -> int:
    return int(sql.one("select queue_cur_table from pgque.queue where queue_name = %s", queue))


def placed(sql: Sql, queue: str, ev_id: int) -> str:
    """The child table holding event ``ev_id`` of ``queue``."""
    return str(
        sql.one(f"select tableoid::regclass::text from pgque.event_{queue_id(sql, queue)} where ev_id = %s", ev_id)
    )


def generated_for(sql: Sql, queue: str) -> bool:
    """Whether the generated code holds the INSERTs of ``queue`` (in insert_event or a group function)."""
    table = f"pgque.event_{queue_id(sql, queue)}_0 "
    return bool(
        sql.one(
            "select bool_or(strpos(p.prosrc, %s) > 0) from pg_proc p"
            " where p.pronamespace = 'pgque'::regnamespace"
            "   and (p.oid = %s::regprocedure or p.proname ~ '^_insert_event_g[0-9]+$')",
            table,
            INSERT_EVENT_7,
        )
    )


def insert_all_ways(sql: Sql, queue: str, data: str) -> list[int]:
    """insert_event (3- and 7-argument), send and insert_event_raw; the ids."""
    return [
        int(sql.one("select pgque.insert_event(%s, 't', %s)", queue, data)),
        int(sql.one("select pgque.insert_event(%s, 't', %s, 'e1', null, null, 'e4')", queue, data)),
        int(sql.one("select pgque.send(%s, %s::text)", queue, data)),
        int(
            sql.one(
                "select pgque.insert_event_raw(%s, null, now(), null, null, 't', %s, null, null, null, null)",
                queue,
                data,
            )
        ),
    ]


def test_generated_code_covers_the_queues(sql: Sql) -> None:
    assert sql.one("select pgque.create_queue('q')") == 1
    assert generated_for(sql, "q")
    assert sql.one("select pgque.create_queue('q')") == 0  # exists: nothing regenerated, still covered
    assert generated_for(sql, "q")
    ids = insert_all_ways(sql, "q", "x")
    qid = queue_id(sql, "q")
    assert {placed(sql, "q", i) for i in ids} == {f"pgque.event_{qid}_0"}
    assert sql.rows(
        f"select ev_id, ev_type, ev_data, ev_extra1, ev_extra4, ev_owner, ev_retry from pgque.event_{qid}"
        " order by ev_id"
    ) == [
        (ids[0], "t", "x", None, None, None, None),
        (ids[1], "t", "x", "e1", "e4", None, None),
        (ids[2], "default", "x", None, None, None, None),
        (ids[3], "t", "x", None, None, None, None),
    ]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_rotation_while_another_session_holds_cached_plans(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    producer = db.sql()
    qid = queue_id(sql, "q")
    sent: list[int] = []
    for round_no in range(5):  # children 0, 1, 2, 0 (truncated first), 1
        current = cur_table(sql, "q")
        assert current == round_no % 3
        ids = insert_all_ways(producer, "q", f"r{round_no}")
        assert {placed(sql, "q", i) for i in ids} == {f"pgque.event_{qid}_{current}"}
        sent += ids
        tick(sql, "q")
        assert [r[0] for r in drain(sql, "q", "c")] == ids  # every event delivered, in id order
        sql.exec("select pgque.unsubscribe('q', 'c')")  # so that step 1 may switch at once
        rotate(sql, "q")
        tick(sql, "q")  # step 1 may have deleted every tick (other sessions of the server hold xmin back)
        sql.exec("select pgque.subscribe('q', 'c')")
        assert cur_table(sql, "q") == (round_no + 1) % 3
    assert len(set(sent)) == len(sent)


def test_rotation_inside_an_open_producer_transaction(db: Database, sql: Sql) -> None:
    """READ COMMITTED: each insert_event reads queue_cur_table anew, like the dynamic INSERT did."""
    sql.exec("select pgque.create_queue('q')")
    qid = queue_id(sql, "q")
    producer = db.sql()
    insert_all_ways(producer, "q", "warm")  # plans cached for child 0
    with producer.transaction():
        first = int(producer.one("select pgque.insert_event('q', 't', 'before')"))
        rotate(sql, "q")  # child 1 is free: the producer holds only child 0
        second = int(producer.one("select pgque.insert_event('q', 't', 'after')"))
    assert placed(sql, "q", first) == f"pgque.event_{qid}_0"
    assert placed(sql, "q", second) == f"pgque.event_{qid}_1"


def test_queue_created_and_dropped_after_a_session_compiled_insert_event(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('a')")
    producer = db.sql()
    producer.exec("select pgque.insert_event('a', 't', 'x')")  # compiled without queue b
    sql.exec("select pgque.create_queue('b')")
    assert generated_for(sql, "b")
    ev = int(producer.one("select pgque.insert_event('b', 't', 'y')"))
    assert placed(sql, "b", ev) == f"pgque.event_{queue_id(sql, 'b')}_0"
    sql.exec("select pgque.drop_queue('a')")
    raises(producer, "queue not found: a", "select pgque.insert_event('a', 't', 'x')", sqlstate="PQ001")
    producer.exec("select pgque.insert_event('b', 't', 'z')")
    assert sql.col(f"select ev_data from pgque.event_{queue_id(sql, 'b')} order by ev_id") == ["y", "z"]


def test_drop_and_create_the_same_name_in_one_session(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    old = queue_id(sql, "q")
    insert_all_ways(sql, "q", "old")
    sql.exec("select pgque.drop_queue('q')")
    sql.exec("select pgque.create_queue('q')")
    new = queue_id(sql, "q")
    assert new != old
    ids = insert_all_ways(sql, "q", "new")
    assert {placed(sql, "q", i) for i in ids} == {f"pgque.event_{new}_0"}
    assert sql.one("select to_regclass(%s)", f"pgque.event_{old}") is None
    # and all of it in one transaction
    with sql.transaction():
        sql.exec("select pgque.drop_queue('q')")
        sql.exec("select pgque.create_queue('q')")
        ev = int(sql.one("select pgque.insert_event('q', 't', 'same tx')"))
        sql.exec("select pgque.drop_queue('q')")
        sql.exec("select pgque.create_queue('q')")
        ev2 = int(sql.one("select pgque.insert_event('q', 't', 'same tx again')"))
    last = queue_id(sql, "q")
    assert last == new + 2
    assert ev2 == 1 and ev == 1  # fresh sequences
    assert sql.col(f"select ev_data from pgque.event_{last}") == ["same tx again"]


def test_queue_the_generated_code_does_not_know_goes_through_insert_event_raw(db: Database, sql: Sql) -> None:
    """A create_queue in REPEATABLE READ does not see a queue committed after its snapshot."""
    creator = db.sql()
    with creator.transaction():
        creator.exec("set transaction isolation level repeatable read")
        creator.one("select count(*) from pgque.queue")  # the snapshot
        sql.exec("select pgque.create_queue('unseen')")
        creator.exec("select pgque.create_queue('later')")
    assert generated_for(sql, "later")
    assert not generated_for(sql, "unseen")  # the later regeneration did not see it
    ids = insert_all_ways(sql, "unseen", "x")
    qid = queue_id(sql, "unseen")
    assert {placed(sql, "unseen", i) for i in ids} == {f"pgque.event_{qid}_0"}
    sql.exec("update pgque.queue set queue_disable_insert = true where queue_name = 'unseen'")
    before = sql.one(f"select last_value from pgque.event_{qid}_id_seq")
    raises(sql, "Insert into queue disallowed", "select pgque.insert_event('unseen', 't', 'x')", sqlstate="PQ020")
    assert sql.one(f"select last_value from pgque.event_{qid}_id_seq") == before + 1  # drawn before refusing
    sql.exec("select pgque.create_queue('next')")  # any regeneration picks it up
    assert generated_for(sql, "unseen")


def test_disabled_queue_draws_an_id_before_refusing(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    qid = queue_id(sql, "q")
    first = int(sql.one("select pgque.insert_event('q', 't', 'x')"))
    sql.exec("update pgque.queue set queue_disable_insert = true")
    raises(sql, "Insert into queue disallowed", "select pgque.insert_event('q', 't', 'x')", sqlstate="PQ020")
    raises(
        sql,
        "Insert into queue disallowed",
        "select pgque.insert_event('q', 't', 'x', null, null, null, null)",
        sqlstate="PQ020",
    )
    sql.exec("set session_replication_role = replica")
    replica = int(sql.one("select pgque.insert_event('q', 't', 'replica')"))
    sql.exec("set session_replication_role = origin")
    assert replica == first + 3
    assert sql.col(f"select ev_data from pgque.event_{qid} order by ev_id") == ["x", "replica"]


def test_many_queues_go_through_group_functions(sql: Sql) -> None:
    names = [f"q{i} 'x\"; drop table y; --" for i in range(70)]
    for name in names:
        sql.exec("select pgque.create_queue(%s)", name)
    assert sql.col(GROUPS) == ["_insert_event_g0", "_insert_event_g1"]
    for name in names:
        assert generated_for(sql, name)
        ev = int(sql.one("select pgque.insert_event(%s, 't', %s)", name, name))
        assert placed(sql, name, ev) == f"pgque.event_{queue_id(sql, name)}_0"
        assert sql.one(f"select ev_data from pgque.event_{queue_id(sql, name)} where ev_id = %s", ev) == name
    nobody_else = sql.col(
        "select p.proname from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
        " where p.proname ~ '^_insert_event_g[0-9]+$' and a.grantee <> p.proowner"
    )
    assert nobody_else == []
    # queue ids 65..70 are group 1: dropping them drops that group; at 64 queues all is inline again
    for name in names[64:]:
        sql.exec("select pgque.drop_queue(%s)", name)
    assert sql.col(GROUPS) == []
    assert all(generated_for(sql, name) for name in names[:64])
    sql.exec("select pgque.drop_queue(%s)", names[0])
    for name in names[1:64]:
        ev = int(sql.one("select pgque.insert_event(%s, 't', 'again')", name))
        assert placed(sql, name, ev) == f"pgque.event_{queue_id(sql, name)}_0"


def test_concurrent_create_queue_calls_serialize(db: Database, sql: Sql) -> None:
    """Two sessions regenerating insert_event never collide; the second sees the first's queue."""
    first = db.sql()
    errors: list[BaseException] = []
    with first.transaction():
        first.exec("select pgque.create_queue('one')")

        def second() -> None:
            try:
                db.sql().exec("select pgque.create_queue('two')")
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second create_queue should wait for the first transaction"
    thread.join(30)
    assert errors == []
    assert generated_for(sql, "one") and generated_for(sql, "two")
    for name in ("one", "two"):
        ev = int(sql.one("select pgque.insert_event(%s, 't', 'x')", name))
        assert placed(sql, name, ev) == f"pgque.event_{queue_id(sql, name)}_0"


def test_reinstall_covers_queues_created_before_the_generated_code(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('old')")
    sql.exec(OLD_INSERT_EVENT)
    sql.exec("select pgque.send('old', 'before')")
    assert not generated_for(sql, "old")
    with db.engine().begin() as connection:
        for script in install_scripts():
            execute_script(connection, script)
    assert generated_for(sql, "old")
    sql.exec("select pgque.send('old', 'after')")
    assert sql.col(f"select ev_data from pgque.event_{queue_id(sql, 'old')} order by ev_id") == ["before", "after"]


@pytest.mark.parametrize("role", ["writer", "admin"])
def test_api_roles_insert_through_the_generated_code(db: Database, sql: Sql, role: str) -> None:
    sql.exec("select pgque.create_queue('q')")
    roles = Roles(db)
    try:
        session = roles.session(roles.make(f"pgque_{role}"))
        ev = int(session.one("select pgque.insert_event('q', 't', 'x')"))
        assert placed(sql, "q", ev) == f"pgque.event_{queue_id(sql, 'q')}_0"
        ev = int(session.one("select pgque.send('q', 'y')"))
        assert placed(sql, "q", ev) == f"pgque.event_{queue_id(sql, 'q')}_0"
        for helper in ("pgque._build_insert_event()", "pgque._insert_event_code(1, 's', 'pgque', 'x', 3)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.exec(f"select {helper}")
    finally:
        roles.cleanup()
