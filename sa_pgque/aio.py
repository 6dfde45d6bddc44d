"""The queue API for asyncio: the same calls as :mod:`sa_pgque.api`, awaited.

Use with an ``AsyncSession`` or ``AsyncConnection``; every call joins the
current transaction. The statements are the same objects the sync API runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_scoped_session

from sa_pgque import _ops
from sa_pgque._ops import Op
from sa_pgque.api import raise_translated, with_bind_parameter

AsyncBind: TypeAlias = "AsyncSession | AsyncConnection | async_scoped_session[Any]"
"""Where async queue calls run."""

T = TypeVar("T")
P = ParamSpec("P")


async def run(bind: AsyncBind, op: Op[T]) -> T:
    """Execute an operation's statements in order and decode the chosen result."""
    value: Any = None
    try:
        for index, statement in enumerate(op.statements):
            result = await bind.execute(statement)
            if index == op.decoded_index:
                value = op.decode(result)
    except DBAPIError as error:
        raise_translated(error)
    return value  # type: ignore[no-any-return]


def _bound(build: Callable[P, Op[T]]) -> Callable[Concatenate[AsyncBind, P], Awaitable[T]]:
    async def call(bind: AsyncBind, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await run(bind, build(*args, **kwargs))

    with_bind_parameter(call, build, "AsyncBind")
    return call


send = _bound(_ops.send)
send_batch = _bound(_ops.send_batch)
send_idem = _bound(_ops.send_idem)
send_at = _bound(_ops.send_at)
subscribe = _bound(_ops.subscribe)
unsubscribe = _bound(_ops.unsubscribe)
receive = _bound(_ops.receive)
ack = _bound(_ops.ack)
nack = _bound(_ops.nack)
subscribe_subconsumer = _bound(_ops.subscribe_subconsumer)
unsubscribe_subconsumer = _bound(_ops.unsubscribe_subconsumer)
receive_coop = _bound(_ops.receive_coop)
touch_subconsumer = _bound(_ops.touch_subconsumer)
create_queue = _bound(_ops.create_queue)
drop_queue = _bound(_ops.drop_queue)
set_queue_config = _bound(_ops.set_queue_config)
tick = _bound(_ops.tick)
ticker = _bound(_ops.ticker)
maint_retry_events = _bound(_ops.maint_retry_events)
maint = _bound(_ops.maint)
maint_rotate_tables_step2 = _bound(_ops.maint_rotate_tables_step2)
maint_deliver_delayed = _bound(_ops.maint_deliver_delayed)
maint_idem = _bound(_ops.maint_idem)
pause_queue = _bound(_ops.pause_queue)
resume_queue = _bound(_ops.resume_queue)
queue_info = _bound(_ops.queue_info)
consumer_info = _bound(_ops.consumer_info)
batch_info = _bound(_ops.batch_info)
queue_stats = _bound(_ops.queue_stats)
consumer_stats = _bound(_ops.consumer_stats)
stuck_consumers = _bound(_ops.stuck_consumers)
queue_health = _bound(_ops.queue_health)
metric_points = _bound(_ops.metric_points)
status = _bound(_ops.status)
version = _bound(_ops.version)
dlq_inspect = _bound(_ops.dlq_inspect)
dlq_replay = _bound(_ops.dlq_replay)
dlq_replay_all = _bound(_ops.dlq_replay_all)
dlq_purge = _bound(_ops.dlq_purge)
