"""The autogenerate filters: nothing of schema ``pgque`` or the engine's version table is ever proposed."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Index, Integer, MetaData, Table, Text
from sqlalchemy.exc import SAWarning

from sa_pgque import migrate
from sa_pgque.alembic import all_of, include_name, include_object
from tests._pg import Database


def host_metadata() -> MetaData:
    metadata = MetaData()
    Table("orders", metadata, Column("id", Integer, primary_key=True))
    return metadata


def diffs(db: Database, metadata: MetaData, **options: Any) -> list[Any]:
    with db.engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_schemas": True, **options})
        return list(compare_metadata(context, metadata))


def removed_tables(found: list[Any]) -> set[str]:
    return {f"{d[1].schema}.{d[1].name}" for d in found if isinstance(d, tuple) and d[0] == "remove_table"}


def test_without_filters_autogenerate_would_drop_the_engine(db: Database) -> None:
    """The control case: ``db`` has the engine and sa_pgque's version table, the metadata neither."""
    with db.engine().begin() as connection:
        host_metadata().create_all(connection)
    with pytest.warns(SAWarning, match="Did not recognize type"):  # xid8, pg_snapshot: reflected, not mapped
        removed = removed_tables(diffs(db, host_metadata()))
    assert "pgque.queue" in removed
    assert "None.pgque_alembic_version" in removed


def test_with_the_filters_nothing_of_the_engine_is_proposed(db: Database) -> None:
    sql = db.sql()
    sql.exec("select pgque.create_queue('orders')")  # per-queue tables too
    with db.engine().begin() as connection:
        host_metadata().create_all(connection)
    assert migrate.current(db.engine()) is not None

    assert diffs(db, host_metadata(), include_name=include_name, include_object=include_object) == []
    # include_object alone is enough too, but schema pgque is then reflected (slower, warns about its types)
    with pytest.warns(SAWarning, match="Did not recognize type"):
        assert diffs(db, host_metadata(), include_object=include_object) == []


def test_metadata_tables_in_schema_pgque_are_not_created() -> None:
    metadata = MetaData()
    queue = Table("queue", metadata, Column("queue_id", Integer), Column("queue_name", Text), schema="pgque")
    index = Index("queue_name_idx", queue.c.queue_name)
    orders = Table("orders", metadata, Column("id", Integer))
    assert not include_object(queue, "queue", "table", False, None)
    assert not include_object(queue.c.queue_name, "queue_name", "column", False, None)
    assert not include_object(index, "queue_name_idx", "index", False, None)
    assert include_object(orders, "orders", "table", False, None)
    assert include_object(orders.c.id, "id", "column", False, None)


def test_include_name() -> None:
    assert not include_name("pgque", "schema", {})
    assert include_name("public", "schema", {})
    assert include_name(None, "schema", {})
    assert not include_name("queue", "table", {"schema_name": "pgque"})
    assert not include_name("pgque_alembic_version", "table", {"schema_name": None})
    assert include_name("orders", "table", {"schema_name": None})
    assert include_name("orders_pkey", "index", {"schema_name": None, "table_name": "orders"})


def test_all_of_combines_with_a_filter_of_your_own() -> None:
    def no_archive(name: str | None, type_: str, parent_names: Any) -> bool:
        return name != "archive"

    combined = all_of(include_name, no_archive)
    assert not combined("pgque", "schema", {})
    assert not combined("archive", "table", {"schema_name": None})
    assert combined("orders", "table", {"schema_name": None})
