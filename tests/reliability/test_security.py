"""Security: every routine called as every role, SQL injection through names and config, search_path hijack.

Roles are cluster-wide: every role made here has a unique name and is dropped
at the end (``tests.engine.test_roles.Roles``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from tests._pg import Database, error_text
from tests.engine._spec_catalog import SPEC_FUNCTIONS, Fn, can_execute
from tests.engine.test_roles import HELPERS_FOR_WRITER, Roles
from tests.reliability._calls import Fixture, Routine, allowed, routines, scalar
from tests.reliability._invariants import violations

pytestmark = pytest.mark.reliability

# kind -> pgque roles it is a member of; "noinherit" holds all three but NOINHERIT, so none of their rights
KINDS: dict[str, tuple[str, ...]] = {
    "public": (),
    "noinherit": ("reader", "writer", "admin"),
    "reader": ("reader",),
    "writer": ("writer",),
    "app": ("reader", "writer"),
    "admin": ("admin",),
}


@pytest.fixture
def roles(db: Database) -> Iterator[Roles]:
    made = Roles(db)
    try:
        yield made
    finally:
        made.cleanup()


def make_role(roles: Roles, kind: str) -> str:
    name = roles.make(None, inherit=kind != "noinherit")
    with roles.db.server.admin() as admin:
        for member_of in KINDS[kind]:
            admin.execute(
                pgsql.SQL("grant {} to {}").format(pgsql.Identifier(f"pgque_{member_of}"), pgsql.Identifier(name))
            )
    return name


# Granted to pgque_admin by the spec (6.12) but, being SECURITY INVOKER and running ALTER TABLE on the
# queue's event tables, usable only by their owner (the installing role), as in PgQue: an admin that is not
# the owner gets "must be owner of table event_<n>_<k>" (42501). Reported; kept visible here.
OWNER_IN_EFFECT = {"tune_storage": "must be owner of table event_"}


def spec_fn(routine: Routine, conn: psycopg.Connection[Any]) -> Fn | None:
    args = scalar(conn, "select pg_get_function_arguments(%s::regprocedure)", (routine.regprocedure,))
    return next((fn for fn in SPEC_FUNCTIONS if fn.key == (routine.name, args)), None)


def expected_right(routine: Routine, fn: Fn | None, kind: str) -> bool | None:
    """Whether ``kind`` may execute the routine per spec 5.3; None: not specified (not checked)."""
    if kind in ("public", "noinherit"):
        return False
    if fn is not None:
        return any(can_execute(fn, member_of) for member_of in KINDS[kind])
    if routine.name.startswith("_"):
        if kind == "admin":
            return None  # internal helpers: admin-only or owner-only, either is fine
        return routine.name in HELPERS_FOR_WRITER and "writer" in KINDS[kind]
    return None  # a routine the spec does not know: tests/engine/test_catalog.py reports it


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_routine_called_as_every_role(
    db: Database, roles: Roles, kind: str, report: Callable[[str], None]
) -> None:
    """Each routine, called with valid arguments as ``kind``: granted ones run, the others fail with 42501."""
    role = make_role(roles, kind)
    conn = db.connect()
    world = Fixture(conn)
    world.commit_world()
    denied, ran, failed_cleanly, problems = 0, 0, 0, []
    for routine in routines(conn):
        expected = expected_right(routine, spec_fn(routine, conn), kind)
        if expected is None:
            continue
        with conn.transaction(force_rollback=True):
            world.open_batches()  # as the owner
            conn.execute(pgsql.SQL("set local role {}").format(pgsql.Identifier(role)))
            try:
                with conn.transaction():
                    conn.execute(routine.statement(), world.valid_args(routine))
            except psycopg.errors.InsufficientPrivilege as error:
                what = "procedure" if routine.kind == "p" else "function"
                owner_only = error_text(error).startswith(OWNER_IN_EFFECT.get(routine.name, "\0"))
                if expected and not owner_only:
                    problems.append(f"{routine}: granted but {error_text(error)}")
                elif not expected and error_text(error) != f"permission denied for {what} {routine.name}":
                    problems.append(f"{routine}: denied with {error_text(error)!r}")
                denied += 1
            except psycopg.Error as error:
                if not expected:
                    problems.append(f"{routine}: ran (then failed with {error.sqlstate} {error_text(error)})")
                elif not allowed(error.sqlstate, routine.name):
                    problems.append(f"{routine}: undocumented error {error.sqlstate} {error_text(error)}")
                failed_cleanly += 1
            else:
                if not expected:
                    problems.append(f"{routine}: executed although not granted")
                ran += 1
            conn.execute("reset role")
    assert problems == [], "\n".join(problems)
    assert violations(conn) == []
    if kind in ("public", "noinherit"):
        assert ran == failed_cleanly == 0
    else:
        assert ran > 5
    report(f"{kind}: {denied} routines denied (42501), {ran} ran, {failed_cleanly} granted but refused the arguments")


# ---------------------------------------------------------------------------
# SQL injection
# ---------------------------------------------------------------------------

CANARY = "public.inj_canary"
HIT = "public.inj_hit()"
INJECTIONS = [
    f"x'); insert into {CANARY} values (666); --",
    f'x"; insert into {CANARY} values (666); --',
    f"x; insert into {CANARY} values (666); --",
    f"$$; insert into {CANARY} values (666); $$",
    f"$_$; insert into {CANARY} values (666); $_$",
    f"x'||{HIT}||'",
    f'x"||{HIT}||"',
    f"\\'; insert into {CANARY} values (666); --",
    f"*/ insert into {CANARY} values (666); /*",
    f"1 second'::interval; insert into {CANARY} values (666); --",
    f"true; drop table {CANARY}; --",
    "%s%s%s%I%L%1$s",
    f"'; drop table {CANARY} cascade; --",
    f"q'; drop table {CANARY} cascade; --"[:57],
    "pgque.queue",
    "event_1_0",
]
PARAM_NAMES = [
    "ticker_max_lag = '1'; insert into public.inj_canary values (666); --",
    "ticker_max_count, queue_disable_insert",
    'max_retries" = 1, "queue_disable_insert',
    "queue_disable_insert",
    "disable_insert",
    "data_pfx",
    "event_seq",
    "extra_maint",
]


def test_sql_injection_through_names_and_config_is_inert(db: Database, report: Callable[[str], None]) -> None:
    """Hostile names and config values are data: stored as given or refused, never executed; state intact."""
    conn = db.connect()
    run = conn.execute
    run(f"create table {CANARY} (x int); insert into {CANARY} values (1)")
    run(f"create function {HIT} returns text language sql as $$ insert into {CANARY} values (666) returning 'x' $$")
    run("select pgque.create_queue('q')")
    run("select pgque.subscribe('q', 'c')")
    config = run("select * from pgque.queue where queue_name = 'q'").fetchall()
    calls = [
        ("select pgque.create_queue(%s)", 1),
        ("select pgque.subscribe(%s, %s)", 2),
        ("select pgque.send(%s, %s, %s::text)", 3),
        ("select pgque.send_batch(%s, %s, array[%s]::text[])", 3),
        ("select * from pgque.send_idem('q', %s, %s::text, %s)", 3),
        ("select * from pgque.receive(%s, %s)", 2),
        ("select pgque.register_subconsumer('q', %s, %s)", 2),
        ("select * from pgque.receive_coop('q', %s, %s)", 2),
        ("select pgque.touch_subconsumer(%s, %s, %s)", 3),
        ("select pgque.unregister_subconsumer('q', %s, %s, 1)", 2),
        ("select * from pgque.get_queue_info(%s)", 1),
        ("select * from pgque.get_consumer_info(%s, %s)", 2),
        ("select * from pgque.queue_stats(%s)", 1),
        ("select * from pgque.consumer_stats(%s, %s)", 2),
        ("select * from pgque.queue_health(%s)", 1),
        ("select * from pgque.dlq_inspect(%s)", 1),
        ("select * from pgque.dlq_replay_all(%s)", 1),
        ("select pgque.dlq_purge(%s)", 1),
        ("select pgque.force_next_tick(%s)", 1),
        ("select pgque.ticker(%s)", 1),
        ("select pgque.current_event_table(%s)", 1),
        ("select pgque.pause_queue(%s)", 1),
        ("select pgque.resume_queue(%s)", 1),
        ("select pgque.set_queue_config(%s, 'ticker_max_lag', '1 second')", 1),
        ("select pgque.set_queue_config('q', %s, '1')", 1),
        *(
            (f"select pgque.set_queue_config('q', '{p}', %s)", 1)
            for p in ("ticker_max_lag", "ticker_max_count", "max_retries", "ticker_paused", "rotation_period")
        ),
        ("select pgque.create_queue(%s, jsonb_build_object('max_retries', %s::text))", 2),
        ("select pgque.unsubscribe(%s, %s)", 2),
        ("select pgque.drop_queue(%s, true)", 1),
    ]
    outcomes: dict[str, int] = {}
    created = set()
    for value in INJECTIONS + PARAM_NAMES:
        for query, arity in calls:
            try:
                with conn.transaction():
                    run(query, (value,) * arity)
                outcomes["ok"] = outcomes.get("ok", 0) + 1
                if query.startswith("select pgque.create_queue(%s)"):
                    created.add(value)
            except psycopg.Error as error:
                assert allowed(error.sqlstate), f"{query} with {value!r}: {error.sqlstate} {error}"
                outcomes[str(error.sqlstate)] = outcomes.get(str(error.sqlstate), 0) + 1
    assert run(f"select array_agg(x) from {CANARY}").fetchone() == ([1],), "injected SQL ran"
    assert run("select to_regclass('public.inj_canary') is not null").fetchone() == (True,)
    queues = {name for (name,) in run("select queue_name from pgque.queue")}
    assert queues <= {"q"} | created, "only the queues asked for exist, under exactly the names given"
    # the queue 'q' took exactly the values set on it, nothing else
    after = run("select * from pgque.queue where queue_name = 'q'").fetchall()
    columns = [d.name for d in run("select * from pgque.queue limit 0").description or []]
    changed = {c for c, a, b in zip(columns, config[0], after[0], strict=True) if a != b}
    assert changed <= {
        "queue_ticker_max_lag",
        "queue_ticker_max_count",
        "queue_max_retries",
        "queue_ticker_paused",
        "queue_rotation_period",
        "queue_extra_maint",
    }, changed
    assert after[0][columns.index("queue_disable_insert")] is False
    assert violations(conn) == []
    report(
        f"{len(INJECTIONS) + len(PARAM_NAMES)} hostile strings x {len(calls)} calls: outcomes {outcomes};"
        " canary table untouched, no injected statement ran"
    )


# ---------------------------------------------------------------------------
# search_path hijack
# ---------------------------------------------------------------------------

EVIL_FUNCTIONS = {
    # name(args): body returning the real thing, after recording the hit
    "now()": "timestamptz|pg_catalog.now()",
    "clock_timestamp()": "timestamptz|pg_catalog.clock_timestamp()",
    "statement_timestamp()": "timestamptz|pg_catalog.statement_timestamp()",
    "current_setting(text)": "text|pg_catalog.current_setting($1)",
    "set_config(text, text, boolean)": "text|pg_catalog.set_config($1, $2, $3)",
    "nextval(regclass)": "bigint|pg_catalog.nextval($1)",
    "setval(regclass, bigint)": "bigint|pg_catalog.setval($1, $2)",
    "quote_ident(text)": "text|pg_catalog.quote_ident($1)",
    "quote_literal(text)": "text|pg_catalog.quote_literal($1)",
    "quote_nullable(text)": "text|pg_catalog.quote_nullable($1)",
    "format(text)": "text|pg_catalog.format($1)",
    "format(text, variadic text[])": "text|pg_catalog.format($1, variadic $2)",
    "concat(variadic text[])": "text|pg_catalog.concat(variadic $1)",
    "lower(text)": "text|pg_catalog.lower($1)",
    "length(text)": "integer|pg_catalog.length($1)",
    "octet_length(text)": "integer|pg_catalog.octet_length($1)",
    "strpos(text, text)": "integer|pg_catalog.strpos($1, $2)",
    "split_part(text, text, integer)": "text|pg_catalog.split_part($1, $2, $3)",
    "substr(text, integer)": "text|pg_catalog.substr($1, $2)",
    "replace(text, text, text)": "text|pg_catalog.replace($1, $2, $3)",
    "cardinality(anyarray)": "integer|pg_catalog.cardinality($1)",
    "array_length(anyarray, integer)": "integer|pg_catalog.array_length($1, $2)",
    "generate_series(integer, integer)": "setof integer|select pg_catalog.generate_series($1, $2)",
    "pg_current_xact_id()": "xid8|pg_catalog.pg_current_xact_id()",
    "txid_current()": "bigint|pg_catalog.txid_current()",
    "pg_current_snapshot()": "pg_snapshot|pg_catalog.pg_current_snapshot()",
    "pg_notify(text, text)": "void|pg_catalog.pg_notify($1, $2)",
    "hashtext(text)": "integer|pg_catalog.hashtext($1)",
    "jsonb_typeof(jsonb)": "text|pg_catalog.jsonb_typeof($1)",
    "to_jsonb(text)": "jsonb|pg_catalog.to_jsonb($1)",
    "round(numeric)": "numeric|pg_catalog.round($1)",
    "abs(integer)": "integer|pg_catalog.abs($1)",
    "version()": "text|pg_catalog.version()",
}
EVIL_OPERATORS = [  # (operator, left, right, result, real function)
    ("=", "text", "text", "boolean", "pg_catalog.texteq"),
    ("<>", "text", "text", "boolean", "pg_catalog.textne"),
    ("=", "integer", "integer", "boolean", "pg_catalog.int4eq"),
    ("=", "bigint", "bigint", "boolean", "pg_catalog.int8eq"),
    ("<", "bigint", "bigint", "boolean", "pg_catalog.int8lt"),
    (">=", "bigint", "bigint", "boolean", "pg_catalog.int8ge"),
    ("||", "text", "text", "text", "pg_catalog.textcat"),
    ("+", "timestamp with time zone", "interval", "timestamp with time zone", "pg_catalog.timestamptz_pl_interval"),
    ("-", "timestamp with time zone", "interval", "timestamp with time zone", "pg_catalog.timestamptz_mi_interval"),
]
ENGINE_RELATIONS = [
    "queue",
    "consumer",
    "subscription",
    "tick",
    "retry_queue",
    "dead_letter",
    "config",
    "event_template",
    "idem",
    "delay_queue",
    "event_1",
    "event_1_0",
    "event_1_1",
    "event_1_2",
    "batch_id_seq",
]


def plant(conn: psycopg.Connection[Any]) -> int:
    """As the attacker: schema pgque_evil full of look-alikes, and temporary look-alike views; returns how many."""
    run = conn.execute
    run("create schema pgque_evil")
    run("create sequence pgque_evil.hits")
    run("create table pgque_evil.log (what text, who text)")
    run(
        "grant usage on schema pgque_evil to public; grant usage, update on sequence pgque_evil.hits to public;"
        " grant insert on pgque_evil.log to public"
    )
    run("""create function pgque_evil.hit(what text) returns boolean language plpgsql
           set search_path = pg_catalog as $$
           begin
               perform pg_catalog.nextval('pgque_evil.hits');
               insert into pgque_evil.log values (what, current_user);
               raise warning 'pgque_evil: % ran as %', what, current_user;
               return true;
           end $$""")
    planted = 0
    for signature, spec in EVIL_FUNCTIONS.items():
        returns, body = spec.split("|", 1)
        name = signature.split("(")[0]
        if returns.startswith("setof"):
            code = f"begin perform pgque_evil.hit('{name}'); return query {body}; end"
        elif returns == "void":
            code = f"begin perform pgque_evil.hit('{name}'); perform {body}; end"
        else:
            code = f"begin perform pgque_evil.hit('{name}'); return {body}; end"
        run(f"create function pgque_evil.{signature} returns {returns} language plpgsql as $$ {code} $$")
        planted += 1
    for number, (op, left, right, result, real) in enumerate(EVIL_OPERATORS):
        run(f"""create function pgque_evil.op{number}(a {left}, b {right}) returns {result} language plpgsql as $$
                begin perform pgque_evil.hit('operator {op}'); return {real}(a, b); end $$""")
        run(f"create operator pgque_evil.{op} (leftarg = {left}, rightarg = {right}, function = pgque_evil.op{number})")
        planted += 1
    for relation in ENGINE_RELATIONS:
        view = f"select pgque_evil.hit('{relation}') as hit"
        run(f"create view pgque_evil.{relation} as {view}")
        run(f"create temporary view {relation} as {view}")  # pg_temp is searched first for relations
        planted += 2
    run("create type pgque_evil.message as (msg_id bigint)")
    return planted + 1


def hits(admin: psycopg.Connection[Any]) -> tuple[bool, list[tuple[Any, ...]]]:
    called = admin.execute("select is_called from pgque_evil.hits").fetchone()
    log = admin.execute("select * from pgque_evil.log").fetchall()
    return bool(called and called[0]), [tuple(r) for r in log]


def test_search_path_and_temp_look_alikes_never_run(db: Database, roles: Roles, report: Callable[[str], None]) -> None:
    """An app role plants look-alike functions, operators, views and a type first on its search_path
    (and temporary views, which PostgreSQL searches first for relations even under a pinned search_path),
    then calls every routine it may execute, and the flow gives the right results: nothing planted ever runs."""
    owner = db.connect()
    world = Fixture(owner)
    world.commit_world()
    attacker = make_role(roles, "app")
    with db.server.admin() as admin:
        admin.execute(
            pgsql.SQL("grant create on database {} to {}").format(pgsql.Identifier(db.name), pgsql.Identifier(attacker))
        )
    conn = roles.session(attacker).conn
    planted = plant(conn)
    conn.execute("set search_path = pgque_evil, pg_catalog, pgque, public")
    # the trap works: a plain unqualified call in the attacker's own session is caught
    conn.execute("select now()")
    assert hits(owner) == (True, [("now", attacker)])
    owner.execute("truncate pgque_evil.log")
    owner.execute("select setval('pgque_evil.hits', 1, false)")

    called, refused = 0, 0
    for routine in routines(owner):
        if not scalar(
            owner, "select has_function_privilege(%s, %s::regprocedure, 'EXECUTE')", (attacker, routine.regprocedure)
        ):
            continue
        with conn.transaction(force_rollback=True):  # the attacker opens the batches, then calls
            conn.execute("select * from pgque.receive('q', 'c', 1)")
            conn.execute("select * from pgque.receive_coop('q', 'cc', 's', 1)")
            args = attacker_args(conn, world, routine)
            try:
                with conn.transaction():
                    conn.execute(routine.statement(), args)
                called += 1
            except psycopg.Error as error:
                assert allowed(error.sqlstate, routine.name), f"{routine}: {error.sqlstate} {error}"
                refused += 1
        assert hits(owner) == (False, []), f"{routine} ran planted code"

    # and the whole flow, under the hostile path, gives the right results
    run = conn.execute
    assert run("select pgque.ack(batch_id) from pgque.receive('q', 'c', 1)").fetchone() == (1,)
    ids = run("select pgque.send_batch('q', 't', array['a', 'b']::text[])").fetchone()
    assert ids is not None
    owner.execute("select pgque.force_next_tick('q')")
    owner.execute("select pgque.ticker('q')")
    assert run("select pgque.subscribe('q', 'late')").fetchone() == (1,)
    rows = run("select msg_id, payload from pgque.receive('q', 'c', null)").fetchall()
    assert rows == list(zip(ids[0], ["a", "b"], strict=True))
    assert run("select pgque.ack(batch_id) from pgque.receive('q', 'c', 1)").fetchone() == (1,)
    assert hits(owner) == (False, [])
    assert violations(owner) == []
    report(
        f"{planted} planted look-alikes (pgque_evil first on search_path, pg_catalog after it, temp views);"
        f" {called + refused} routines called by an app role ({called} ran, {refused} refused the arguments):"
        " nothing planted ran, results correct"
    )


def attacker_args(conn: psycopg.Connection[Any], world: Fixture, routine: Routine) -> list[Any]:
    """Valid arguments, with batch ids and message of the batches the attacker's transaction has open."""
    batch, msg_id, message = conn.execute(
        "select batch_id, msg_id, m::text from pgque.receive('q', 'c', 1) m"
    ).fetchone() or (None, None, None)
    saved = (world.batch, world.msg_id, world.message)
    world.batch, world.msg_id, world.message = batch, msg_id, message
    try:
        return world.valid_args(routine)
    finally:
        world.batch, world.msg_id, world.message = saved
