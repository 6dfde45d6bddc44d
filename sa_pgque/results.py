"""Typed results of queue operations, and the one place rows become them.

Field names follow the engine's column names, so a ``QueueInfo`` reads like a
row of ``pgque.get_queue_info()``. ``Message`` is the exception: its raw
payload is ``payload_text`` and ``payload`` is that text decoded from JSON
when it is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.engine import Row

from sa_pgque.types import parse_timestamptz

_NOT_JSON = object()


@dataclass(frozen=True)
class Message:
    """One event as delivered by ``receive`` / ``receive_coop`` (the ``pgque.message`` type)."""

    msg_id: int
    batch_id: int
    type: str | None
    payload_text: str | None
    """The payload exactly as stored."""
    retry_count: int | None
    """``None`` on first delivery, then 1, 2, ... after each retry."""
    created_at: datetime
    """When the event was first sent (kept across retries)."""
    extra1: str | None = None
    extra2: str | None = None
    extra3: str | None = None
    extra4: str | None = None

    @cached_property
    def payload(self) -> Any:
        """The payload decoded from JSON when it is valid JSON, else the raw text."""
        decoded = self._decoded
        return self.payload_text if decoded is _NOT_JSON else decoded

    @cached_property
    def is_json(self) -> bool:
        """Whether the payload is valid JSON text."""
        return self._decoded is not _NOT_JSON

    @cached_property
    def _decoded(self) -> Any:
        if self.payload_text is None:
            return None
        try:
            return json.loads(self.payload_text)
        except ValueError:
            return _NOT_JSON

    @classmethod
    def from_fields(cls, values: Sequence[Any]) -> Message:
        """A Message from the ten ``pgque.message`` fields, in order (text or typed)."""
        msg_id, batch_id, type_, payload, retry, created, e1, e2, e3, e4 = values
        created_at = parse_timestamptz(created)
        assert created_at is not None
        return cls(
            int(msg_id),
            int(batch_id),
            type_,
            payload,
            None if retry is None else int(retry),
            created_at,
            e1,
            e2,
            e3,
            e4,
        )


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A row of ``pgque.get_queue_info()``."""

    queue_name: str
    queue_ntables: int
    queue_cur_table: int
    queue_rotation_period: timedelta
    queue_switch_time: datetime
    queue_external_ticker: bool
    queue_ticker_paused: bool
    queue_ticker_max_count: int
    queue_ticker_max_lag: timedelta
    queue_ticker_idle_period: timedelta
    ticker_lag: timedelta | None
    ev_per_sec: float | None
    ev_new: int | None
    last_tick_id: int | None


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    """A row of ``pgque.get_consumer_info()``: one subscription."""

    queue_name: str
    consumer_name: str
    lag: timedelta | None
    last_seen: timedelta
    last_tick: int | None
    current_batch: int | None
    next_tick: int | None
    pending_events: int | None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """``pgque.get_batch_info()`` for an open batch."""

    queue_name: str
    consumer_name: str
    batch_start: datetime
    batch_end: datetime
    prev_tick_id: int
    tick_id: int
    lag: timedelta
    seq_start: int
    seq_end: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A row of ``pgque.dead_letter`` (as ``pgque.dlq_inspect()`` returns it)."""

    dl_id: int
    dl_queue_id: int
    dl_consumer_id: int
    dl_time: datetime
    dl_reason: str | None
    ev_id: int
    ev_time: datetime
    ev_txid: int | None
    ev_retry: int | None
    ev_type: str | None
    ev_data: str | None
    ev_extra1: str | None
    ev_extra2: str | None
    ev_extra3: str | None
    ev_extra4: str | None


@dataclass(frozen=True, slots=True)
class DlqReplayResult:
    """What ``pgque.dlq_replay_all()`` did."""

    replayed: int
    failed: int
    first_error: str | None


@dataclass(frozen=True, slots=True)
class StatusRow:
    """A row of ``pgque.status()``."""

    component: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class SendIdemResult:
    """What ``pgque.send_idem()`` did with a keyed event."""

    event_id: int | None
    """The event appended now, or the one that first claimed the key (never ``None`` on this engine)."""
    deduped: bool
    """True when the key was already claimed and nothing was appended."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A row of ``pgque.queue_stats()``: a queue's backlog and bookkeeping, counted exactly."""

    queue_name: str
    depth: int
    """Committed events the slowest subscription has not finished (see docs/operations.md)."""
    oldest_pending_age: timedelta | None
    """Age of the oldest of those events; ``None`` when there are none."""
    unticked_events: int
    """Committed events that no tick covers yet."""
    ev_per_sec: float | None
    ticker_lag: timedelta | None
    """Age of the latest tick."""
    last_tick_id: int | None
    consumers: int
    """Subscriptions, cooperative members not counted."""
    retry_pending: int
    dead_letters: int
    delayed_pending: int
    """Events parked by ``send_at`` for later."""
    delayed_due: int
    """Parked events whose delivery time has passed (moved by the next ``maint_retry_events``)."""
    rotation_age: timedelta
    ticker_paused: bool


@dataclass(frozen=True, slots=True)
class ConsumerStats:
    """A row of ``pgque.consumer_stats()``: one subscription's progress."""

    queue_name: str
    consumer_name: str
    consumer_role: str
    """``normal``, ``coop_main`` or ``coop_member``."""
    last_tick: int | None
    lag: timedelta | None
    """Age of the cursor tick; ``None`` without a cursor (idle cooperative member)."""
    last_seen: timedelta
    pending_events: int | None
    """Committed events after the cursor that this subscription may receive."""
    batch_id: int | None
    batch_age: timedelta | None
    """How long the open batch has been open (or since the member's heartbeat)."""


@dataclass(frozen=True, slots=True)
class StuckConsumer:
    """A row of ``pgque.stuck_consumers()``."""

    queue_name: str
    consumer_name: str
    reason: str
    """``open_batch`` (a batch open for too long) or ``lag`` (not receiving although batches wait)."""
    lag: timedelta | None
    batch_age: timedelta | None
    pending_events: int | None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A row of ``pgque.queue_health()``."""

    queue_name: str
    check_name: str
    """``ticker``, ``consumers``, ``dead_letters``, ``rotation`` or ``delayed_delivery``."""
    status: str
    """``ok``, ``warn`` or ``fail``."""
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """A row of ``pgque.otel_metrics()``: one gauge data point."""

    metric_name: str
    """OpenTelemetry-style name, e.g. ``pgque.queue.depth``."""
    metric_unit: str
    """``s``, ``{event}``, ``{consumer}``, ``{event}/s`` or ``1``."""
    metric_value: float
    attributes: dict[str, str]
    """``queue``, plus ``consumer`` or ``check`` where they apply."""


_T = TypeVar("_T")

_CONVERTERS: dict[tuple[type, str], Any] = {
    (DeadLetter, "ev_txid"): lambda v: None if v is None else int(v),
    (MetricPoint, "attributes"): lambda v: {str(k): str(x) for k, x in (v or {}).items()},
}


def from_row(cls: type[_T], row: Row[Any]) -> _T:
    """Build a result object from a row whose columns are named like its fields."""
    if cls is Message:
        return Message.from_fields(tuple(row))  # type: ignore[return-value]
    mapping = row._mapping
    values = {}
    for field in fields(cls):  # type: ignore[arg-type]
        value = mapping[field.name]
        converter = _CONVERTERS.get((cls, field.name))
        values[field.name] = converter(value) if converter else value
    return cls(**values)
