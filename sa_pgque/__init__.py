"""sa_pgque: a PgQue-compatible PostgreSQL event queue for SQLAlchemy applications.

Install the engine (``sa_pgque.install(engine)`` or Alembic), publish events
in the same transaction as your ORM writes (:func:`publish`), and consume
them with the queue calls below or a :class:`~sa_pgque.consumer.Consumer`.
Importing the package registers every engine function under
``sqlalchemy.func.pgque``.
"""

from __future__ import annotations

from sa_pgque import aio, errors, functions
from sa_pgque.aio_consumer import AsyncConsumer
from sa_pgque.api import (
    ack,
    batch_info,
    consumer_info,
    create_queue,
    dlq_inspect,
    dlq_purge,
    dlq_replay,
    dlq_replay_all,
    drop_queue,
    maint,
    maint_retry_events,
    maint_rotate_tables_step2,
    nack,
    queue_info,
    receive,
    receive_coop,
    send,
    send_batch,
    set_queue_config,
    status,
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
from sa_pgque.errors import PgqueError
from sa_pgque.handlers import BatchOutcome, RetryPolicy
from sa_pgque.migrate import install, uninstall
from sa_pgque.publish import pending_count, publish, publish_async
from sa_pgque.results import (
    BatchInfo,
    ConsumerInfo,
    DeadLetter,
    DlqReplayResult,
    Message,
    QueueInfo,
    StatusRow,
)
from sa_pgque.ticker import Ticker

__version__ = "0.1.0"

__all__ = [
    "AsyncConsumer",
    "BatchInfo",
    "BatchOutcome",
    "Consumer",
    "ConsumerInfo",
    "DeadLetter",
    "DlqReplayResult",
    "Message",
    "PgqueError",
    "QueueInfo",
    "RetryPolicy",
    "StatusRow",
    "Ticker",
    "ack",
    "aio",
    "batch_info",
    "consumer_info",
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
    "maint_retry_events",
    "maint_rotate_tables_step2",
    "nack",
    "pending_count",
    "publish",
    "publish_async",
    "queue_info",
    "receive",
    "receive_coop",
    "send",
    "send_batch",
    "set_queue_config",
    "status",
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
