"""Installing the engine: Alembic round trip, the SQL files and how they are loaded."""

from __future__ import annotations

import re

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sa_pgque import migrate
from sa_pgque._sqlfiles import execute_script, sql_step
from tests._pg import Database, Sql, error_text
from tests.engine._helpers import snapshot, tick

STEPS = ["pgque_0001", "pgque_0002", "pgque_0002_down_guard", "pgque_0002_down"]


def head_revision() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    return head


def all_scripts() -> list[tuple[str, str]]:
    return [(f"{step}/{f.name}", f.read_text(encoding="utf-8")) for step in STEPS for f in sql_step(step)]


def test_upgrade_downgrade_upgrade_round_trip(empty_db: Database) -> None:
    engine = empty_db.engine()
    assert migrate.current(engine) is None
    migrate.install(engine)
    assert migrate.current(engine) == head_revision()
    sql = empty_db.sql()
    sql.exec("select pgque.create_queue('q')")
    migrate.uninstall(engine)
    assert migrate.current(engine) is None
    assert sql.one("select count(*) from pg_namespace where nspname = 'pgque'") == 0
    migrate.install(engine)
    assert sql.one("select pgque.create_queue('q')") == 1


COOPERATIVE = (
    "register_subconsumer",
    "subscribe_subconsumer",
    "unregister_subconsumer",
    "unsubscribe_subconsumer",
    "receive_coop",
    "touch_subconsumer",
    "_validate_coop_names",
    "_clear_member_cursor",
)


def cooperative_functions(sql: Sql) -> list[str]:
    """The revision-0002 routines present, by signature (next_batch* only in their cooperative arity)."""
    return sql.col(
        "select p.oid::regprocedure::text from pg_proc p"
        " where p.pronamespace = 'pgque'::regnamespace"
        "   and (p.proname = any(%s) or (p.proname, p.pronargs) in (('next_batch', 4), ('next_batch_custom', 7)))"
        " order by 1",
        list(COOPERATIVE),
    )


def test_revision_0002_upgrades_live_data_and_downgrades(empty_db: Database) -> None:
    engine = empty_db.engine()
    migrate.upgrade(engine, "pgque_0001")
    assert migrate.current(engine) == "pgque_0001"
    sql = empty_db.sql()
    assert cooperative_functions(sql) == []
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.subscribe('q', 'plain')")
    sql.exec("update pgque.queue set queue_max_retries = 0")
    sql.exec("select pgque.send('q', 'kind', 'dead')")
    sql.exec("select pgque.send('q', 'kind', 'retry')")
    tick(sql, "q")
    [dead, retry] = sql.rows("select * from pgque.receive('q', 'c')")
    sql.exec("select pgque.nack(%s, %s::pgque.message)", dead[1], dead[0:10])
    sql.exec("update pgque.queue set queue_max_retries = null")
    sql.exec("select pgque.nack(%s, %s::pgque.message)", retry[1], retry[0:10])
    sql.exec("select pgque.ack(%s)", dead[1])
    pending = sql.one("select pgque.send('q', 'kind', 'pending')")
    tick(sql, "q")
    before = snapshot(sql)
    assert before["retry_queue"] and before["dead_letter"]

    migrate.upgrade(engine, "pgque_0002")
    assert migrate.current(engine) == "pgque_0002"
    assert snapshot(sql) == before
    assert len(cooperative_functions(sql)) == len(COOPERATIVE) + 2
    # the existing consumer becomes a cooperative group and goes on from its cursor
    assert sql.one("select pgque.register_subconsumer('q', 'c', 's1', true)") == 1
    assert [r[0] for r in sql.rows("select * from pgque.receive_coop('q', 'c', 's1')")] == [pending]
    assert [r[3] for r in sql.rows("select * from pgque.receive('q', 'plain')")] == ["dead", "retry"]

    # refused while a member exists: nothing changes, the revision stays
    during = snapshot(sql)
    with pytest.raises(DBAPIError) as refused:
        migrate.downgrade(engine, "pgque_0001")
    assert isinstance(refused.value.orig, psycopg.Error)
    assert refused.value.orig.sqlstate == "PQ030"
    assert error_text(refused.value.orig) == (
        "cannot downgrade below pgque_0002: 1 cooperative subconsumer(s) still registered (e.g. q/c.s1);"
        " unregister them first with pgque.unregister_subconsumer"
    )
    assert migrate.current(engine) == "pgque_0002"
    assert snapshot(sql) == during

    assert sql.one("select pgque.unregister_subconsumer('q', 'c', 's1', 1)") == 1
    migrate.downgrade(engine, "pgque_0001")
    assert migrate.current(engine) == "pgque_0001"
    assert cooperative_functions(sql) == []
    assert sql.col("select co_name from pgque.consumer order by 1") == ["c", "plain"]
    assert sql.col("select sub_role from pgque.subscription") == ["normal", "normal"]
    assert sql.one("select count(*) from pgque.dead_letter") == 1
    # the member's window went to the retry queue (owned by c), next to the older retry
    assert sorted(sql.col("select ev_data from pgque.retry_queue")) == ["pending", "retry"]

    migrate.upgrade(engine)
    assert migrate.current(engine) == head_revision()
    assert sql.one("select pgque.subscribe_subconsumer('q', 'c', 's1', true)") == 1
    # a full uninstall is not held up by live cooperative groups
    migrate.uninstall(engine)
    assert migrate.current(engine) is None
    assert sql.one("select count(*) from pg_namespace where nspname = 'pgque'") == 0


def test_install_joins_the_callers_transaction(empty_db: Database) -> None:
    engine = empty_db.engine()
    with engine.connect() as connection:
        migrate.install(connection)
        assert connection.execute(text("select pgque.create_queue('q')")).scalar() == 1
        connection.rollback()
    assert migrate.current(engine) is None
    assert empty_db.sql().one("select count(*) from pg_namespace where nspname = 'pgque'") == 0


def test_scripts_reach_the_server_verbatim(db: Database) -> None:
    """No bind-parameter or placeholder processing: ':word' and '%' survive."""
    body = "select ':word' || ' %s %% %(name)s ' || $x$:other$x$"
    script = (
        f"create function public.verbatim() returns text language sql as $f$ {body} $f$;\n"
        "create table public.after_it (x int);\n"
    )
    with db.engine().begin() as connection:
        execute_script(connection, script)
    sql = db.sql()
    assert sql.one("select public.verbatim()") == ":word %s %% %(name)s :other"
    assert sql.one("select to_regclass('public.after_it') is not null")


def raise_statements(script: str) -> list[str]:
    """Every ``raise exception ...;`` statement, up to the semicolon outside quotes."""
    statements = []
    for match in re.finditer(r"raise\s+exception\b", script, flags=re.I):
        quoted = False
        for end in range(match.end(), len(script)):
            if script[end] == "'":
                quoted = not quoted
            elif script[end] == ";" and not quoted:
                statements.append(script[match.start() : end])
                break
    return statements


@pytest.mark.parametrize(("name", "script"), all_scripts(), ids=[name for name, _ in all_scripts()])
def test_every_raised_error_has_a_stable_sqlstate(name: str, script: str) -> None:
    statements = raise_statements(script)
    assert len(statements) == len(re.findall(r"raise\s+exception\b", script, flags=re.I))
    missing = [s.splitlines()[0] for s in statements if not re.search(r"errcode\s*=\s*'[0-9A-Z]{5}'", s)]
    assert missing == []


@pytest.mark.parametrize(("name", "script"), all_scripts(), ids=[name for name, _ in all_scripts()])
def test_every_function_has_a_header_comment(name: str, script: str) -> None:
    """Each function opens with a comment naming it; overloads may share their first one's."""
    previous = None
    for match in re.finditer(r"^create or replace (?:function|procedure) (pgque\.\w+)", script, flags=re.M):
        function = match.group(1)
        above = script[: match.start()].rstrip("\n").splitlines()
        header = []
        for line in reversed(above):
            if not line.startswith("--"):
                break
            header.append(line)
        documented = f"{function}(" in "\n".join(header)
        shares_overload_header = not header and function == previous
        assert documented or shares_overload_header, f"{name}: {function} has no header comment"
        previous = function


def test_sql_files_ship_in_order_and_are_utf8() -> None:
    for step in STEPS:
        names = [f.name for f in sql_step(step)]
        assert names == sorted(names)
        assert all(re.match(r"\d\d_[a-z_]+\.sql$", n) for n in names), names
