"""The shape of schema ``pgque``: its tables, views and types column by column, and its routines.

Each engine revision's shape is recorded in ``migrations/catalog.json``,
generated from the migration chain by ``python -m sa_pgque.alembic.snapshot``
(a test checks the file is current). Adoption compares an existing install
with it (:func:`sa_pgque.migrate.adopt`). Per-queue storage
(``event_<id>``, ``event_<id>_<n>``) is data, not shape, and is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

CATALOG_FILE = "catalog.json"
"""Name of the per-revision shape file in the engine's script directory."""

PER_QUEUE = re.compile(r"^event_\d+(_\d+)?$")
"""Names of the per-queue event tables (parent and children)."""

GENERATED_ROUTINE = re.compile(r"^(pgque\.)?_insert_event_g\d+\(")
"""Routines generated per group of queues by ``create_queue`` (data, like the event tables)."""

_KINDS = {"r": "table", "p": "table", "v": "view", "m": "view", "c": "type"}

_RELATIONS = text(
    """
    select c.relname, c.relkind::text, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
      from pg_catalog.pg_class c
      join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relnamespace = (select oid from pg_catalog.pg_namespace where nspname = 'pgque')
       and c.relkind in ('r', 'p', 'v', 'm', 'c')
     order by c.relname, a.attnum
    """
)


_ROUTINES = text(
    "select p.oid::regprocedure::text from pg_catalog.pg_proc p"
    " where p.pronamespace = (select oid from pg_catalog.pg_namespace where nspname = 'pgque')"
)


@dataclass(frozen=True)
class Relation:
    """A table, view or composite type: its kind and its ``(column, type)`` pairs in order."""

    kind: str
    columns: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"{self.kind} ({', '.join(f'{name} {type_}' for name, type_ in self.columns)})"


@dataclass(frozen=True)
class Shape:
    """What schema ``pgque`` holds: relations by name, and routine signatures (``regprocedure`` text)."""

    relations: Mapping[str, Relation]
    routines: frozenset[str]


def read_shape(connection: Connection) -> Shape:
    """The shape of schema ``pgque`` in the connected database; per-queue tables and routines left out."""
    found: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for name, kind, column, type_ in connection.execute(_RELATIONS):
        if PER_QUEUE.match(name):
            continue
        found.setdefault(name, (_KINDS[kind], []))[1].append((column, type_))
    relations = {name: Relation(kind, tuple(columns)) for name, (kind, columns) in found.items()}
    routines = frozenset(r for r in connection.execute(_ROUTINES).scalars() if not GENERATED_ROUTINE.match(r))
    return Shape(relations, routines)


def render_shapes(shapes: Mapping[str, Shape]) -> str:
    """``catalog.json`` text for the shapes of every revision (deterministic, one column per line)."""
    data = {
        revision: {
            "relations": {
                name: {"kind": rel.kind, "columns": [f"{column} {type_}" for column, type_ in rel.columns]}
                for name, rel in sorted(shape.relations.items())
            },
            "routines": sorted(shape.routines),
        }
        for revision, shape in shapes.items()
    }
    return json.dumps({"revisions": data}, indent=2) + "\n"


def parse_shapes(document: str) -> dict[str, Shape]:
    """The inverse of :func:`render_shapes`."""
    data: dict[str, Any] = json.loads(document)["revisions"]
    return {
        revision: Shape(
            {
                name: Relation(entry["kind"], tuple(_column(col) for col in entry["columns"]))
                for name, entry in content["relations"].items()
            },
            frozenset(content["routines"]),
        )
        for revision, content in data.items()
    }


def _column(entry: str) -> tuple[str, str]:
    name, _, type_ = entry.partition(" ")
    return name, type_


def expected_shapes() -> dict[str, Shape]:
    """The shape of schema ``pgque`` after each engine revision, as shipped in ``catalog.json``."""
    return parse_shapes((files("sa_pgque") / "migrations" / CATALOG_FILE).read_text(encoding="utf-8"))


def differences(expected: Shape, actual: Shape) -> list[str]:
    """What keeps ``actual`` from having every relation of ``expected`` as it is there (extras and routines allowed)."""
    problems = []
    for name, relation in sorted(expected.relations.items()):
        found = actual.relations.get(name)
        if found is None:
            problems.append(f"pgque.{name} is missing")
        elif found != relation:
            problems.append(f"pgque.{name} is {found.describe()}, expected {relation.describe()}")
    return problems
