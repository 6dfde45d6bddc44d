"""Queue operations as (statements, decoder) pairs, shared by the sync and async APIs.

Each builder returns an :class:`Op`: the statements to execute in order and
how to turn a result into a typed value. Its signature and docstring are the
public ones: :mod:`sa_pgque.api` binds each builder to a ``Session`` /
``Connection`` and :mod:`sa_pgque.aio` to an ``AsyncSession`` /
``AsyncConnection``, so neither writes SQL or a signature of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.engine import Result, Row
from sqlalchemy.sql import ColumnElement, Executable, Select

from sa_pgque import functions as F
from sa_pgque.results import (
    BatchInfo,
    ConsumerInfo,
    ConsumerStats,
    DeadLetter,
    DlqReplayResult,
    HealthCheck,
    Message,
    MetricPoint,
    QueueInfo,
    QueueStats,
    SendIdemResult,
    StatusRow,
    StuckConsumer,
    from_row,
)
from sa_pgque.types import Payload, encoded_array_arg

T = TypeVar("T")
R = TypeVar("R")

Seconds = int | float | timedelta
"""A duration: seconds, or a ``timedelta``."""

QUEUE_SETTINGS = (
    "ticker_max_count",
    "ticker_max_lag",
    "ticker_idle_period",
    "rotation_period",
    "ticker_paused",
    "external_ticker",
    "max_retries",
)
"""Parameters accepted by ``set_queue_config`` (and ``create_queue(**settings)``)."""


@dataclass(frozen=True)
class Op(Generic[T]):
    """Statements to run in order, and how to decode the result of one of them."""

    statements: tuple[Executable, ...]
    decode: Callable[[Result[Any]], T]
    result_of: int = -1
    """Index of the statement whose result is decoded (default: the last)."""

    @property
    def decoded_index(self) -> int:
        return self.result_of % len(self.statements)


def _scalar(result: Result[Any]) -> Any:
    return result.scalar_one()


def _ids(result: Result[Any]) -> list[int]:
    return list(result.scalar_one())


def _rows(cls: type[R]) -> Callable[[Result[Any]], list[R]]:
    return lambda result: [from_row(cls, row) for row in result]


def _one(cls: type[R]) -> Callable[[Result[Any]], R]:
    return lambda result: from_row(cls, result.one())


def _single(fn: Any, decode: Callable[[Result[Any]], T] = _scalar) -> Op[T]:
    return Op((select(fn),), decode)


def _from(fn: F.SetReturningFunction[Any], decode: Callable[[Result[Any]], T]) -> Op[T]:
    return Op((select(fn.table_valued()),), decode)


def setting_text(value: object) -> str | None:
    """A queue setting as the text ``set_queue_config`` parses."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"sa_pgque: unsupported queue setting value {value!r}")


def interval(value: Seconds | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


DEFAULT_DEDUPE_TTL = timedelta(hours=1)
"""How long a dedupe key stays claimed unless told otherwise (the engine's default)."""

DEFAULT_STUCK_THRESHOLD = timedelta(minutes=5)
"""When a consumer counts as stuck unless told otherwise (the engine's default)."""


def delivery_time(deliver_at: datetime | None, delay: Seconds | None) -> ColumnElement[Any]:
    """The ``deliver_at`` argument of ``send_at``: an aware datetime, or the server's clock plus ``delay``.

    A delay is counted on the server (``clock_timestamp()``), from the moment the
    statement runs, so client clock skew does not matter.
    """
    if (deliver_at is None) == (delay is None):
        raise TypeError("sa_pgque: give exactly one of deliver_at and delay")
    if deliver_at is not None:
        if deliver_at.tzinfo is None or deliver_at.utcoffset() is None:
            raise ValueError("sa_pgque: deliver_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return bindparam(None, deliver_at, type_=DateTime(timezone=True), unique=True)
    now = cast(func.clock_timestamp(), DateTime(timezone=True))
    return now + bindparam(None, interval(delay), type_=INTERVAL, unique=True)


# -- publishing -------------------------------------------------------------


def send(queue: str, payload: Payload, *, type: str | None = None) -> Op[int]:
    """Publish one event in the current transaction; return its id.

    ``str`` payloads are stored verbatim, JSON values (dict, list, numbers,
    booleans) as canonical jsonb text, ``None`` as NULL.
    """
    return _single(F.send(queue, payload) if type is None else F.send(queue, type, payload))


def send_batch(queue: str, payloads: Sequence[Payload], *, type: str | None = None) -> Op[list[int]]:
    """Publish many events with one statement; return their ids in input order."""
    return _single(F.send_batch(queue, payloads) if type is None else F.send_batch(queue, type, payloads), _ids)


def send_idem(
    queue: str,
    payload: Payload,
    *,
    key: str,
    ttl: Seconds = DEFAULT_DEDUPE_TTL,
    type: str | None = None,
    partition_key: str | None = None,
) -> Op[SendIdemResult]:
    """Publish one event unless ``key`` was already used on the queue within ``ttl``.

    The first send with a key appends the event (``deduped=False``); later ones
    append nothing and report the first event's id (``deduped=True``), until the
    key expires. The key is stored in ``extra2`` and ``partition_key`` in ``extra1``.
    """
    fn = F.send_idem(queue, type or "default", payload, key, interval(ttl), partition_key)
    return _from(fn, _one(SendIdemResult))


def send_at(
    queue: str,
    payload: Payload,
    *,
    deliver_at: datetime | None = None,
    delay: Seconds | None = None,
    type: str | None = None,
) -> Op[int]:
    """Publish one event to be delivered at ``deliver_at`` (aware datetime) or after ``delay``.

    Returns the id consumers will see. The event waits outside the queue until
    it is due, then ``maint_retry_events`` (run by the Ticker and by
    ``pgque.start()``'s jobs) moves it in; the next tick delivers it.
    """
    return _single(F.send_at(queue, type or "default", payload, delivery_time(deliver_at, delay)))


def send_encoded_batch(queue: str, texts: Sequence[str | None], *, is_json: bool, type: str | None) -> Op[list[int]]:
    """send_batch of payloads already encoded (see :func:`sa_pgque.types.encode_payload`)."""
    payloads = encoded_array_arg(is_json, texts)
    return _single(F.send_batch(queue, payloads) if type is None else F.send_batch(queue, type, payloads), _ids)


# -- consuming --------------------------------------------------------------


def subscribe(queue: str, consumer: str) -> Op[int]:
    """Subscribe ``consumer`` at the latest tick: 1 when new, 0 when already subscribed."""
    return _single(F.subscribe(queue, consumer))


def unsubscribe(queue: str, consumer: str) -> Op[int]:
    """Remove the subscription and its pending retries: 1 when removed, 0 when absent."""
    return _single(F.unsubscribe(queue, consumer))


def receive(queue: str, consumer: str, max_messages: int | None = None) -> Op[list[Message]]:
    """The consumer's next batch (or the one still open); ``None`` returns all of it.

    ``ack`` finishes the whole batch, so a ``max_messages`` smaller than the
    batch would skip events: leave it unset unless you know the batch size.
    """
    return _from(F.receive(queue, consumer, max_messages), _rows(Message))


def batch_events_statement(batch_id: int) -> Select[Any]:
    """Every event of an open batch in id order (``get_batch_events``), for streaming."""
    return select(F.get_batch_events(batch_id).table_valued())


def message_from_event(row: Row[Any], batch_id: int) -> Message:
    """A Message from a ``get_batch_events`` row of batch ``batch_id``."""
    ev_id, ev_time, _txid, ev_retry, ev_type, ev_data, e1, e2, e3, e4 = tuple(row)
    return Message(ev_id, batch_id, ev_type, ev_data, ev_retry, ev_time, e1, e2, e3, e4)


def ack(batch_id: int) -> Op[int]:
    """Finish a batch: 1 when it was open, 0 when unknown or already finished."""
    return _single(F.ack(batch_id))


def nack(message: Message, *, retry_after: Seconds = 60, reason: str | None = None) -> Op[int]:
    """Retry one message after ``retry_after`` (or dead-letter it when its retries are spent)."""
    return _single(F.nack(message.batch_id, message, interval(retry_after), reason))


# -- cooperative consumers --------------------------------------------------


def subscribe_subconsumer(queue: str, consumer: str, subconsumer: str, *, convert_normal: bool = False) -> Op[int]:
    """Register a member of a cooperative consumer: 1 when new, 0 when already registered."""
    return _single(F.subscribe_subconsumer(queue, consumer, subconsumer, convert_normal))


def unsubscribe_subconsumer(queue: str, consumer: str, subconsumer: str, *, batch_handling: int = 0) -> Op[int]:
    """Remove a member; ``batch_handling=1`` retries (or dead-letters) its open batch."""
    return _single(F.unsubscribe_subconsumer(queue, consumer, subconsumer, batch_handling))


def receive_coop(
    queue: str,
    consumer: str,
    subconsumer: str,
    *,
    max_messages: int | None = None,
    dead_interval: Seconds | None = None,
) -> Op[list[Message]]:
    """A batch for one member of a cooperative consumer (registering it on first use).

    With ``dead_interval``, a sibling's batch left untouched for that long is taken over.
    """
    fn = F.receive_coop(queue, consumer, subconsumer, max_messages, interval(dead_interval))
    return _from(fn, _rows(Message))


def touch_subconsumer(queue: str, consumer: str, subconsumer: str) -> Op[int]:
    """Heartbeat of a member holding a long batch: 1 when registered, 0 otherwise."""
    return _single(F.touch_subconsumer(queue, consumer, subconsumer))


# -- queue management -------------------------------------------------------


def create_queue(queue: str, **settings: object) -> Op[int]:
    """Create a queue (1) or find it existing (0), then apply ``settings``.

    Settings are ``set_queue_config`` parameters: ``max_retries=10``,
    ``ticker_max_lag=timedelta(milliseconds=100)``, ``ticker_paused=True``, ...
    """
    unknown = set(settings) - set(QUEUE_SETTINGS)
    if unknown:
        raise TypeError(f"sa_pgque: unknown queue settings {sorted(unknown)}; known: {', '.join(QUEUE_SETTINGS)}")
    configure = [select(F.set_queue_config(queue, name, setting_text(value))) for name, value in settings.items()]
    return Op((select(F.create_queue(queue)), *configure), _scalar, result_of=0)


def drop_queue(queue: str, *, force: bool = False) -> Op[int]:
    """Drop a queue with its events; ``force`` unsubscribes its consumers first."""
    return _single(F.drop_queue(queue, force))


def set_queue_config(queue: str, param: str, value: object) -> Op[int]:
    """Set one queue parameter (``None`` resets it); ints, bools and timedeltas are accepted."""
    return _single(F.set_queue_config(queue, param, setting_text(value)))


# -- ticking and maintenance ------------------------------------------------


def tick(queue: str) -> Op[int | None]:
    """Tick ``queue`` now, whatever its thresholds (``force_next_tick`` then ``ticker``).

    Events committed before this transaction become receivable once it commits.
    """
    return Op((select(F.force_next_tick(queue)), select(F.ticker(queue))), _scalar)


def ticker(queue: str | None = None) -> Op[int | None]:
    """Run the ticker: for one queue the new tick id (or None), for all queues how many ticked."""
    return _single(F.ticker() if queue is None else F.ticker(queue))


def maint_retry_events() -> Op[int]:
    """Move up to 10 due retries back into their queues; returns how many moved."""
    return _single(F.maint_retry_events())


def maint() -> Op[int]:
    """One maintenance pass (table rotation step 1, extra hooks)."""
    return _single(F.maint())


def maint_rotate_tables_step2() -> Op[int]:
    """Rotation step 2; must run in a transaction after step 1 committed."""
    return _single(F.maint_rotate_tables_step2())


def maint_deliver_delayed(limit: int | None = None) -> Op[int]:
    """Move up to ``limit`` (default 1000) due delayed events into their queues; returns how many."""
    return _single(F.maint_deliver_delayed() if limit is None else F.maint_deliver_delayed(limit))


def maint_idem(queue: str | None = None) -> Op[int]:
    """Delete up to 10 000 expired dedupe keys (of one queue or all); 1 when there may be more."""
    return _single(F.maint_idem() if queue is None else F.maint_idem(queue))


def pause_queue(queue: str) -> Op[int]:
    """Stop ticking a queue (it still accepts events): 1 when it was running, 0 when already paused."""
    return _single(F.pause_queue(queue))


def resume_queue(queue: str) -> Op[int]:
    """Tick a paused queue again: 1 when it was paused, 0 when it was running."""
    return _single(F.resume_queue(queue))


# -- observability ----------------------------------------------------------


def queue_info(queue: str | None = None) -> Op[list[QueueInfo]]:
    """``get_queue_info`` for one queue or all of them."""
    return _from(F.get_queue_info(queue) if queue is not None else F.get_queue_info(), _rows(QueueInfo))


def consumer_info(queue: str | None = None, consumer: str | None = None) -> Op[list[ConsumerInfo]]:
    """``get_consumer_info``; ``None`` matches every queue / consumer."""
    return _from(F.get_consumer_info(queue, consumer), _rows(ConsumerInfo))


def batch_info(batch_id: int) -> Op[BatchInfo | None]:
    """Details of an open batch; ``None`` when it is not open."""

    def decode(result: Result[Any]) -> BatchInfo | None:
        row = result.one()
        return None if row.queue_name is None else from_row(BatchInfo, row)

    return _from(F.get_batch_info(batch_id), decode)


def queue_stats(queue: str | None = None) -> Op[list[QueueStats]]:
    """Exact backlog figures of one queue or all of them (``pgque.queue_stats``)."""
    return _from(F.queue_stats(queue), _rows(QueueStats))


def consumer_stats(queue: str | None = None, consumer: str | None = None) -> Op[list[ConsumerStats]]:
    """Progress of each subscription (``pgque.consumer_stats``); ``None`` matches all."""
    return _from(F.consumer_stats(queue, consumer), _rows(ConsumerStats))


def stuck_consumers(
    queue: str | None = None, *, threshold: Seconds = DEFAULT_STUCK_THRESHOLD
) -> Op[list[StuckConsumer]]:
    """Subscriptions with a batch open, or not receiving, for longer than ``threshold``."""
    return _from(F.stuck_consumers(interval(threshold), queue), _rows(StuckConsumer))


def queue_health(
    queue: str | None = None, *, stuck_threshold: Seconds = DEFAULT_STUCK_THRESHOLD
) -> Op[list[HealthCheck]]:
    """The health check list of one queue or all (ticker, consumers, dead letters, rotation, delayed)."""
    return _from(F.queue_health(queue, interval(stuck_threshold)), _rows(HealthCheck))


def metric_points() -> Op[list[MetricPoint]]:
    """Every gauge data point of ``pgque.otel_metrics()`` (what the exporters publish)."""
    return _from(F.otel_metrics(), _rows(MetricPoint))


def status() -> Op[list[StatusRow]]:
    """The engine's health summary (``pgque.status()``)."""
    return _from(F.status(), _rows(StatusRow))


def version() -> Op[str]:
    """The engine version."""
    return _single(F.version())


# -- dead letters -----------------------------------------------------------


def dlq_inspect(queue: str, *, limit: int | None = 100) -> Op[list[DeadLetter]]:
    """Dead letters of a queue, newest first (``limit=None``: all)."""
    return _from(F.dlq_inspect(queue, limit), _rows(DeadLetter))


def dlq_replay(dead_letter_id: int) -> Op[int]:
    """Send a dead letter again as a new event (to every subscriber); return its id."""
    return _single(F.dlq_replay(dead_letter_id))


def dlq_replay_all(queue: str) -> Op[DlqReplayResult]:
    """Replay every dead letter of a queue."""
    return _from(F.dlq_replay_all(queue), _one(DlqReplayResult))


def dlq_purge(queue: str, *, older_than: Seconds = timedelta(days=30)) -> Op[int]:
    """Delete dead letters older than ``older_than``; returns how many."""
    return _single(F.dlq_purge(queue, interval(older_than)))


OPERATIONS = (
    send,
    send_batch,
    send_idem,
    send_at,
    subscribe,
    unsubscribe,
    receive,
    ack,
    nack,
    subscribe_subconsumer,
    unsubscribe_subconsumer,
    receive_coop,
    touch_subconsumer,
    create_queue,
    drop_queue,
    set_queue_config,
    tick,
    ticker,
    maint_retry_events,
    maint,
    maint_rotate_tables_step2,
    maint_deliver_delayed,
    maint_idem,
    pause_queue,
    resume_queue,
    queue_info,
    consumer_info,
    batch_info,
    queue_stats,
    consumer_stats,
    stuck_consumers,
    queue_health,
    metric_points,
    status,
    version,
    dlq_inspect,
    dlq_replay,
    dlq_replay_all,
    dlq_purge,
)
"""Every operation; the sync and async APIs expose each of them."""
