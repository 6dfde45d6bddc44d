"""Table rotation, maintenance passes, and the no-dead-tuples property."""

from __future__ import annotations

import time
import uuid

from tests._pg import Database, Sql
from tests.engine._helpers import drain, queue_id, receive, tick


def make_due(sql: Sql, queue: str = "q") -> None:
    sql.exec("update pgque.queue set queue_switch_time = now() - interval '3 hours' where queue_name = %s", queue)


def rotate(sql: Sql, queue: str = "q") -> None:
    """Step 1 then step 2, each in its own transaction."""
    make_due(sql, queue)
    sql.exec("select pgque.maint_rotate_tables_step1(%s)", queue)
    sql.exec("select pgque.maint_rotate_tables_step2()")


def cur_table(sql: Sql, queue: str = "q") -> int:
    return int(sql.one("select queue_cur_table from pgque.queue where queue_name = %s", queue))


def child_counts(sql: Sql, queue: str = "q") -> list[int]:
    qid = queue_id(sql, queue)
    return [sql.one(f"select count(*) from only pgque.event_{qid}_{k}") for k in range(3)]


def test_rotation_cycles_through_the_children_and_truncates_the_oldest(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    seen: list[int] = []
    for round_no in range(4):
        sql.exec("select pgque.send_batch('q', array['a', 'b'])")
        tick(sql, "q")
        drain(sql, "q", "c")
        assert cur_table(sql) == round_no % 3
        seen.append(cur_table(sql))
        rotate(sql)
        assert sql.one("select queue_switch_step2 is not null from pgque.queue")
    assert seen == [0, 1, 2, 0]
    assert cur_table(sql) == 1
    # after 0 -> 1 -> 2 -> 0 -> 1, child 1 was truncated just before it became current again
    assert child_counts(sql) == [2, 0, 2]


def test_step1_waits_for_step2_and_for_the_rotation_period(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.maint_rotate_tables_step1('q')")
    assert cur_table(sql) == 0  # not due: switched at creation
    make_due(sql)
    sql.exec("select pgque.maint_rotate_tables_step1('q')")
    assert cur_table(sql) == 1
    assert sql.one("select queue_switch_step2 from pgque.queue") is None
    make_due(sql)
    sql.exec("select pgque.maint_rotate_tables_step1('q')")
    assert cur_table(sql) == 1  # step 2 has not run yet
    assert sql.one("select pgque.maint_rotate_tables_step1('nope')") == 0


def test_lagging_consumer_blocks_rotation_and_keeps_its_events(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'fast')")
    sql.exec("select pgque.subscribe('q', 'slow')")
    rotate(sql)
    assert cur_table(sql) == 0, "cursors at the creation tick may still need pre-switch data"
    tick(sql, "q")
    for consumer in ("fast", "slow"):
        drain(sql, "q", consumer)
    early = sql.one("select pgque.send('q', 'early')")
    tick(sql, "q")
    drain(sql, "q", "fast")
    rotate(sql)
    assert cur_table(sql) == 1
    late = sql.one("select pgque.send('q', 'late')")
    tick(sql, "q")
    drain(sql, "q", "fast")
    for _ in range(3):
        rotate(sql)
    assert cur_table(sql) == 1, "the slow consumer's cursor must block every further rotation"
    # its backlog spans the switch: one event in each child, both still there
    assert child_counts(sql) == [1, 1, 0]
    assert [r[0] for r in drain(sql, "q", "slow")] == [early, late]
    rotate(sql)
    assert cur_table(sql) == 2


def test_batch_spanning_a_rotation_reads_both_children(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    tick(sql, "q")
    drain(sql, "q", "c")
    before = sql.one("select pgque.send('q', 'before')")
    rotate(sql)
    after = sql.one("select pgque.send('q', 'after')")
    tick(sql, "q")
    assert child_counts(sql) == [1, 1, 0]
    batch = sql.one("select pgque.next_batch('q', 'c')")
    assert sql.col("select * from pgque.batch_event_tables(%s)", batch) == [
        f"pgque.event_{queue_id(sql, 'q')}_0",
        f"pgque.event_{queue_id(sql, 'q')}_1",
    ]
    assert [r[0] for r in receive(sql, "q", "c")] == [before, after]


def test_rotation_is_skipped_while_the_target_is_locked(db: Database, sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    qid = queue_id(sql, "q")
    reader = db.connect(autocommit=False)
    reader.execute(f"select count(*) from pgque.event_{qid}_1")  # holds a lock like pg_dump would
    make_due(sql)
    assert sql.one("select pgque.maint_rotate_tables_step1('q')") == 0
    assert cur_table(sql) == 0
    reader.rollback()
    sql.exec("select pgque.maint_rotate_tables_step1('q')")
    assert cur_table(sql) == 1


def test_event_tables_never_get_dead_tuples(sql: Sql) -> None:
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.subscribe('q', 'd')")
    for round_no in range(5):
        sql.exec("select pgque.send_batch('q', array(select 'x' from generate_series(1, 200)))")
        tick(sql, "q")
        rows = receive(sql, "q", "c")
        for row in rows[:3]:
            sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds')", row[1], row[0:10])
        sql.exec("select pgque.ack(%s)", rows[0][1])
        drain(sql, "q", "d")
        sql.exec("update pgque.retry_queue set ev_retry_after = now() - interval '1 s'")
        while sql.one("select pgque.maint_retry_events()"):
            pass
        if round_no % 2:
            rotate(sql)
    if sql.conn.info.server_version >= 150000:
        sql.exec("select pg_stat_force_next_flush()")
    qid = queue_id(sql, "q")
    stats = _event_table_stats(sql, qid)
    assert sum(inserted for _, inserted, _ in stats) > 0, "statistics must be visible for this test to mean anything"
    assert [dead for _, _, dead in stats] == [0, 0, 0]


def _event_table_stats(sql: Sql, qid: int) -> list[tuple[str, int, int]]:
    deadline = time.monotonic() + 5
    while True:
        sql.exec("select pg_stat_clear_snapshot()")
        stats = [
            (str(r[0]), int(r[1]), int(r[2]))
            for r in sql.rows(
                "select relname, n_tup_ins, n_dead_tup from pg_stat_user_tables"
                " where schemaname = 'pgque' and relname like %s order by relname",
                f"event\\_{qid}\\_%",
            )
        ]
        if sum(s[1] for s in stats) > 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def test_maint_runs_step1_and_owned_hooks_only(sql: Sql, db: Database) -> None:
    for name in ("a", "b"):
        sql.exec("select pgque.create_queue(%s)", name)
    sql.exec("create function public.count_hook(q text) returns integer language sql as $$ select 1 $$")
    stranger = f"stranger_{uuid.uuid4().hex[:8]}"
    sql.exec(f"create role {stranger}")
    try:
        sql.exec("create function public.foreign_hook(q text) returns integer language sql as $$ select 100 $$")
        sql.exec(f"alter function public.foreign_hook(text) owner to {stranger}")
        sql.exec(
            "update pgque.queue set queue_extra_maint = array['public.count_hook', 'public.foreign_hook',"
            " 'public.missing_hook'] where queue_name = 'a'"
        )
        sql.exec("update pgque.queue set queue_extra_maint = array['public.count_hook'] where queue_name = 'b'")
        make_due(sql, "a")
        ops = sql.rows("select * from pgque.maint_operations()")
        assert ops == [
            ("pgque.maint_rotate_tables_step1", "a"),
            ("pgque.maint_rotate_tables_step2", None),
            ("public.count_hook", "a"),
            ("public.foreign_hook", "a"),
            ("public.missing_hook", "a"),
            ("public.count_hook", "b"),
            *_legacy_vacuum_entries(sql),
        ]
        sql.notices.clear()
        assert sql.one("select pgque.maint()") == 2
        assert cur_table(sql, "a") == 1 and cur_table(sql, "b") == 0
        owner = sql.one("select current_user")
        assert (
            f"pgque.maint: skipping public.foreign_hook — owner {stranger} is not maint() owner {owner}" in sql.notices
        )
        assert any(
            n.startswith("pgque.maint: skipping public.missing_hook — invalid regprocedure:") for n in sql.notices
        )
    finally:
        sql.exec("drop function if exists public.foreign_hook(text)")
        sql.exec(f"drop role {stranger}")


def _legacy_vacuum_entries(sql: Sql) -> list[tuple[str, str]]:
    """maint_operations lists the bookkeeping tables for vacuum only when autovacuum is off."""
    if sql.one("select current_setting('autovacuum')") == "on":
        return []
    return [("vacuum", f"pgque.{t}") for t in ("queue", "subscription", "consumer", "tick", "retry_queue")]
