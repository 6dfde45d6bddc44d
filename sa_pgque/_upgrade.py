"""Engine upgrades one revision at a time, so the CLI can show how far along it is.

The revisions run in a single transaction (PostgreSQL DDL is transactional):
an upgrade that fails half-way leaves the database as it was.
"""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from sa_pgque import migrate
from sa_pgque._progress import Progress


def pending_revisions(current: str | None, target: str = "heads") -> list[str]:
    """The revisions an upgrade from ``current`` to ``target`` applies, in order."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = script.iterate_revisions(target, current)
    return [revision.revision for revision in reversed(list(revisions)) if revision is not None]


def head() -> str:
    """The latest engine revision."""
    return str(ScriptDirectory.from_config(migrate.alembic_config()).get_current_head())


def upgrade(engine: Engine, target: str = "heads", label: str = "applying engine revisions") -> tuple[str | None, str]:
    """Upgrade the engine to ``target`` with progress on stderr; return (revision before, revision after)."""
    with engine.begin() as connection:
        before = migrate.current(connection)
        revisions = pending_revisions(before, target)
        progress = Progress(label, len(revisions))
        for revision in revisions:
            migrate.upgrade(connection, revision)
            progress.advance(note=revision)
        after = migrate.current(connection) or "none"
    if revisions:
        progress.done(f"{label}: {before or 'none'} -> {after} ({len(revisions)} applied)")
    return before, after
