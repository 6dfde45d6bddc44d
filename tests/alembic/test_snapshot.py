"""The schema snapshot (``migrations/schema.sql``) and the per-revision catalog (``migrations/catalog.json``).

Installing the snapshot must give the same catalog as running the chain, and
both files must be what ``python -m sa_pgque.alembic.snapshot`` writes for
the current revisions (so a new revision without regenerated files fails
here, with the command to run).
"""

from __future__ import annotations

from importlib.resources import files

from sa_pgque._catalog import CATALOG_FILE, expected_shapes
from sa_pgque._sqlfiles import execute_script
from sa_pgque.alembic import engine_revisions, snapshot
from tests._pg import Database, Server
from tests.alembic._catalog import committed_snapshot, differing, fingerprint

STALE = f"stale: run `{snapshot.COMMAND}` and commit migrations/schema.sql and migrations/catalog.json"


def test_snapshot_installs_the_same_catalog_as_the_chain(db: Database, empty_db: Database) -> None:
    with empty_db.engine().begin() as connection:
        execute_script(connection, committed_snapshot())
    assert differing(fingerprint(db.sql()), fingerprint(empty_db.sql())) == {}, STALE


def test_a_freshly_generated_snapshot_installs_the_same_catalog_as_the_chain(
    pg_server: Server, db: Database, empty_db: Database
) -> None:
    """The generator itself (pg_dump of this server, normalization, roles, seed rows) loses nothing."""
    fresh = snapshot.generate(pg_server.conninfo())
    with empty_db.engine().begin() as connection:
        execute_script(connection, fresh.schema_sql)
    assert differing(fingerprint(db.sql()), fingerprint(empty_db.sql())) == {}


def test_committed_files_are_current(pg_server: Server) -> None:
    fresh = snapshot.generate(pg_server.conninfo())
    directory = files("sa_pgque") / "migrations"
    assert (directory / snapshot.SCHEMA_FILE).read_text(encoding="utf-8") == fresh.schema_sql, STALE
    assert (directory / CATALOG_FILE).read_text(encoding="utf-8") == fresh.catalog_json, STALE


def test_catalog_covers_every_revision() -> None:
    assert list(expected_shapes()) == engine_revisions(), STALE


def test_the_snapshot_is_at_head() -> None:
    assert committed_snapshot().startswith(f"-- sa_pgque engine: schema pgque at revision {engine_revisions()[-1]}.\n")


def test_dump_normalization_drops_what_varies() -> None:
    dump = "\n".join(
        [
            "--",
            "-- PostgreSQL database dump",
            "--",
            "",
            "\\restrict abc123",
            "",
            "-- Dumped from database version 18.6",
            "-- Dumped by pg_dump version 18.6",
            "",
            "SET statement_timeout = 0;",
            "SET transaction_timeout = 0;",
            "",
            "--",
            "-- Name: pgque; Type: SCHEMA; Schema: -; Owner: -",
            "--",
            "",
            "CREATE SCHEMA pgque;",
            "",
            "",
            "",
            "",
            "--",
            "-- PostgreSQL database dump complete",
            "--",
            "",
            "\\unrestrict abc123",
            "",
        ]
    )
    assert snapshot.normalize_dump(dump) == (
        "--\n-- Name: pgque; Type: SCHEMA; Schema: -; Owner: -\n--\n\nCREATE SCHEMA pgque;\n"
    )
