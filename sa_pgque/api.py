"""The queue API over a SQLAlchemy ``Session`` or ``Connection``.

Every call runs in the caller's current transaction: nothing here begins,
commits or rolls back, so publishing with :func:`send` next to ORM writes
commits or rolls back with them. Server errors are raised as
:mod:`sa_pgque.errors` exceptions with the driver error chained.

Each function is an operation of :mod:`sa_pgque._ops` bound to a sync
connection; :mod:`sa_pgque.aio` binds the same operations for asyncio.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session

from sa_pgque import _ops
from sa_pgque._ops import Op
from sa_pgque.errors import translate

Bind: TypeAlias = "Session | Connection | scoped_session[Any]"
"""Where queue calls run: an ORM session or a Core connection."""

T = TypeVar("T")
P = ParamSpec("P")


def raise_translated(error: DBAPIError) -> None:
    """Re-raise a driver error as the matching :class:`~sa_pgque.errors.PgqueError`."""
    mapped = translate(error)
    if mapped is error:
        raise error
    raise mapped from error


def run(bind: Bind, op: Op[T]) -> T:
    """Execute an operation's statements in order and decode the chosen result."""
    value: Any = None
    try:
        for index, statement in enumerate(op.statements):
            result = bind.execute(statement)
            if index == op.decoded_index:
                value = op.decode(result)
    except DBAPIError as error:
        raise_translated(error)
    return value  # type: ignore[no-any-return]


def with_bind_parameter(call: Callable[..., Any], build: Callable[..., Any], annotation: str) -> None:
    """Give ``call`` the builder's name, docstring and signature, plus a leading ``bind``."""
    functools.update_wrapper(call, build)
    del call.__wrapped__  # type: ignore[attr-defined]
    signature = inspect.signature(build)
    bind = inspect.Parameter("bind", inspect.Parameter.POSITIONAL_ONLY, annotation=annotation)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Op[") and returns.endswith("]"):
        returns = returns[3:-1]
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[bind, *signature.parameters.values()], return_annotation=returns
    )
    call.__module__ = __name__ if annotation == "Bind" else "sa_pgque.aio"


def _bound(build: Callable[P, Op[T]]) -> Callable[Concatenate[Bind, P], T]:
    def call(bind: Bind, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return run(bind, build(*args, **kwargs))

    with_bind_parameter(call, build, "Bind")
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
