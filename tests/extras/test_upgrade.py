"""pgque_0002 -> pgque_0004 and back: existing data survives both ways."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from sa_pgque import migrate
from tests._pg import Database, Sql, error_text
from tests.engine._helpers import drain, receive, tick


def state(sql: Sql) -> dict[str, Any]:
    """Queues, subscriptions, events, retries and dead letters, as rows."""
    found: dict[str, Any] = {
        table: sql.rows(f"select * from pgque.{table} order by 1, 2")
        for table in ("consumer", "subscription", "retry_queue", "dead_letter")
    }
    # queue_extra_maint is checked on its own: send_idem registers its hook there
    found["queue"] = sql.rows("select to_jsonb(q) - 'queue_extra_maint' from pgque.queue q order by queue_id")
    found["tick"] = sql.rows("select tick_queue, tick_id, tick_snapshot::text from pgque.tick order by 1, 2")
    for (queue_id,) in sql.rows("select queue_id from pgque.queue"):
        found[f"event_{queue_id}"] = sql.rows(f"select * from pgque.event_{queue_id} order by ev_id, ev_retry")
    return found


def routines(sql: Sql) -> dict[str, str]:
    """Definition and privileges of every function, by signature."""
    return dict(
        sql.rows(
            "select p.oid::regprocedure::text, pg_get_functiondef(p.oid) || coalesce(p.proacl::text, '')"
            " from pg_proc p where p.pronamespace = 'pgque'::regnamespace and p.prokind = 'f'"
        )
    )


@pytest.fixture
def at_0002(empty_db: Database) -> Database:
    migrate.upgrade(empty_db.engine(), "pgque_0002")
    sql = empty_db.sql()
    sql.exec("select pgque.create_queue('q')")
    sql.exec("update pgque.queue set queue_max_retries = 0")
    sql.exec("select pgque.subscribe('q', 'c')")
    sql.exec("select pgque.subscribe('q', 'other')")
    sql.exec("select pgque.send('q', 't', 'one')")
    sql.exec("select pgque.send('q', 't', 'two')")
    tick(sql, "q")
    rows = receive(sql, "q", "c")
    sql.exec("select pgque.nack(%s, %s::pgque.message, '0 seconds', 'dead')", rows[0][1], rows[0][0:10])
    sql.exec("select pgque.event_retry(%s, %s, 0)", rows[1][1], rows[1][0])
    sql.exec("select pgque.ack(%s)", rows[0][1])
    sql.exec("select pgque.send('q', 't', 'pending')")
    return empty_db


def test_upgrade_keeps_data_and_downgrade_keeps_it_too(at_0002: Database) -> None:
    engine = at_0002.engine()
    sql = at_0002.sql()
    before, functions_before = state(sql), routines(sql)

    migrate.upgrade(engine)
    assert migrate.current(engine) == "pgque_0004"
    assert state(sql) == before
    # the new surface works on the old data
    assert sql.row("select depth, retry_pending, dead_letters from pgque.queue_stats('q')") == (3, 1, 1)
    assert sql.row("select * from pgque.send_idem('q', 't', 'keyed', 'k')")[1] is False
    sql.exec("select pgque.send_at('q', 't', 'soon', now() + interval '1 hour')")
    assert sql.one("select pgque.maint_retry_events()") == 1  # the due retry
    sql.exec("update pgque.delay_queue set ev_deliver_at = now()")
    assert sql.one("select pgque.maint_retry_events()") == 1  # the delayed event
    tick(sql, "q")
    assert [r[3] for r in drain(sql, "q", "c")] == ["two", "pending", "keyed", "soon"]
    assert sql.one("select queue_extra_maint from pgque.queue") == ["pgque.maint_idem"]

    kept = state(sql)
    migrate.downgrade(engine, "pgque_0002")
    assert migrate.current(engine) == "pgque_0002"
    assert state(sql) == kept
    assert sql.one("select queue_extra_maint from pgque.queue") is None  # the hook went with maint_idem
    assert routines(sql) == functions_before  # maint_retry_events is revision 0001's again
    assert sql.one("select to_regclass('pgque.idem') is null and to_regclass('pgque.delay_queue') is null")
    assert sql.one("select pgque.maint()") == 0 and sql.notices == []
    assert [r[3] for r in drain(sql, "q", "other")] == ["one", "two", "pending", "keyed", "soon"]

    migrate.upgrade(engine)  # and up again
    assert migrate.current(engine) == "pgque_0004"


def test_downgrade_refuses_while_delayed_events_are_parked(at_0002: Database) -> None:
    engine = at_0002.engine()
    sql = at_0002.sql()
    migrate.upgrade(engine)
    sql.exec("select pgque.send_at('q', 't', 'later', now() + interval '1 hour')")
    with pytest.raises(DBAPIError) as refused:
        migrate.downgrade(engine, "pgque_0002")
    assert isinstance(refused.value.orig, psycopg.Error)
    assert refused.value.orig.sqlstate == "PQ020"
    assert error_text(refused.value.orig) == (
        "cannot downgrade below pgque_0003: 1 delayed event(s) still parked in pgque.delay_queue (e.g. on queue q);"
        " deliver them with pgque.maint_deliver_delayed once due, or delete them, first"
    )
    assert migrate.current(engine) == "pgque_0004"  # nothing changed
    assert sql.one("select count(*) from pgque.delay_queue") == 1
    migrate.downgrade(engine, "pgque_0003")  # revision 0004 holds no data
    migrate.downgrade(engine, "base")  # a full uninstall is not held up
    assert sql.one("select to_regnamespace('pgque') is null")
