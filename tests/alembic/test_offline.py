"""Offline installs: the script ``alembic upgrade --sql`` prints, applied with psql, gives a working engine."""

from __future__ import annotations

from sa_pgque import migrate
from sa_pgque.alembic import engine_revisions
from tests._pg import Database
from tests.alembic._catalog import differing, fingerprint
from tests.alembic.conftest import Psql
from tests.engine._helpers import drain, tick

REVISIONS = engine_revisions()


def test_install_script_with_psql(empty_db: Database, db: Database, psql: Psql) -> None:
    script = migrate.upgrade_script()
    assert script.startswith("BEGIN;") and script.rstrip().endswith("COMMIT;")

    psql.run(empty_db, script)

    assert migrate.current(empty_db.engine()) == REVISIONS[-1]
    sql = empty_db.sql()
    assert differing(fingerprint(sql), fingerprint(db.sql())) == {}
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sent = [sql.one("select pgque.send('q', 'kind', %s::text)", f"e{i}") for i in range(3)]
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "c")] == sent


def test_upgrade_script_from_an_installed_revision(empty_db: Database, db: Database, psql: Psql) -> None:
    engine = empty_db.engine()
    migrate.upgrade(engine, REVISIONS[0])
    sql = empty_db.sql()
    sql.exec("select pgque.create_queue('q')")
    sql.exec("select pgque.subscribe('q', 'c')")
    sent = sql.one("select pgque.send('q', 'kind', 'before')")

    psql.run(empty_db, migrate.upgrade_script(from_revision=REVISIONS[0]))

    assert migrate.current(engine) == REVISIONS[-1]
    tick(sql, "q")
    assert [r[0] for r in drain(sql, "q", "c")] == [sent]
    reference = db.sql()
    reference.exec("select pgque.create_queue('q')")
    reference.exec("select pgque.subscribe('q', 'c')")
    assert differing(fingerprint(sql, rows=False), fingerprint(reference, rows=False)) == {}
