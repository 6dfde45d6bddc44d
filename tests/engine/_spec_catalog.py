"""The catalog the spec (shared/spec/sql-api.md) prescribes, transcribed as data.

Shared by ``test_catalog.py`` (signatures, security mode, tables) and
``test_roles.py`` (who may execute what). Every entry below was typed in from
the spec's sections 4, 5 and 6; nothing is read back from the engine.

Functions are keyed by name plus ``pg_get_function_arguments`` text, which is
what PostgreSQL shows: parameter names, ``OUT`` columns, and defaults as
stored constants (``'00:01:00'::interval`` for ``'60 seconds'``,
``DEFAULT NULL::text`` for a NULL default).

``since`` says which revision of sa_pgque ships a function:

* ``"0001"``, ``"0002"``, ... - required when Alembic revision
  ``pgque_<since>`` exists;
* ``"triggers"`` - required whenever ``85_triggers.sql`` is part of
  revision 0001 (it was written in parallel);
* ``"later"`` - spec surface that a later revision adds (cooperative consumers,
  idempotent send, partition slots). Not required yet; if present it must
  already match. Assigning it to the revision that ships it (``"later"`` ->
  ``"0002"``) is a one-word change per function.

Deliberate deviations from PgQue are written into the data with a comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from alembic.script import ScriptDirectory

from sa_pgque import migrate
from sa_pgque._sqlfiles import sql_step

Mode = Literal["SD", "INV"]
Grant = Literal["reader", "writer", "admin", "none"]
Since = Literal["0001", "0002", "0003", "0004", "triggers", "later"]

TRIGGERS_SCRIPT = "85_triggers.sql"


def triggers_installed() -> bool:
    """Whether this checkout's revision 0001 includes the trigger script."""
    return any(f.name == TRIGGERS_SCRIPT for f in sql_step("pgque_0001"))


@cache
def revision_steps() -> list[str]:
    """The SQL steps of every engine revision, base first (step name = revision id)."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [rev.revision for rev in scripts.walk_revisions("base", "heads")]
    return list(reversed(revisions))


def install_scripts() -> list[str]:
    """The text of every install script of every revision, in the order they run."""
    return [script.read_text(encoding="utf-8") for step in revision_steps() for script in sql_step(step)]


@dataclass(frozen=True)
class Fn:
    """One routine of schema ``pgque`` as the spec describes it."""

    name: str
    args: str
    """``pg_get_function_arguments`` (IN, OUT, defaults)."""
    result: str | None
    """``pg_get_function_result``; ``None`` for a procedure."""
    mode: Mode
    grant: Grant
    """Role that gets EXECUTE directly (admin inherits reader and writer)."""
    strict: bool = False
    volatility: str | None = None
    """``'i'``/``'s'``/``'v'`` where the spec states it, else unchecked."""
    since: Since = "0001"

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.args)

    @property
    def procedure(self) -> bool:
        return self.result is None

    def required(self) -> bool:
        if self.since == "later":
            return False
        if self.since == "triggers":
            return triggers_installed()
        return f"pgque_{self.since}" in revision_steps()


def _out(columns: str) -> str:
    """``"a text, b bigint"`` -> ``"OUT a text, OUT b bigint"``."""
    return ", ".join("OUT " + c.strip() for c in columns.split(","))


TS = "timestamp with time zone"

# 6.6 output columns
QUEUE_INFO = _out(
    "queue_name text, queue_ntables integer, queue_cur_table integer,"
    " queue_rotation_period interval, queue_switch_time " + TS + ","
    " queue_external_ticker boolean, queue_ticker_paused boolean,"
    " queue_ticker_max_count integer, queue_ticker_max_lag interval,"
    " queue_ticker_idle_period interval, ticker_lag interval, ev_per_sec double precision,"
    " ev_new bigint, last_tick_id bigint"
)
CONSUMER_INFO = _out(
    "queue_name text, consumer_name text, lag interval, last_seen interval, last_tick bigint,"
    " current_batch bigint, next_tick bigint, pending_events bigint"
)
BATCH_INFO = _out(
    "queue_name text, consumer_name text, batch_start " + TS + ", batch_end " + TS + ","
    " prev_tick_id bigint, tick_id bigint, lag interval, seq_start bigint, seq_end bigint"
)
# 6.8 next_batch_info / next_batch_custom (cur_* before prev_*)
BATCH_TICKS = _out(
    "batch_id bigint, cur_tick_id bigint, prev_tick_id bigint, cur_tick_time " + TS + ","
    " prev_tick_time " + TS + ", cur_tick_event_seq bigint, prev_tick_event_seq bigint"
)
# 6.8 get_batch_events / get_batch_cursor
BATCH_EVENTS = _out(
    "ev_id bigint, ev_time " + TS + ", ev_txid bigint, ev_retry integer, ev_type text,"
    " ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text"
)

SPEC_FUNCTIONS: tuple[Fn, ...] = (
    # -- 6.1 Publishing -----------------------------------------------------
    Fn("send", "queue_name text, payload jsonb", "bigint", "SD", "writer"),
    Fn("send", "queue_name text, payload text", "bigint", "SD", "writer"),
    Fn("send", "queue_name text, type_name text, payload jsonb", "bigint", "SD", "writer"),
    Fn("send", "queue_name text, type_name text, payload text", "bigint", "SD", "writer"),
    Fn("send_batch", "queue_name text, payloads jsonb[]", "bigint[]", "SD", "writer"),
    Fn("send_batch", "queue_name text, payloads text[]", "bigint[]", "SD", "writer"),
    Fn("send_batch", "queue_name text, type_name text, payloads jsonb[]", "bigint[]", "SD", "writer"),
    Fn("send_batch", "queue_name text, type_name text, payloads text[]", "bigint[]", "SD", "writer"),
    Fn("insert_event", "queue_name text, ev_type text, ev_data text", "bigint", "INV", "writer"),
    Fn(
        "insert_event",
        "queue_name text, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text",
        "bigint",
        "SD",
        "writer",
    ),
    Fn("insert_event_bulk", "queue_name text, ev_type text, ev_data_list text[]", "bigint[]", "SD", "none"),
    Fn(
        "send",
        "i_queue text, i_type text, i_payload jsonb, i_partition_key text",
        "bigint",
        "SD",
        "writer",
        since="later",
    ),
    Fn(
        "send",
        "i_queue text, i_type text, i_payload text, i_partition_key text",
        "bigint",
        "SD",
        "writer",
        since="later",
    ),
    # -- 6.2 Consuming --------------------------------------------------------
    Fn("subscribe", "queue text, consumer text", "integer", "SD", "reader"),
    Fn("unsubscribe", "queue text, consumer text", "integer", "SD", "reader"),
    Fn(
        "receive",
        "i_queue text, i_consumer text, i_max_return integer DEFAULT 100",
        "SETOF pgque.message",
        "SD",
        "reader",
    ),
    Fn("ack", "i_batch_id bigint", "integer", "SD", "reader"),
    Fn(
        "nack",
        "i_batch_id bigint, i_msg pgque.message,"
        " i_retry_after interval DEFAULT '00:01:00'::interval, i_reason text DEFAULT NULL::text",
        "integer",
        "SD",
        "reader",
    ),
    # -- 6.3 Cooperative consumers (revision 0002) --------------------------------
    Fn(
        "register_subconsumer",
        "i_queue text, i_consumer text, i_subconsumer text, i_convert_normal boolean DEFAULT false",
        "integer",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "subscribe_subconsumer",
        "i_queue text, i_consumer text, i_subconsumer text, i_convert_normal boolean DEFAULT false",
        "integer",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "unregister_subconsumer",
        "i_queue text, i_consumer text, i_subconsumer text, i_batch_handling integer DEFAULT 0",
        "integer",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "unsubscribe_subconsumer",
        "i_queue text, i_consumer text, i_subconsumer text, i_batch_handling integer DEFAULT 0",
        "integer",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "next_batch",
        "i_queue text, i_consumer text, i_subconsumer text, i_dead_interval interval DEFAULT NULL::interval",
        "bigint",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "next_batch_custom",
        "i_queue text, i_consumer text, i_subconsumer text, i_min_lag interval,"
        " i_min_count integer, i_min_interval interval,"
        " i_dead_interval interval DEFAULT NULL::interval, "
        + _out("batch_id bigint, prev_tick_id bigint, next_tick_id bigint"),
        "record",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "receive_coop",
        "i_queue text, i_consumer text, i_subconsumer text, i_max_return integer DEFAULT 100,"
        " i_dead_interval interval DEFAULT NULL::interval",
        "SETOF pgque.message",
        "SD",
        "reader",
        since="0002",
    ),
    Fn(
        "touch_subconsumer",
        "i_queue text, i_consumer text, i_subconsumer text",
        "integer",
        "SD",
        "reader",
        since="0002",
    ),
    # -- 6.4 Queue management -----------------------------------------------------
    Fn("create_queue", "i_queue_name text", "integer", "SD", "admin"),
    Fn("drop_queue", "x_queue_name text, x_force boolean", "integer", "SD", "admin"),
    Fn("drop_queue", "x_queue_name text", "integer", "INV", "admin", strict=True),
    Fn("set_queue_config", "x_queue_name text, x_param_name text, x_param_value text", "integer", "SD", "admin"),
    # -- 6.5 Lifecycle and scheduling ------------------------------------------
    Fn("ticker", "i_queue_name text", "bigint", "SD", "admin"),
    Fn("ticker", "", "bigint", "SD", "admin"),
    Fn(
        "ticker",
        "i_queue_name text, i_tick_id bigint, i_orig_timestamp " + TS + ", i_event_seq bigint",
        "bigint",
        "SD",
        "admin",
    ),
    Fn("force_next_tick", "i_queue_name text", "bigint", "SD", "admin"),
    Fn("force_tick", "i_queue_name text", "bigint", "SD", "admin"),
    Fn("ticker_loop", "", None, "INV", "admin"),
    Fn("set_tick_period_ms", "p_period_ms integer", "integer", "SD", "admin"),
    Fn("start", "", "void", "SD", "admin"),
    Fn("stop", "", "void", "SD", "admin"),
    Fn("start_timetable", "i_ticks_per_second integer DEFAULT 10", "void", "SD", "admin"),
    Fn("stop_timetable", "", "void", "SD", "admin"),
    Fn("maint", "", "integer", "SD", "admin"),
    Fn("maint_retry_events", "", "integer", "INV", "admin"),
    Fn("maint_rotate_tables_step1", "i_queue_name text", "integer", "INV", "admin"),
    Fn("maint_rotate_tables_step2", "", "integer", "INV", "admin"),
    Fn("status", "", "TABLE(component text, status text, detail text)", "SD", "admin"),
    Fn("version", "", "text", "SD", "reader"),
    Fn("uninstall", "", "void", "SD", "none"),
    # -- 6.6 Observability -------------------------------------------------------
    Fn("get_queue_info", QUEUE_INFO, "SETOF record", "SD", "reader"),
    Fn("get_queue_info", "i_queue_name text, " + QUEUE_INFO, "SETOF record", "SD", "reader"),
    Fn("get_consumer_info", CONSUMER_INFO, "SETOF record", "SD", "reader"),
    Fn("get_consumer_info", "i_queue_name text, " + CONSUMER_INFO, "SETOF record", "SD", "reader"),
    Fn(
        "get_consumer_info", "i_queue_name text, i_consumer_name text, " + CONSUMER_INFO, "SETOF record", "SD", "reader"
    ),
    Fn("get_batch_info", "x_batch_id bigint, " + BATCH_INFO, "record", "SD", "reader"),
    # -- 6.7 Dead-letter queue ---------------------------------------------------
    Fn(
        "event_dead",
        "i_batch_id bigint, i_event_id bigint, i_reason text, i_ev_time " + TS + ","
        " i_ev_txid xid8, i_ev_retry integer, i_ev_type text, i_ev_data text,"
        " i_ev_extra1 text DEFAULT NULL::text, i_ev_extra2 text DEFAULT NULL::text,"
        " i_ev_extra3 text DEFAULT NULL::text, i_ev_extra4 text DEFAULT NULL::text",
        "integer",
        "SD",
        "admin",
    ),
    Fn(
        "dlq_inspect", "i_queue_name text, i_limit_count integer DEFAULT 100", "SETOF pgque.dead_letter", "SD", "reader"
    ),
    Fn("dlq_replay", "i_dead_letter_id bigint", "bigint", "SD", "writer"),
    Fn(
        "dlq_replay_all",
        "i_queue_name text, " + _out("replayed bigint, failed bigint, first_error text"),
        "record",
        "SD",
        "writer",
    ),
    Fn("dlq_purge", "i_queue_name text, i_older_than interval DEFAULT '30 days'::interval", "integer", "SD", "admin"),
    # -- 6.8 PgQ primitives ------------------------------------------------------
    Fn("register_consumer", "x_queue_name text, x_consumer_id text", "integer", "SD", "reader"),
    Fn("register_consumer_at", "x_queue_name text, x_consumer_name text, x_tick_pos bigint", "integer", "SD", "reader"),
    Fn("unregister_consumer", "x_queue_name text, x_consumer_name text", "integer", "SD", "reader"),
    Fn("next_batch", "i_queue_name text, i_consumer_name text", "bigint", "INV", "reader"),
    Fn("next_batch_info", "i_queue_name text, i_consumer_name text, " + BATCH_TICKS, "record", "INV", "reader"),
    Fn(
        "next_batch_custom",
        "i_queue_name text, i_consumer_name text, i_min_lag interval, i_min_count integer,"
        " i_min_interval interval, " + BATCH_TICKS,
        "record",
        "SD",
        "reader",
    ),
    # Deliberate deviation: SECURITY DEFINER (PgQue: INV), so that pgque_reader
    # can call it directly (spec 5.3 allows it; quirk 10.14 is thereby fixed).
    Fn("get_batch_events", "x_batch_id bigint, " + BATCH_EVENTS, "SETOF record", "SD", "reader"),
    Fn(
        "get_batch_cursor",
        "i_batch_id bigint, i_cursor_name text, i_quick_limit integer, " + BATCH_EVENTS,
        "SETOF record",
        "INV",
        "admin",
        strict=True,
    ),
    Fn(
        "get_batch_cursor",
        "i_batch_id bigint, i_cursor_name text, i_quick_limit integer, i_extra_where text, " + BATCH_EVENTS,
        "SETOF record",
        "INV",
        "admin",
    ),
    Fn("finish_batch", "x_batch_id bigint", "integer", "SD", "reader"),
    Fn("event_retry", "x_batch_id bigint, x_event_id bigint, x_retry_time " + TS, "integer", "SD", "reader"),
    Fn("event_retry", "x_batch_id bigint, x_event_id bigint, x_retry_seconds integer", "integer", "SD", "reader"),
    Fn("batch_retry", "i_batch_id bigint, i_retry_seconds integer", "integer", "SD", "admin"),
    Fn(
        "event_retry_raw",
        "x_queue text, x_consumer text, x_retry_after " + TS + ", x_ev_id bigint,"
        " x_ev_time " + TS + ", x_ev_retry integer, x_ev_type text, x_ev_data text,"
        " x_ev_extra1 text, x_ev_extra2 text, x_ev_extra3 text, x_ev_extra4 text",
        "bigint",
        "SD",
        "admin",
    ),
    Fn("current_event_table", "x_queue_name text", "text", "INV", "admin"),
    # -- 6.9 Trigger helpers -----------------------------------------------------
    Fn("jsontriga", "", "trigger", "INV", "admin", since="triggers"),
    Fn("logutriga", "", "trigger", "INV", "admin", since="triggers"),
    Fn("sqltriga", "", "trigger", "INV", "admin", since="triggers"),
    # -- 6.10 Idempotent send (revision 0003) -----------------------------------
    Fn(
        "send_idem",
        "i_queue text, i_type text, i_payload text, i_idem_key text,"
        " i_ttl interval DEFAULT '01:00:00'::interval, i_partition_key text DEFAULT NULL::text",
        "TABLE(event_id bigint, deduped boolean)",
        "SD",
        "writer",
        since="0003",
    ),
    Fn(
        "send_idem",
        "i_queue text, i_type text, i_payload jsonb, i_idem_key text,"
        " i_ttl interval DEFAULT '01:00:00'::interval, i_partition_key text DEFAULT NULL::text",
        "TABLE(event_id bigint, deduped boolean)",
        "SD",
        "writer",
        since="0003",
    ),
    Fn("maint_idem", "i_queue_name text", "integer", "SD", "admin", since="0003"),
    Fn("maint_idem", "", "integer", "SD", "admin", since="0003"),
    # -- 11 Experimental surfaces: the spec names them only, so signatures are
    # sa_pgque's own (docs/operations.md), in PgQue's style. Revision 0003:
    # delayed delivery and queue shortcuts; revision 0004: statistics, health
    # and metrics (readable by consumers, for monitoring).
    Fn(
        "send_at",
        "i_queue text, i_type text, i_payload text, i_deliver_at " + TS,
        "bigint",
        "SD",
        "writer",
        since="0003",
    ),
    Fn(
        "send_at",
        "i_queue text, i_type text, i_payload jsonb, i_deliver_at " + TS,
        "bigint",
        "SD",
        "writer",
        since="0003",
    ),
    Fn("maint_deliver_delayed", "i_limit integer DEFAULT 1000", "integer", "SD", "admin", since="0003"),
    Fn("pause_queue", "i_queue text", "integer", "SD", "admin", since="0003"),
    Fn("resume_queue", "i_queue text", "integer", "SD", "admin", since="0003"),
    Fn("create_queue", "i_queue text, i_options jsonb", "integer", "SD", "admin", since="0003"),
    Fn(
        "queue_stats",
        "i_queue text DEFAULT NULL::text",
        "TABLE(queue_name text, depth bigint, oldest_pending_age interval,"
        " unticked_events bigint, ev_per_sec double precision, ticker_lag interval,"
        " last_tick_id bigint, consumers integer, retry_pending bigint, dead_letters bigint,"
        " delayed_pending bigint, delayed_due bigint, rotation_age interval,"
        " ticker_paused boolean)",
        "SD",
        "reader",
        volatility="s",
        since="0004",
    ),
    Fn(
        "consumer_stats",
        "i_queue text DEFAULT NULL::text, i_consumer text DEFAULT NULL::text",
        "TABLE(queue_name text, consumer_name text, consumer_role text, last_tick bigint,"
        " lag interval, last_seen interval, pending_events bigint, batch_id bigint,"
        " batch_age interval)",
        "SD",
        "reader",
        volatility="s",
        since="0004",
    ),
    Fn(
        "stuck_consumers",
        "i_threshold interval DEFAULT '00:05:00'::interval, i_queue text DEFAULT NULL::text",
        "TABLE(queue_name text, consumer_name text, reason text, lag interval,"
        " batch_age interval, pending_events bigint)",
        "SD",
        "reader",
        volatility="s",
        since="0004",
    ),
    Fn(
        "queue_health",
        "i_queue text DEFAULT NULL::text, i_stuck_threshold interval DEFAULT '00:05:00'::interval",
        "TABLE(queue_name text, check_name text, status text, detail text)",
        "SD",
        "reader",
        volatility="s",
        since="0004",
    ),
    Fn(
        "otel_metrics",
        "",
        "TABLE(metric_name text, metric_unit text, metric_value double precision, attributes jsonb)",
        "SD",
        "reader",
        volatility="s",
        since="0004",
    ),
    # -- 6.12 Internal helpers (volatility as declared; unmarked = VOLATILE) ------
    Fn("batch_event_sql", "x_batch_id bigint", "text", "INV", "admin", volatility="v"),
    Fn("batch_event_tables", "x_batch_id bigint", "SETOF text", "INV", "admin", volatility="v"),
    Fn(
        "find_tick_helper",
        "i_queue_id integer, i_prev_tick_id bigint, i_prev_tick_time " + TS + ","
        " i_prev_tick_seq bigint, i_min_count bigint, i_min_interval interval, "
        + _out("next_tick_id bigint, next_tick_time " + TS + ", next_tick_seq bigint"),
        "record",
        "INV",
        "admin",
        volatility="s",
    ),
    Fn(
        "insert_event_raw",
        "queue_name text, ev_id bigint, ev_time " + TS + ", ev_owner integer, ev_retry integer,"
        " ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text,"
        " ev_extra4 text",
        "bigint",
        "INV",
        "admin",
        volatility="v",
    ),
    Fn("seq_getval", "i_seq_name text", "bigint", "INV", "admin", strict=True, volatility="v"),
    Fn("seq_setval", "i_seq_name text, i_new_value bigint", "bigint", "INV", "admin", strict=True, volatility="v"),
    Fn("quote_fqname", "i_name text", "text", "INV", "admin", strict=True, volatility="i"),
    Fn("grant_perms", "x_queue_name text", "integer", "SD", "admin", volatility="v"),
    Fn(
        "_grant_perms_from",
        "src_schema text, src_table text, dst_schema text, dst_table text",
        "integer",
        "INV",
        "admin",
        strict=True,
        volatility="v",
    ),
    Fn("tune_storage", "i_queue_name text", "integer", "INV", "admin", strict=True, volatility="v"),
    Fn("upgrade_schema", "", "integer", "INV", "admin", volatility="v"),
    Fn("maint_operations", _out("func_name text, func_arg text"), "SETOF record", "INV", "admin", volatility="v"),
    Fn("maint_tables_to_vacuum", "", "SETOF text", "INV", "admin", volatility="v"),
    Fn("_urlencode", "val text", "text", "INV", "admin", strict=True, volatility="i", since="triggers"),
    Fn(
        "_validate_coop_names",
        "i_queue text, i_consumer text, i_subconsumer text",
        "void",
        "SD",
        "none",
        volatility="v",
        since="0002",
    ),
    Fn(
        "_clear_member_cursor",
        "p_queue_id integer, p_consumer_id integer",
        "void",
        "SD",
        "none",
        volatility="v",
        since="0002",
    ),
    Fn(
        "_nack_batch_event",
        "i_batch_id bigint, i_msg pgque.message, i_retry_after interval, i_reason text",
        "integer",
        "SD",
        "none",
        volatility="v",
        since="later",
    ),
    # -- 11 Partition keys (a later revision) -------------------------------------
    Fn(
        "subscribe_slot",
        "i_queue text, i_consumer text, i_slot integer, i_n integer",
        "void",
        "SD",
        "reader",
        since="later",
    ),
    Fn("unsubscribe_slot", "i_queue text, i_consumer text, i_slot integer", "void", "SD", "reader", since="later"),
    Fn(
        "claim_slot",
        "i_queue text, i_consumer text, i_slot integer, i_worker text, i_ttl interval DEFAULT '00:00:30'::interval",
        "bigint",
        "SD",
        "reader",
        since="later",
    ),
    Fn(
        "release_slot",
        "i_queue text, i_consumer text, i_slot integer, i_worker text",
        "boolean",
        "SD",
        "reader",
        since="later",
    ),
    Fn(
        "receive_partitioned",
        "i_queue text, i_consumer text, i_slot integer, i_n integer, i_worker text, i_max integer DEFAULT 100",
        "SETOF pgque.message",
        "SD",
        "reader",
        since="later",
    ),
    Fn(
        "ack_partitioned",
        "i_queue text, i_consumer text, i_slot integer, i_n integer, i_worker text",
        "integer",
        "SD",
        "reader",
        since="later",
    ),
    Fn(
        "nack_partitioned",
        "i_queue text, i_consumer text, i_slot integer, i_n integer, i_worker text,"
        " i_msg pgque.message, i_retry_after interval DEFAULT '00:01:00'::interval,"
        " i_reason text DEFAULT NULL::text",
        "integer",
        "SD",
        "reader",
        since="later",
    ),
    Fn(
        "_slot_name",
        "i_consumer text, i_slot integer, i_n integer",
        "text",
        "INV",
        "none",
        volatility="i",
        since="later",
    ),
    Fn(
        "_slot_guard",
        "i_queue text, i_consumer text, i_slot integer, i_n integer, i_worker text",
        "integer",
        "SD",
        "none",
        volatility="v",
        since="later",
    ),
    Fn(
        "_slot_batch",
        "i_queue text, i_consumer text, i_slot integer, i_n integer",
        "bigint",
        "SD",
        "none",
        volatility="v",
        since="later",
    ),
)

PINNED_SEARCH_PATH = ["search_path=pgque, pg_catalog"]

# ---------------------------------------------------------------------------
# Tables (section 4). Column: (name, type, not null, default).
# A default is the ``pg_get_expr`` text, ``None`` for "no default", or
# CURRENT_TXID for "current txid" (checked by evaluating the expression).
# ---------------------------------------------------------------------------

CURRENT_TXID = "<current txid>"

Column = tuple[str, str, bool, str | None]

_EVENT_FIELDS: tuple[Column, ...] = (
    ("ev_type", "text", False, None),
    ("ev_data", "text", False, None),
    ("ev_extra1", "text", False, None),
    ("ev_extra2", "text", False, None),
    ("ev_extra3", "text", False, None),
    ("ev_extra4", "text", False, None),
)

EVENT_TEMPLATE_COLUMNS: tuple[Column, ...] = (
    ("ev_id", "bigint", True, None),
    ("ev_time", TS, True, None),
    ("ev_txid", "xid8", True, "pg_current_xact_id()"),
    ("ev_owner", "integer", False, None),
    ("ev_retry", "integer", False, None),
    *_EVENT_FIELDS,
)

TABLE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "queue": (
        ("queue_id", "integer", True, "nextval('pgque.queue_queue_id_seq'::regclass)"),
        ("queue_name", "text", True, None),
        ("queue_ntables", "integer", True, "3"),
        ("queue_cur_table", "integer", True, "0"),
        ("queue_rotation_period", "interval", True, "'02:00:00'::interval"),
        ("queue_switch_step1", "bigint", True, CURRENT_TXID),
        ("queue_switch_step2", "bigint", False, CURRENT_TXID),
        ("queue_switch_time", TS, True, "now()"),
        ("queue_external_ticker", "boolean", True, "false"),
        ("queue_disable_insert", "boolean", True, "false"),
        ("queue_ticker_paused", "boolean", True, "false"),
        ("queue_ticker_max_count", "integer", True, "500"),
        ("queue_ticker_max_lag", "interval", True, "'00:00:03'::interval"),
        ("queue_ticker_idle_period", "interval", True, "'00:01:00'::interval"),
        ("queue_data_pfx", "text", True, None),
        ("queue_event_seq", "text", True, None),
        ("queue_tick_seq", "text", True, None),
        ("queue_extra_maint", "text[]", False, None),
        ("queue_max_retries", "integer", False, None),
    ),
    "consumer": (
        ("co_id", "integer", True, "nextval('pgque.consumer_co_id_seq'::regclass)"),
        ("co_name", "text", True, None),
    ),
    "subscription": (
        ("sub_id", "integer", True, "nextval('pgque.subscription_sub_id_seq'::regclass)"),
        ("sub_queue", "integer", True, None),
        ("sub_consumer", "integer", True, None),
        ("sub_last_tick", "bigint", False, None),
        ("sub_active", TS, True, "now()"),
        ("sub_batch", "bigint", False, None),
        ("sub_next_tick", "bigint", False, None),
        ("sub_role", "text", True, "'normal'::text"),
    ),
    "tick": (
        ("tick_queue", "integer", True, None),
        ("tick_id", "bigint", True, None),
        ("tick_time", TS, True, "now()"),
        ("tick_snapshot", "pg_snapshot", True, "pg_current_snapshot()"),
        ("tick_event_seq", "bigint", True, None),
    ),
    "event_template": EVENT_TEMPLATE_COLUMNS,
    "retry_queue": (
        ("ev_retry_after", TS, True, None),
        ("ev_queue", "integer", True, None),
        ("ev_id", "bigint", True, None),
        ("ev_time", TS, True, None),
        ("ev_txid", "xid8", False, None),
        ("ev_owner", "integer", True, None),
        ("ev_retry", "integer", False, None),
        *_EVENT_FIELDS,
    ),
    "dead_letter": (
        ("dl_id", "bigint", True, "nextval('pgque.dead_letter_dl_id_seq'::regclass)"),
        ("dl_queue_id", "integer", True, None),
        ("dl_consumer_id", "integer", True, None),
        ("dl_time", TS, True, "now()"),
        ("dl_reason", "text", False, None),
        ("ev_id", "bigint", True, None),
        ("ev_time", TS, True, None),
        ("ev_txid", "xid8", False, None),
        ("ev_retry", "integer", False, None),
        *_EVENT_FIELDS,
    ),
    # 4.9 (revision 0003)
    "idem": (
        ("queue_id", "integer", True, None),
        ("idem_key", "text", True, None),
        ("event_id", "bigint", False, None),
        ("expires_at", TS, True, None),
    ),
    # sa_pgque's own (revision 0003): events parked by send_at, shaped like retry_queue
    "delay_queue": (
        ("ev_deliver_at", TS, True, None),
        ("ev_queue", "integer", True, None),
        ("ev_id", "bigint", True, None),
        ("ev_time", TS, True, None),
        *_EVENT_FIELDS,
    ),
    "config": (
        ("singleton", "boolean", True, "true"),
        ("ticker_job_id", "bigint", False, None),
        ("maint_job_id", "bigint", False, None),
        ("scheduler", "text", False, None),
        ("tick_period_ms", "integer", True, "100"),
        ("installed_at", TS, True, "clock_timestamp()"),
    ),
}
"""Tables of schema pgque (4.12 comes later)."""

LATER_TABLES = ("partition_consumer", "partition_slot")

# Constraints: name -> (kind, columns, referenced "table(cols)" or None, on delete)
# kind: p primary key, u unique, f foreign key, c check. ``on delete`` is
# "cascade", "no action", or None where the spec does not say.
Constraint = tuple[str, tuple[str, ...], str | None, str | None]

TABLE_CONSTRAINTS: dict[str, dict[str, Constraint]] = {
    "queue": {
        "queue_pkey": ("p", ("queue_id",), None, None),
        "queue_name_uq": ("u", ("queue_name",), None, None),
    },
    "consumer": {
        "consumer_pkey": ("p", ("co_id",), None, None),
        "consumer_name_uq": ("u", ("co_name",), None, None),
    },
    "subscription": {
        "subscription_pkey": ("p", ("sub_queue", "sub_consumer"), None, None),
        "subscription_batch_idx": ("u", ("sub_batch",), None, None),
        "sub_queue_fkey": ("f", ("sub_queue",), "queue(queue_id)", "no action"),
        "sub_consumer_fkey": ("f", ("sub_consumer",), "consumer(co_id)", "no action"),
        "subscription_sub_role_check": ("c", ("sub_role",), None, None),
    },
    "tick": {
        "tick_pkey": ("p", ("tick_queue", "tick_id"), None, None),
        "tick_queue_fkey": ("f", ("tick_queue",), "queue(queue_id)", None),
    },
    "event_template": {},
    "retry_queue": {
        "rq_pkey": ("p", ("ev_owner", "ev_id"), None, None),
        "rq_queue_id_fkey": ("f", ("ev_queue",), "queue(queue_id)", "no action"),
    },
    "dead_letter": {
        "dead_letter_pkey": ("p", ("dl_id",), None, None),
        "dead_letter_dl_queue_id_fkey": ("f", ("dl_queue_id",), "queue(queue_id)", "cascade"),
        "dead_letter_dl_consumer_id_fkey": ("f", ("dl_consumer_id",), "consumer(co_id)", "cascade"),
    },
    "idem": {
        "idem_pkey": ("p", ("queue_id", "idem_key"), None, None),
        "idem_queue_id_fkey": ("f", ("queue_id",), "queue(queue_id)", "cascade"),
    },
    "delay_queue": {
        "dq_pkey": ("p", ("ev_queue", "ev_id"), None, None),
        "dq_queue_id_fkey": ("f", ("ev_queue",), "queue(queue_id)", "cascade"),
    },
    "config": {
        "config_pkey": ("p", ("singleton",), None, None),
        "config_singleton_check": ("c", ("singleton",), None, None),
        "config_scheduler_check": ("c", ("scheduler",), None, None),
        "config_tick_period_ms_check": ("c", ("tick_period_ms",), None, None),
    },
}

# Indexes: name -> (columns, unique)
TABLE_INDEXES: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    "queue": {"queue_pkey": (("queue_id",), True), "queue_name_uq": (("queue_name",), True)},
    "consumer": {"consumer_pkey": (("co_id",), True), "consumer_name_uq": (("co_name",), True)},
    "subscription": {
        "subscription_pkey": (("sub_queue", "sub_consumer"), True),
        "subscription_batch_idx": (("sub_batch",), True),
    },
    "tick": {"tick_pkey": (("tick_queue", "tick_id"), True)},
    "event_template": {},
    "retry_queue": {
        "rq_pkey": (("ev_owner", "ev_id"), True),
        "rq_retry_idx": (("ev_retry_after",), False),
    },
    "dead_letter": {
        "dead_letter_pkey": (("dl_id",), True),
        "dl_queue_time_idx": (("dl_queue_id", "dl_time"), False),
        "dl_queue_consumer_ev_idx": (("dl_queue_id", "dl_consumer_id", "ev_id"), True),
    },
    "idem": {
        "idem_pkey": (("queue_id", "idem_key"), True),
        "idem_expires_at_idx": (("expires_at",), False),
    },
    "delay_queue": {
        "dq_pkey": (("ev_queue", "ev_id"), True),
        "dq_deliver_idx": (("ev_deliver_at",), False),
    },
    "config": {"config_pkey": (("singleton",), True)},
}

# 4.10: name -> (type, owned by "table.column" or None where the spec says nothing)
SEQUENCES: dict[str, tuple[str, str | None]] = {
    "queue_queue_id_seq": ("integer", "queue.queue_id"),
    "consumer_co_id_seq": ("integer", None),
    "subscription_sub_id_seq": ("integer", None),
    "batch_id_seq": ("bigint", None),
    "dead_letter_dl_id_seq": ("bigint", None),
}

# 4.11
MESSAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("msg_id", "bigint"),
    ("batch_id", "bigint"),
    ("type", "text"),
    ("payload", "text"),
    ("retry_count", "integer"),
    ("created_at", TS),
    ("extra1", "text"),
    ("extra2", "text"),
    ("extra3", "text"),
    ("extra4", "text"),
)

# ---------------------------------------------------------------------------
# 5.2 table / sequence / schema privileges. "public" is what a role with no
# grants gets. Values are the privileges a role *has* (direct, inherited or
# via PUBLIC), checked with has_*_privilege; everything else must be absent.
# ---------------------------------------------------------------------------

TABLE_PRIVS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SEQUENCE_PRIVS = ("USAGE", "SELECT", "UPDATE")
ALL_TABLE = frozenset(TABLE_PRIVS)
SELECT_ONLY = frozenset({"SELECT"})
NOTHING: frozenset[str] = frozenset()

ROLES = ("public", "reader", "writer", "admin")

READABLE_BY_ALL = {"public": SELECT_ONLY, "reader": SELECT_ONLY, "writer": SELECT_ONLY, "admin": ALL_TABLE}
READER_ONLY = {"public": NOTHING, "reader": SELECT_ONLY, "writer": NOTHING, "admin": ALL_TABLE}

TABLE_PRIVILEGES: dict[str, dict[str, frozenset[str]]] = {
    "queue": READABLE_BY_ALL,
    "consumer": READABLE_BY_ALL,
    "subscription": READABLE_BY_ALL,
    "tick": READABLE_BY_ALL,
    "retry_queue": READABLE_BY_ALL,
    "event_template": READABLE_BY_ALL,
    "config": READER_ONLY,
    "dead_letter": READER_ONLY,
    "idem": {"public": NOTHING, "reader": NOTHING, "writer": NOTHING, "admin": NOTHING},
    "delay_queue": READER_ONLY,
}
EVENT_TABLE_PRIVILEGES = READABLE_BY_ALL

_ADMIN_SEQ = {"public": NOTHING, "reader": NOTHING, "writer": NOTHING, "admin": frozenset(SEQUENCE_PRIVS)}
SEQUENCE_PRIVILEGES: dict[str, dict[str, frozenset[str]]] = {name: _ADMIN_SEQ for name in SEQUENCES}
EVENT_ID_SEQ_PRIVILEGES = {
    "public": SELECT_ONLY,
    "reader": SELECT_ONLY,
    "writer": SELECT_ONLY,
    "admin": frozenset({"SELECT", "USAGE"}),
}
TICK_SEQ_PRIVILEGES = {"public": SELECT_ONLY, "reader": SELECT_ONLY, "writer": SELECT_ONLY, "admin": SELECT_ONLY}
SCHEMA_PRIVILEGES = {
    "public": frozenset({"USAGE"}),
    "reader": frozenset({"USAGE"}),
    "writer": frozenset({"USAGE"}),
    "admin": frozenset({"USAGE", "CREATE"}),
}


def can_execute(fn: Fn, role: str) -> bool:
    """Effective EXECUTE right of ``role`` (public/reader/writer/admin) per 5.3."""
    if fn.grant == "none" or role == "public":
        return False
    if role == "admin":
        return True
    return fn.grant == role
