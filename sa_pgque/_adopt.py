"""Taking over a database where PgQue (or sa_pgque without a version record) is already installed.

An install from PgQue's own script has schema ``pgque`` with the tables of
the spec and PgQue's functions, and no Alembic version. Adopting it:

1. checks the tables, views and the message type of schema ``pgque``, column
   by column (name and type), against the shape each engine revision leaves
   (``migrations/catalog.json``) and picks the latest revision that matches;
   relations the revisions do not define are allowed and kept, functions
   are not compared;
2. runs the engine's revisions from base to that revision over the existing
   schema, recording it in the version table, then on to head. The
   revisions' SQL is "create if missing" for tables and "create or replace"
   for functions, so every row stays (queues, events, ticks, consumer
   positions, retries, dead letters) while the functions become sa_pgque's
   and the grants are re-applied. A bare ``stamp`` would leave PgQue's
   function bodies in place under sa_pgque's revision number.

It all happens in one transaction, behind a savepoint: a schema that does not
match, or that the revisions cannot be applied to (say, a PgQue function
whose signature a ``create or replace`` may not change), raises
:class:`IncompatibleSchema` and leaves the database as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from sa_pgque._catalog import Shape, differences, expected_shapes, read_shape
from sa_pgque.errors import PgqueError


class IncompatibleSchema(PgqueError):
    """Schema ``pgque`` is not an install of PgQue / sa_pgque that this version can adopt; nothing was changed."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message + "".join(f"\n  - {problem}" for problem in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Adoption:
    """What :func:`sa_pgque.migrate.adopt` found and did."""

    matched: str
    """Engine revision the existing schema matched (re-applied, then recorded); if already managed, the one recorded."""
    revision: str
    """Engine revision after adopting: the latest."""
    already_managed: bool
    """The database already had a version record: it was only upgraded."""
    extra_relations: tuple[str, ...] = ()
    """Tables, views and types in ``pgque`` that no revision defines; kept as they are."""
    kept_functions: tuple[str, ...] = ()
    """Routines in ``pgque`` that no revision (re)defines, e.g. PgQue's own extras; kept as they are."""


_EXTENSION = text(
    """
    select e.extname
      from pg_catalog.pg_depend d
      join pg_catalog.pg_extension e on e.oid = d.refobjid
     where d.classid = 'pg_catalog.pg_namespace'::regclass and d.deptype = 'e'
       and d.objid = (select oid from pg_catalog.pg_namespace where nspname = 'pgque')
    """
)


def _current(connection: Connection, version_table: str) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return context.get_current_revision()


def match(connection: Connection, revisions: list[str]) -> str:
    """The latest of ``revisions`` (base first) whose shape schema ``pgque`` has, else :class:`IncompatibleSchema`."""
    if connection.execute(text("select to_regnamespace('pgque') is null")).scalar():
        raise IncompatibleSchema("nothing to adopt", ["schema pgque does not exist: install the engine instead"])
    extension = connection.execute(_EXTENSION).scalar()
    if extension is not None:
        raise IncompatibleSchema(
            "cannot adopt schema pgque", [f"it belongs to extension {extension!r}; drop the extension first"]
        )
    shapes = expected_shapes()
    actual = read_shape(connection)
    for revision in reversed(revisions):
        if revision in shapes and not differences(shapes[revision], actual):
            return revision
    raise IncompatibleSchema(
        "schema pgque does not have the tables of any engine revision; nothing was changed",
        differences(shapes[revisions[0]], actual),
    )


def adopt(connection: Connection, config: Config, revisions: list[str]) -> Adoption:
    """Adopt schema ``pgque`` on ``connection`` (in a transaction) under the revisions of ``config``."""
    version_table = config.get_main_option("version_table") or "alembic_version"
    head = revisions[-1]
    current = _current(connection, version_table)
    if current is not None:
        command.upgrade(config, "heads")
        return Adoption(matched=current, revision=head, already_managed=True)
    matched = match(connection, revisions)
    savepoint = connection.begin_nested()
    try:
        command.upgrade(config, matched)
        command.upgrade(config, "heads")
    except DBAPIError as error:
        savepoint.rollback()
        raise IncompatibleSchema(
            f"schema pgque matches revision {matched} but the engine's SQL cannot be applied to it;"
            " nothing was changed",
            [str(error.orig).strip()],
        ) from error
    savepoint.commit()
    after = read_shape(connection)
    defined = expected_shapes().get(head, Shape({}, frozenset()))
    return Adoption(
        matched=matched,
        revision=head,
        already_managed=False,
        extra_relations=tuple(sorted(set(after.relations) - set(defined.relations))),
        kept_functions=tuple(sorted(after.routines - defined.routines)),
    )
