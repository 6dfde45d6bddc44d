"""The installed catalog equals the spec (sections 4, 5.4, 6, 6.12 and 12).

Expected values live in ``_spec_catalog.py``, transcribed from the spec; this
module only reads the catalog and compares. Part (c) re-runs the engine's SQL
on a database holding live data and checks that nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from sa_pgque._sqlfiles import execute_script
from tests._pg import Database, Server, Sql
from tests.engine._spec_catalog import (
    CURRENT_TXID,
    EVENT_TEMPLATE_COLUMNS,
    LATER_TABLES,
    MESSAGE_FIELDS,
    PINNED_SEARCH_PATH,
    SEQUENCES,
    SPEC_FUNCTIONS,
    TABLE_COLUMNS,
    TABLE_CONSTRAINTS,
    TABLE_INDEXES,
    Column,
    Fn,
    install_scripts,
    revision_steps,
)

PER_QUEUE = re.compile(r"^event_\d+(_\d+)?(_id_seq|_tick_seq|_txid_idx)?$")


# ---------------------------------------------------------------------------
# Catalog snapshot of a freshly installed database, read once per module
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Routine:
    name: str
    args: str
    identity: str
    result: str | None
    kind: str
    secdef: bool
    strict: bool
    volatility: str
    config: list[str] | None


def read_routines(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], Routine]:
    rows = conn.execute(
        """
        select p.proname, pg_get_function_arguments(p.oid),
               pg_get_function_identity_arguments(p.oid),
               pg_get_function_result(p.oid), p.prokind::text, p.prosecdef, p.proisstrict,
               p.provolatile::text, p.proconfig
          from pg_proc p
         where p.pronamespace = 'pgque'::regnamespace
        """
    ).fetchall()
    routines = [Routine(*row) for row in rows]
    return {(r.name, r.args): r for r in routines}


@pytest.fixture(scope="module")
def routines(pg_server: Server, engine_template: str) -> Iterator[dict[tuple[str, str], Routine]]:
    """pg_proc of schema pgque in a fresh install (a throwaway clone)."""
    name = pg_server.create_database(template=engine_template)
    try:
        with psycopg.connect(pg_server.conninfo(name)) as conn:
            found = read_routines(conn)
        yield found
    finally:
        pg_server.drop_database(name)


def fn_id(fn: Fn) -> str:
    """``name(input types)``, e.g. ``send(text,jsonb)``."""
    types = [
        arg.split(" ", 1)[1].split(" DEFAULT ")[0] for arg in fn.args.split(", ") if arg and not arg.startswith("OUT ")
    ]
    return f"{fn.name}({','.join(types)})"


def check_function(fn: Fn, routine: Routine) -> None:
    assert routine.kind == ("p" if fn.procedure else "f")
    assert routine.result == fn.result
    assert ("SD" if routine.secdef else "INV") == fn.mode
    assert routine.strict == fn.strict, "STRICT differs from the spec"
    if fn.volatility is not None:
        assert routine.volatility == fn.volatility, "volatility differs from the spec"
    if fn.mode == "SD":
        assert routine.config == PINNED_SEARCH_PATH


# ---------------------------------------------------------------------------
# (a) functions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [f for f in SPEC_FUNCTIONS if f.since != "later"], ids=fn_id)
def test_function_matches_spec(fn: Fn, routines: dict[tuple[str, str], Routine]) -> None:
    """Name, parameter names/defaults, result, SD/INV, STRICT, volatility, search_path."""
    routine = routines.get(fn.key)
    if routine is None and not fn.required():
        return  # the trigger script is not part of this checkout
    same_name = sorted(a for (n, a) in routines if n == fn.name)
    assert routine is not None, f"pgque.{fn.name}({fn.args}) missing; overloads: {same_name}"
    check_function(fn, routine)


def test_later_revision_functions_match_spec_if_present(
    routines: dict[tuple[str, str], Routine],
) -> None:
    """Spec surface that later revisions add (6.3, 6.10, 11) must match once it appears."""
    for fn in SPEC_FUNCTIONS:
        if fn.since == "later" and fn.key in routines:
            check_function(fn, routines[fn.key])


def test_no_unexpected_public_function(routines: dict[tuple[str, str], Routine]) -> None:
    """Every routine whose name does not start with ``_`` is one of the spec's."""
    spec = {fn.key for fn in SPEC_FUNCTIONS}
    unexpected = sorted(
        f"{name}({args})" for (name, args) in routines if not name.startswith("_") and (name, args) not in spec
    )
    assert unexpected == []


def test_every_security_definer_routine_pins_search_path(
    routines: dict[tuple[str, str], Routine],
) -> None:
    """5.4, including internal ``_`` helpers."""
    bad = sorted(
        f"{r.name}({r.identity}) -> {r.config}"
        for r in routines.values()
        if r.secdef and r.config != PINNED_SEARCH_PATH
    )
    assert bad == []
    assert any(r.secdef for r in routines.values())


def test_ticker_loop_is_an_invoker_procedure_without_set_clause(
    routines: dict[tuple[str, str], Routine],
) -> None:
    """5.4: a procedure that commits may not carry a SET clause."""
    loop = routines[("ticker_loop", "")]
    assert (loop.kind, loop.secdef, loop.config) == ("p", False, None)
    assert [r.name for r in routines.values() if r.kind == "p"] == ["ticker_loop"]


# ---------------------------------------------------------------------------
# (b) tables, constraints, indexes, sequences, the message type
# ---------------------------------------------------------------------------


def columns(sql: Sql, table: str) -> list[tuple[str, str, bool, str | None]]:
    return [
        (name, typ, notnull, default)
        for name, typ, notnull, default in sql.rows(
            """
            select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid)
              from pg_attribute a
              left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
             order by a.attnum
            """,
            table,
        )
    ]


def assert_columns(sql: Sql, table: str, expected: tuple[Column, ...]) -> None:
    actual = columns(sql, table)
    assert [(c[0], c[1], c[2]) for c in actual] == [(c[0], c[1], c[2]) for c in expected]
    for (name, _t, _n, default), (_name, _t2, _n2, want) in zip(actual, expected, strict=True):
        if want == CURRENT_TXID:
            assert default is not None, f"{table}.{name} has no default"
            with sql.transaction():
                value, txid = sql.row(f"select {default}, pg_current_xact_id()::text::bigint")
            assert value == txid, f"{table}.{name} default is not the current txid"
        else:
            assert default == want, f"default of {table}.{name}"


def test_tables_are_exactly_the_spec_tables(sql: Sql) -> None:
    tables = set(
        sql.col(
            "select relname from pg_class where relnamespace = 'pgque'::regnamespace"
            " and relkind in ('r', 'p', 'v', 'm', 'f')"
        )
    )
    engine_tables = {t for t in tables if not PER_QUEUE.match(t)} - set(LATER_TABLES)
    assert engine_tables == set(TABLE_COLUMNS)


@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
def test_table_columns(sql: Sql, table: str) -> None:
    assert_columns(sql, f"pgque.{table}", TABLE_COLUMNS[table])


def constraints(sql: Sql, table: str) -> dict[str, tuple[str, tuple[str, ...], str | None, str]]:
    found: dict[str, tuple[str, tuple[str, ...], str | None, str]] = {}
    for name, kind, cols, ref, refcols, deltype in sql.rows(
        """
        select c.conname, c.contype::text,
               array(select a.attname from unnest(c.conkey) with ordinality k(n, i)
                       join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n
                      order by k.i)::text[],
               c.confrelid::regclass::text,
               array(select a.attname from unnest(c.confkey) with ordinality k(n, i)
                       join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n
                      order by k.i)::text[],
               c.confdeltype::text
          from pg_constraint c
         where c.conrelid = %s::regclass and c.contype in ('p', 'u', 'f', 'c', 'x')
        """,
        table,
    ):
        target = None
        if kind == "f":
            target = f"{ref.removeprefix('pgque.')}({', '.join(refcols)})"
        found[name] = (kind, tuple(cols), target, deltype)
    return found


@pytest.mark.parametrize("table", sorted(TABLE_CONSTRAINTS))
def test_table_constraints(sql: Sql, table: str) -> None:
    actual = constraints(sql, f"pgque.{table}")
    expected = TABLE_CONSTRAINTS[table]
    assert sorted(actual) == sorted(expected)
    deltypes = {"cascade": "c", "no action": "a"}
    for name, (kind, cols, target, on_delete) in expected.items():
        got_kind, got_cols, got_target, got_del = actual[name]
        assert (got_kind, got_cols, got_target) == (kind, cols, target), name
        if on_delete is not None:
            assert got_del == deltypes[on_delete], f"on delete of {name}"


def indexes(sql: Sql, table: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    return {
        name: (tuple(cols), unique)
        for name, cols, unique in sql.rows(
            """
            select ic.relname,
                   array(select a.attname from unnest(i.indkey::int2[]) with ordinality k(n, o)
                           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n
                          order by k.o)::text[],
                   i.indisunique
              from pg_index i join pg_class ic on ic.oid = i.indexrelid
             where i.indrelid = %s::regclass
            """,
            table,
        )
    }


@pytest.mark.parametrize("table", sorted(TABLE_INDEXES))
def test_table_indexes(sql: Sql, table: str) -> None:
    assert indexes(sql, f"pgque.{table}") == TABLE_INDEXES[table]


def test_dead_letter_dedup_is_a_unique_index_not_a_constraint(sql: Sql) -> None:
    assert sql.one("select count(*) from pg_constraint where conname = 'dl_queue_consumer_ev_idx'") == 0


def _violates(sql: Sql, statement: str) -> str | None:
    """Run ``statement`` in a rolled-back transaction; the violated constraint, if any."""
    try:
        with sql.transaction():
            sql.exec(statement)
            raise _Rollback
    except _Rollback:
        return None
    except psycopg.errors.CheckViolation as exc:
        return exc.diag.constraint_name


class _Rollback(Exception):
    pass


def test_config_checks(sql: Sql) -> None:
    """4.8: singleton, scheduler and tick period checks, by name."""
    assert sql.rows("select singleton, scheduler, tick_period_ms from pgque.config") == [(True, None, 100)]
    upd = "update pgque.config set "
    assert _violates(sql, upd + "singleton = false") == "config_singleton_check"
    assert _violates(sql, upd + "scheduler = 'cron'") == "config_scheduler_check"
    for ok in ("'pg_cron'", "'pg_timetable'", "null"):
        assert _violates(sql, upd + "scheduler = " + ok) is None
    for bad in (0, 3, 7, 1001, 2000, -5):
        assert _violates(sql, upd + f"tick_period_ms = {bad}") == "config_tick_period_ms_check"
    for ok_ms in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500, 1000):
        assert _violates(sql, upd + f"tick_period_ms = {ok_ms}") is None


def test_subscription_role_check(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    upd = "update pgque.subscription set sub_role = "
    assert _violates(sql, upd + "'bogus'") == "subscription_sub_role_check"
    for role in ("normal", "coop_main", "coop_member"):
        assert _violates(sql, upd + f"'{role}'") is None


def test_sequences(sql: Sql) -> None:
    """4.10: names, types, start 1 / increment 1, ownership where stated."""
    rows = sql.rows(
        """
        select c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
               (select t.relname || '.' || a.attname
                  from pg_depend d
                  join pg_class t on t.oid = d.refobjid
                  join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                 where d.classid = 'pg_class'::regclass and d.objid = c.oid
                   and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i'))
          from pg_sequence s join pg_class c on c.oid = s.seqrelid
         where c.relnamespace = 'pgque'::regnamespace
        """
    )
    engine = {r[0]: r[1:] for r in rows if not PER_QUEUE.match(r[0])}
    assert sorted(engine) == sorted(SEQUENCES)
    for name, (typ, owner) in SEQUENCES.items():
        got_type, start, increment, got_owner = engine[name]
        assert (got_type, start, increment) == (typ, 1, 1), name
        if owner is not None:
            assert got_owner == owner, name


def test_message_type(sql: Sql) -> None:
    """4.11: pgque.message, 10 fields in order."""
    assert sql.rows(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod)
          from pg_type t join pg_attribute a on a.attrelid = t.typrelid
         where t.oid = 'pgque.message'::regtype and a.attnum > 0 and not a.attisdropped
         order by a.attnum
        """
    ) == list(MESSAGE_FIELDS)
    assert sql.one("select typtype::text from pg_type where oid = 'pgque.message'::regtype") == "c"
    assert (
        sql.one(
            "select relkind::text from pg_class where oid ="
            " (select typrelid from pg_type where oid = 'pgque.message'::regtype)"
        )
        == "c"
    )


# ---------------------------------------------------------------------------
# Per-queue objects (4.5)
# ---------------------------------------------------------------------------


def reloptions(sql: Sql, rel: str, toast: bool = False) -> dict[str, str]:
    column = "t.reloptions" if toast else "c.reloptions"
    opts = sql.one(
        f"select {column} from pg_class c left join pg_class t on t.oid = c.reltoastrelid where c.oid = %s::regclass",
        rel,
    )
    parsed: dict[str, str] = {}
    for opt in opts or []:
        key, _, value = opt.partition("=")
        # spec spells it autovacuum_enabled=off; any boolean spelling of false is the same
        parsed[key] = "off" if value.lower() in ("off", "false", "no", "0", "f") else value
    return parsed


def test_per_queue_objects(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('other')")  # so the id under test is not 1
    assert sql.one("select pgque.create_queue('q')") == 1
    n = sql.one("select queue_id from pgque.queue where queue_name = 'q'")
    parent = f"pgque.event_{n}"
    children = [f"{parent}_{k}" for k in range(3)]
    assert sql.row(
        "select queue_data_pfx, queue_event_seq, queue_tick_seq, queue_ntables, queue_cur_table"
        " from pgque.queue where queue_id = %s",
        n,
    ) == (parent, f"{parent}_id_seq", f"{parent}_tick_seq", 3, 0)

    # inheritance: template <- parent <- three children
    assert sql.col("select inhparent::regclass::text from pg_inherits where inhrelid = %s::regclass", parent) == [
        "pgque.event_template"
    ]
    assert (
        sorted(sql.col("select inhrelid::regclass::text from pg_inherits where inhparent = %s::regclass", parent))
        == children
    )

    # columns: the template's, ev_id default only on the children
    no_default = tuple((c[0], c[1], c[2], c[3] if c[0] != "ev_id" else None) for c in EVENT_TEMPLATE_COLUMNS)
    assert_columns(sql, parent, no_default)
    id_default = f"nextval('{parent}_id_seq'::regclass)"
    with_default = tuple((c[0], c[1], c[2], id_default if c[0] == "ev_id" else c[3]) for c in EVENT_TEMPLATE_COLUMNS)
    for child in children:
        assert_columns(sql, child, with_default)

    # no constraints at all; the txid index on each child only
    for rel in (parent, *children):
        assert constraints(sql, rel) == {}, rel
    assert indexes(sql, parent) == {}
    for child in children:
        assert indexes(sql, child) == {f"{child.removeprefix('pgque.')}_txid_idx": (("ev_txid",), False)}

    # storage options on the children only (toast included)
    assert reloptions(sql, parent) == {}
    for child in children:
        assert reloptions(sql, child) == {"fillfactor": "100", "autovacuum_enabled": "off"}
        assert reloptions(sql, child, toast=True) == {"autovacuum_enabled": "off"}

    # two bigint sequences, not owned by any column
    for seq in (f"{parent}_id_seq", f"{parent}_tick_seq"):
        assert sql.row(
            "select format_type(seqtypid, null), seqstart, seqincrement from pg_sequence where seqrelid = %s::regclass",
            seq,
        ) == ("bigint", 1, 1)
        assert (
            sql.one(
                "select count(*) from pg_depend where classid = 'pg_class'::regclass"
                " and objid = %s::regclass and deptype in ('a', 'i')",
                seq,
            )
            == 0
        ), f"{seq} is owned by a column"

    # the creation tick
    assert sql.col("select tick_id from pgque.tick where tick_queue = %s", n) == [1]

    # nothing else was created for the queue
    per_queue = sorted(
        sql.col(
            "select relname from pg_class where relnamespace = 'pgque'::regnamespace and relname like %s",
            f"event\\_{n}%",
        )
    )
    base = f"event_{n}"
    assert per_queue == sorted(
        [
            base,
            f"{base}_id_seq",
            f"{base}_tick_seq",
            *(f"{base}_{k}" for k in range(3)),
            *(f"{base}_{k}_txid_idx" for k in range(3)),
        ]
    )


# ---------------------------------------------------------------------------
# (c) installing twice is safe
# ---------------------------------------------------------------------------


def _state(sql: Sql, queue_ids: list[int]) -> dict[str, Any]:
    state: dict[str, Any] = {
        table: sql.rows(f"select * from pgque.{table} order by 1, 2")
        for table in ("queue", "consumer", "subscription", "retry_queue", "dead_letter", "config")
    }
    state["tick"] = sql.rows(
        "select tick_queue, tick_id, tick_time, tick_snapshot::text, tick_event_seq from pgque.tick order by 1, 2"
    )
    for n in queue_ids:
        state[f"event_{n}"] = sql.rows(
            f"select tableoid::regclass::text, * from pgque.event_{n} order by ev_id, ev_retry"
        )
        for seq in (f"event_{n}_id_seq", f"event_{n}_tick_seq"):
            state[seq] = sql.row(f"select last_value, is_called from pgque.{seq}")
    for seq in SEQUENCES:
        state[seq] = sql.row(f"select last_value, is_called from pgque.{seq}")
    return state


def _acl_state(sql: Sql) -> dict[str, Any]:
    return {
        "routines": sql.rows(
            """
            select p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                   p.prosecdef, p.proisstrict, p.provolatile::text, p.proconfig,
                   p.proowner::regrole::text,
                   array(select a::text from unnest(p.proacl) a order by 1)
              from pg_proc p where p.pronamespace = 'pgque'::regnamespace order by 1, 2
            """
        ),
        "relations": sql.rows(
            "select relname, relkind::text, reloptions,"
            " array(select a::text from unnest(relacl) a order by 1) from pg_class"
            " where relnamespace = 'pgque'::regnamespace order by 1"
        ),
        "schema": sql.one(
            "select array(select a::text from unnest(nspacl) a order by 1) from pg_namespace where nspname = 'pgque'"
        ),
        "memberships": sql.rows(
            "select r.rolname, m.rolname from pg_auth_members am"
            " join pg_roles r on r.oid = am.roleid join pg_roles m on m.oid = am.member"
            " where r.rolname like 'pgque\\_%' and m.rolname like 'pgque\\_%' order by 1, 2"
        ),
    }


def reinstall(db: Database) -> None:
    """Run every script of every revision again, in order, as the Alembic steps would."""
    engine = db.engine()
    with engine.begin() as connection:
        for script in install_scripts():
            execute_script(connection, script)


def test_revision_steps() -> None:
    assert revision_steps()[0] == "pgque_0001"


def test_installing_twice_keeps_data_and_keeps_working(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.create_queue('q2')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.subscribe('q', 'c2')")
    sql.exec("update pgque.queue set queue_max_retries = 0 where queue_name = 'q'")
    assert sql.one("select pgque.set_tick_period_ms(250)") == 250
    first = sql.one("select pgque.send('q', 'ev', 'first')")
    sql.exec("select pgque.force_next_tick('q')")
    sql.exec("select pgque.ticker('q')")

    # c: nack with max_retries = 0 -> a dead letter; c2: a retry row due at once
    rows = sql.rows("select msg_id, batch_id from pgque.receive('q', 'c', 10)")
    assert [r[0] for r in rows] == [first]
    batch_c = rows[0][1]
    sql.exec(
        "select pgque.nack(%s, (select m from pgque.receive('q', 'c', 10) m limit 1), '0 seconds', 'kept')",
        batch_c,
    )
    assert sql.one("select pgque.ack(%s)", batch_c) == 1
    batch_c2 = sql.one("select batch_id from pgque.receive('q', 'c2', 10)")
    assert sql.one("select pgque.event_retry(%s, %s, 0)", batch_c2, first) == 1
    assert sql.one("select pgque.ack(%s)", batch_c2) == 1
    # committed, not yet ticked
    pending = [sql.one("select pgque.send('q', 'ev', %s::text)", f"p{i}") for i in range(2)]
    sql.exec("select pgque.send('q2', 'other')")

    ids = sql.col("select queue_id from pgque.queue order by 1")
    assert sql.one("select count(*) from pgque.dead_letter") == 1
    assert sql.one("select count(*) from pgque.retry_queue") == 1
    before, acl_before = _state(sql, ids), _acl_state(sql)

    reinstall(db)
    reinstall(db)

    assert _state(sql, ids) == before
    assert _acl_state(sql) == acl_before

    # ... and everything still works
    assert sql.one("select pgque.maint_retry_events()") == 1
    new = sql.one("select pgque.send('q', 'ev', 'after')")
    sql.exec("select pgque.force_next_tick('q')")
    assert sql.one("select pgque.ticker('q')") is not None
    got = sql.rows("select msg_id, payload, retry_count from pgque.receive('q', 'c', 100)")
    assert [r[0] for r in got] == [*pending, new]
    assert sql.one("select pgque.ack(%s)", sql.one("select batch_id from pgque.receive('q', 'c', 1)")) == 1
    got2 = sql.rows("select msg_id, retry_count from pgque.receive('q', 'c2', 100)")
    assert sorted(got2, key=lambda r: r[0]) == [(first, 1), *((p, None) for p in pending), (new, None)]
    dl_id = sql.one("select dl_id from pgque.dead_letter")
    assert sql.one("select dl_reason from pgque.dead_letter") == "kept"
    assert sql.one("select pgque.dlq_replay(%s)", dl_id) > new
    assert sql.one("select pgque.subscribe('q', 'c')") == 0
    assert sql.one("select pgque.create_queue('q')") == 0


def test_installing_again_restores_the_privileges(db: Database, sql: Sql) -> None:
    """1 / 5: re-running the script re-applies the grants, per-queue tables included."""
    sql.exec("select pgque.create_queue('q')")
    n = sql.one("select queue_id from pgque.queue where queue_name = 'q'")
    expected = _acl_state(sql)
    sql.exec("grant execute on function pgque.send(text, text), pgque.uninstall() to public")
    sql.exec("grant execute on procedure pgque.ticker_loop() to public")
    sql.exec("revoke execute on function pgque.receive(text, text, integer) from pgque_reader")
    sql.exec("revoke execute on function pgque.send(text, jsonb) from pgque_writer")
    sql.exec("revoke select on pgque.dead_letter from pgque_reader")
    sql.exec("grant select on pgque.config to public")
    sql.exec(f"revoke all on pgque.event_{n}_1 from pgque_reader, public")
    sql.exec(f"revoke usage on sequence pgque.event_{n}_id_seq from pgque_admin")
    assert _acl_state(sql) != expected

    reinstall(db)

    assert _acl_state(sql) == expected
