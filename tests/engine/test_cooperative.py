"""Cooperative consumers (spec 6.3, 7.10, checklist 12 "Cooperative consumers").

A group is a ``coop_main`` subscription (the logical consumer ``c``, owner of
the group cursor) plus ``coop_member`` rows ``c.<s>`` sharing its ``sub_id``.
Each tick window goes to exactly one member.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pgque  # type: ignore[import-untyped]
import psycopg
import pytest
from psycopg import sql as pgsql

from tests._pg import Database, Sql, error_text
from tests.engine._helpers import drain, raises, snapshot, tick

DEADLINE = 30.0
"""Seconds any waiting step of a test may take before it fails."""

MAIN_DIRECTIVE = (
    "consumer c on queue q is a cooperative main consumer; use cooperative receive/next_batch with a subconsumer"
)
MEMBER_DIRECTIVE = (
    "consumer c.{s} on queue q is a cooperative subconsumer; use receive_coop / next_batch (cooperative form)"
    " instead of the legacy 5-arg next_batch_custom"
)


@pytest.fixture(autouse=True)
def _queue(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def coop(
    sql: Sql, sub: str, consumer: str = "c", max_return: int | None = 100, dead: str | None = None
) -> list[tuple[Any, ...]]:
    """Rows of ``receive_coop`` for member ``consumer.sub`` on queue q."""
    return sql.rows("select * from pgque.receive_coop('q', %s, %s, %s, %s::interval)", consumer, sub, max_return, dead)


def publish(sql: Sql, *payloads: str) -> list[int]:
    """Send payloads in one committed transaction each, then tick: one new window."""
    ids = [int(sql.one("select pgque.send('q', 'kind', %s::text)", p)) for p in payloads]
    tick(sql, "q")
    return ids


def ack(sql: Sql, batch_id: int) -> int:
    return int(sql.one("select pgque.ack(%s)", batch_id))


def sub_row(sql: Sql, name: str) -> dict[str, Any] | None:
    """The subscription of consumer ``name`` on queue q, or None."""
    rows = sql.rows(
        "select s.sub_id, s.sub_role, s.sub_last_tick, s.sub_next_tick, s.sub_batch, s.sub_active"
        "  from pgque.subscription s join pgque.consumer c on c.co_id = s.sub_consumer"
        "  join pgque.queue q on q.queue_id = s.sub_queue"
        " where q.queue_name = 'q' and c.co_name = %s",
        name,
    )
    if not rows:
        return None
    keys = ("sub_id", "role", "last", "next", "batch", "active")
    return dict(zip(keys, rows[0], strict=True))


def must(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    return row


def latest_tick(sql: Sql) -> int:
    return int(sql.one("select max(tick_id) from pgque.tick t join pgque.queue q on q.queue_id = t.tick_queue"))


def age(sql: Sql, name: str, interval: str = "10 minutes") -> None:
    """Make member ``name`` look silent for ``interval`` (instead of sleeping)."""
    sql.exec(
        "update pgque.subscription set sub_active = now() - %s::interval"
        " where sub_consumer = (select co_id from pgque.consumer where co_name = %s)",
        interval,
        name,
    )


def fresh(sql: Sql, name: str) -> bool:
    """Whether ``name``'s sub_active was set within the last minute (aged rows are 10+ minutes old)."""
    return bool(
        sql.one(
            "select sub_active > now() - interval '1 minute' from pgque.subscription"
            " where sub_consumer = (select co_id from pgque.consumer where co_name = %s)",
            name,
        )
    )


def ids(rows: list[tuple[Any, ...]]) -> list[int]:
    return [int(r[0]) for r in rows]


def co_id(sql: Sql, name: str) -> int:
    return int(sql.one("select co_id from pgque.consumer where co_name = %s", name))


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------


def test_register_subconsumer_creates_main_and_members_sharing_sub_id(sql: Sql) -> None:
    start = latest_tick(sql)
    assert sql.one("select pgque.register_subconsumer('q', 'c', 's1')") == 1
    assert sql.one("select pgque.register_subconsumer('q', 'c', 's1')") == 0
    assert sql.one("select pgque.subscribe_subconsumer('q', 'c', 's2')") == 1
    assert sql.one("select pgque.subscribe_subconsumer('q', 'c', 's2')") == 0

    main, s1, s2 = must(sub_row(sql, "c")), must(sub_row(sql, "c.s1")), must(sub_row(sql, "c.s2"))
    assert (main["role"], main["last"], main["next"], main["batch"]) == ("coop_main", start, None, None)
    for member in (s1, s2):
        assert (member["sub_id"], member["role"], member["last"], member["next"], member["batch"]) == (
            main["sub_id"],
            "coop_member",
            None,
            None,
            None,
        )
    assert sorted(sql.col("select co_name from pgque.consumer")) == ["c", "c.s1", "c.s2"]
    assert sql.one("select count(distinct sub_id) from pgque.subscription") == 1


def test_registering_again_is_a_heartbeat(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    age(sql, "c.s1")
    assert sql.one("select pgque.register_subconsumer('q', 'c', 's1')") == 0
    assert fresh(sql, "c.s1")


NAME_ERRORS = [
    (("", "", ""), "queue name must not be empty"),
    ((None, "c", "s"), "queue name must not be empty"),
    (("q", "", ""), "consumer name must not be empty"),
    (("q", None, "s"), "consumer name must not be empty"),
    (("q", "c.x", ""), "subconsumer name must not be empty"),
    (("q", "c", None), "subconsumer name must not be empty"),
    (("q", "c.x", "s.y"), "cooperative consumer name must not contain dot: c.x"),
    (("q", "c", "s.y"), "cooperative subconsumer name must not contain dot: s.y"),
]

NAME_CHECKED_CALLS = [
    "select pgque.register_subconsumer(%s, %s, %s)",
    "select pgque.subscribe_subconsumer(%s, %s, %s, true)",
    "select pgque.unregister_subconsumer(%s, %s, %s)",
    "select pgque.unsubscribe_subconsumer(%s, %s, %s, 1)",
    "select pgque.next_batch(%s, %s, %s)",
    "select * from pgque.next_batch_custom(%s, %s, %s, null, null, null)",
    "select * from pgque.receive_coop(%s, %s, %s)",
    "select pgque.touch_subconsumer(%s, %s, %s)",
]


@pytest.mark.parametrize("call", NAME_CHECKED_CALLS)
def test_names_are_validated_in_order(sql: Sql, call: str) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's')")
    before = snapshot(sql)
    for names, message in NAME_ERRORS:
        raises(sql, message, call, *names, sqlstate="PQ010")
    assert snapshot(sql) == before


def test_batch_handling_must_be_0_or_1(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    before = snapshot(sql)
    for value, shown in ((2, "2"), (-1, "-1"), (None, "<NULL>")):
        for fn in ("unregister_subconsumer", "unsubscribe_subconsumer"):
            raises(
                sql,
                f"unsupported batch_handling value: {shown}",
                f"select pgque.{fn}('q', 'c', 's1', %s)",
                value,
                sqlstate="PQ010",
            )
    assert snapshot(sql) == before


def test_registration_errors(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'n')")
    sql.exec("select pgque.subscribe('q', 'c.s1')")  # a normal consumer that looks like a member name
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    before = snapshot(sql)
    raises(sql, "Event queue not created yet", "select pgque.register_subconsumer('nope', 'c', 's')", sqlstate="PQ001")
    raises(
        sql,
        "consumer n on queue q is already a normal consumer; explicit conversion is required",
        "select pgque.register_subconsumer('q', 'n', 's')",
        sqlstate="PQ030",
    )
    raises(
        sql,
        "consumer name c.s1 on queue q is already registered incompatibly",
        "select pgque.register_subconsumer('q', 'c', 's1')",
        sqlstate="PQ030",
    )
    assert snapshot(sql) == before

    # a member row under a dot-less name cannot be made through the API; forge one
    sql.exec(
        "update pgque.subscription set sub_role = 'coop_member'"
        " where sub_consumer = (select co_id from pgque.consumer where co_name = 'n')"
    )
    raises(
        sql,
        "consumer n on queue q is not a cooperative main consumer",
        "select pgque.register_subconsumer('q', 'n', 's', true)",
        sqlstate="PQ030",
    )


def test_registration_needs_a_tick(sql: Sql) -> None:
    sql.exec("delete from pgque.tick")
    raises(
        sql,
        "No ticks for this queue.  Please run ticker on database.",
        "select pgque.register_subconsumer('q', 'c', 's')",
        sqlstate="PQ040",
    )
    assert sql.rows("select * from pgque.subscription") == []


def test_receive_coop_auto_registers_main_and_member(sql: Sql) -> None:
    """No register call at all: receive_coop creates both rows, then delivers."""
    start = latest_tick(sql)
    assert coop(sql, "s1") == []
    main, member = must(sub_row(sql, "c")), must(sub_row(sql, "c.s1"))
    assert (main["role"], main["last"], main["batch"]) == ("coop_main", start, None)
    assert (member["role"], member["sub_id"], member["last"], member["next"], member["batch"]) == (
        "coop_member",
        main["sub_id"],
        None,
        None,
        None,
    )
    # the first window after registration is delivered to the auto-registered member
    sent = publish(sql, "a", "b")
    rows = coop(sql, "s1")
    assert ids(rows) == sent and [r[3] for r in rows] == ["a", "b"]
    assert ack(sql, rows[0][1]) == 1
    # a second member appears through next_batch alone
    assert sql.one("select pgque.next_batch('q', 'c', 's2')") is None
    assert must(sub_row(sql, "c.s2"))["sub_id"] == main["sub_id"]


def test_normal_consumer_needs_explicit_conversion(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'c')")
    sent = publish(sql, "x")
    before = snapshot(sql)
    for call in (
        "select * from pgque.receive_coop('q', 'c', 's1')",
        "select pgque.next_batch('q', 'c', 's1')",
        "select pgque.register_subconsumer('q', 'c', 's1')",
        "select pgque.register_subconsumer('q', 'c', 's1', null)",
    ):
        raises(
            sql,
            "consumer c on queue q is already a normal consumer; explicit conversion is required",
            call,
            sqlstate="PQ030",
        )
    assert snapshot(sql) == before

    # an open batch prevents the conversion
    batch = sql.one("select pgque.next_batch('q', 'c')")
    before = snapshot(sql)
    raises(
        sql,
        "cannot convert active normal consumer c on queue q to cooperative main",
        "select pgque.register_subconsumer('q', 'c', 's1', i_convert_normal := true)",
        sqlstate="PQ030",
    )
    assert snapshot(sql) == before
    sql.exec("select pgque.register_consumer_at('q', 'c', %s)", must(sub_row(sql, "c"))["last"])  # drop the batch
    assert sql.one("select pgque.ack(%s)", batch) == 0

    # idle: converted, cursor kept, so the pending window goes to the first member
    cursor = must(sub_row(sql, "c"))["last"]
    age(sql, "c")
    assert sql.one("select pgque.register_subconsumer('q', 'c', 's1', i_convert_normal := true)") == 1
    main = must(sub_row(sql, "c"))
    assert (main["role"], main["last"]) == ("coop_main", cursor)
    assert fresh(sql, "c")
    assert ids(coop(sql, "s1")) == sent


# ---------------------------------------------------------------------------
# allocation
# ---------------------------------------------------------------------------


def test_members_get_consecutive_disjoint_windows_and_the_cursor_moves_at_allocation(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    t0 = latest_tick(sql)
    first = publish(sql, "a1", "a2")
    t1 = latest_tick(sql)
    second = publish(sql, "b1")
    t2 = latest_tick(sql)

    rows1 = coop(sql, "s1")
    assert ids(rows1) == first
    b1 = rows1[0][1]
    assert {r[1] for r in rows1} == {b1}
    assert must(sub_row(sql, "c"))["last"] == t1  # before any ack
    s1 = must(sub_row(sql, "c.s1"))
    assert (s1["last"], s1["next"], s1["batch"]) == (t0, t1, b1)

    rows2 = coop(sql, "s2")
    assert ids(rows2) == second
    b2 = rows2[0][1]
    assert b2 != b1
    assert must(sub_row(sql, "c"))["last"] == t2
    s2 = must(sub_row(sql, "c.s2"))
    assert (s2["last"], s2["next"], s2["batch"]) == (t1, t2, b2)

    # polling again before ack: the same batch, from its first row
    assert coop(sql, "s1") == rows1
    assert sql.one("select pgque.next_batch('q', 'c', 's1')") == b1

    # ack releases the member only; the group cursor stays
    assert ack(sql, b1) == 1
    s1 = must(sub_row(sql, "c.s1"))
    assert (s1["last"], s1["next"], s1["batch"]) == (None, None, None)
    assert must(sub_row(sql, "c"))["last"] == t2
    assert ack(sql, b1) == 0
    assert f"finish_batch: batch {b1} not found" in sql.notices
    assert coop(sql, "s1") == []  # nothing left: s2 holds the last window
    assert ack(sql, b2) == 1


def test_empty_window_leaves_the_member_without_a_batch(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    empty_tick = tick(sql, "q")
    assert coop(sql, "s1") == []
    s1 = must(sub_row(sql, "c.s1"))
    assert (s1["last"], s1["next"], s1["batch"]) == (None, None, None)
    assert must(sub_row(sql, "c"))["last"] == empty_tick
    assert coop(sql, "s1") == []


def test_max_return_limits_rows_and_is_checked_before_registration(sql: Sql) -> None:
    for bad, shown in ((0, "0"), (-5, "-5")):
        raises(
            sql,
            f"pgque.receive_coop: max_return must be >= 1, got {shown}",
            "select * from pgque.receive_coop('', '', '', %s)",
            bad,
            sqlstate="PQ010",
        )
    assert sql.rows("select * from pgque.subscription") == []
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sent = publish(sql, "a", "b", "c")
    assert ids(coop(sql, "s1", max_return=2)) == sent[:2]
    assert ids(coop(sql, "s1", max_return=None)) == sent  # NULL: no limit, from the first row again


def test_cooperative_next_batch_custom(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    nothing = sql.row("select * from pgque.next_batch_custom('q', 'c', 's1', null, null, null)")
    assert nothing == (None, None, None)
    t0 = latest_tick(sql)
    publish(sql, "a")
    t1 = latest_tick(sql)
    publish(sql, "b")
    t2 = latest_tick(sql)
    # i_min_lag: the end tick is too young
    assert sql.row("select * from pgque.next_batch_custom('q', 'c', 's1', '1 hour', null, null)") == (None,) * 3
    assert must(sub_row(sql, "c"))["last"] == t0
    # i_min_count spans several ticks: exactly the sequence distance to t2 (forced ticks inflate it)
    seq = dict(sql.rows("select tick_id, tick_event_seq from pgque.tick"))
    too_many = seq[t2] - seq[t0] + 1
    assert sql.row("select * from pgque.next_batch_custom('q', 'c', 's1', null, %s, null)", too_many) == (None,) * 3
    batch, prev, nxt = sql.row(
        "select * from pgque.next_batch_custom('q', 'c', 's1', null, %s, null)", seq[t2] - seq[t0]
    )
    assert (prev, nxt) == (t0, t2) and batch is not None
    assert must(sub_row(sql, "c"))["last"] == t2
    assert [r[5] for r in sql.rows("select * from pgque.get_batch_events(%s)", batch)] == ["a", "b"]
    # the open batch comes back whatever the arguments
    assert sql.row("select * from pgque.next_batch_custom('q', 'c', 's1', null, 100, '1 day', '1 second')") == (
        batch,
        t0,
        t2,
    )
    assert ack(sql, batch) == 1
    assert t1 < t2


def test_allocation_sanity_errors(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    publish(sql, "a")
    main = "update pgque.subscription set {} where sub_role = 'coop_main'"
    cursor = must(sub_row(sql, "c"))["last"]

    sql.exec(main.format("sub_batch = 4242"))
    raises(
        sql,
        "cooperative main consumer q/c has an unexpected active batch 4242",
        "select * from pgque.receive_coop('q', 'c', 's1')",
        sqlstate="PQ040",
    )
    sql.exec(main.format("sub_batch = null, sub_last_tick = null"))
    raises(
        sql,
        "PgQ corruption: cooperative main consumer c on queue q has no cursor",
        "select * from pgque.receive_coop('q', 'c', 's1')",
        sqlstate="PQ040",
    )
    sql.exec(main.format("sub_last_tick = 999999"))
    raises(
        sql,
        "PgQ corruption: cooperative main consumer c on queue q does not see tick 999999",
        "select pgque.next_batch('q', 'c', 's1')",
        sqlstate="PQ040",
    )
    sql.exec(main.format(f"sub_last_tick = {cursor}"))
    assert [r[3] for r in coop(sql, "s1")] == ["a"]


# ---------------------------------------------------------------------------
# stale takeover and heartbeats
# ---------------------------------------------------------------------------


def test_dead_interval_takeover_reissues_the_window_under_a_new_batch_id(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 'a')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 'b')")
    sent = publish(sql, "x", "y")
    cursor_after = latest_tick(sql)
    taken = coop(sql, "a")
    old_batch = taken[0][1]
    a_before = must(sub_row(sql, "c.a"))

    # fresh enough: B is not allowed to take A's window, and there is nothing else
    assert coop(sql, "b", dead="1 minute") == []
    assert must(sub_row(sql, "c.a"))["batch"] == old_batch

    age(sql, "c.a")  # A went silent ten minutes ago
    assert coop(sql, "b") == []  # no dead_interval: no takeover
    stolen = coop(sql, "b", dead="1 minute")
    new_batch = stolen[0][1]
    assert new_batch != old_batch
    assert ids(stolen) == sent and [r[3] for r in stolen] == ["x", "y"]
    assert [r[2:] for r in stolen] == [r[2:] for r in taken]

    a, b = must(sub_row(sql, "c.a")), must(sub_row(sql, "c.b"))
    assert (a["last"], a["next"], a["batch"]) == (None, None, None)
    assert fresh(sql, "c.a")  # reset, so A is not picked again
    assert (b["last"], b["next"], b["batch"]) == (a_before["last"], a_before["next"], new_batch)
    assert must(sub_row(sql, "c"))["last"] == cursor_after  # the group cursor does not move again

    # A's old token is dead
    assert ack(sql, old_batch) == 0
    assert f"finish_batch: batch {old_batch} not found" in sql.notices
    raises(
        sql,
        f"batch not found: {old_batch}",
        "select pgque.nack(%s, %s::pgque.message)",
        old_batch,
        taken[0][0:10],
        sqlstate="PQ003",
    )
    # A asks again: it does not get its window back, B holds it
    assert coop(sql, "a", dead="1 minute") == []
    assert ack(sql, new_batch) == 1


def test_takeover_picks_the_oldest_silent_sibling_and_never_an_idle_one(sql: Sql) -> None:
    for s in ("a", "b", "idle", "thief"):
        sql.exec("select pgque.register_subconsumer('q', 'c', %s)", s)
    win_a = publish(sql, "for-a")
    win_b = publish(sql, "for-b")
    assert ids(coop(sql, "a")) == win_a
    assert ids(coop(sql, "b")) == win_b
    age(sql, "c.idle", "1 hour")  # the oldest, but it holds nothing
    age(sql, "c.a", "20 minutes")
    age(sql, "c.b", "30 minutes")
    assert ids(coop(sql, "thief", dead="5 minutes")) == win_b
    assert must(sub_row(sql, "c.b"))["batch"] is None
    assert must(sub_row(sql, "c.idle"))["batch"] is None
    # the thief holds a batch now: it gets that one again rather than stealing more
    assert ids(coop(sql, "thief", dead="5 minutes")) == win_b


def test_touch_subconsumer_keeps_a_member_from_being_taken_over(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 'a')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 'b')")
    first = publish(sql, "slow-job")
    second = publish(sql, "next-job")
    held = coop(sql, "a")
    assert ids(held) == first
    age(sql, "c.a")
    with sql.transaction():
        assert sql.one("select pgque.touch_subconsumer('q', 'c', 'a')") == 1
        # clock_timestamp(), not the transaction start
        assert sql.one(
            "select sub_active > now() - interval '1 second' and sub_active >= now()"
            "  from pgque.subscription"
            " where sub_consumer = (select co_id from pgque.consumer where co_name = 'c.a')"
        )
    a = must(sub_row(sql, "c.a"))
    assert a["batch"] == held[0][1]  # batch state untouched
    # B, with a dead interval, gets the next window instead of A's
    assert ids(coop(sql, "b", dead="1 minute")) == second
    assert must(sub_row(sql, "c.a"))["batch"] == held[0][1]
    assert ack(sql, held[0][1]) == 1


def test_touch_subconsumer_returns_0_and_creates_nothing_when_not_a_member(sql: Sql) -> None:
    sql.exec("select pgque.subscribe('q', 'c.plain')")  # normal consumer with a dotted name
    sql.exec("select pgque.create_queue('other')")
    sql.exec("select pgque.register_subconsumer('other', 'c', 's1')")
    before = snapshot(sql)
    assert sql.one("select pgque.touch_subconsumer('q', 'c', 'nobody')") == 0
    assert sql.one("select pgque.touch_subconsumer('q', 'c', 'plain')") == 0
    assert sql.one("select pgque.touch_subconsumer('q', 'c', 's1')") == 0  # a member of another queue's group
    assert sql.one("select pgque.touch_subconsumer('nope', 'c', 's1')") == 0
    assert snapshot(sql) == before
    assert sql.one("select pgque.touch_subconsumer('other', 'c', 's1')") == 1


# ---------------------------------------------------------------------------
# unregistering
# ---------------------------------------------------------------------------


def test_unregister_active_member_without_batch_handling_fails_and_changes_nothing(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    publish(sql, "x")
    rows = coop(sql, "s1")
    before = snapshot(sql)
    for call in (
        "select pgque.unregister_subconsumer('q', 'c', 's1')",
        "select pgque.unsubscribe_subconsumer('q', 'c', 's1', 0)",
    ):
        raises(
            sql,
            "cannot unregister active cooperative subconsumer q/c/s1 without batch_handling = 1",
            call,
            sqlstate="PQ031",
        )
    assert snapshot(sql) == before
    assert coop(sql, "s1") == rows


def make_window_with_a_spent_event(sql: Sql) -> tuple[list[tuple[Any, ...]], int, list[int]]:
    """A window for member s1 holding one event whose retry budget (1) is spent, and two fresh ones.

    Returns the member's rows, the id of the spent event and the fresh ids.
    """
    sql.exec("update pgque.queue set queue_max_retries = 1 where queue_name = 'q'")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    [first] = publish(sql, "retried")
    [row] = coop(sql, "s1")
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds')", row[1], row[0:10])
    assert ack(sql, row[1]) == 1
    fresh = [int(sql.one("select pgque.send('q', 'kind', %s::text)", p)) for p in ("f1", "f2")]
    sql.exec("update pgque.retry_queue set ev_retry_after = now() - interval '1 second'")
    assert sql.one("select pgque.maint_retry_events()") == 1
    tick(sql, "q")
    rows = coop(sql, "s1")
    assert sorted(ids(rows)) == sorted([first, *fresh])
    assert {r[0]: r[4] for r in rows}[first] == 1
    return rows, first, fresh


def test_unregister_with_batch_handling_routes_every_event_like_nack(sql: Sql) -> None:
    rows, spent, fresh = make_window_with_a_spent_event(sql)
    batch = rows[0][1]
    main = must(sub_row(sql, "c"))
    cursor = main["last"]
    assert sql.one("select pgque.unsubscribe_subconsumer('q', 'c', 's1', 1)") == 1

    retries = sql.rows(
        "select ev_id, ev_owner, ev_retry, ev_data, ev_txid,"
        "       round(extract(epoch from ev_retry_after - now()))"
        "  from pgque.retry_queue order by ev_id"
    )
    assert retries == [(fresh[0], main["sub_id"], 1, "f1", None, 60), (fresh[1], main["sub_id"], 1, "f2", None, 60)]
    assert sql.rows("select dl_consumer_id, ev_id, dl_reason, ev_retry, ev_data from pgque.dead_letter") == [
        (co_id(sql, "c"), spent, "subconsumer unregistered", 1, "retried")
    ]
    # the member and its consumer row are gone; the last member leaving makes the main normal again
    assert sub_row(sql, "c.s1") is None
    assert sql.col("select co_name from pgque.consumer") == ["c"]
    main = must(sub_row(sql, "c"))
    assert (main["role"], main["last"], main["batch"]) == ("normal", cursor, None)
    assert ack(sql, batch) == 0

    # the parked events come back to the (now normal) consumer; nothing else is re-delivered
    sql.exec("update pgque.retry_queue set ev_retry_after = now() - interval '1 second'")
    assert sql.one("select pgque.maint_retry_events()") == 2
    tick(sql, "q")
    assert sorted(ids(drain(sql, "q", "c"))) == fresh


def test_unregister_with_batch_handling_is_all_or_nothing(sql: Sql) -> None:
    rows, _spent, _fresh = make_window_with_a_spent_event(sql)
    sql.exec(
        """
        create function public.fail_second_retry() returns trigger language plpgsql as $$
        begin
            if (select count(*) from pgque.retry_queue) >= 1 then
                raise exception 'retry store is full';
            end if;
            return new;
        end $$;
        create trigger fail_second_retry before insert on pgque.retry_queue
            for each row execute function public.fail_second_retry();
        """
    )
    before = snapshot(sql)
    raises(sql, "retry store is full", "select pgque.unregister_subconsumer('q', 'c', 's1', 1)")
    assert snapshot(sql) == before
    assert coop(sql, "s1") == rows


def test_last_member_leaving_turns_the_main_back_into_a_normal_consumer(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    delivered = publish(sql, "a")
    assert ids(coop(sql, "s2")) == delivered
    assert ack(sql, sql.one("select pgque.next_batch('q', 'c', 's2')")) == 1
    assert sql.one("select pgque.unregister_subconsumer('q', 'c', 's1')") == 1
    assert must(sub_row(sql, "c"))["role"] == "coop_main"
    assert sql.one("select pgque.unregister_subconsumer('q', 'c', 's2', 0)") == 1
    main = must(sub_row(sql, "c"))
    assert main["role"] == "normal"
    assert sql.col("select co_name from pgque.consumer") == ["c"]
    # the plain consumer goes on from the group cursor: no re-delivery
    later = publish(sql, "b")
    assert ids(drain(sql, "q", "c")) == later


def test_unregister_subconsumer_returns_0_when_there_is_nothing_to_remove(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.subscribe('q', 'n')")
    sql.exec("select pgque.create_queue('other')")
    sql.exec("select pgque.register_subconsumer('other', 'c', 's2')")
    sql.exec("select pgque.subscribe('other', 'c.s3')")
    before = snapshot(sql)
    for queue, consumer, sub in (
        ("nope", "c", "s1"),  # no queue
        ("q", "ghost", "s1"),  # no main consumer
        ("q", "n", "s1"),  # a normal consumer, not a cooperative main
        ("q", "c", "ghost"),  # no member consumer
        ("q", "c", "s2"),  # member consumer exists, but on another queue
        ("q", "c", "s3"),  # consumer c.s3 exists, subscribed elsewhere only
    ):
        assert sql.one("select pgque.unregister_subconsumer(%s, %s, %s, 1)", queue, consumer, sub) == 0
    assert snapshot(sql) == before


def test_legacy_functions_refuse_cooperative_rows(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    publish(sql, "x")
    batch = coop(sql, "s2")[0][1]
    before = snapshot(sql)
    legacy = (
        "select * from pgque.receive('q', %s)",
        "select pgque.next_batch('q', %s)",
        "select * from pgque.next_batch_info('q', %s)",
        "select * from pgque.next_batch_custom('q', %s, null, null, null)",
    )
    for call in legacy:
        raises(sql, MAIN_DIRECTIVE, call, "c", sqlstate="PQ030")
        for s in ("s1", "s2"):
            raises(sql, MEMBER_DIRECTIVE.format(s=s), call, f"c.{s}", sqlstate="PQ030")
    for call in ("select pgque.unregister_consumer('q', 'c')", "select pgque.unsubscribe('q', 'c')"):
        raises(sql, "cannot unregister cooperative main consumer with registered subconsumers", call, sqlstate="PQ031")
    raises(
        sql,
        "cannot unregister active cooperative subconsumer without forced batch handling",
        "select pgque.unregister_consumer('q', 'c.s2')",
        sqlstate="PQ031",
    )
    raises(
        sql,
        "cannot unregister cooperative main consumer with registered subconsumers",
        "select pgque.drop_queue('q', true)",
        sqlstate="PQ031",
    )
    assert snapshot(sql) == before

    # an idle member can go through the legacy call; the last one demotes the main
    assert sql.one("select pgque.unsubscribe('q', 'c.s1')") == 1
    assert ack(sql, batch) == 1
    assert sql.one("select pgque.unregister_consumer('q', 'c.s2')") == 1
    assert must(sub_row(sql, "c"))["role"] == "normal"
    assert sql.one("select pgque.drop_queue('q', true)") == 1


# ---------------------------------------------------------------------------
# retries, dead letters, observability
# ---------------------------------------------------------------------------


def test_member_nack_is_owned_by_the_group(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    sql.exec("select pgque.subscribe('q', 'other')")
    group = must(sub_row(sql, "c"))["sub_id"]
    [retry_me, kill_me] = publish(sql, "retry", "kill")
    rows = coop(sql, "s1")
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds')", rows[0][1], rows[0][0:10])
    assert sql.rows("select ev_id, ev_owner, ev_retry from pgque.retry_queue") == [(retry_me, group, 1)]
    sql.exec("update pgque.queue set queue_max_retries = 0")
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'bad')", rows[1][1], rows[1][0:10])
    assert sql.rows("select dl_consumer_id, ev_id, dl_reason from pgque.dead_letter") == [
        (co_id(sql, "c"), kill_me, "bad")
    ]
    assert ack(sql, rows[0][1]) == 1
    drain(sql, "q", "other")

    # the retried event comes back to the group, here to the other member, and to nobody else
    sql.exec("select pgque.maint_retry_events()")
    tick(sql, "q")
    again = coop(sql, "s2")
    assert [(r[0], r[3], r[4]) for r in again] == [(retry_me, "retry", 1)]
    assert drain(sql, "q", "other") == []


def test_get_consumer_info_lists_the_main_and_each_member(sql: Sql) -> None:
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    sql.exec("select pgque.subscribe('q', 'plain')")
    publish(sql, "x")
    batch = coop(sql, "s1")[0][1]
    info = sql.rows("select consumer_name, current_batch from pgque.get_consumer_info('q')")
    assert info == [("c", None), ("c.s1", batch), ("c.s2", None), ("plain", None)]
    assert sql.rows("select consumer_name from pgque.get_consumer_info('q', 'c.s2')") == [("c.s2",)]


def test_two_members_over_many_ticks_split_the_stream(db: Database, sql: Sql) -> None:
    """Several windows each; together exactly the stream; a plain consumer still sees all of it."""
    sql.exec("select pgque.subscribe('q', 'plain')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's1')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 's2')")
    one, two = db.sql(), db.sql()
    got: dict[str, list[int]] = {"s1": [], "s2": []}
    batches: dict[str, set[int]] = {"s1": set(), "s2": set()}
    sent: list[int] = []
    for n in range(12):
        sent += publish(sql, *(f"e{n}.{k}" for k in range(5)))
    workers = [(one, "s1"), (two, "s2")]
    idle = 0
    while idle < len(workers):  # alternate until both find nothing
        idle = 0
        for conn, s in workers:
            rows = coop(conn, s)
            if not rows:
                idle += 1
                continue
            got[s] += ids(rows)
            batches[s].add(rows[0][1])
            assert ack(conn, rows[0][1]) == 1
    assert len(batches["s1"]) >= 2 and len(batches["s2"]) >= 2
    assert set(got["s1"]).isdisjoint(got["s2"])
    assert sorted(got["s1"] + got["s2"]) == sorted(sent)
    assert sorted(ids(drain(sql, "q", "plain"))) == sorted(sent)


def test_cooperative_functions_privileges(sql: Sql) -> None:
    public = (
        "register_subconsumer(text, text, text, boolean)",
        "subscribe_subconsumer(text, text, text, boolean)",
        "unregister_subconsumer(text, text, text, integer)",
        "unsubscribe_subconsumer(text, text, text, integer)",
        "next_batch(text, text, text, interval)",
        "next_batch_custom(text, text, text, interval, integer, interval, interval)",
        "receive_coop(text, text, text, integer, interval)",
        "touch_subconsumer(text, text, text)",
    )
    internal = ("_validate_coop_names(text, text, text)", "_clear_member_cursor(integer, integer)")
    check = "select has_function_privilege(%s, %s, 'execute')"
    for fn in public:
        assert sql.one(check, "pgque_reader", f"pgque.{fn}"), fn
        assert sql.one(check, "pgque_admin", f"pgque.{fn}"), fn
        assert not sql.one(check, "pgque_writer", f"pgque.{fn}"), fn
        assert sql.one("select prosecdef from pg_proc where oid = %s::regprocedure", f"pgque.{fn}")
    for fn in internal:
        for role in ("pgque_reader", "pgque_writer", "pgque_admin"):
            assert not sql.one(check, role, f"pgque.{fn}"), (fn, role)
    assert (
        sql.one(
            "select count(*) from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
            " where p.pronamespace = 'pgque'::regnamespace and a.grantee = 0 and a.privilege_type = 'EXECUTE'"
        )
        == 0
    )


def test_a_reader_role_can_run_the_cooperative_api(db: Database, sql: Sql) -> None:
    role = f"coop_reader_{uuid.uuid4().hex[:10]}"
    with db.server.admin() as admin:
        admin.execute(pgsql.SQL("create role {} login in role pgque_reader").format(pgsql.Identifier(role)))
    try:
        with psycopg.connect(db.conninfo, user=role, autocommit=True) as reader:
            as_reader = Sql(reader)
            publish(sql, "before")  # not seen: the group starts at the latest tick
            assert coop(as_reader, "s1") == []
            sent = publish(sql, "after")
            assert ids(coop(as_reader, "s1")) == sent
            assert as_reader.one("select pgque.touch_subconsumer('q', 'c', 's1')") == 1
            assert as_reader.one("select pgque.unsubscribe_subconsumer('q', 'c', 's1', 1)") == 1
            for internal in ("_clear_member_cursor(1, 1)", "_validate_coop_names('q', 'c', 's')"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    as_reader.exec(f"select pgque.{internal}")
    finally:
        with db.server.admin() as admin:
            admin.execute(pgsql.SQL("drop role if exists {}").format(pgsql.Identifier(role)))


# ---------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------


def wait_until_blocked(sql: Sql, pid: int) -> None:
    """Poll pg_stat_activity until backend ``pid`` waits for a lock."""
    deadline = time.monotonic() + DEADLINE
    while sql.one("select wait_event_type is distinct from 'Lock' from pg_stat_activity where pid = %s", pid):
        assert time.monotonic() < deadline, "the second member never waited"
        time.sleep(0.01)


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_allocation_holds_the_main_row_until_the_transaction_ends(db: Database, sql: Sql, outcome: str) -> None:
    """Spec 3.7: a sibling waits; after a commit it gets the next window, after a rollback the same one."""
    sql.exec("select pgque.register_subconsumer('q', 'c', 'a')")
    sql.exec("select pgque.register_subconsumer('q', 'c', 'b')")
    first = publish(sql, "w1")
    second = publish(sql, "w2")
    conn_a, conn_b = db.connect(autocommit=False), db.connect(autocommit=False)
    rows_a = Sql(conn_a).rows("select * from pgque.receive_coop('q', 'c', 'a')")
    assert ids(rows_a) == first

    result: list[list[tuple[Any, ...]]] = []
    worker = threading.Thread(
        target=lambda: result.append(Sql(conn_b).rows("select * from pgque.receive_coop('q', 'c', 'b')"))
    )
    worker.start()
    wait_until_blocked(sql, conn_b.info.backend_pid)
    if outcome == "commit":
        assert Sql(conn_a).one("select pgque.ack(%s)", rows_a[0][1]) == 1
        conn_a.commit()
    else:
        conn_a.rollback()
    worker.join(DEADLINE)
    assert not worker.is_alive()
    [rows_b] = result
    assert ids(rows_b) == (second if outcome == "commit" else first)
    conn_b.commit()


def test_eight_members_under_concurrent_production_lose_and_duplicate_nothing(db: Database, sql: Sql) -> None:
    """8 member threads consume while a producer sends 2,000 events in 200 ticks."""
    sql.exec("select pgque.subscribe('q', 'plain')")
    members = [f"w{n}" for n in range(8)]
    for m in members:
        sql.exec("select pgque.register_subconsumer('q', 'c', %s)", m)
    conns = {m: db.connect(autocommit=False) for m in members}
    producer_conn = db.sql()
    errors: list[BaseException] = []
    lock = threading.Lock()
    received: dict[str, list[int]] = {m: [] for m in members}
    batches: dict[str, int] = dict.fromkeys(members, 0)
    sent: list[int] = []
    producing = threading.Event()
    producing.set()
    stop = threading.Event()

    def produce() -> None:
        try:
            for t in range(200):
                sent.extend(
                    producer_conn.one(
                        "select pgque.send_batch('q', 'kind', %s::text[])", [f"{t}.{k}" for k in range(10)]
                    )
                )
                tick(producer_conn, "q")
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            producing.clear()

    def consume(member: str) -> None:
        conn = conns[member]
        while not stop.is_set():
            try:
                with conn.transaction():
                    rows = conn.execute("select * from pgque.receive_coop('q', 'c', %s, null)", (member,)).fetchall()
                    if rows:
                        assert conn.execute("select pgque.ack(%s)", (rows[0][1],)).fetchone() == (1,)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            if rows:
                received[member].extend(int(r[0]) for r in rows)
                batches[member] += 1
            else:
                time.sleep(0.001)  # idle poll: be polite, not a synchronization

    started = time.monotonic()
    threads = [threading.Thread(target=consume, args=(m,), daemon=True) for m in members]
    threads.append(threading.Thread(target=produce, daemon=True))
    for t in threads:
        t.start()
    deadline = started + 60
    while (producing.is_set() or sum(map(len, received.values())) < len(sent)) and not errors:
        assert time.monotonic() < deadline, "consumers did not keep up"
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(DEADLINE)
        assert not t.is_alive()
    elapsed = time.monotonic() - started

    assert [error_text(e) for e in errors] == []
    assert len(sent) == 2000
    everything = [i for m in members for i in received[m]]
    assert len(everything) == len(set(everything)), "an event was delivered twice"
    assert sorted(everything) == sorted(sent)
    assert sum(batches.values()) >= 200 and sum(1 for m in members if batches[m] > 0) >= 2
    # the group is drained: no member holds anything, a new member finds nothing
    assert sql.one("select count(*) from pgque.subscription where sub_batch is not null") == 0
    assert coop(sql, "late") == []
    assert must(sub_row(sql, "c"))["last"] == latest_tick(sql)
    assert sorted(ids(drain(sql, "q", "plain"))) == sorted(sent)
    assert elapsed < 60


# ---------------------------------------------------------------------------
# pgque-py, unchanged
# ---------------------------------------------------------------------------


def test_pgque_py_cooperative_client_methods(db: Database, sql: Sql) -> None:
    client = pgque.connect(db.conninfo, autocommit=True)
    other = pgque.connect(db.conninfo, autocommit=True)
    try:
        assert client.subscribe_subconsumer("q", "c", "a") == 1
        assert client.subscribe_subconsumer("q", "c", "a") == 0
        assert client.touch_subconsumer("q", "c", "a") == 1
        assert client.touch_subconsumer("q", "c", "nobody") == 0
        first = publish(sql, "one")
        second = publish(sql, "two")

        msgs_a = client.receive_coop("q", "c", "a", max_messages=10)
        msgs_b = other.receive_coop("q", "c", "b")  # auto-registers b
        assert [m.msg_id for m in msgs_a] == first and [m.msg_id for m in msgs_b] == second
        assert msgs_a[0].batch_id != msgs_b[0].batch_id

        with pytest.raises(pgque.PgqueError, match="without batch_handling = 1"):
            client.unsubscribe_subconsumer("q", "c", "a")
        # b goes silent; a takes its window over with a dead interval
        assert client.ack(msgs_a[0].batch_id) == 1
        age(sql, "c.b")
        stolen = client.receive_coop("q", "c", "a", dead_interval="1 minute")
        assert [m.msg_id for m in stolen] == second and stolen[0].batch_id != msgs_b[0].batch_id
        assert other.ack(msgs_b[0].batch_id) == 0
        with pytest.raises(pgque.PgqueBatchNotFound):
            other.nack(msgs_b[0].batch_id, msgs_b[0])

        assert client.unsubscribe_subconsumer("q", "c", "a", batch_handling=1) == 1
        assert sql.col("select ev_id from pgque.retry_queue") == second
        assert other.unsubscribe_subconsumer("q", "c", "b") == 1
        assert must(sub_row(sql, "c"))["role"] == "normal"
    finally:
        client.close()
        other.close()


class Running:
    """A ``pgque.Consumer`` running ``start()`` in a thread; its error re-raised on stop."""

    def __init__(self, consumer: pgque.Consumer) -> None:
        self.consumer = consumer
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.consumer.start()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "consumer did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def run_consumer() -> Iterator[Callable[[pgque.Consumer], Running]]:
    started: list[Running] = []

    def run(consumer: pgque.Consumer) -> Running:
        running = Running(consumer)
        started.append(running)
        return running

    try:
        yield run
    finally:
        for running in started:
            running.consumer.stop()
            running.thread.join(DEADLINE)


def test_two_pgque_py_consumers_split_a_multi_tick_stream(
    db: Database, sql: Sql, run_consumer: Callable[[pgque.Consumer], Running]
) -> None:
    """Two ``pgque.Consumer(subconsumer=...)`` threads: disjoint, complete, both working.

    Each one is first given a window while it runs alone (so both surely
    work), then both run together over a stream of many ticks. Consumers
    wake up on the ticker's NOTIFY; the poll interval is a fallback.
    """
    seen: dict[str, list[tuple[int, int]]] = {"w1": [], "w2": []}
    changed = threading.Condition()

    def make(sub: str) -> pgque.Consumer:
        consumer = pgque.Consumer(db.conninfo, queue="q", name="c", subconsumer=sub, dead_interval="5 minutes")
        consumer.poll_interval = 1

        def handle(msg: pgque.Message) -> None:
            with changed:
                seen[sub].append((msg.msg_id, msg.batch_id))
                changed.notify_all()

        consumer.on("*")(handle)
        return consumer

    def total() -> int:
        return len(seen["w1"]) + len(seen["w2"])

    def wait_for(count: int) -> None:
        with changed:
            assert changed.wait_for(lambda: total() >= count, DEADLINE), f"{total()} of {count} events"

    # register both members up front so that no window is sent before the group exists
    assert sql.one("select pgque.subscribe_subconsumer('q', 'c', 'w1')") == 1
    assert sql.one("select pgque.subscribe_subconsumer('q', 'c', 'w2')") == 1
    sent: list[int] = []

    first = run_consumer(make("w1"))
    sent += publish(sql, "alone-1a", "alone-1b")
    wait_for(len(sent))
    first.stop()

    second = run_consumer(make("w2"))
    sent += publish(sql, "alone-2a", "alone-2b")
    wait_for(len(sent))
    first = run_consumer(make("w1"))
    for n in range(20):
        sent += publish(sql, f"both-{n}a", f"both-{n}b", f"both-{n}c")
    wait_for(len(sent))
    first.stop()
    second.stop()

    got = {sub: [m for m, _ in seen[sub]] for sub in seen}
    assert got["w1"] and got["w2"]
    assert set(got["w1"]).isdisjoint(got["w2"])
    assert sorted(got["w1"] + got["w2"]) == sorted(sent)
    assert {b for _, b in seen["w1"]}.isdisjoint({b for _, b in seen["w2"]})
    assert sql.one("select count(*) from pgque.subscription where sub_batch is not null") == 0
