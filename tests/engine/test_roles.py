"""Roles and privileges (spec section 5 and the "Install and catalog" checklist).

Roles are cluster-wide, so every login role made here has a unique name and is
dropped in a ``finally``; changes to the shared ``pgque_*`` roles are only made
inside a transaction that is rolled back, so no other session ever sees them.
Calls are made with ``SET ROLE`` on connections opened by the superuser.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from psycopg import sql as pgsql

import sa_pgque
from sa_pgque._sqlfiles import execute_script
from tests._pg import Database, Sql, error_text
from tests.engine._spec_catalog import (
    EVENT_ID_SEQ_PRIVILEGES,
    EVENT_TABLE_PRIVILEGES,
    ROLES,
    SCHEMA_PRIVILEGES,
    SEQUENCE_PRIVILEGES,
    SEQUENCE_PRIVS,
    SPEC_FUNCTIONS,
    TABLE_PRIVILEGES,
    TABLE_PRIVS,
    TICK_SEQ_PRIVILEGES,
    Fn,
    can_execute,
    install_scripts,
)

API_ROLES = ("pgque_reader", "pgque_writer", "pgque_admin")

# Internal helpers outside the spec that a non-admin API role may execute,
# with the reason. 85_triggers.sql: a trigger runs with the rights of the role
# doing the DML (a pgque_writer), which must be able to call the capture helper.
HELPERS_FOR_WRITER = {"_trig_capture"}


def unique_role() -> str:
    return f"sa_pgque_role_{uuid.uuid4().hex[:16]}"


class Roles:
    """Throwaway login roles and ``SET ROLE`` connections, all cleaned up."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.created: list[str] = []
        self.conns: list[psycopg.Connection[Any]] = []

    def make(self, member_of: str | None, **options: bool) -> str:
        name = unique_role()
        extra = " ".join(("" if on else "no") + opt for opt, on in options.items())
        with self.db.server.admin() as admin:
            admin.execute(pgsql.SQL("create role {} login " + extra).format(pgsql.Identifier(name)))
            self.created.append(name)
            if member_of is not None:
                admin.execute(pgsql.SQL("grant {} to {}").format(pgsql.Identifier(member_of), pgsql.Identifier(name)))
        return name

    def session(self, role: str) -> Sql:
        """An autocommit connection to the test database acting as ``role``."""
        conn = psycopg.connect(self.db.conninfo, autocommit=True)
        self.conns.append(conn)
        conn.execute(pgsql.SQL("set role {}").format(pgsql.Identifier(role)))
        return Sql(conn)

    def cleanup(self) -> None:
        for conn in self.conns:
            with suppress(Exception):
                conn.close()
        if not self.created:
            return
        with psycopg.connect(self.db.conninfo, autocommit=True) as conn:
            for name in self.created:
                with suppress(psycopg.Error):
                    conn.execute(pgsql.SQL("drop owned by {}").format(pgsql.Identifier(name)))
        with self.db.server.admin() as admin:
            for name in self.created:
                admin.execute(pgsql.SQL("drop role if exists {}").format(pgsql.Identifier(name)))


@pytest.fixture
def roles(db: Database) -> Iterator[Roles]:
    made = Roles(db)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def as_role(roles: Roles) -> Callable[[str], Sql]:
    """``as_role("reader")`` -> a session of a fresh login role holding only pgque_reader
    (``"plain"``: no grant at all; ``"admin"``, ``"writer"`` likewise)."""
    sessions: dict[str, Sql] = {}

    def get(kind: str) -> Sql:
        if kind not in sessions:
            member_of = None if kind == "plain" else f"pgque_{kind}"
            sessions[kind] = roles.session(roles.make(member_of))
        return sessions[kind]

    return get


def denied(session: Sql, query: str, *params: Any) -> str:
    """Run ``query`` expecting SQLSTATE 42501; return the message."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        session.exec(query, *params)
    assert caught.value.sqlstate == "42501"
    return error_text(caught.value)


# ---------------------------------------------------------------------------
# 5.1 roles
# ---------------------------------------------------------------------------


def test_roles_exist(sql: Sql) -> None:
    assert sorted(sql.col("select rolname from pg_roles where rolname = any(%s)", list(API_ROLES))) == sorted(API_ROLES)


def test_admin_inherits_reader_and_writer_which_are_siblings(sql: Sql) -> None:
    def has(member: str, role: str, mode: str) -> bool:
        return bool(sql.one("select pg_has_role(%s, %s, %s)", member, role, mode))

    # member *and* inheriting the privileges (USAGE)
    assert has("pgque_admin", "pgque_reader", "USAGE")
    assert has("pgque_admin", "pgque_writer", "USAGE")
    assert not has("pgque_writer", "pgque_reader", "MEMBER")
    assert not has("pgque_reader", "pgque_writer", "MEMBER")
    assert not has("pgque_reader", "pgque_admin", "MEMBER")
    assert not has("pgque_writer", "pgque_admin", "MEMBER")


def test_install_revokes_writer_membership_in_reader(db: Database) -> None:
    """5.1: an older install made writer a member of reader; re-installing undoes it.

    Done in one transaction that is rolled back, so the shared roles are never
    seen in the modified state by anybody else.
    """
    member = (
        "select pg_has_role('pgque_writer', 'pgque_reader', 'MEMBER'),"
        " pg_has_role('pgque_admin', 'pgque_reader', 'USAGE'),"
        " pg_has_role('pgque_admin', 'pgque_writer', 'USAGE')"
    )
    with db.engine().connect() as conn:
        trans = conn.begin()
        try:
            conn.exec_driver_sql("grant pgque_reader to pgque_writer")
            assert tuple(conn.exec_driver_sql(member).one()) == (True, True, True)
            for script in install_scripts():
                execute_script(conn, script)
            assert tuple(conn.exec_driver_sql(member).one()) == (False, True, True)
        finally:
            trans.rollback()


def test_install_without_createrole_and_missing_roles_fails_clearly(empty_db: Database, roles: Roles) -> None:
    """A role that may not create roles gets a clear 42501 when a pgque role is missing.

    The cluster-wide role is "missing" only inside a rolled-back transaction
    (renamed away), so no other session can notice.
    """
    installer = roles.make(None, createrole=False)
    hidden = unique_role()
    with empty_db.server.admin() as admin:
        admin.execute(
            pgsql.SQL("alter database {} owner to {}").format(
                pgsql.Identifier(empty_db.name), pgsql.Identifier(installer)
            )
        )
    try:
        with empty_db.engine().connect() as conn:
            trans = conn.begin()
            try:
                conn.exec_driver_sql(f'alter role pgque_reader rename to "{hidden}"')
                conn.exec_driver_sql(f'set role "{installer}"')
                with pytest.raises(sqlalchemy.exc.DBAPIError) as caught:
                    sa_pgque.install(conn)
            finally:
                trans.rollback()
            error = caught.value.orig
            assert isinstance(error, psycopg.Error)
            assert error.sqlstate == "42501"
            assert error_text(error) == (
                f"cannot install pgque: role pgque_reader does not exist and {installer} may not create roles"
            )
            assert error.diag.message_hint == (
                "Install as a role with CREATEROLE, or have an administrator run: "
                "CREATE ROLE pgque_reader NOLOGIN; CREATE ROLE pgque_writer NOLOGIN; "
                "CREATE ROLE pgque_admin NOLOGIN;"
            )
            # nothing changed: the role is back, and nothing was installed
            assert conn.exec_driver_sql("select count(*) from pg_roles where rolname = 'pgque_reader'").scalar() == 1
            assert conn.exec_driver_sql("select to_regnamespace('pgque') is null").scalar() is True
            conn.rollback()

            # With the roles present, the same role installs fine.
            with conn.begin():
                conn.exec_driver_sql(f'set role "{installer}"')
                sa_pgque.install(conn)
            assert conn.exec_driver_sql("select pgque.version()").scalar() == ("0.3.0-devel+sa-pgque.1")
            assert (
                conn.exec_driver_sql(
                    "select nspowner::regrole::text from pg_namespace where nspname = 'pgque'"
                ).scalar()
                == installer
            )
            conn.rollback()
    finally:
        with psycopg.connect(empty_db.conninfo, autocommit=True) as conn:
            conn.execute("reset role")
            conn.execute(pgsql.SQL("reassign owned by {} to current_user").format(pgsql.Identifier(installer)))


# ---------------------------------------------------------------------------
# 5.3 function privileges
# ---------------------------------------------------------------------------


def routines(sql: Sql) -> list[tuple[int, str, str, str, list[str], str, str]]:
    """(oid, name, arguments, identity, input types, kind, result) of every routine."""
    return sql.rows(
        """
        select p.oid::int, p.proname, pg_get_function_arguments(p.oid),
               pg_get_function_identity_arguments(p.oid),
               array(select format_type(t, null)
                       from unnest(p.proargtypes::oid[]) with ordinality u(t, i)
                      order by i)::text[],
               p.prokind::text, coalesce(pg_get_function_result(p.oid), '')
          from pg_proc p
         where p.pronamespace = 'pgque'::regnamespace
         order by p.proname, 3
        """
    )


def spec_fn(name: str, args: str) -> Fn | None:
    for fn in SPEC_FUNCTIONS:
        if fn.key == (name, args):
            return fn
    return None


def test_public_executes_nothing(sql: Sql, roles: Roles) -> None:
    """5.3: PUBLIC execute revoked on every routine, procedures included."""
    nobody = roles.make(None)
    found = routines(sql)
    assert any(kind == "p" for *_x, kind, _r in found)
    executable = [
        f"{name}({identity})"
        for oid, name, _a, identity, _t, _k, _r in found
        if sql.one("select has_function_privilege(%s, %s::oid, 'EXECUTE')", nobody, oid)
    ]
    assert executable == []
    public_grants = sql.col(
        "select p.proname from pg_proc p where p.pronamespace = 'pgque'::regnamespace"
        " and (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a"
        "                                   where a.grantee = 0))"
    )
    assert public_grants == []


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_function_privilege_matrix(sql: Sql, role: str) -> None:
    """5.3: effective EXECUTE of each API role on every spec routine present."""
    wrong = []
    for oid, name, args, identity, _types, _kind, _res in routines(sql):
        allowed = bool(sql.one("select has_function_privilege(%s, %s::oid, 'EXECUTE')", f"pgque_{role}", oid))
        fn = spec_fn(name, args)
        if fn is not None:
            expected = can_execute(fn, role)
        elif name.startswith("_"):
            # internal helpers: owner-only or admin-only (see HELPERS_FOR_WRITER)
            if role == "admin":
                continue
            expected = allowed if role == "writer" and name in HELPERS_FOR_WRITER else False
        else:
            continue  # an unexpected public function: test_catalog reports it
        if allowed != expected:
            wrong.append(f"{name}({identity}): expected {expected}, has {allowed}")
    assert wrong == []


def call_with_nulls(name: str, types: list[str], kind: str) -> str:
    args = ", ".join(f"(select null::{t})" for t in types)
    verb = "call" if kind == "p" else "select"
    return f"{verb} pgque.{pgsql.Identifier(name).as_string()}({args})"


@pytest.mark.parametrize("kind", ["plain", "reader", "writer", "admin"])
def test_denied_routines_really_fail_with_42501(sql: Sql, as_role: Callable[[str], Sql], kind: str) -> None:
    """Call, as a real role, every routine that role may not execute: 42501 each time.

    Arguments are NULL subqueries, so nothing is constant-folded before the
    privilege check.
    """
    sql.exec("select pgque.create_queue('q')")
    session = as_role(kind)
    problems = []
    checked = 0
    for _oid, name, args, identity, types, prokind, result in routines(sql):
        if result == "trigger":
            continue  # cannot be called directly; covered by the matrix test
        fn = spec_fn(name, args)
        if fn is not None:
            if can_execute(fn, kind):
                continue
        elif not (name.startswith("_") and kind != "admin" and not (kind == "writer" and name in HELPERS_FOR_WRITER)):
            continue
        checked += 1
        try:
            session.exec(call_with_nulls(name, types, prokind))
        except psycopg.errors.InsufficientPrivilege as exc:
            what = "procedure" if prokind == "p" else "function"
            if error_text(exc) != f"permission denied for {what} {name}":
                problems.append(f"{name}({identity}): {error_text(exc)}")
        except psycopg.Error as exc:
            problems.append(f"{name}({identity}): {exc.sqlstate} {error_text(exc)}")
        else:
            problems.append(f"{name}({identity}): executed")
    assert problems == []
    assert checked > (0 if kind == "admin" else 10)
    assert sql.one("select to_regnamespace('pgque') is not null")


def test_writer_is_denied_every_consumer_function(sql: Sql, as_role: Callable[[str], Sql]) -> None:
    """5.3 / checklist: real calls with real arguments."""
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.send('q', 'x')")
    sql.exec("select pgque.force_next_tick('q')")
    sql.exec("select pgque.ticker('q')")
    batch = sql.one("select pgque.next_batch('q', 'c')")
    assert batch is not None
    ev = sql.one("select ev_id from pgque.get_batch_events(%s)", batch)
    writer = as_role("writer")
    for query, params, fn in [
        ("select * from pgque.receive('q', 'c', 10)", (), "receive"),
        ("select pgque.ack(%s)", (batch,), "ack"),
        (
            "select pgque.nack(%s, row(%s, %s, null, null, null, now(), null, null, null, null)::pgque.message)",
            (batch, ev, batch),
            "nack",
        ),
        ("select pgque.finish_batch(%s)", (batch,), "finish_batch"),
        ("select pgque.next_batch('q', 'c')", (), "next_batch"),
        ("select * from pgque.next_batch_info('q', 'c')", (), "next_batch_info"),
        ("select * from pgque.next_batch_custom('q', 'c', null, null, null)", (), "next_batch_custom"),
        ("select * from pgque.get_batch_events(%s)", (batch,), "get_batch_events"),
        ("select pgque.subscribe('q', 'w')", (), "subscribe"),
        ("select pgque.unsubscribe('q', 'c')", (), "unsubscribe"),
        ("select pgque.register_consumer('q', 'w')", (), "register_consumer"),
        ("select pgque.register_consumer_at('q', 'w', 1)", (), "register_consumer_at"),
        ("select pgque.unregister_consumer('q', 'c')", (), "unregister_consumer"),
        ("select pgque.event_retry(%s, %s, 10)", (batch, ev), "event_retry"),
        ("select pgque.event_retry(%s, %s, now())", (batch, ev), "event_retry"),
        ("select * from pgque.dlq_inspect('q')", (), "dlq_inspect"),
    ]:
        assert denied(writer, query, *params) == f"permission denied for function {fn}"
    # nothing happened
    assert sql.row("select sub_batch, count(*) over () from pgque.subscription") == (batch, 1)
    assert sql.one("select count(*) from pgque.retry_queue") == 0


def test_reader_is_denied_every_producer_function(sql: Sql, as_role: Callable[[str], Sql]) -> None:
    sql.exec("select pgque.create_queue('q')")
    reader = as_role("reader")
    for query, fn in [
        ("select pgque.send('q', '{}'::jsonb)", "send"),
        ("select pgque.send('q', 'x'::text)", "send"),
        ("select pgque.send('q', 't', '{}'::jsonb)", "send"),
        ("select pgque.send('q', 't', 'x'::text)", "send"),
        ("select pgque.send_batch('q', array['{}']::jsonb[])", "send_batch"),
        ("select pgque.send_batch('q', array['x']::text[])", "send_batch"),
        ("select pgque.send_batch('q', 't', array['{}']::jsonb[])", "send_batch"),
        ("select pgque.send_batch('q', 't', array['x']::text[])", "send_batch"),
        ("select pgque.insert_event('q', 't', 'x')", "insert_event"),
        ("select pgque.insert_event('q', 't', 'x', null, null, null, null)", "insert_event"),
        ("select pgque.dlq_replay(1)", "dlq_replay"),
        ("select * from pgque.dlq_replay_all('q')", "dlq_replay_all"),
        ("select pgque.create_queue('r')", "create_queue"),
        ("select pgque.ticker()", "ticker"),
        ("select pgque.force_next_tick('q')", "force_next_tick"),
    ]:
        assert denied(reader, query) == f"permission denied for function {fn}"
    assert sql.one("select count(*) from pgque.event_1") == 0


def test_uninstall_insert_event_bulk_and_ticker_loop(sql: Sql, as_role: Callable[[str], Sql]) -> None:
    """uninstall(): owner only; insert_event_bulk: owner only; ticker_loop: admin only."""
    sql.exec("select pgque.create_queue('q')")
    for kind in ("plain", "reader", "writer", "admin"):
        session = as_role(kind)
        assert denied(session, "select pgque.uninstall()") == ("permission denied for function uninstall")
        assert denied(session, "select pgque.insert_event_bulk('q', 't', array['a'])") == (
            "permission denied for function insert_event_bulk"
        )
        if kind != "admin":
            assert denied(session, "call pgque.ticker_loop()") == ("permission denied for procedure ticker_loop")
    assert sql.one("select to_regnamespace('pgque') is not null")
    assert sql.one("select count(*) from pgque.event_1") == 0
    # the owner can; admin runs the loop
    assert len(sql.one("select pgque.insert_event_bulk('q', 't', array['a', 'b'])")) == 2
    before = sql.one("select count(*) from pgque.tick")
    as_role("admin").exec("select pgque.force_next_tick('q')")  # so that a tick is due
    as_role("admin").exec("call pgque.ticker_loop()")
    assert sql.one("select count(*) from pgque.tick") > before


# ---------------------------------------------------------------------------
# 5.2 tables, sequences, schema
# ---------------------------------------------------------------------------


def role_name(kind: str, nobody: str) -> str:
    return nobody if kind == "public" else f"pgque_{kind}"


def test_table_sequence_and_schema_privileges(sql: Sql, roles: Roles) -> None:
    """5.2, including the per-queue objects of a queue created after install."""
    sql.exec("select pgque.create_queue('q')")
    n = sql.one("select queue_id from pgque.queue where queue_name = 'q'")
    nobody = roles.make(None)
    wrong: list[str] = []

    def check(kind_fn: str, obj: str, privs: tuple[str, ...], expected: dict[str, frozenset[str]]) -> None:
        for kind in ROLES:
            has = frozenset(
                p
                for p in privs
                if sql.one(f"select has_{kind_fn}_privilege(%s, %s, %s)", role_name(kind, nobody), obj, p)
            )
            if has != expected[kind]:
                wrong.append(f"{obj} {kind}: expected {sorted(expected[kind])}, has {sorted(has)}")

    for table, expected in TABLE_PRIVILEGES.items():
        check("table", f"pgque.{table}", TABLE_PRIVS, expected)
    base = f"pgque.event_{n}"
    for table in (base, *(f"{base}_{k}" for k in range(3))):
        check("table", table, TABLE_PRIVS, EVENT_TABLE_PRIVILEGES)
    for seq, expected in SEQUENCE_PRIVILEGES.items():
        check("sequence", f"pgque.{seq}", SEQUENCE_PRIVS, expected)
    check("sequence", f"{base}_id_seq", SEQUENCE_PRIVS, EVENT_ID_SEQ_PRIVILEGES)
    check("sequence", f"{base}_tick_seq", SEQUENCE_PRIVS, TICK_SEQ_PRIVILEGES)
    check("schema", "pgque", ("USAGE", "CREATE"), SCHEMA_PRIVILEGES)
    assert wrong == []


def test_reader_reads_everything_writer_not_dead_letters(sql: Sql, as_role: Callable[[str], Sql]) -> None:
    sql.exec("select pgque.create_queue('q')")  # created after install
    n = sql.one("select queue_id from pgque.queue where queue_name = 'q'")
    reader, writer, plain = as_role("reader"), as_role("writer"), as_role("plain")
    tables = [
        "queue",
        "consumer",
        "subscription",
        "tick",
        "retry_queue",
        "dead_letter",
        "config",
        f"event_{n}",
        f"event_{n}_0",
        f"event_{n}_1",
        f"event_{n}_2",
    ]
    for table in tables:
        reader.rows(f"select * from pgque.{table}")
    for session in (writer, plain):
        for table in ("dead_letter", "config"):
            assert denied(session, f"select * from pgque.{table}") == (f"permission denied for table {table}")
        for table in tables:
            if table not in ("dead_letter", "config"):
                session.rows(f"select * from pgque.{table}")
    assert reader.one("select count(*) from pgque.queue") == 1
    for session in (reader, writer):
        assert (
            denied(session, f"insert into pgque.event_{n}_0 (ev_id, ev_time) values (1, now())")
            == f"permission denied for table event_{n}_0"
        )
        assert denied(session, "update pgque.queue set queue_max_retries = 0") == ("permission denied for table queue")


# ---------------------------------------------------------------------------
# the whole flow, with the real roles
# ---------------------------------------------------------------------------


def test_producer_consumer_flow_with_real_roles(sql: Sql, as_role: Callable[[str], Sql]) -> None:
    admin, writer, reader = as_role("admin"), as_role("writer"), as_role("reader")

    assert admin.one("select pgque.create_queue('orders')") == 1
    assert reader.one("select pgque.subscribe('orders', 'svc')") == 1
    assert reader.one("select pgque.subscribe('orders', 'svc')") == 0

    first = writer.one("select pgque.send('orders', 'created', '{\"id\": 1}'::jsonb)")
    more = writer.one("select pgque.send_batch('orders', 'created', array['{\"id\": 2}', '{\"id\": 3}']::jsonb[])")
    assert more == sorted(more) and more[0] > first
    admin.one("select pgque.force_next_tick('orders')")
    assert admin.one("select pgque.ticker('orders')") is not None

    rows = reader.rows("select msg_id, batch_id, type, payload, retry_count from pgque.receive('orders', 'svc', 100)")
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (first, "created", '{"id": 1}', None),
        (more[0], "created", '{"id": 2}', None),
        (more[1], "created", '{"id": 3}', None),
    ]
    batch = rows[0][1]
    # deliberate deviation: readers may call get_batch_events directly
    assert reader.col("select ev_id from pgque.get_batch_events(%s)", batch) == [first, *more]
    assert reader.one("select queue_name from pgque.get_batch_info(%s)", batch) == "orders"
    assert reader.one("select count(*) from pgque.get_queue_info()") == 1
    assert reader.one("select count(*) from pgque.get_consumer_info('orders')") == 1
    assert reader.one("select pgque.version()") == "0.3.0-devel+sa-pgque.1"

    # nack the second message, ack the batch
    assert (
        reader.one(
            "select pgque.nack(%s, m, '0 seconds') from pgque.receive('orders', 'svc', 100) m where m.msg_id = %s",
            batch,
            more[0],
        )
        == 1
    )
    assert reader.one("select pgque.ack(%s)", batch) == 1
    assert reader.one("select count(*) from pgque.retry_queue") == 1

    # admin moves it back (invoker function: needs admin's table and sequence rights)
    assert admin.one("select pgque.maint_retry_events()") == 1
    admin.one("select pgque.force_next_tick('orders')")
    assert admin.one("select pgque.ticker('orders')") is not None
    again = reader.rows("select msg_id, batch_id, retry_count from pgque.receive('orders', 'svc')")
    assert [(r[0], r[2]) for r in again] == [(more[0], 1)]

    # dead letter it, inspect as reader, replay as writer
    assert admin.one("select pgque.set_queue_config('orders', 'max_retries', '0')") == 1
    assert (
        reader.one(
            "select pgque.nack(%s, m, '0 seconds', 'bad') from pgque.receive('orders', 'svc') m",
            again[0][1],
        )
        == 1
    )
    assert reader.one("select pgque.ack(%s)", again[0][1]) == 1
    dead = reader.rows("select dl_id, ev_id, dl_reason from pgque.dlq_inspect('orders')")
    assert [(d[1], d[2]) for d in dead] == [(more[0], "bad")]
    replayed = writer.one("select pgque.dlq_replay(%s)", dead[0][0])
    assert replayed > more[1]
    assert writer.row("select * from pgque.dlq_replay_all('orders')") == (0, 0, None)
    admin.one("select pgque.force_next_tick('orders')")
    assert admin.one("select pgque.ticker('orders')") is not None
    last = reader.rows("select msg_id, payload, retry_count from pgque.receive('orders', 'svc')")
    assert last == [(replayed, '{"id": 2}', None)]
    assert reader.one("select pgque.ack(%s)", reader.one("select batch_id from pgque.receive('orders', 'svc')")) == 1

    # admin reaches reader and writer functions through membership
    admin.one("select pgque.send('orders', 'x')")
    assert admin.one("select pgque.unsubscribe('orders', 'svc')") == 1
    assert reader.one("select pgque.unsubscribe('orders', 'svc')") == 0
    assert admin.one("select pgque.drop_queue('orders')") == 1


def test_invoker_routines_work_for_their_grantees(sql: Sql, as_role: Callable[[str], Sql]) -> None:
    """5.3: invoker functions run with the caller's rights; each works for its grantee."""
    admin, writer, reader = as_role("admin"), as_role("writer"), as_role("reader")
    sql.exec("select pgque.create_queue('inv')")
    n = sql.one("select queue_id from pgque.queue where queue_name = 'inv'")
    sql.exec("select pgque.subscribe('inv', 'c')")

    ev = writer.one("select pgque.insert_event('inv', 't', 'd')")  # 3-arg, INV
    admin.one("select pgque.force_next_tick('inv')")
    assert admin.one("select pgque.ticker('inv')") == 2

    batch = reader.one("select pgque.next_batch('inv', 'c')")  # INV
    assert batch is not None
    assert reader.row("select batch_id, cur_tick_id, prev_tick_id from pgque.next_batch_info('inv', 'c')") == (
        batch,
        2,
        1,
    )

    assert admin.one("select pgque.current_event_table('inv')") == f"pgque.event_{n}_0"
    assert admin.one("select pgque.batch_event_sql(%s)", batch)
    assert f"pgque.event_{n}_0" in admin.col("select pgque.batch_event_tables(%s)", batch)
    with admin.transaction():
        assert admin.rows("select * from pgque.get_batch_cursor(%s, 'cur', 0)", batch) == []
        assert admin.col("fetch all from cur") == [ev]
        assert admin.col("select ev_id from pgque.get_batch_cursor(%s, 'cur2', 10, 'ev_type = ''t''')", batch) == [ev]
    raw = admin.one("select pgque.insert_event_raw('inv', null, now(), null, null, 't', 'raw', null, null, null, null)")
    assert admin.one("select pgque.seq_getval(%s)", f"pgque.event_{n}_id_seq") >= raw
    assert admin.one("select pgque.quote_fqname('A.b c')") == '"A"."b c"'
    t1 = sql.row("select tick_time, tick_event_seq from pgque.tick where tick_queue = %s and tick_id = 1", n)
    assert admin.row("select next_tick_id from pgque.find_tick_helper(%s, 1, %s, %s, 1, null)", n, *t1) == (2,)
    admin.rows("select * from pgque.maint_operations()")
    admin.rows("select * from pgque.maint_tables_to_vacuum()")
    assert admin.one("select pgque.upgrade_schema()") == 0
    assert reader.one("select pgque.ack(%s)", batch) == 1

    # rotation steps (no subscriber left, so step 1 is allowed) and the 1-arg drop_queue
    assert reader.one("select pgque.unsubscribe('inv', 'c')") == 1
    sql.exec("update pgque.queue set queue_switch_time = now() - interval '3 hours' where queue_id = %s", n)
    assert admin.one("select pgque.maint_rotate_tables_step1('inv')") == 0
    assert sql.row("select queue_cur_table, queue_switch_step2 from pgque.queue where queue_id = %s", n) == (1, None)
    assert admin.one("select pgque.maint_rotate_tables_step2()") == 0
    assert sql.one("select queue_switch_step2 from pgque.queue where queue_id = %s", n)
    assert admin.one("select pgque.drop_queue('inv')") == 1
