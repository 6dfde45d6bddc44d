"""Look at a queue's events without consuming them (``sa-pgque peek``).

A consumer has yet to process exactly the events a future batch of its
would hold. By spec 7.2 a batch from tick A to tick B holds the events whose
transaction is visible in B's snapshot and not in A's, and that are not a
retry meant for another subscription. Every later tick's snapshot sees more,
so the union of all batches after the consumer's cursor tick is the set of
committed events whose transaction is *not visible in the cursor tick's
snapshot* (owner rule applied). That includes events no tick has covered
yet: committed after the latest tick, they will fall into the next batch.
This query reads them under an ordinary snapshot, so in-flight and
rolled-back transactions are not shown, as no batch will ever show them.

Besides the cursor window, a cooperative member with an open batch holds a
window of its own (its batch's start and end ticks; the group cursor has
already moved past it), and retries waiting in ``pgque.retry_queue`` will be
delivered to the subscription that asked for them; both count as pending.

Nothing is written: the queries run in a read-only transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from sa_pgque.errors import ConsumerNotFound, QueueNotFound


@dataclass(frozen=True, slots=True)
class PeekedEvent:
    """An event as peeked: its fields, and where it stands in the queue's pipeline."""

    ev_id: int
    ev_time: datetime
    ev_retry: int | None
    ev_type: str | None
    ev_data: str | None
    state: str
    """``not ticked`` (no tick covers it yet), ``ticked`` (the next batches will deliver it),
    ``batch N`` (in the open batch N, not acked yet), or ``retry due <time>`` (waiting in the retry queue)."""


@dataclass(frozen=True, slots=True)
class _Window:
    """Events visible after ``start`` and up to ``end`` (``None``: up to now) are pending."""

    start: int
    end: int | None
    batch_id: int | None
    batch_end: int | None


_QUEUE = text("select queue_id, queue_data_pfx from pgque.queue where queue_name = :queue")

_SUBSCRIPTIONS = text(
    """
    select s.sub_id, s.sub_role, s.sub_last_tick, s.sub_next_tick, s.sub_batch
      from pgque.subscription s
      join pgque.consumer c on c.co_id = s.sub_consumer
     where s.sub_queue = :queue_id
       and (c.co_name = :consumer
            or (s.sub_role = 'coop_member'
                and s.sub_id = (select m.sub_id
                                  from pgque.subscription m
                                  join pgque.consumer mc on mc.co_id = m.sub_consumer
                                 where m.sub_queue = :queue_id and mc.co_name = :consumer
                                   and m.sub_role = 'coop_main')))
    """
)

_RETRIES = text(
    """
    select ev_id, ev_time, ev_retry, ev_type, ev_data, ev_retry_after
      from pgque.retry_queue
     where ev_queue = :queue_id and ev_owner = :sub_id
     order by ev_id
     limit :limit
    """
)

# The pending-events query; {events} is the queue's parent event table (its children are read too).
_PENDING = """
    with windows as (
        select w.batch_id, a.tick_snapshot as since, b.tick_snapshot as upto, bb.tick_snapshot as batch_upto
          from unnest(cast(:starts as bigint[]), cast(:ends as bigint[]),
                      cast(:batch_ids as bigint[]), cast(:batch_ends as bigint[]))
               as w(start_tick, end_tick, batch_id, batch_end)
          join pgque.tick a on a.tick_queue = :queue_id and a.tick_id = w.start_tick
          left join pgque.tick b on b.tick_queue = :queue_id and b.tick_id = w.end_tick
          left join pgque.tick bb on bb.tick_queue = :queue_id and bb.tick_id = w.batch_end
    ),
    latest as (
        select tick_snapshot from pgque.tick where tick_queue = :queue_id order by tick_id desc limit 1
    )
    select e.ev_id, e.ev_time, e.ev_retry, e.ev_type, e.ev_data,
           (select w.batch_id from windows w
             where w.batch_upto is not null
               and not pg_visible_in_snapshot(e.ev_txid, w.since)
               and pg_visible_in_snapshot(e.ev_txid, w.batch_upto)
             limit 1) as batch_id,
           coalesce(pg_visible_in_snapshot(e.ev_txid, (select tick_snapshot from latest)), false) as ticked
      from {events} e
     where (e.ev_owner is null or e.ev_owner = :sub_id)
       and e.ev_txid >= (select min(pg_snapshot_xmin(since)) from windows)
       and exists (select from windows w
                    where not pg_visible_in_snapshot(e.ev_txid, w.since)
                      and (w.upto is null or pg_visible_in_snapshot(e.ev_txid, w.upto)))
     order by e.ev_id
     limit :limit
"""

_NEWEST = """
    select e.ev_id, e.ev_time, e.ev_retry, e.ev_type, e.ev_data, null::bigint as batch_id,
           coalesce(pg_visible_in_snapshot(
               e.ev_txid,
               (select tick_snapshot from pgque.tick where tick_queue = :queue_id order by tick_id desc limit 1)
           ), false) as ticked
      from {events} e
     order by e.ev_id desc
     limit :limit
"""


def _event_table(connection: Connection, data_pfx: str) -> str:
    """The quoted name of a queue's parent event table (``queue_data_pfx``, schema-qualified)."""
    quote = connection.dialect.identifier_preparer.quote_identifier
    return ".".join(quote(part) for part in data_pfx.split(".", 1))


def _queue(connection: Connection, queue: str) -> tuple[int, str]:
    row = connection.execute(_QUEUE, {"queue": queue}).one_or_none()
    if row is None:
        raise QueueNotFound(f"queue not found: {queue}")
    return int(row.queue_id), _event_table(connection, row.queue_data_pfx)


def _state(row: Any) -> str:
    if row.batch_id is not None:
        return f"batch {row.batch_id}"
    return "ticked" if row.ticked else "not ticked"


def _event(row: Any) -> PeekedEvent:
    return PeekedEvent(row.ev_id, row.ev_time, row.ev_retry, row.ev_type, row.ev_data, _state(row))


def _windows(subscriptions: list[Any]) -> list[_Window]:
    windows = []
    for sub in subscriptions:
        if sub.sub_last_tick is None:
            continue  # an idle cooperative member: nothing of its own
        if sub.sub_role == "coop_member":
            if sub.sub_next_tick is not None:
                windows.append(_Window(sub.sub_last_tick, sub.sub_next_tick, sub.sub_batch, sub.sub_next_tick))
        else:
            windows.append(_Window(sub.sub_last_tick, None, sub.sub_batch, sub.sub_next_tick))
    return windows


def pending(connection: Connection, queue: str, consumer: str, limit: int) -> list[PeekedEvent]:
    """The next ``limit`` events ``consumer`` has not consumed yet, oldest first."""
    queue_id, events = _queue(connection, queue)
    subscriptions = list(connection.execute(_SUBSCRIPTIONS, {"queue_id": queue_id, "consumer": consumer}))
    if not subscriptions:
        raise ConsumerNotFound(f"consumer {consumer} is not subscribed to queue {queue}")
    sub_id = subscriptions[0].sub_id
    windows = _windows(subscriptions)
    found: list[PeekedEvent] = []
    if windows:
        params = {
            "queue_id": queue_id,
            "sub_id": sub_id,
            "limit": limit,
            "starts": [w.start for w in windows],
            "ends": [w.end for w in windows],
            "batch_ids": [w.batch_id for w in windows],
            "batch_ends": [w.batch_end for w in windows],
        }
        found = [_event(row) for row in connection.execute(text(_PENDING.format(events=events)), params)]
    for row in connection.execute(_RETRIES, {"queue_id": queue_id, "sub_id": sub_id, "limit": limit}):
        due = row.ev_retry_after.isoformat(sep=" ", timespec="seconds")
        found.append(PeekedEvent(row.ev_id, row.ev_time, row.ev_retry, row.ev_type, row.ev_data, f"retry due {due}"))
    found.sort(key=lambda event: event.ev_id)
    return found[:limit]


def newest(connection: Connection, queue: str, limit: int) -> list[PeekedEvent]:
    """The queue's ``limit`` newest stored events, newest first."""
    queue_id, events = _queue(connection, queue)
    rows = connection.execute(text(_NEWEST.format(events=events)), {"queue_id": queue_id, "limit": limit})
    return [_event(row) for row in rows]
