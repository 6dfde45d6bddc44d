"""Queue operations for Alembic migrations: ``op.create_queue`` and friends.

Each class is an Alembic operation (registered on
:class:`~alembic.operations.Operations` when :mod:`sa_pgque.alembic` is
imported) with a ``reverse()``, so autogenerate can write the downgrade, and a
``to_diff_tuple()``, so ``alembic check`` can report it. What each one emits
is in :mod:`sa_pgque.alembic.toimpl`; how autogenerate writes it is in
:mod:`sa_pgque.alembic.autogenerate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alembic.operations import MigrateOperation, Operations

from sa_pgque._queueconfig import PARAMETERS, ConfigValue, check_parameter


def _ordered(config: Mapping[str, ConfigValue] | None) -> dict[str, ConfigValue]:
    """Settings checked by name and put in the engine's order (so output is deterministic)."""
    given = dict(config or {})
    for name in given:
        check_parameter(name)
    return {name: given[name] for name in PARAMETERS if name in given}


@Operations.register_operation("create_queue")
class CreateQueueOp(MigrateOperation):
    """Create a queue (``pgque.create_queue``) and apply its settings (``pgque.set_queue_config``)."""

    def __init__(self, queue_name: str, config: Mapping[str, ConfigValue] | None = None) -> None:
        self.queue_name = queue_name
        self.config = _ordered(config)

    @classmethod
    def create_queue(cls, operations: Operations, queue_name: str, **config: ConfigValue) -> None:
        """Create queue ``queue_name`` with the given settings.

        Settings are the parameters of ``pgque.set_queue_config``:
        ``max_retries``, ``ticker_max_count``, ``ticker_max_lag``,
        ``ticker_idle_period``, ``rotation_period``, ``ticker_paused``,
        ``external_ticker``. Intervals may be ``timedelta`` objects or
        interval text (``"100 milliseconds"``). An existing queue is kept and
        gets the settings (``create_queue`` is idempotent).
        """
        operations.invoke(cls(queue_name, config))

    def reverse(self) -> DropQueueOp:
        return DropQueueOp(self.queue_name, config=self.config)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("create_queue", self.queue_name, dict(self.config))


@Operations.register_operation("drop_queue")
class DropQueueOp(MigrateOperation):
    """Drop a queue with its events (``pgque.drop_queue``)."""

    def __init__(
        self,
        queue_name: str,
        force: bool = False,
        *,
        config: Mapping[str, ConfigValue] | None = None,
    ) -> None:
        self.queue_name = queue_name
        self.force = force
        self.config = _ordered(config)
        """Settings ``reverse()`` recreates the queue with (not emitted by the drop itself)."""

    @classmethod
    def drop_queue(cls, operations: Operations, queue_name: str, force: bool = False) -> None:
        """Drop queue ``queue_name``; with ``force=True`` its consumers are unsubscribed first.

        Without ``force`` the engine refuses while consumers are subscribed.
        """
        operations.invoke(cls(queue_name, force))

    def reverse(self) -> CreateQueueOp:
        return CreateQueueOp(self.queue_name, self.config)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("drop_queue", self.queue_name)


@Operations.register_operation("set_queue_config")
class SetQueueConfigOp(MigrateOperation):
    """Change one setting of a queue (``pgque.set_queue_config``)."""

    def __init__(self, queue_name: str, param: str, value: ConfigValue, *, old_value: ConfigValue = None) -> None:
        self.queue_name = queue_name
        self.param = check_parameter(param)
        self.value = value
        self.old_value = old_value

    @classmethod
    def set_queue_config(
        cls,
        operations: Operations,
        queue_name: str,
        param: str,
        value: ConfigValue,
        *,
        old_value: ConfigValue = None,
    ) -> None:
        """Set ``param`` of queue ``queue_name`` to ``value`` (``None``: back to the engine's default).

        ``old_value`` is what the reverse operation restores; autogenerate
        fills it in from the database. Left out, the reverse resets the
        setting to the engine's default.
        """
        operations.invoke(cls(queue_name, param, value, old_value=old_value))

    def reverse(self) -> SetQueueConfigOp:
        return SetQueueConfigOp(self.queue_name, self.param, self.old_value, old_value=self.value)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("set_queue_config", self.queue_name, self.param, self.old_value, self.value)


@Operations.register_operation("subscribe")
class SubscribeOp(MigrateOperation):
    """Subscribe a consumer to a queue (``pgque.subscribe``), starting at the latest tick."""

    def __init__(self, queue_name: str, consumer_name: str) -> None:
        self.queue_name = queue_name
        self.consumer_name = consumer_name

    @classmethod
    def subscribe(cls, operations: Operations, queue_name: str, consumer_name: str) -> None:
        """Subscribe ``consumer_name`` to ``queue_name`` (kept as is if already subscribed)."""
        operations.invoke(cls(queue_name, consumer_name))

    def reverse(self) -> UnsubscribeOp:
        return UnsubscribeOp(self.queue_name, self.consumer_name)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("subscribe", self.queue_name, self.consumer_name)


@Operations.register_operation("unsubscribe")
class UnsubscribeOp(MigrateOperation):
    """Unsubscribe a consumer (``pgque.unsubscribe``): its position and pending retries go."""

    def __init__(self, queue_name: str, consumer_name: str) -> None:
        self.queue_name = queue_name
        self.consumer_name = consumer_name

    @classmethod
    def unsubscribe(cls, operations: Operations, queue_name: str, consumer_name: str) -> None:
        """Unsubscribe ``consumer_name`` from ``queue_name`` (nothing happens if it is not subscribed)."""
        operations.invoke(cls(queue_name, consumer_name))

    def reverse(self) -> SubscribeOp:
        return SubscribeOp(self.queue_name, self.consumer_name)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("unsubscribe", self.queue_name, self.consumer_name)
