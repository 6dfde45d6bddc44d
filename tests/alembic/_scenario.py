"""A queue installation with live data in every state, to check that schema changes keep it.

:func:`populate` builds, with whatever the installed revision offers:

* queue ``jobs`` with consumers ``billing`` (a retry waiting), ``shipping``
  (an open batch, not acked) and, where cooperative consumers exist, group
  ``workers`` whose member ``w1`` holds an open batch;
* queue ``strict`` (``max_retries = 0``) whose consumer ``auditor`` sent an
  event to the dead letters;
* an event ticked but not yet received, and one committed after the last tick.

:func:`state` reads every row of the engine's bookkeeping and event tables
(columns as they were when first read, so a revision may add some), and
:func:`check_consumable` then drives every consumer to the end and checks it
gets exactly what it was owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests._pg import Sql
from tests.engine._helpers import drain, receive, tick

TABLES = ("queue", "consumer", "subscription", "tick", "retry_queue", "dead_letter", "config")


@dataclass
class Scenario:
    first: int
    second: int
    third: int
    fourth: int
    doomed: int
    shipping_batch: int
    cooperative: bool
    member_batch: int | None


def has_function(sql: Sql, name: str) -> bool:
    query = "select count(*) from pg_proc where pronamespace = 'pgque'::regnamespace and proname = %s"
    return bool(sql.one(query, name))


def populate(sql: Sql) -> Scenario:
    sql.exec("select pgque.create_queue('jobs')")
    sql.exec("select pgque.create_queue('strict')")
    sql.exec("update pgque.queue set queue_max_retries = 0 where queue_name = 'strict'")
    for consumer in ("billing", "shipping"):
        sql.exec("select pgque.subscribe('jobs', %s)", consumer)
    sql.exec("select pgque.subscribe('strict', 'auditor')")
    cooperative = has_function(sql, "subscribe_subconsumer")
    if cooperative:
        assert sql.one("select pgque.subscribe_subconsumer('jobs', 'workers', 'w1')") == 1

    first = sql.one("select pgque.send('jobs', 'order', 'first')")
    second = sql.one("select pgque.send('jobs', 'order', 'second')")
    doomed = sql.one("select pgque.send('strict', 'order', 'doomed')")
    tick(sql, "jobs")
    tick(sql, "strict")

    # billing: 'second' waits in the retry queue (due at once), the batch is acked
    rows = receive(sql, "jobs", "billing")
    assert [r[0] for r in rows] == [first, second]
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'later')", rows[1][1], rows[1][0:10])
    assert sql.one("select pgque.ack(%s)", rows[0][1]) == 1

    # auditor: max_retries = 0, so the nack dead-letters the event
    [row] = receive(sql, "strict", "auditor")
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'rejected')", row[1], row[0:10])
    assert sql.one("select pgque.ack(%s)", row[1]) == 1

    # shipping (and the cooperative member) hold an open batch
    shipping = receive(sql, "jobs", "shipping")
    assert [r[0] for r in shipping] == [first, second]
    member_batch = None
    if cooperative:
        member = sql.rows("select * from pgque.receive_coop('jobs', 'workers', 'w1')")
        assert [r[0] for r in member] == [first, second]
        member_batch = member[0][1]

    third = sql.one("select pgque.send('jobs', 'order', 'third')")
    tick(sql, "jobs")
    fourth = sql.one("select pgque.send('jobs', 'order', 'fourth')")
    assert sql.one("select count(*) from pgque.retry_queue") == 1
    assert sql.one("select count(*) from pgque.dead_letter") == 1
    return Scenario(first, second, third, fourth, doomed, shipping[0][1], cooperative, member_batch)


def _columns(sql: Sql, table: str) -> list[str]:
    return sql.col(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
        " order by attnum",
        f"pgque.{table}",
    )


def state(sql: Sql, columns: dict[str, list[str]] | None = None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every row the engine holds, and the columns read (pass them back to read the same ones later)."""
    queue_ids = sql.col("select queue_id from pgque.queue order by 1")
    tables = [*TABLES, *(f"event_{n}" for n in queue_ids)]
    columns = dict(columns or {})
    found: dict[str, Any] = {}
    for table in tables:
        if table not in columns:
            columns[table] = _columns(sql, table)
        names = ", ".join(f"{c}::text" for c in columns[table])
        found[table] = sorted(sql.rows(f"select {names} from pgque.{table}"), key=repr)
    sequences = sql.col(
        "select relname from pg_class where relnamespace = 'pgque'::regnamespace and relkind = 'S' order by 1"
    )
    for sequence in sequences:
        found[sequence] = sql.row(f"select last_value, is_called from pgque.{sequence}")
    return found, columns


def check_consumable(sql: Sql, scenario: Scenario) -> None:
    """Every consumer gets what it is owed, once: open batches again (same id), retries, the rest."""
    rows = receive(sql, "jobs", "shipping")
    assert {r[1] for r in rows} == {scenario.shipping_batch}
    assert [r[0] for r in rows] == [scenario.first, scenario.second]
    assert sql.one("select pgque.ack(%s)", scenario.shipping_batch) == 1
    tick(sql, "jobs")
    assert [r[0] for r in drain(sql, "jobs", "shipping")] == [scenario.third, scenario.fourth]

    assert sql.one("select pgque.maint_retry_events()") == 1
    tick(sql, "jobs")
    got = {(r[0], r[3], r[4]) for r in drain(sql, "jobs", "billing")}
    assert got == {(scenario.second, "second", 1), (scenario.third, "third", None), (scenario.fourth, "fourth", None)}

    if scenario.cooperative:
        member = sql.rows("select * from pgque.receive_coop('jobs', 'workers', 'w1')")
        assert {r[1] for r in member} == {scenario.member_batch}
        assert [r[0] for r in member] == [scenario.first, scenario.second]
        assert sql.one("select pgque.ack(%s)", scenario.member_batch) == 1
        later: list[int] = []
        while batch := sql.rows("select * from pgque.receive_coop('jobs', 'workers', 'w1')"):
            later += [r[0] for r in batch]
            assert sql.one("select pgque.ack(%s)", batch[0][1]) == 1
        assert later == [scenario.third, scenario.fourth]

    [(dl_id, reason)] = sql.rows("select dl_id, dl_reason from pgque.dead_letter")
    assert reason == "rejected"
    replayed = sql.one("select pgque.dlq_replay(%s)", dl_id)
    tick(sql, "strict")
    assert [(r[0], r[3]) for r in drain(sql, "strict", "auditor")] == [(replayed, "doomed")]
