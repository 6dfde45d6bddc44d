"""Alembic integration: engine operations, queue operations, declared queues, autogenerate filters.

Import this module in ``env.py`` (``import sa_pgque.alembic``): importing it
registers the operations on :class:`alembic.operations.Operations`
(``op.install_pgque``, ``op.uninstall_pgque``, ``op.create_queue``,
``op.drop_queue``, ``op.set_queue_config``, ``op.subscribe``,
``op.unsubscribe``), their autogenerate renderers, and the comparator that
turns :class:`sa_pgque.Queue` declarations into those operations. See
``docs/alembic.md``.
"""

from __future__ import annotations

from sa_pgque.alembic import toimpl as _toimpl  # noqa: F401 - registers the implementations
from sa_pgque.alembic.autogenerate import DROP_UNDECLARED
from sa_pgque.alembic.include import SCHEMA, all_of, include_name, include_object
from sa_pgque.alembic.install import InstallPgqueOp, UninstallPgqueOp, engine_revisions
from sa_pgque.alembic.ops import CreateQueueOp, DropQueueOp, SetQueueConfigOp, SubscribeOp, UnsubscribeOp
from sa_pgque.declarative import Queue

__all__ = [
    "DROP_UNDECLARED",
    "SCHEMA",
    "CreateQueueOp",
    "DropQueueOp",
    "InstallPgqueOp",
    "Queue",
    "SetQueueConfigOp",
    "SubscribeOp",
    "UninstallPgqueOp",
    "UnsubscribeOp",
    "all_of",
    "engine_revisions",
    "include_name",
    "include_object",
]
