"""Autogenerate support: compare declared queues with the database, and write the operations.

The comparator compares every :class:`~sa_pgque.Queue` declared in the target
metadata with ``pgque.queue`` and ``pgque.subscription`` and adds, to the
upgrade:

* ``op.create_queue(name, **settings)`` and ``op.subscribe(...)`` for a
  declared queue the database lacks;
* ``op.set_queue_config(name, param, value, old_value=...)`` for each managed
  setting that differs (the old value makes the downgrade exact);
* ``op.subscribe(...)`` for each declared consumer that is not subscribed.

Queues and consumers present in the database but not declared are left
alone: queues are often created at run time, and dropping one loses its
events. Passing ``pgque_drop_undeclared=True`` to ``context.configure()``
opts in to ``op.unsubscribe(...)`` for undeclared consumers of declared
queues, and ``op.unsubscribe(...)`` + ``op.drop_queue(...)`` for undeclared
queues (the downgrade recreates them with their settings and consumers,
not their events). Cooperative members (``consumer.member``) are never
touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrateOperation, UpgradeOps
from sqlalchemy import text
from sqlalchemy.engine import Connection

from sa_pgque._queueconfig import COLUMNS, DEFAULTS, PARAMETERS, ConfigValue
from sa_pgque.alembic.install import InstallPgqueOp, UninstallPgqueOp
from sa_pgque.alembic.ops import CreateQueueOp, DropQueueOp, SetQueueConfigOp, SubscribeOp, UnsubscribeOp
from sa_pgque.declarative import Queue, declared_queues

DROP_UNDECLARED = "pgque_drop_undeclared"
"""``context.configure()`` option: also remove queues and consumers that are not declared (default ``False``)."""

_QUEUES = text(
    "select queue_name, " + ", ".join(COLUMNS[p] for p in PARAMETERS) + " from pgque.queue order by queue_name"
)
_CONSUMERS = text(
    """
    select q.queue_name, c.co_name
      from pgque.subscription s
      join pgque.queue q on q.queue_id = s.sub_queue
      join pgque.consumer c on c.co_id = s.sub_consumer
     where s.sub_role <> 'coop_member'
     order by q.queue_name, c.co_name
    """
)


@dataclass
class _Existing:
    """A queue as the database holds it."""

    config: dict[str, Any]
    consumers: list[str] = field(default_factory=list)


def read_queues(connection: Connection) -> dict[str, _Existing]:
    """Queues of the database with their settings and (main) consumers; empty without the engine."""
    if connection.execute(text("select to_regclass('pgque.queue') is null")).scalar():
        return {}
    queues = {row[0]: _Existing(dict(zip(PARAMETERS, row[1:], strict=True))) for row in connection.execute(_QUEUES)}
    for queue_name, consumer in connection.execute(_CONSUMERS):
        queues[queue_name].consumers.append(consumer)
    return queues


def _non_default(config: dict[str, Any]) -> dict[str, ConfigValue]:
    return {param: value for param, value in config.items() if value != DEFAULTS[param]}


def compare_queue(declared: Queue, existing: _Existing | None, drop_undeclared: bool) -> list[MigrateOperation]:
    """The operations that bring one queue from ``existing`` to ``declared``."""
    if existing is None:
        settings = {param: value for param, value in declared.config.items() if value is not None}
        return [
            CreateQueueOp(declared.name, settings),
            *(SubscribeOp(declared.name, consumer) for consumer in declared.consumers),
        ]
    operations: list[MigrateOperation] = [
        SetQueueConfigOp(declared.name, param, value, old_value=existing.config[param])
        for param, value in declared.config.items()
        if existing.config[param] != (DEFAULTS[param] if value is None else value)
    ]
    operations += [SubscribeOp(declared.name, c) for c in declared.consumers if c not in existing.consumers]
    if drop_undeclared:
        operations += [UnsubscribeOp(declared.name, c) for c in existing.consumers if c not in declared.consumers]
    return operations


def drop_queue(name: str, existing: _Existing) -> list[MigrateOperation]:
    """Unsubscribe every consumer of an undeclared queue, then drop it (reversible up to its events)."""
    return [
        *(UnsubscribeOp(name, consumer) for consumer in existing.consumers),
        DropQueueOp(name, config=_non_default(existing.config)),
    ]


@comparators.dispatch_for("schema", qualifier="postgresql")
def compare_queues(autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: Sequence[str | None]) -> None:
    """Autogenerate comparator for declared queues (see the module docstring)."""
    declared = declared_queues(autogen_context.metadata)
    drop_undeclared = bool(autogen_context.opts.get(DROP_UNDECLARED, False))
    if not declared and not drop_undeclared:
        return
    assert autogen_context.connection is not None
    existing = read_queues(autogen_context.connection)
    for queue in declared:
        upgrade_ops.ops.extend(compare_queue(queue, existing.get(queue.name), drop_undeclared))
    if drop_undeclared:
        names = {queue.name for queue in declared}
        for name, queue_state in existing.items():
            if name not in names:
                upgrade_ops.ops.extend(drop_queue(name, queue_state))


# ---------------------------------------------------------------------------
# Rendering into the revision file
# ---------------------------------------------------------------------------


def _prefix(autogen_context: AutogenContext) -> str:
    prefix = autogen_context.opts.get("alembic_module_prefix")
    return "op." if prefix is None else str(prefix)


def render_value(autogen_context: AutogenContext, value: object) -> str:
    """Python source for a setting value; ``timedelta`` brings ``import datetime`` along."""
    if isinstance(value, timedelta):
        autogen_context.imports.add("import datetime")
    return repr(value)


def _call(autogen_context: AutogenContext, name: str, *args: object, **kwargs: object) -> str:
    rendered = [render_value(autogen_context, arg) for arg in args]
    rendered += [f"{key}={render_value(autogen_context, value)}" for key, value in kwargs.items()]
    return f"{_prefix(autogen_context)}{name}({', '.join(rendered)})"


@renderers.dispatch_for(CreateQueueOp)
def render_create_queue(autogen_context: AutogenContext, op: CreateQueueOp) -> str:
    return _call(autogen_context, "create_queue", op.queue_name, **op.config)


@renderers.dispatch_for(DropQueueOp)
def render_drop_queue(autogen_context: AutogenContext, op: DropQueueOp) -> str:
    if op.force:
        return _call(autogen_context, "drop_queue", op.queue_name, force=True)
    return _call(autogen_context, "drop_queue", op.queue_name)


@renderers.dispatch_for(SetQueueConfigOp)
def render_set_queue_config(autogen_context: AutogenContext, op: SetQueueConfigOp) -> str:
    return _call(autogen_context, "set_queue_config", op.queue_name, op.param, op.value, old_value=op.old_value)


@renderers.dispatch_for(SubscribeOp)
def render_subscribe(autogen_context: AutogenContext, op: SubscribeOp) -> str:
    return _call(autogen_context, "subscribe", op.queue_name, op.consumer_name)


@renderers.dispatch_for(UnsubscribeOp)
def render_unsubscribe(autogen_context: AutogenContext, op: UnsubscribeOp) -> str:
    return _call(autogen_context, "unsubscribe", op.queue_name, op.consumer_name)


def _revisions(first: str | None, name: str, second: str | None) -> dict[str, str]:
    return {key: value for key, value in (("revision", first), (name, second)) if value is not None}


@renderers.dispatch_for(InstallPgqueOp)
def render_install_pgque(autogen_context: AutogenContext, op: InstallPgqueOp) -> str:
    return _call(autogen_context, "install_pgque", **_revisions(op.revision, "from_revision", op.from_revision))


@renderers.dispatch_for(UninstallPgqueOp)
def render_uninstall_pgque(autogen_context: AutogenContext, op: UninstallPgqueOp) -> str:
    return _call(autogen_context, "uninstall_pgque", **_revisions(op.revision, "to_revision", op.to_revision))
