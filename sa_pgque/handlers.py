"""What a consumer does with each message: handler lookup, retry delays, outcomes.

Shared by :class:`~sa_pgque.consumer.Consumer` and
:class:`~sa_pgque.aio_consumer.AsyncConsumer`; no I/O here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, Literal, TypeVar

from sa_pgque.results import Message

H = TypeVar("H")
"""A handler: a sync or an async callable taking (message, session)."""

UnknownTypePolicy = Literal["nack", "ack", "fail"]
"""For a message whose type has no handler (and no default): retry it, drop it, or stop."""

DEFAULT_PAGE_SIZE = 1000
"""Messages fetched per round trip; a batch is streamed in pages of this size."""

DEFAULT_POLL_INTERVAL = 5.0
"""Seconds to wait for a tick notification before polling anyway."""

DEFAULT_DEAD_INTERVAL = timedelta(minutes=5)
"""A cooperative member silent this long (no call, no heartbeat) loses its batch to a sibling."""


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before a failed message is retried: ``base * factor ** retries``, capped at ``maximum``.

    ``retries`` is the message's ``retry_count`` (0 on first delivery). The
    engine dead-letters the message once the queue's ``max_retries`` is spent.
    """

    base: timedelta = timedelta(seconds=5)
    factor: float = 2.0
    maximum: timedelta = timedelta(minutes=10)

    def delay(self, retry_count: int | None) -> timedelta:
        seconds = self.base.total_seconds() * self.factor ** (retry_count or 0)
        return min(timedelta(seconds=seconds), self.maximum)


DEFAULT_RETRY = RetryPolicy()
"""5 s, 10 s, 20 s, ... capped at 10 minutes."""


class UnhandledType(Exception):
    """A message's type has no handler and the consumer's policy is ``"fail"``."""


class Handlers(Generic[H]):
    """Handlers by event type, plus an optional default."""

    def __init__(self) -> None:
        self._by_type: dict[str | None, H] = {}
        self._default: H | None = None

    def register(self, event_type: str | None, handler: H) -> H:
        if event_type in self._by_type:
            raise ValueError(f"sa_pgque: a handler for {event_type!r} is already registered")
        self._by_type[event_type] = handler
        return handler

    def set_default(self, handler: H) -> H:
        if self._default is not None:
            raise ValueError("sa_pgque: a default handler is already registered")
        self._default = handler
        return handler

    def decorator(self, event_type: str | None) -> Callable[[H], H]:
        return lambda handler: self.register(event_type, handler)

    def for_message(self, message: Message) -> H | None:
        return self._by_type.get(message.type, self._default)

    def __bool__(self) -> bool:
        return bool(self._by_type) or self._default is not None


@dataclass
class BatchOutcome:
    """What one pass over one batch did (returned by ``run_once``)."""

    batch_id: int | None = None
    """The batch processed, or None when no batch was ready."""
    handled: list[int] = field(default_factory=list)
    """Ids of messages whose handler succeeded (their effects committed with the ack)."""
    retried: list[int] = field(default_factory=list)
    """Ids of messages nacked (retried later, or dead-lettered by the engine)."""
    skipped: list[int] = field(default_factory=list)
    """Ids of messages acked without a handler (``unknown_type="ack"``)."""
    committed: bool = False
    """False when the batch was given up (rolled back: it will be delivered again)."""

    @property
    def empty(self) -> bool:
        return self.batch_id is None

    @property
    def count(self) -> int:
        return len(self.handled) + len(self.retried) + len(self.skipped)


class CursorWatch:
    """Tells an empty receive that passed over an empty tick window from one that found no batch.

    ``receive`` finishes an empty window itself and returns no row, exactly as
    when no batch is ready. A consumer behind several empty windows (idle
    ticks while it was down) would otherwise sleep once per window. After an
    empty receive the consumer reads its cursor tick: if it moved since the
    last reading, a window was passed over and the next one may be ready at
    once. Every repeat needs the cursor to move, so this cannot spin.
    """

    def __init__(self) -> None:
        self._last: int | None = None
        self._read = False

    def moved(self, last_tick: int | None) -> bool:
        """Record the cursor tick just read; True when it differs from the previous reading (or is the first)."""
        moved = not self._read or last_tick != self._last
        self._last, self._read = last_tick, True
        return moved


def consumer_logger(queue: str, name: str, subconsumer: str | None) -> logging.LoggerAdapter[logging.Logger]:
    """The consumer's logger; every record carries queue/consumer/subconsumer in ``extra``."""
    return logging.LoggerAdapter(
        logging.getLogger("sa_pgque.consumer"),
        {"queue": queue, "consumer": name, "subconsumer": subconsumer},
    )


def check_cooperative_options(subconsumer: str | None, dead_interval: object) -> None:
    if dead_interval is not None and subconsumer is None:
        raise ValueError("sa_pgque: dead_interval is only valid for a cooperative consumer (set subconsumer=...)")
