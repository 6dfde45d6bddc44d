"""Queues declared next to the models, for Alembic autogenerate to keep in step.

::

    from datetime import timedelta
    from sa_pgque import Queue

    Queue("orders", Base.metadata, max_retries=10, ticker_max_lag=timedelta(milliseconds=100), consumers=["billing"])

A declaration is stored in ``metadata.info``; nothing is sent to the database.
With ``import sa_pgque.alembic`` in ``env.py``, ``alembic revision
--autogenerate`` compares the declared queues with ``pgque.queue`` and
``pgque.subscription`` and writes ``op.create_queue(...)``,
``op.set_queue_config(...)`` and ``op.subscribe(...)`` into the revision.

Only the settings given are managed: a setting left out is whatever the
database holds; a setting given as ``None`` means the engine's default (for
``max_retries``: NULL, i.e. 5 retries). Consumers listed are subscribed;
consumers that are not listed are left alone (see ``docs/alembic.md`` for
the opt-in removal of undeclared queues and consumers).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType

from sqlalchemy import MetaData

from sa_pgque._queueconfig import PARAMETERS, normalize

INFO_KEY = "sa_pgque.queues"
"""Key of ``MetaData.info`` under which declared queues are kept (name -> :class:`Queue`)."""


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET
"""Default of every setting of :class:`Queue`: not managed by the declaration."""

Interval = timedelta | int | float | None


class Queue:
    """A queue the application expects to exist, with the settings and consumers it relies on."""

    name: str
    consumers: tuple[str, ...]
    """Consumers that must be subscribed (cooperative groups count as their main consumer)."""
    config: Mapping[str, int | bool | timedelta | None]
    """The managed settings only, normalized (intervals as ``timedelta``), in the engine's order."""

    def __init__(
        self,
        name: str,
        metadata: MetaData,
        *,
        consumers: Iterable[str] = (),
        max_retries: int | _Unset | None = UNSET,
        ticker_max_count: int | _Unset | None = UNSET,
        ticker_max_lag: Interval | _Unset = UNSET,
        ticker_idle_period: Interval | _Unset = UNSET,
        rotation_period: Interval | _Unset = UNSET,
        ticker_paused: bool | _Unset | None = UNSET,
        external_ticker: bool | _Unset | None = UNSET,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"queue name must be a str, got {name!r}")
        given = {
            "ticker_max_count": ticker_max_count,
            "ticker_max_lag": ticker_max_lag,
            "ticker_idle_period": ticker_idle_period,
            "rotation_period": rotation_period,
            "ticker_paused": ticker_paused,
            "external_ticker": external_ticker,
            "max_retries": max_retries,
        }
        self.name = name
        self.config = MappingProxyType(
            {param: normalize(param, given[param]) for param in PARAMETERS if given[param] is not UNSET}
        )
        self.consumers = tuple(dict.fromkeys(_names(consumers)))
        declared: dict[str, Queue] = metadata.info.setdefault(INFO_KEY, {})
        if name in declared:
            raise ValueError(f"queue {name!r} is already declared in this MetaData")
        declared[name] = self
        self.metadata = metadata

    def __repr__(self) -> str:
        settings = "".join(f", {k}={v!r}" for k, v in self.config.items())
        return f"Queue({self.name!r}{settings}, consumers={list(self.consumers)!r})"


def _names(consumers: Iterable[str]) -> list[str]:
    if isinstance(consumers, str):
        raise TypeError("consumers must be a list of names, not a single str")
    names = list(consumers)
    for consumer in names:
        if not isinstance(consumer, str):
            raise TypeError(f"consumer names must be str, got {consumer!r}")
    return names


def declared_queues(metadata: MetaData | Sequence[MetaData] | None) -> list[Queue]:
    """Every :class:`Queue` declared in ``metadata`` (or several), in declaration order."""
    if metadata is None:
        return []
    collections = [metadata] if isinstance(metadata, MetaData) else list(metadata)
    queues: dict[str, Queue] = {}
    for collection in collections:
        for name, queue in collection.info.get(INFO_KEY, {}).items():
            if name in queues and queues[name] is not queue:
                raise ValueError(f"queue {name!r} is declared in more than one MetaData")
            queues[name] = queue
    return list(queues.values())
