"""What the queue operations emit: calls of the engine's functions.

Online, each call runs as ``SELECT pgque.<function>(...)`` with bound
parameters. Offline (``alembic upgrade --sql``), it is written with literal
values whatever the ``env.py`` passes as ``literal_binds``, and without the
``%`` doubling a pyformat driver would need: the script is meant for ``psql``.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import Operations
from sqlalchemy import select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.sql.functions import Function

from sa_pgque import functions
from sa_pgque._queueconfig import value_text
from sa_pgque.alembic.ops import CreateQueueOp, DropQueueOp, SetQueueConfigOp, SubscribeOp, UnsubscribeOp

_SCRIPT_DIALECT = PGDialect(paramstyle="named")  # type: ignore[no-untyped-call]
"""Renders literals as a SQL script needs them (a ``named`` paramstyle doubles no ``%``)."""


def call(operations: Operations, function: Function[Any]) -> None:
    """Run ``SELECT function`` in the migration, online or offline."""
    context = operations.get_context()
    if context.as_sql:
        rendered = function.compile(dialect=_SCRIPT_DIALECT, compile_kwargs={"literal_binds": True})
        context.impl.static_output(f"SELECT {rendered}{context.impl.command_terminator}")
    else:
        operations.execute(select(function))


@Operations.implementation_for(CreateQueueOp)
def create_queue(operations: Operations, operation: CreateQueueOp) -> None:
    call(operations, functions.create_queue(operation.queue_name))
    for param, value in operation.config.items():
        call(operations, functions.set_queue_config(operation.queue_name, param, value_text(value)))


@Operations.implementation_for(DropQueueOp)
def drop_queue(operations: Operations, operation: DropQueueOp) -> None:
    call(operations, functions.drop_queue(operation.queue_name, operation.force))


@Operations.implementation_for(SetQueueConfigOp)
def set_queue_config(operations: Operations, operation: SetQueueConfigOp) -> None:
    value = value_text(operation.value)
    call(operations, functions.set_queue_config(operation.queue_name, operation.param, value))


@Operations.implementation_for(SubscribeOp)
def subscribe(operations: Operations, operation: SubscribeOp) -> None:
    call(operations, functions.subscribe(operation.queue_name, operation.consumer_name))


@Operations.implementation_for(UnsubscribeOp)
def unsubscribe(operations: Operations, operation: UnsubscribeOp) -> None:
    call(operations, functions.unsubscribe(operation.queue_name, operation.consumer_name))
