"""Adopting an engine installed without Alembic (PgQue's own script) keeps every event and position.

A PgQue install is stood in for by running the engine's SQL files directly
(``sa_pgque._sqlfiles``: the same tables, no version table), with a few
functions changed or added the way PgQue's own would differ.
"""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from sa_pgque import migrate
from sa_pgque._catalog import expected_shapes
from sa_pgque._sqlfiles import execute_script, sql_step
from sa_pgque.alembic import engine_revisions
from tests._pg import Database, Sql
from tests.alembic._catalog import fingerprint
from tests.alembic._scenario import check_consumable, populate, state

REVISIONS = engine_revisions()


def install_without_alembic(db: Database, upto: str) -> None:
    """Run the install scripts of every revision up to ``upto``, as a plain script install would."""
    with db.engine().begin() as connection:
        for revision in REVISIONS[: REVISIONS.index(upto) + 1]:
            for script in sql_step(revision):
                execute_script(connection, script.read_text(encoding="utf-8"))


def newest_with_same_tables(revision: str) -> str:
    shapes = expected_shapes()
    return [r for r in REVISIONS if shapes[r].relations == shapes[revision].relations][-1]


def has_version_table(db: Database) -> bool:
    engine = db.engine()
    with engine.connect() as connection:
        return inspect(connection).has_table(migrate.VERSION_TABLE)


def test_adopting_keeps_queues_events_positions_retries_and_dead_letters(empty_db: Database) -> None:
    install_without_alembic(empty_db, REVISIONS[-1])
    sql = empty_db.sql()
    # PgQue's own function bodies and extras differ from sa_pgque's
    sql.exec("create or replace function pgque.version() returns text language sql as $$ select '0.3.0-devel' $$")
    sql.exec("create function pgque.pgque_only_extra() returns int language sql as $$ select 1 $$")
    scenario = populate(sql)
    before, columns = state(sql)
    assert migrate.current(empty_db.engine()) is None

    adoption = migrate.adopt(empty_db.engine())

    assert (adoption.matched, adoption.revision) == (REVISIONS[-1], REVISIONS[-1])
    assert not adoption.already_managed
    assert adoption.kept_functions == ("pgque.pgque_only_extra()",)
    assert migrate.current(empty_db.engine()) == REVISIONS[-1]
    assert sql.one("select pgque.version()") != "0.3.0-devel"  # the function is sa_pgque's now
    assert state(sql, columns)[0] == before
    check_consumable(sql, scenario)


@pytest.mark.parametrize("installed", REVISIONS[:-1])
def test_adopting_an_older_install_matches_its_tables_and_upgrades(empty_db: Database, installed: str) -> None:
    install_without_alembic(empty_db, installed)
    sql = empty_db.sql()
    scenario = populate(sql)
    before, columns = state(sql)

    adoption = migrate.adopt(empty_db.engine())

    assert adoption.matched == newest_with_same_tables(installed)
    assert migrate.current(empty_db.engine()) == REVISIONS[-1]
    assert state(sql, columns)[0] == before
    check_consumable(sql, scenario)


def test_adopting_a_managed_database_only_upgrades(db: Database) -> None:
    adoption = migrate.adopt(db.engine())
    assert adoption.already_managed
    assert (adoption.matched, adoption.revision) == (REVISIONS[-1], REVISIONS[-1])


def test_extra_tables_are_kept_and_reported(empty_db: Database) -> None:
    install_without_alembic(empty_db, REVISIONS[-1])
    sql = empty_db.sql()
    sql.exec("create table pgque.partition_consumer (queue_id int4 not null, co_name text not null, n int4 not null)")
    adoption = migrate.adopt(empty_db.engine())
    assert adoption.extra_relations == ("partition_consumer",)
    assert sql.one("select to_regclass('pgque.partition_consumer') is not null")


def bogus_schema(sql: Sql) -> None:
    sql.exec("create schema pgque")
    sql.exec("create table pgque.queue (id serial primary key, name text not null)")
    sql.exec("insert into pgque.queue (name) values ('mine')")


def test_an_incompatible_schema_is_refused_and_left_untouched(empty_db: Database) -> None:
    sql = empty_db.sql()
    bogus_schema(sql)
    before = fingerprint(sql)

    with pytest.raises(migrate.IncompatibleSchema) as refused:
        migrate.adopt(empty_db.engine())

    problems = refused.value.problems
    wrong_queue = "pgque.queue is table (id integer, name text), expected table (queue_id integer, queue_name text,"
    [queue_problem] = [p for p in problems if p.startswith("pgque.queue ")]
    assert queue_problem.startswith(wrong_queue)
    assert "pgque.consumer is missing" in problems
    assert str(refused.value).startswith("schema pgque does not have the tables of any engine revision")
    assert fingerprint(sql) == before
    assert sql.rows("select * from pgque.queue") == [(1, "mine")]
    assert not has_version_table(empty_db)


def test_a_schema_the_revisions_cannot_be_applied_to_is_left_untouched(empty_db: Database) -> None:
    install_without_alembic(empty_db, REVISIONS[-1])
    sql = empty_db.sql()
    sql.exec("drop function pgque.version()")
    sql.exec("create function pgque.version() returns integer language sql as $$ select 2 $$")
    sql.exec("select pgque.create_queue('kept')")
    before = fingerprint(sql)

    with pytest.raises(migrate.IncompatibleSchema) as refused:
        migrate.adopt(empty_db.engine())

    assert "cannot be applied" in str(refused.value)
    assert "cannot change return type of existing function" in refused.value.problems[0]
    assert fingerprint(sql) == before
    assert not has_version_table(empty_db)


def test_a_failed_adoption_leaves_the_callers_transaction_usable(empty_db: Database) -> None:
    sql = empty_db.sql()
    bogus_schema(sql)
    engine = empty_db.engine()
    with engine.connect() as connection:
        with pytest.raises(migrate.IncompatibleSchema):
            migrate.adopt(connection)
        assert connection.exec_driver_sql("select count(*) from pgque.queue").scalar() == 1
        connection.rollback()


def test_nothing_to_adopt(empty_db: Database) -> None:
    with pytest.raises(migrate.IncompatibleSchema, match="nothing to adopt"):
        migrate.adopt(empty_db.engine())
    assert not has_version_table(empty_db)


def test_per_queue_generated_routines_are_not_part_of_the_shape(db: Database) -> None:
    """Past 64 queues, create_queue generates insert routines per group of queues: data, not shape."""
    from sa_pgque._catalog import read_shape

    sql = db.sql()
    with db.engine().connect() as connection:
        before = read_shape(connection)
    for i in range(65):
        sql.exec("select pgque.create_queue(%s)", f"q{i}")
    assert sql.one("select count(*) from pg_proc where proname like '\\_insert\\_event\\_g%'") > 0
    with db.engine().connect() as connection:
        assert read_shape(connection) == before
