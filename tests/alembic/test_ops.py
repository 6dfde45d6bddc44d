"""The queue operations: what they emit offline and online, their reverses, their rendering."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import render_python_code
from alembic.operations import Operations
from alembic.operations.ops import UpgradeOps
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from sa_pgque.alembic import (
    CreateQueueOp,
    DropQueueOp,
    InstallPgqueOp,
    SetQueueConfigOp,
    SubscribeOp,
    UninstallPgqueOp,
    UnsubscribeOp,
)
from tests._pg import Database


def offline(*calls: tuple[str, tuple[object, ...], dict[str, object]]) -> list[str]:
    """The statements an offline migration writes for ``op.<name>(*args, **kwargs)`` calls."""
    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer})
    operations = Operations(context)
    for name, args, kwargs in calls:
        getattr(operations, name)(*args, **kwargs)
    return [line for line in buffer.getvalue().splitlines() if line]


def test_create_queue_offline_writes_literal_calls() -> None:
    statements = offline(
        (
            "create_queue",
            ("it's 100%",),
            {"max_retries": 3, "ticker_max_lag": timedelta(milliseconds=100), "ticker_paused": False},
        )
    )
    assert statements == [
        "SELECT pgque.create_queue('it''s 100%');",
        "SELECT pgque.set_queue_config('it''s 100%', 'ticker_max_lag', '0.1 seconds');",
        "SELECT pgque.set_queue_config('it''s 100%', 'ticker_paused', 'false');",
        "SELECT pgque.set_queue_config('it''s 100%', 'max_retries', '3');",
    ]


def test_other_operations_offline() -> None:
    assert offline(
        ("drop_queue", ("q",), {}),
        ("drop_queue", ("q",), {"force": True}),
        ("set_queue_config", ("q", "rotation_period", timedelta(days=1, hours=1)), {}),
        ("set_queue_config", ("q", "max_retries", None), {"old_value": 7}),
        ("set_queue_config", ("q", "ticker_idle_period", "5 minutes"), {}),
        ("subscribe", ("q", "c"), {}),
        ("unsubscribe", ("q", "c"), {}),
    ) == [
        "SELECT pgque.drop_queue('q', false);",
        "SELECT pgque.drop_queue('q', true);",
        "SELECT pgque.set_queue_config('q', 'rotation_period', '1 days 3600 seconds');",
        "SELECT pgque.set_queue_config('q', 'max_retries', NULL);",
        "SELECT pgque.set_queue_config('q', 'ticker_idle_period', '5 minutes');",
        "SELECT pgque.subscribe('q', 'c');",
        "SELECT pgque.unsubscribe('q', 'c');",
    ]


def test_unknown_parameters_are_refused_before_anything_is_emitted() -> None:
    with pytest.raises(ValueError, match="unknown queue parameter 'queue_max_retries'"):
        offline(("create_queue", ("q",), {"queue_max_retries": 3}))
    with pytest.raises(ValueError, match="unknown queue parameter 'bogus'"):
        offline(("set_queue_config", ("q", "bogus", 1), {}))


def test_reverses_undo_each_other() -> None:
    create = CreateQueueOp("q", {"max_retries": 3})
    drop = create.reverse()
    assert isinstance(drop, DropQueueOp) and (drop.queue_name, drop.force, drop.config) == (
        "q",
        False,
        {"max_retries": 3},
    )
    again = drop.reverse()
    assert isinstance(again, CreateQueueOp) and again.config == {"max_retries": 3}

    change = SetQueueConfigOp("q", "max_retries", 12, old_value=10)
    back = change.reverse()
    assert (back.param, back.value, back.old_value) == ("max_retries", 10, 12)
    # without an old value the reverse puts the engine's default back
    assert SetQueueConfigOp("q", "ticker_paused", True).reverse().value is None

    subscribe = SubscribeOp("q", "c")
    assert isinstance(subscribe.reverse(), UnsubscribeOp)
    assert isinstance(subscribe.reverse().reverse(), SubscribeOp)

    install = InstallPgqueOp("pgque_0002", from_revision="pgque_0001")
    uninstall = install.reverse()
    assert isinstance(uninstall, UninstallPgqueOp)
    assert (uninstall.revision, uninstall.to_revision) == ("pgque_0002", "pgque_0001")
    assert (uninstall.reverse().revision, uninstall.reverse().from_revision) == ("pgque_0002", "pgque_0001")


def test_rendering_for_revision_files() -> None:
    ops = UpgradeOps(
        ops=[
            CreateQueueOp("orders", {"max_retries": 10, "ticker_max_lag": timedelta(milliseconds=100)}),
            SetQueueConfigOp("orders", "ticker_paused", True, old_value=False),
            DropQueueOp("old", force=True),
            SubscribeOp("orders", "billing"),
            UnsubscribeOp("orders", "gone"),
            InstallPgqueOp("pgque_0002"),
            UninstallPgqueOp(None, to_revision="pgque_0001"),
        ]
    )
    code = render_python_code(ops)
    assert [line.strip() for line in code.splitlines() if line.strip().startswith("op.")] == [
        "op.create_queue('orders', ticker_max_lag=datetime.timedelta(microseconds=100000), max_retries=10)",
        "op.set_queue_config('orders', 'ticker_paused', True, old_value=False)",
        "op.drop_queue('old', force=True)",
        "op.subscribe('orders', 'billing')",
        "op.unsubscribe('orders', 'gone')",
        "op.install_pgque(revision='pgque_0002')",
        "op.uninstall_pgque(to_revision='pgque_0001')",
    ]


def test_diff_tuples_for_alembic_check() -> None:
    assert CreateQueueOp("q", {"max_retries": 1}).to_diff_tuple() == ("create_queue", "q", {"max_retries": 1})
    assert SetQueueConfigOp("q", "max_retries", 2, old_value=1).to_diff_tuple() == (
        "set_queue_config",
        "q",
        "max_retries",
        1,
        2,
    )
    assert SubscribeOp("q", "c").to_diff_tuple() == ("subscribe", "q", "c")


def operations(connection: Connection) -> Any:
    """Alembic's ``op`` on a connection (``Any``: the registered operations are not in Alembic's stubs)."""
    return Operations(MigrationContext.configure(connection))


def test_operations_online_call_the_engine(db: Database) -> None:
    with db.engine().begin() as connection:
        op = operations(connection)
        op.create_queue("q", max_retries=3, ticker_max_lag="250 milliseconds", ticker_max_count=50)
        op.subscribe("q", "c")
        op.set_queue_config("q", "ticker_paused", True)
    sql = db.sql()
    assert sql.row(
        "select queue_max_retries, queue_ticker_max_lag, queue_ticker_max_count, queue_ticker_paused"
        " from pgque.queue where queue_name = 'q'"
    ) == (3, timedelta(milliseconds=250), 50, True)
    assert sql.col("select co_name from pgque.consumer") == ["c"]

    with db.engine().begin() as connection:
        op = operations(connection)
        op.set_queue_config("q", "max_retries", None)
        op.unsubscribe("q", "c")
        op.drop_queue("q")
    assert sql.one("select count(*) from pgque.queue") == 0


def test_engine_errors_surface_and_roll_back(db: Database) -> None:
    sql = db.sql()
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    with pytest.raises(DBAPIError) as refused, db.engine().begin() as connection:
        op = operations(connection)
        op.set_queue_config("q", "max_retries", 5)
        op.drop_queue("q")
    assert isinstance(refused.value.orig, psycopg.Error)
    assert "consumers still attached" in str(refused.value.orig)
    assert sql.one("select queue_max_retries from pgque.queue") is None

    with db.engine().begin() as connection:
        operations(connection).drop_queue("q", force=True)
    assert sql.one("select count(*) from pgque.queue") == 0
