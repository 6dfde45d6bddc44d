"""Small building blocks shared by the SQL-level engine tests."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests._pg import Sql, error_text


def tick(sql: Sql, queue: str) -> int:
    """Force a tick of ``queue`` now, in its own transaction; return its id."""
    sql.one("select pgque.force_next_tick(%s)", queue)
    tick_id = sql.one("select pgque.ticker(%s)", queue)
    assert tick_id is not None, f"no tick written for {queue!r}"
    return int(tick_id)


def receive(sql: Sql, queue: str, consumer: str, max_return: int | None = 100) -> list[tuple[Any, ...]]:
    """Rows of ``pgque.receive`` (pgque.message fields in order)."""
    return sql.rows("select * from pgque.receive(%s, %s, %s)", queue, consumer, max_return)


def receive_ids(sql: Sql, queue: str, consumer: str) -> list[int]:
    return [row[0] for row in receive(sql, queue, consumer, None)]


def drain(sql: Sql, queue: str, consumer: str) -> list[tuple[Any, ...]]:
    """Receive and ack every ready batch (empty windows included); return all rows received."""
    rows: list[tuple[Any, ...]] = []
    while True:
        batch = receive(sql, queue, consumer, None)
        if batch:
            rows.extend(batch)
            assert sql.one("select pgque.ack(%s)", batch[0][1]) == 1
        elif not behind(sql, queue, consumer):
            return rows


def behind(sql: Sql, queue: str, consumer: str) -> bool:
    """Whether the consumer's cursor is before the queue's latest tick."""
    return bool(
        sql.one(
            "select c.last_tick < q.last_tick_id from pgque.get_consumer_info(%s, %s) c, pgque.get_queue_info(%s) q",
            queue,
            consumer,
            queue,
        )
    )


def queue_id(sql: Sql, queue: str) -> int:
    return int(sql.one("select queue_id from pgque.queue where queue_name = %s", queue))


def event_rows(sql: Sql, queue: str) -> list[tuple[Any, ...]]:
    """Every stored event of a queue (all child tables), by id."""
    return sql.rows(
        f"select ev_id, ev_type, ev_data, ev_owner, ev_retry from pgque.event_{queue_id(sql, queue)} order by ev_id"
    )


def raises(sql: Sql, message: str, query: str, *params: Any, sqlstate: str | None = None) -> psycopg.Error:
    """Run ``query`` expecting a server error with exactly ``message``."""
    with pytest.raises(psycopg.Error) as caught:
        sql.exec(query, *params)
    assert error_text(caught.value) == message
    if sqlstate is not None:
        assert caught.value.sqlstate == sqlstate
    return caught.value


def snapshot(sql: Sql) -> dict[str, list[tuple[Any, ...]]]:
    """The engine's bookkeeping state, to check that a failed call changed nothing."""
    return {
        table: sql.rows(f"select * from pgque.{table} order by 1, 2")
        for table in ("queue", "consumer", "subscription", "tick", "retry_queue", "dead_letter")
    }
