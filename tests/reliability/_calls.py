"""Calling every routine of schema ``pgque`` with real arguments, for the fuzz and role-matrix tests.

``routines(conn)`` reads the routines from ``pg_proc`` (so nothing the engine
ships is forgotten); ``Fixture`` commits a small world once per database (a
queue ``q`` with a normal consumer ``c`` and a cooperative consumer ``cc``
with member ``s``, events waiting for both, a dead letter) and, inside the
caller's transaction, opens a batch for each, so that every argument can be
given a *valid* value by parameter name and type (``valid_value``). A call is
``select * from pgque.f($1::type, ...)`` (``call`` for a procedure).

``classify(error)`` says whether a server error is one the spec allows: a
``PQ***`` SQLSTATE (the engine's own), a data exception (class ``22``: the
value itself is unusable: invalid text representation, out of range, NUL...),
the not-null violation the spec names for ``nack`` (``23502``), or an
oversize value (``54000``). Anything else (``XX000`` internal error,
``P0001`` a bare PL/pgSQL ``raise``, ``42xxx`` a syntax or undefined-object
error, which would mean a value leaked into SQL text, a constraint violation
that validation should have caught) is a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Routines not called: uninstall() drops the schema (owner-only, covered by
# tests/engine/test_roles.py); ticker_loop() commits, so it cannot run inside
# the per-call transaction (called on its own by the role test); trigger
# functions cannot be called directly; _trig_capture takes its trigger's
# NEW/OLD records.
SKIP = {"uninstall", "ticker_loop", "_trig_capture"}

ALLOWED_STATES = {"23502", "54000"}

# Admin-only internal helpers whose argument *is* an object name or trusted
# SQL (spec 6.12, 6.8): PostgreSQL's own "no such object" / "not a sequence" /
# "zero-length identifier" errors are their documented behaviour for a name
# that is not one; get_batch_cursor applies i_extra_where verbatim (trusted
# SQL, the reason it is admin-only), and a cursor name can clash (42P03).
_OBJECT_NAME_STATES = {"42P01", "3F000", "42809", "42704", "42601", "42602"}
EXTRA_ALLOWED: dict[str, set[str]] = {
    "seq_getval": _OBJECT_NAME_STATES,
    "seq_setval": _OBJECT_NAME_STATES,
    "_grant_perms_from": _OBJECT_NAME_STATES,
    "get_batch_cursor": {"42601", "42P03", "42703", "42883", "42804"},
}


def allowed(sqlstate: str | None, routine: str | None = None) -> bool:
    """Whether a server error with this SQLSTATE is one the engine may raise (see module doc)."""
    if sqlstate is None:
        return False
    if routine is not None and sqlstate in EXTRA_ALLOWED.get(routine, set()):
        return True
    return sqlstate.startswith("PQ") or sqlstate.startswith("22") or sqlstate in ALLOWED_STATES


@dataclass(frozen=True)
class Routine:
    name: str
    identity: str
    """``pg_get_function_identity_arguments``: how the routine is told apart from its overloads."""
    kind: str
    """``f`` function, ``p`` procedure."""
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]
    """IN argument types, ``format_type`` text (e.g. ``text``, ``pgque.message``, ``timestamp with time zone``)."""
    result: str
    granted: bool
    """Whether an API role (pgque_admin, hence anyone) may execute it; owner-only internals may not."""

    @property
    def cooperative(self) -> bool:
        return "i_subconsumer" in self.arg_names

    @property
    def regprocedure(self) -> str:
        """``pgque."name"(type, ...)``, for ``::regprocedure``."""
        return f"pgque.{sql.Identifier(self.name).as_string()}({', '.join(self.arg_types)})"

    def statement(self) -> sql.Composed:
        """``select * from pgque.<name>(%s::<type>, ...)`` (or ``call``)."""
        args = sql.SQL(", ").join(sql.SQL("%s::" + t) for t in self.arg_types)
        verb = sql.SQL("call" if self.kind == "p" else "select * from")
        return sql.SQL("{} pgque.{}({})").format(verb, sql.Identifier(self.name), args)

    def __str__(self) -> str:
        return f"{self.name}({self.identity})"


def routines(conn: psycopg.Connection[Any]) -> list[Routine]:
    """Every routine of schema ``pgque`` that can be called directly (see ``SKIP``)."""
    rows = conn.execute(
        """
        select p.proname, pg_get_function_identity_arguments(p.oid), p.prokind::text,
               coalesce(p.proargnames, '{}')::text[], coalesce(p.proargmodes::text[], '{}'),
               array(select format_type(t, null) from unnest(p.proargtypes::oid[]) with ordinality u(t, i)
                      order by i)::text[],
               coalesce(pg_get_function_result(p.oid), ''),
               has_function_privilege('pgque_admin', p.oid, 'EXECUTE')
          from pg_proc p
         where p.pronamespace = 'pgque'::regnamespace
         order by 1, 2
        """
    ).fetchall()
    found = []
    for name, identity, kind, all_names, modes, types, result, granted in rows:
        if name in SKIP or result == "trigger":
            continue
        names = [n for i, n in enumerate(all_names) if not modes or modes[i] in ("i", "b", "v")]
        names = names[: len(types)] + [f"arg{i}" for i in range(len(names), len(types))]
        found.append(Routine(name, identity, kind, tuple(names), tuple(types), result, granted))
    return found


class Fixture:
    """A committed world to call routines in, and valid argument values for it."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.batch: int | None = None
        self.msg_id: int | None = None
        self.message: str | None = None
        self.coop_batch: int | None = None
        self.coop_msg_id: int | None = None

    def commit_world(self) -> None:
        """Create the committed state (autocommit connection): queues, consumers, events, a dead letter."""
        run = self.conn.execute
        run("create sequence if not exists public.fuzz_seq")
        run("grant all on sequence public.fuzz_seq to pgque_admin")  # this database's ACL, dropped with it
        for queue in ("q", "d"):
            run("select pgque.create_queue(%s)", (queue,))
        run("select pgque.subscribe('q', 'c')")
        run("select pgque.register_subconsumer('q', 'cc', 's')")
        run("select pgque.subscribe('d', 'dc')")
        run("select pgque.set_queue_config('d', 'max_retries', '0')")
        for queue in ("q", "d"):
            run("select pgque.send_batch(%s, 't', array['{\"a\": 1}', 'two', null])", (queue,))
        for queue in ("q", "d"):
            run("select pgque.force_next_tick(%s)", (queue,))
            run("select pgque.ticker(%s)", (queue,))
        with self.conn.transaction():
            [batch, msg] = run("select batch_id, m::text from pgque.receive('d', 'dc', 1) m").fetchone() or (None, None)
            assert batch is not None
            run("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'fuzz')", (batch, msg))
            run("select pgque.ack(%s)", (batch,))
        row = run("select dl_id from pgque.dead_letter").fetchone()
        assert row is not None
        self.dl_id = int(row[0])
        self.tick = int(
            scalar(
                self.conn,
                "select max(tick_id) from pgque.tick t join pgque.queue q on q.queue_id = t.tick_queue"
                " where q.queue_name = 'q'",
            )
        )
        self.queue_id = int(scalar(self.conn, "select queue_id from pgque.queue where queue_name = 'q'"))

    def open_batches(self) -> None:
        """Inside the caller's transaction: open a batch for ``c`` and one for member ``cc.s``."""
        row = self.conn.execute("select batch_id, msg_id, m::text from pgque.receive('q', 'c', 1) m").fetchone()
        assert row is not None, "consumer c has events waiting"
        self.batch, self.msg_id, self.message = row
        row = self.conn.execute("select batch_id, msg_id from pgque.receive_coop('q', 'cc', 's', 1)").fetchone()
        assert row is not None, "member cc.s has events waiting"
        self.coop_batch, self.coop_msg_id = row

    def valid_value(self, routine: Routine, name: str, type_: str) -> Any:
        """A value that makes sense for this parameter of this routine (text, cast server-side)."""
        coop = routine.cooperative
        n = name.lower()
        if type_ == "text":
            if n in ("x_queue", "i_queue", "queue", "queue_name", "i_queue_name", "x_queue_name"):
                return "q"
            if n in ("i_subconsumer",):
                return "s"
            if "consumer" in n:
                return "cc" if coop else "c"
            return {
                "x_param_name": "max_retries",
                "x_param_value": "3",
                "i_cursor_name": "fuzz_cursor",
                "i_extra_where": "true",
                "i_seq_name": "public.fuzz_seq",
                "i_name": "a.b",
                "src_schema": "pgque",
                "src_table": "event_template",
                "dst_schema": "pgque",
                "dst_table": f"event_{self.queue_id}",
                "i_idem_key": "key",
            }.get(n, "x")
        if type_ == "bigint":
            if "dead_letter" in n:
                return self.dl_id
            if "batch" in n:
                return self.batch
            if n in ("x_event_id", "i_event_id", "x_ev_id", "ev_id"):
                return self.msg_id
            if "tick" in n:
                return self.tick
            return 1
        if type_ == "integer":
            return {
                "i_max_return": 10,
                "i_batch_handling": 0,
                "p_period_ms": 100,
                "i_ticks_per_second": 10,
                "i_queue_id": self.queue_id,
                "p_queue_id": self.queue_id,
            }.get(n, 1)
        return {
            "integer[]": "{1,2}",
            "bigint[]": "{1,2}",
            "interval": "1 second",
            "boolean": "false",
            "timestamp with time zone": "now",
            "jsonb": "{}",
            "text[]": "{a,b}",
            "jsonb[]": '{"{}"}',
            "xid8": "1",
            "oid": "0",
            "pgque.message": self.message,
        }.get(type_)  # a type not listed here: NULL

    def valid_args(self, routine: Routine) -> list[Any]:
        return [self.valid_value(routine, n, t) for n, t in zip(routine.arg_names, routine.arg_types, strict=True)]


def scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] | None = None) -> Any:
    """The first column of the only row of ``query``."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def server_alive(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return conn.execute("select 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False
