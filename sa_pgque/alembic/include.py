"""Autogenerate filters that keep Alembic away from the engine's own objects.

Schema ``pgque`` is created and changed only by the engine's revisions; the
per-queue tables in it come and go with ``create_queue`` / ``drop_queue``.
Without a filter, ``alembic revision --autogenerate`` with
``include_schemas=True`` proposes to drop all of it, and (with or without
``include_schemas``) to drop :data:`~sa_pgque.migrate.VERSION_TABLE` when the
engine was installed with :func:`sa_pgque.install`::

    context.configure(
        ...,
        include_name=sa_pgque.alembic.include_name,
        include_object=sa_pgque.alembic.include_object,
    )

With filters of your own, combine them: ``include_object=all_of(include_object, mine)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ParamSpec

from sqlalchemy.schema import SchemaItem, Table

from sa_pgque.migrate import VERSION_TABLE

SCHEMA = "pgque"
"""The engine's schema."""

P = ParamSpec("P")


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """``include_name`` hook: skip schema ``pgque`` (not even reflected) and the engine's version table."""
    if type_ == "schema":
        return name != SCHEMA
    if parent_names.get("schema_name") == SCHEMA:
        return False
    return not (type_ == "table" and name == VERSION_TABLE)


def include_object(
    object: SchemaItem,
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: SchemaItem | None,
) -> bool:
    """``include_object`` hook: skip everything in schema ``pgque`` and the engine's version table.

    Applies to both sides of the comparison, so a model ``Table`` declared
    in schema ``pgque`` (to query the engine's tables) is not created either.
    """
    table = object if isinstance(object, Table) else getattr(object, "table", None)
    if isinstance(table, Table):
        return table.schema != SCHEMA and table.name != VERSION_TABLE
    return True


def all_of(*filters: Callable[P, bool]) -> Callable[P, bool]:
    """A filter that includes what every one of ``filters`` includes."""

    def combined(*args: P.args, **kwargs: P.kwargs) -> bool:
        return all(accept(*args, **kwargs) for accept in filters)

    return combined
