"""Every pgque function as a typed SQLAlchemy construct.

Importing this module registers the constructs under the ``pgque`` package of
:data:`sqlalchemy.func`, so ``func.pgque.send("orders", {"id": 1})`` is a
:class:`send` with a declared return type, rendered schema-qualified as
``pgque.send(...)``. The classes can also be used directly
(``from sa_pgque.functions import send``).

Set-returning functions (``receive``, ``get_queue_info``, ``dlq_inspect``, ...)
are usable in a FROM clause with typed columns::

    messages = func.pgque.receive("orders", "billing", 100).table_valued()
    select(messages.c.msg_id, messages.c.payload)

Payload arguments pick the engine's overload from their Python type: ``str``
goes to the ``text`` overload, JSON values to ``jsonb`` (see
:mod:`sa_pgque.types`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, Text, bindparam, cast, null
from sqlalchemy.dialects.postgresql import ARRAY, INTERVAL, JSONB
from sqlalchemy.sql import ClauseElement, column
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import NullType, TypeEngine

from sa_pgque.results import Message
from sa_pgque.types import MessageType, message_arg, payload_arg, payloads_arg

_T = TypeVar("_T")

Columns = tuple[tuple[str, TypeEngine[Any]], ...]

_TIMESTAMPTZ = DateTime(timezone=True)

MESSAGE_COLUMNS: Columns = (
    ("msg_id", BigInteger()),
    ("batch_id", BigInteger()),
    ("type", Text()),
    ("payload", Text()),
    ("retry_count", Integer()),
    ("created_at", _TIMESTAMPTZ),
    ("extra1", Text()),
    ("extra2", Text()),
    ("extra3", Text()),
    ("extra4", Text()),
)
QUEUE_INFO_COLUMNS: Columns = (
    ("queue_name", Text()),
    ("queue_ntables", Integer()),
    ("queue_cur_table", Integer()),
    ("queue_rotation_period", INTERVAL()),
    ("queue_switch_time", _TIMESTAMPTZ),
    ("queue_external_ticker", Boolean()),
    ("queue_ticker_paused", Boolean()),
    ("queue_ticker_max_count", Integer()),
    ("queue_ticker_max_lag", INTERVAL()),
    ("queue_ticker_idle_period", INTERVAL()),
    ("ticker_lag", INTERVAL()),
    ("ev_per_sec", Float()),
    ("ev_new", BigInteger()),
    ("last_tick_id", BigInteger()),
)
CONSUMER_INFO_COLUMNS: Columns = (
    ("queue_name", Text()),
    ("consumer_name", Text()),
    ("lag", INTERVAL()),
    ("last_seen", INTERVAL()),
    ("last_tick", BigInteger()),
    ("current_batch", BigInteger()),
    ("next_tick", BigInteger()),
    ("pending_events", BigInteger()),
)
BATCH_INFO_COLUMNS: Columns = (
    ("queue_name", Text()),
    ("consumer_name", Text()),
    ("batch_start", _TIMESTAMPTZ),
    ("batch_end", _TIMESTAMPTZ),
    ("prev_tick_id", BigInteger()),
    ("tick_id", BigInteger()),
    ("lag", INTERVAL()),
    ("seq_start", BigInteger()),
    ("seq_end", BigInteger()),
)
DEAD_LETTER_COLUMNS: Columns = (
    ("dl_id", BigInteger()),
    ("dl_queue_id", Integer()),
    ("dl_consumer_id", Integer()),
    ("dl_time", _TIMESTAMPTZ),
    ("dl_reason", Text()),
    ("ev_id", BigInteger()),
    ("ev_time", _TIMESTAMPTZ),
    ("ev_txid", Text()),
    ("ev_retry", Integer()),
    ("ev_type", Text()),
    ("ev_data", Text()),
    ("ev_extra1", Text()),
    ("ev_extra2", Text()),
    ("ev_extra3", Text()),
    ("ev_extra4", Text()),
)
BATCH_EVENT_COLUMNS: Columns = (
    ("ev_id", BigInteger()),
    ("ev_time", _TIMESTAMPTZ),
    ("ev_txid", BigInteger()),
    ("ev_retry", Integer()),
    ("ev_type", Text()),
    ("ev_data", Text()),
    ("ev_extra1", Text()),
    ("ev_extra2", Text()),
    ("ev_extra3", Text()),
    ("ev_extra4", Text()),
)
NEXT_BATCH_INFO_COLUMNS: Columns = (
    ("batch_id", BigInteger()),
    ("cur_tick_id", BigInteger()),
    ("prev_tick_id", BigInteger()),
    ("cur_tick_time", _TIMESTAMPTZ),
    ("prev_tick_time", _TIMESTAMPTZ),
    ("cur_tick_event_seq", BigInteger()),
    ("prev_tick_event_seq", BigInteger()),
)
COOP_BATCH_COLUMNS: Columns = (
    ("batch_id", BigInteger()),
    ("prev_tick_id", BigInteger()),
    ("next_tick_id", BigInteger()),
)
STATUS_COLUMNS: Columns = (("component", Text()), ("status", Text()), ("detail", Text()))
DLQ_REPLAY_ALL_COLUMNS: Columns = (("replayed", BigInteger()), ("failed", BigInteger()), ("first_error", Text()))
MAINT_OPERATION_COLUMNS: Columns = (("func_name", Text()), ("func_arg", Text()))
TICK_HELPER_COLUMNS: Columns = (
    ("next_tick_id", BigInteger()),
    ("next_tick_time", _TIMESTAMPTZ),
    ("next_tick_seq", BigInteger()),
)
SEND_IDEM_COLUMNS: Columns = (("event_id", BigInteger()), ("deduped", Boolean()))
QUEUE_STATS_COLUMNS: Columns = (
    ("queue_name", Text()),
    ("depth", BigInteger()),
    ("oldest_pending_age", INTERVAL()),
    ("unticked_events", BigInteger()),
    ("ev_per_sec", Float()),
    ("ticker_lag", INTERVAL()),
    ("last_tick_id", BigInteger()),
    ("consumers", Integer()),
    ("retry_pending", BigInteger()),
    ("dead_letters", BigInteger()),
    ("delayed_pending", BigInteger()),
    ("delayed_due", BigInteger()),
    ("rotation_age", INTERVAL()),
    ("ticker_paused", Boolean()),
)
CONSUMER_STATS_COLUMNS: Columns = (
    ("queue_name", Text()),
    ("consumer_name", Text()),
    ("consumer_role", Text()),
    ("last_tick", BigInteger()),
    ("lag", INTERVAL()),
    ("last_seen", INTERVAL()),
    ("pending_events", BigInteger()),
    ("batch_id", BigInteger()),
    ("batch_age", INTERVAL()),
)
STUCK_CONSUMER_COLUMNS: Columns = (
    ("queue_name", Text()),
    ("consumer_name", Text()),
    ("reason", Text()),
    ("lag", INTERVAL()),
    ("batch_age", INTERVAL()),
    ("pending_events", BigInteger()),
)
HEALTH_COLUMNS: Columns = (("queue_name", Text()), ("check_name", Text()), ("status", Text()), ("detail", Text()))
METRIC_COLUMNS: Columns = (
    ("metric_name", Text()),
    ("metric_unit", Text()),
    ("metric_value", Float()),
    ("attributes", JSONB()),
)


class PgqueFunction(GenericFunction[_T]):
    """Base of the pgque constructs: registered under ``func.pgque``, rendered ``pgque.<name>``.

    Python argument values are bound with the SQL types the engine's
    signature needs, so overloads resolve without casts at the call site:
    ``int`` at a ``bigint`` position is a BIGINT, ``str`` or ``timedelta`` at an
    ``interval`` position is an INTERVAL, ``datetime`` is a timestamptz.
    """

    _register = False
    inherit_cache = True
    bigint_positions: ClassVar[frozenset[int]] = frozenset()
    interval_positions: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*self.coerce_arguments_for(self._typed(args)), **kwargs)
        self.packagenames = ("pgque",)

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        """Turn Python arguments into SQL arguments (payloads, messages)."""
        return args

    @classmethod
    def positions_for(cls, arity: int) -> tuple[frozenset[int], frozenset[int]]:
        """(bigint positions, interval positions) of the overload taking ``arity`` arguments."""
        return cls.bigint_positions, cls.interval_positions

    @classmethod
    def _typed(cls, args: Sequence[Any]) -> list[Any]:
        bigints, intervals = cls.positions_for(len(args))
        typed: list[Any] = []
        for position, value in enumerate(args):
            if isinstance(value, ClauseElement):
                typed.append(value)
            elif position in intervals and value is None:
                typed.append(cast(null(), INTERVAL))
            elif position in intervals and isinstance(value, str):
                typed.append(cast(bindparam(None, value, type_=Text, unique=True), INTERVAL))
            elif isinstance(value, timedelta) or (position in intervals and isinstance(value, (int, float))):
                seconds = value if isinstance(value, timedelta) else timedelta(seconds=value)
                typed.append(bindparam(None, seconds, type_=INTERVAL, unique=True))
            elif isinstance(value, datetime):
                typed.append(bindparam(None, value, type_=_TIMESTAMPTZ, unique=True))
            elif position in bigints and isinstance(value, int) and not isinstance(value, bool):
                typed.append(bindparam(None, value, type_=BigInteger, unique=True))
            else:
                typed.append(value)
        return typed


class SetReturningFunction(PgqueFunction[_T]):
    """A pgque function returning rows; ``table_valued()`` gives them typed columns."""

    _register = False
    inherit_cache = True
    result_columns: ClassVar[Columns] = ()

    def columns_for_call(self) -> Columns:
        return self.result_columns

    def table_valued(self, *expr: Any, **kwargs: Any) -> TableValuedAlias:
        if not expr:
            expr = tuple(column(name, type_) for name, type_ in self.columns_for_call())
        return super().table_valued(*expr, **kwargs)


def _with_payload_last(args: Sequence[Any]) -> list[Any]:
    return [*args[:-1], payload_arg(args[-1])] if args else []


def _with_payloads_last(args: Sequence[Any]) -> list[Any]:
    return [*args[:-1], payloads_arg(args[-1])] if args else []


def _with_message_second(args: Sequence[Any]) -> list[Any]:
    if len(args) >= 2 and isinstance(args[1], Message):
        return [args[0], message_arg(args[1]), *args[2:]]
    return list(args)


# -- publishing -------------------------------------------------------------


class send(PgqueFunction[int]):
    """``pgque.send(queue, [type,] payload) -> bigint``: publish one event, return its id."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        return _with_payload_last(args)


class send_batch(PgqueFunction[Sequence[int]]):
    """``pgque.send_batch(queue, [type,] payloads) -> bigint[]``: ids in input order."""

    package = "pgque"
    type = ARRAY(BigInteger())
    inherit_cache = True

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        return _with_payloads_last(args)


class insert_event(PgqueFunction[int]):
    """``pgque.insert_event(queue, ev_type, ev_data, [ev_extra1..4]) -> bigint``."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True


class current_event_table(PgqueFunction[str]):
    """``pgque.current_event_table(queue) -> text``: the child table receiving inserts now."""

    package = "pgque"
    type = Text()
    inherit_cache = True


# -- consuming --------------------------------------------------------------


class subscribe(PgqueFunction[int]):
    """``pgque.subscribe(queue, consumer) -> integer``: 1 new, 0 already subscribed."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class unsubscribe(PgqueFunction[int]):
    """``pgque.unsubscribe(queue, consumer) -> integer``: 1 removed, 0 was not subscribed."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class receive(SetReturningFunction[Message]):
    """``pgque.receive(queue, consumer, [max_return]) -> setof pgque.message``."""

    package = "pgque"
    type = MessageType()
    inherit_cache = True
    result_columns = MESSAGE_COLUMNS


class ack(PgqueFunction[int]):
    """``pgque.ack(batch_id) -> integer``: 1 finished, 0 unknown or already finished."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({0})


class nack(PgqueFunction[int]):
    """``pgque.nack(batch_id, message, [retry_after, [reason]]) -> integer``.

    ``message`` may be a :class:`~sa_pgque.results.Message` (bound as a typed
    ``pgque.message`` row) or a SQL expression of that type.
    """

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({0})
    interval_positions = frozenset({2})

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        return _with_message_second(args)


class register_consumer(PgqueFunction[int]):
    """``pgque.register_consumer(queue, consumer) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class register_consumer_at(PgqueFunction[int]):
    """``pgque.register_consumer_at(queue, consumer, tick_pos) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({2})


class unregister_consumer(PgqueFunction[int]):
    """``pgque.unregister_consumer(queue, consumer) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class next_batch(PgqueFunction[int]):
    """``pgque.next_batch(queue, consumer, [subconsumer, [dead_interval]]) -> bigint``."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True
    interval_positions = frozenset({3})


class next_batch_info(SetReturningFunction[Any]):
    """``pgque.next_batch_info(queue, consumer) -> record``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = NEXT_BATCH_INFO_COLUMNS


class next_batch_custom(SetReturningFunction[Any]):
    """``pgque.next_batch_custom(...) -> record``: 5 arguments (normal) or 7 (cooperative)."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = NEXT_BATCH_INFO_COLUMNS

    def columns_for_call(self) -> Columns:
        return COOP_BATCH_COLUMNS if len(self.clauses) == 7 else NEXT_BATCH_INFO_COLUMNS

    @classmethod
    def positions_for(cls, arity: int) -> tuple[frozenset[int], frozenset[int]]:
        return frozenset(), frozenset({3, 5, 6} if arity == 7 else {2, 4})


class get_batch_events(SetReturningFunction[Any]):
    """``pgque.get_batch_events(batch_id) -> setof record``: the batch's events by id."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    bigint_positions = frozenset({0})
    result_columns = BATCH_EVENT_COLUMNS


class get_batch_cursor(SetReturningFunction[Any]):
    """``pgque.get_batch_cursor(batch_id, cursor_name, quick_limit, [extra_where])``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    bigint_positions = frozenset({0})
    result_columns = BATCH_EVENT_COLUMNS


class finish_batch(PgqueFunction[int]):
    """``pgque.finish_batch(batch_id) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({0})


class event_retry(PgqueFunction[int]):
    """``pgque.event_retry(batch_id, event_id, retry_time | retry_seconds) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({0, 1})


class batch_retry(PgqueFunction[int]):
    """``pgque.batch_retry(batch_id, retry_seconds) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({0})


class event_retry_raw(PgqueFunction[int]):
    """``pgque.event_retry_raw(queue, consumer, retry_after, ev_id, ...) -> bigint``."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True
    bigint_positions = frozenset({3})


# -- cooperative consumers --------------------------------------------------


class register_subconsumer(PgqueFunction[int]):
    """``pgque.register_subconsumer(queue, consumer, subconsumer, [convert_normal]) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class subscribe_subconsumer(PgqueFunction[int]):
    """``pgque.subscribe_subconsumer(queue, consumer, subconsumer, [convert_normal]) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class unregister_subconsumer(PgqueFunction[int]):
    """``pgque.unregister_subconsumer(queue, consumer, subconsumer, [batch_handling]) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class unsubscribe_subconsumer(PgqueFunction[int]):
    """``pgque.unsubscribe_subconsumer(queue, consumer, subconsumer, [batch_handling]) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class receive_coop(SetReturningFunction[Message]):
    """``pgque.receive_coop(queue, consumer, subconsumer, [max_return, [dead_interval]])``."""

    package = "pgque"
    type = MessageType()
    inherit_cache = True
    interval_positions = frozenset({4})
    result_columns = MESSAGE_COLUMNS


class touch_subconsumer(PgqueFunction[int]):
    """``pgque.touch_subconsumer(queue, consumer, subconsumer) -> integer``: heartbeat."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


# -- queue management -------------------------------------------------------


class create_queue(PgqueFunction[int]):
    """``pgque.create_queue(queue, [options]) -> integer``: 1 created, 0 existed.

    ``options`` (a dict, sent as jsonb) are ``set_queue_config`` parameters
    applied in the same call.
    """

    package = "pgque"
    type = Integer()
    inherit_cache = True

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        if len(args) == 2 and isinstance(args[1], dict):
            return [args[0], payload_arg(args[1])]
        return args


class pause_queue(PgqueFunction[int]):
    """``pgque.pause_queue(queue) -> integer``: stop ticking it; 1 paused now, 0 already paused."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class resume_queue(PgqueFunction[int]):
    """``pgque.resume_queue(queue) -> integer``: tick it again; 1 resumed now, 0 was running."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class drop_queue(PgqueFunction[int]):
    """``pgque.drop_queue(queue, [force]) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class set_queue_config(PgqueFunction[int]):
    """``pgque.set_queue_config(queue, param, value) -> integer`` (NULL value resets)."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


# -- ticking and lifecycle --------------------------------------------------


class ticker(PgqueFunction[int]):
    """``pgque.ticker([queue, [tick_id, ts, event_seq]]) -> bigint``."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True
    bigint_positions = frozenset({1, 3})


class force_next_tick(PgqueFunction[int]):
    """``pgque.force_next_tick(queue) -> bigint``: make the next ticker call tick."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True


class force_tick(PgqueFunction[int]):
    """``pgque.force_tick(queue) -> bigint``: PgQ's name of force_next_tick."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True


class set_tick_period_ms(PgqueFunction[int]):
    """``pgque.set_tick_period_ms(period_ms) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class start(PgqueFunction[None]):
    """``pgque.start()``: schedule the engine's jobs with pg_cron."""

    package = "pgque"
    type = NullType()
    inherit_cache = True


class stop(PgqueFunction[None]):
    """``pgque.stop()``: unschedule them."""

    package = "pgque"
    type = NullType()
    inherit_cache = True


class start_timetable(PgqueFunction[None]):
    """``pgque.start_timetable([ticks_per_second])``: schedule with pg_timetable."""

    package = "pgque"
    type = NullType()
    inherit_cache = True


class stop_timetable(PgqueFunction[None]):
    """``pgque.stop_timetable()``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True


class maint(PgqueFunction[int]):
    """``pgque.maint() -> integer``: one maintenance pass (rotation step 1, hooks)."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class maint_retry_events(PgqueFunction[int]):
    """``pgque.maint_retry_events() -> integer``: move up to 10 due retries back."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class maint_rotate_tables_step1(PgqueFunction[int]):
    """``pgque.maint_rotate_tables_step1(queue) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class maint_rotate_tables_step2(PgqueFunction[int]):
    """``pgque.maint_rotate_tables_step2() -> integer`` (run in its own transaction)."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class maint_operations(SetReturningFunction[Any]):
    """``pgque.maint_operations() -> setof record``: the maintenance calls due now."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = MAINT_OPERATION_COLUMNS


class status(SetReturningFunction[Any]):
    """``pgque.status() -> table(component, status, detail)``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = STATUS_COLUMNS


class version(PgqueFunction[str]):
    """``pgque.version() -> text``."""

    package = "pgque"
    type = Text()
    inherit_cache = True


class uninstall(PgqueFunction[None]):
    """``pgque.uninstall()``: drop schema pgque (owner only)."""

    package = "pgque"
    type = NullType()
    inherit_cache = True


# -- observability ----------------------------------------------------------


class get_queue_info(SetReturningFunction[Any]):
    """``pgque.get_queue_info([queue]) -> setof record``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = QUEUE_INFO_COLUMNS


class get_consumer_info(SetReturningFunction[Any]):
    """``pgque.get_consumer_info([queue, [consumer]]) -> setof record``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = CONSUMER_INFO_COLUMNS


class get_batch_info(SetReturningFunction[Any]):
    """``pgque.get_batch_info(batch_id) -> record`` (all NULL for an unknown batch)."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    bigint_positions = frozenset({0})
    result_columns = BATCH_INFO_COLUMNS


# -- dead letters -----------------------------------------------------------


class event_dead(PgqueFunction[int]):
    """``pgque.event_dead(batch_id, event_id, reason, ev_time, ev_txid, ...) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    bigint_positions = frozenset({0, 1})


class dlq_inspect(SetReturningFunction[Any]):
    """``pgque.dlq_inspect(queue, [limit]) -> setof pgque.dead_letter``, newest first."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = DEAD_LETTER_COLUMNS


class dlq_replay(PgqueFunction[int]):
    """``pgque.dlq_replay(dead_letter_id) -> bigint``: the new event's id."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True
    bigint_positions = frozenset({0})


class dlq_replay_all(SetReturningFunction[Any]):
    """``pgque.dlq_replay_all(queue) -> (replayed, failed, first_error)``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = DLQ_REPLAY_ALL_COLUMNS


class dlq_purge(PgqueFunction[int]):
    """``pgque.dlq_purge(queue, [older_than]) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True
    interval_positions = frozenset({1})


# -- helpers with stable names ----------------------------------------------


class batch_event_sql(PgqueFunction[str]):
    """``pgque.batch_event_sql(batch_id) -> text``: the query reading a batch."""

    package = "pgque"
    type = Text()
    inherit_cache = True
    bigint_positions = frozenset({0})


class batch_event_tables(SetReturningFunction[str]):
    """``pgque.batch_event_tables(batch_id) -> setof text``."""

    package = "pgque"
    type = Text()
    inherit_cache = True
    bigint_positions = frozenset({0})
    result_columns = (("batch_event_tables", Text()),)


class find_tick_helper(SetReturningFunction[Any]):
    """``pgque.find_tick_helper(queue_id, prev_tick_id, prev_time, prev_seq, min_count, min_interval)``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    bigint_positions = frozenset({1, 3, 4})
    interval_positions = frozenset({5})
    result_columns = TICK_HELPER_COLUMNS


class seq_getval(PgqueFunction[int]):
    """``pgque.seq_getval(sequence) -> bigint``: last value, not advancing it."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True


class seq_setval(PgqueFunction[int]):
    """``pgque.seq_setval(sequence, value) -> bigint``: move forward only."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True
    bigint_positions = frozenset({1})


class quote_fqname(PgqueFunction[str]):
    """``pgque.quote_fqname(name) -> text``."""

    package = "pgque"
    type = Text()
    inherit_cache = True


class grant_perms(PgqueFunction[int]):
    """``pgque.grant_perms(queue) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class tune_storage(PgqueFunction[int]):
    """``pgque.tune_storage(queue) -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class upgrade_schema(PgqueFunction[int]):
    """``pgque.upgrade_schema() -> integer``."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class maint_tables_to_vacuum(SetReturningFunction[str]):
    """``pgque.maint_tables_to_vacuum() -> setof text``."""

    package = "pgque"
    type = Text()
    inherit_cache = True
    result_columns = (("maint_tables_to_vacuum", Text()),)


# -- idempotent send and delayed delivery -----------------------------------


class send_idem(SetReturningFunction[Any]):
    """``pgque.send_idem(queue, type, payload, idem_key, [ttl, [partition_key]])``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    interval_positions = frozenset({4})
    result_columns = SEND_IDEM_COLUMNS

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        if len(args) >= 3:
            return [*args[:2], payload_arg(args[2]), *args[3:]]
        return args


class maint_idem(PgqueFunction[int]):
    """``pgque.maint_idem([queue]) -> integer``: reap expired dedupe keys."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


class send_at(PgqueFunction[int]):
    """``pgque.send_at(queue, type, payload, deliver_at) -> bigint``: publish for later delivery."""

    package = "pgque"
    type = BigInteger()
    inherit_cache = True

    @classmethod
    def coerce_arguments_for(cls, args: Sequence[Any]) -> Sequence[Any]:
        if len(args) >= 3:
            return [*args[:2], payload_arg(args[2]), *args[3:]]
        return args


class maint_deliver_delayed(PgqueFunction[int]):
    """``pgque.maint_deliver_delayed([limit]) -> integer``: move due delayed events into their queues."""

    package = "pgque"
    type = Integer()
    inherit_cache = True


# -- statistics, health and metrics -------------------------------------------


class queue_stats(SetReturningFunction[Any]):
    """``pgque.queue_stats([queue]) -> table(...)``: exact backlog and bookkeeping per queue."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = QUEUE_STATS_COLUMNS


class consumer_stats(SetReturningFunction[Any]):
    """``pgque.consumer_stats([queue, [consumer]]) -> table(...)``: progress per subscription."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = CONSUMER_STATS_COLUMNS


class stuck_consumers(SetReturningFunction[Any]):
    """``pgque.stuck_consumers([threshold, [queue]]) -> table(...)``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    interval_positions = frozenset({0})
    result_columns = STUCK_CONSUMER_COLUMNS


class queue_health(SetReturningFunction[Any]):
    """``pgque.queue_health([queue, [stuck_threshold]]) -> table(queue_name, check_name, status, detail)``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    interval_positions = frozenset({1})
    result_columns = HEALTH_COLUMNS


class otel_metrics(SetReturningFunction[Any]):
    """``pgque.otel_metrics() -> table(metric_name, metric_unit, metric_value, attributes)``."""

    package = "pgque"
    type = NullType()
    inherit_cache = True
    result_columns = METRIC_COLUMNS


__all__ = [
    name
    for name, value in list(globals().items())
    if isinstance(value, type)
    and issubclass(value, PgqueFunction)
    and value not in (PgqueFunction, SetReturningFunction)
]
