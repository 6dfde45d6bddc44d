"""The queue comparator against a real database: declared queues versus ``pgque.queue`` / ``pgque.subscription``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from alembic.autogenerate import produce_migrations
from alembic.operations.ops import MigrateOperation
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from sa_pgque import Queue
from sa_pgque.alembic import CreateQueueOp, DropQueueOp, SetQueueConfigOp, SubscribeOp, UnsubscribeOp
from tests._pg import Database


def diff(db: Database, metadata: MetaData | Sequence[MetaData], **options: Any) -> tuple[list[Any], list[Any]]:
    """(upgrade, downgrade) operations autogenerate produces, as diff tuples."""
    with db.engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"target_metadata": metadata, **options})
        script = produce_migrations(context, cast(MetaData, metadata))  # a sequence works too
    assert script.upgrade_ops is not None and script.downgrade_ops is not None
    return tuples(script.upgrade_ops.ops), tuples(script.downgrade_ops.ops)


def tuples(ops: Sequence[MigrateOperation]) -> list[Any]:
    kinds = (CreateQueueOp, DropQueueOp, SetQueueConfigOp, SubscribeOp, UnsubscribeOp)
    return [op.to_diff_tuple() for op in ops if isinstance(op, kinds)]


def test_declared_queues_are_created_where_the_engine_is_not_installed_yet(empty_db: Database) -> None:
    metadata = MetaData()
    Queue("orders", metadata, max_retries=10, ticker_paused=None, consumers=["billing", "audit"])
    upgrade, downgrade = diff(empty_db, metadata)
    assert upgrade == [
        ("create_queue", "orders", {"max_retries": 10}),
        ("subscribe", "orders", "billing"),
        ("subscribe", "orders", "audit"),
    ]
    assert downgrade == [
        ("unsubscribe", "orders", "audit"),
        ("unsubscribe", "orders", "billing"),
        ("drop_queue", "orders"),
    ]


def test_nothing_to_do_when_the_database_matches(db: Database) -> None:
    sql = db.sql()
    sql.exec("select pgque.create_queue('orders')")
    sql.exec("select pgque.set_queue_config('orders', 'ticker_max_lag', '100 milliseconds')")
    sql.exec("select pgque.set_queue_config('orders', 'rotation_period', '1 day')")
    sql.exec("select pgque.subscribe('orders', 'billing')")
    metadata = MetaData()
    Queue(
        "orders",
        metadata,
        ticker_max_lag=timedelta(milliseconds=100),
        rotation_period=timedelta(hours=24),
        max_retries=None,
        ticker_max_count=500,
        external_ticker=False,
        consumers=["billing"],
    )
    assert diff(db, metadata) == ([], [])


def test_settings_that_differ_are_set_with_their_old_value(db: Database) -> None:
    sql = db.sql()
    sql.exec("select pgque.create_queue('orders')")
    sql.exec("select pgque.set_queue_config('orders', 'max_retries', '7')")
    metadata = MetaData()
    Queue("orders", metadata, max_retries=None, ticker_idle_period=90, ticker_paused=True)
    upgrade, downgrade = diff(db, metadata)
    assert upgrade == [
        ("set_queue_config", "orders", "ticker_idle_period", timedelta(minutes=1), timedelta(seconds=90)),
        ("set_queue_config", "orders", "ticker_paused", False, True),
        ("set_queue_config", "orders", "max_retries", 7, None),
    ]
    assert downgrade == [
        ("set_queue_config", "orders", "max_retries", None, 7),
        ("set_queue_config", "orders", "ticker_paused", True, False),
        ("set_queue_config", "orders", "ticker_idle_period", timedelta(seconds=90), timedelta(minutes=1)),
    ]


def test_undeclared_queues_and_consumers_are_left_alone_by_default(db: Database) -> None:
    sql = db.sql()
    for queue in ("orders", "runtime"):
        sql.exec("select pgque.create_queue(%s)", queue)
    sql.exec("select pgque.subscribe('orders', 'extra')")
    metadata = MetaData()
    Queue("orders", metadata)
    assert diff(db, metadata) == ([], [])
    assert diff(db, MetaData()) == ([], [])


def test_drop_undeclared_removes_them_reversibly_but_never_touches_members(db: Database) -> None:
    sql = db.sql()
    sql.exec("select pgque.create_queue('orders')")
    sql.exec("select pgque.create_queue('runtime')")
    sql.exec("select pgque.set_queue_config('runtime', 'max_retries', '2')")
    sql.exec("select pgque.subscribe('orders', 'billing')")
    sql.exec("select pgque.subscribe('orders', 'extra')")
    sql.exec("select pgque.subscribe_subconsumer('orders', 'workers', 'w1')")
    sql.exec("select pgque.subscribe('runtime', 'adhoc')")
    metadata = MetaData()
    Queue("orders", metadata, consumers=["billing", "workers"])

    upgrade, downgrade = diff(db, metadata, pgque_drop_undeclared=True)

    assert upgrade == [
        ("unsubscribe", "orders", "extra"),
        ("unsubscribe", "runtime", "adhoc"),
        ("drop_queue", "runtime"),
    ]
    assert downgrade == [
        ("create_queue", "runtime", {"max_retries": 2}),
        ("subscribe", "runtime", "adhoc"),
        ("subscribe", "orders", "extra"),
    ]


def test_queues_from_several_metadata_collections(db: Database) -> None:
    first, second = MetaData(), MetaData()
    Queue("a", first)
    Queue("b", second, consumers=["c"])
    upgrade, _ = diff(db, [first, second])
    assert upgrade == [("create_queue", "a", {}), ("create_queue", "b", {}), ("subscribe", "b", "c")]
