"""sa_pgque: a PgQue-compatible PostgreSQL event queue for SQLAlchemy applications.

Install the engine (``sa_pgque.install(engine)`` or Alembic), publish events
in the same transaction as your ORM writes (:func:`publish`), and consume
them with the queue calls below or a :class:`~sa_pgque.consumer.Consumer`.
Importing the package registers every engine function under
``sqlalchemy.func.pgque``.
"""

from __future__ import annotations

from sa_pgque import aio, api, errors, functions
from sa_pgque.aio_consumer import AsyncConsumer
from sa_pgque.api import (
    ack,
    batch_info,
    consumer_info,
    consumer_stats,
    create_queue,
    dlq_inspect,
    dlq_purge,
    dlq_replay,
    dlq_replay_all,
    drop_queue,
    maint,
    maint_deliver_delayed,
    maint_idem,
    maint_retry_events,
    maint_rotate_tables_step2,
    metric_points,
    nack,
    pause_queue,
    queue_health,
    queue_info,
    queue_stats,
    receive,
    receive_coop,
    resume_queue,
    send,
    send_at,
    send_batch,
    send_idem,
    set_queue_config,
    status,
    stuck_consumers,
    subscribe,
    subscribe_subconsumer,
    tick,
    ticker,
    touch_subconsumer,
    unsubscribe,
    unsubscribe_subconsumer,
    version,
)
from sa_pgque.consumer import Consumer
from sa_pgque.declarative import Queue
from sa_pgque.errors import PgqueError
from sa_pgque.handlers import BatchOutcome, RetryPolicy
from sa_pgque.migrate import install, uninstall
from sa_pgque.publish import pending_count, publish, publish_async
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
)
from sa_pgque.ticker import Ticker

# Importing sa_pgque.ticker (for Ticker) bound the submodule to the package
# attribute ``ticker``, hiding the queue call imported above under that name.
ticker = api.ticker  # noqa: F811

__version__ = "0.1.0"

__all__ = [
    "AsyncConsumer",
    "BatchInfo",
    "BatchOutcome",
    "Consumer",
    "ConsumerInfo",
    "ConsumerStats",
    "DeadLetter",
    "DlqReplayResult",
    "HealthCheck",
    "Message",
    "MetricPoint",
    "PgqueError",
    "Queue",
    "QueueInfo",
    "QueueStats",
    "RetryPolicy",
    "SendIdemResult",
    "StatusRow",
    "StuckConsumer",
    "Ticker",
    "ack",
    "aio",
    "batch_info",
    "consumer_info",
    "consumer_stats",
    "create_queue",
    "dlq_inspect",
    "dlq_purge",
    "dlq_replay",
    "dlq_replay_all",
    "drop_queue",
    "errors",
    "functions",
    "install",
    "maint",
    "maint_deliver_delayed",
    "maint_idem",
    "maint_retry_events",
    "maint_rotate_tables_step2",
    "metric_points",
    "nack",
    "pause_queue",
    "pending_count",
    "publish",
    "publish_async",
    "queue_health",
    "queue_info",
    "queue_stats",
    "receive",
    "receive_coop",
    "resume_queue",
    "send",
    "send_at",
    "send_batch",
    "send_idem",
    "set_queue_config",
    "status",
    "stuck_consumers",
    "subscribe",
    "subscribe_subconsumer",
    "tick",
    "ticker",
    "touch_subconsumer",
    "uninstall",
    "unsubscribe",
    "unsubscribe_subconsumer",
    "version",
]
