"""What ``sa-pgque status`` reports: one read-only snapshot of the engine's health.

Queue and consumer figures come from ``get_queue_info`` / ``get_consumer_info``,
scheduling from ``pgque.status()``. Whether a :class:`~sa_pgque.ticker.Ticker`
runs is not recorded anywhere by the engine, but the active one holds a
session advisory lock (:data:`~sa_pgque.ticker.LOCK_KEY`), visible in
``pg_locks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from sa_pgque import api, migrate
from sa_pgque.results import ConsumerInfo, QueueInfo, StatusRow
from sa_pgque.ticker import LOCK_KEY

LATE_SLACK = timedelta(seconds=5)
"""How far past its schedule a queue's latest tick may be before the queue counts as late."""

_TICKER_HOLDERS = text(
    """
    select l.pid
      from pg_locks l
     where l.locktype = 'advisory' and l.granted and l.objsubid = 1
       and l.database = (select oid from pg_database where datname = current_database())
       and l.classid = cast(:high as oid) and l.objid = cast(:low as oid)
    """
)

DEFAULT_MAX_RETRIES = 5

_MAX_RETRIES = text("select queue_name, coalesce(queue_max_retries, :default) from pgque.queue")

_DEAD_LETTERS = text(
    """
    select q.queue_name, count(d.dl_id) as dead_letters, max(d.dl_time) as newest
      from pgque.queue q
      left join pgque.dead_letter d on d.dl_queue_id = q.queue_id
     group by q.queue_name
     order by q.queue_name
    """
)


@dataclass(frozen=True, slots=True)
class DeadLetterCount:
    queue_name: str
    dead_letters: int
    newest: datetime | None


@dataclass(frozen=True, slots=True)
class TickerHealth:
    """Who ticks the database, and which queues' ticks are overdue."""

    runner: str | None
    """``sa-pgque ticker (pid N)``, ``pg_cron job N``..., or ``None`` when nothing ticks."""
    late_queues: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.runner is not None and not self.late_queues


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str
    revision: str | None
    engine_status: list[StatusRow]
    ticker: TickerHealth
    queues: list[QueueInfo]
    consumers: list[ConsumerInfo]
    dead_letters: list[DeadLetterCount]
    max_retries: dict[str, int]
    """Queue → retry budget of its messages (``queue_max_retries``, NULL meaning 5)."""


def is_late(queue: QueueInfo) -> bool:
    """Whether the queue's latest tick is older than the ticker's own rules allow (spec 7.1)."""
    if queue.queue_ticker_paused or queue.queue_external_ticker or queue.ticker_lag is None:
        return False
    if queue.ev_new and queue.ev_new > 0:
        return queue.ticker_lag > queue.queue_ticker_max_lag + LATE_SLACK
    return queue.ticker_lag > queue.queue_ticker_idle_period + LATE_SLACK


def ticker_runner(connection: Connection, engine_status: list[StatusRow]) -> str | None:
    """Who ticks this database: a scheduled job or a running ``Ticker``."""
    for row in engine_status:
        if row.component == "ticker" and row.status == "scheduled":
            return row.detail
    holders = connection.scalars(_TICKER_HOLDERS, {"high": LOCK_KEY >> 32, "low": LOCK_KEY & 0xFFFFFFFF}).all()
    if holders:
        return f"sa-pgque ticker (pid {holders[0]})"
    return None


def snapshot(connection: Connection) -> Snapshot:
    """Read everything ``status`` shows (call inside one transaction for a consistent view)."""
    engine_status = api.status(connection)
    queues = api.queue_info(connection)
    late = [queue.queue_name for queue in queues if is_late(queue)]
    dead_letters = [DeadLetterCount(*row) for row in connection.execute(_DEAD_LETTERS)]
    return Snapshot(
        version=api.version(connection),
        revision=migrate.current(connection),
        engine_status=engine_status,
        ticker=TickerHealth(ticker_runner(connection, engine_status), late),
        queues=queues,
        consumers=api.consumer_info(connection),
        dead_letters=dead_letters,
        max_retries=dict(connection.execute(_MAX_RETRIES, {"default": DEFAULT_MAX_RETRIES}).tuples().all()),
    )
