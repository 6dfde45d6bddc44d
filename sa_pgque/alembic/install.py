"""``op.install_pgque()`` / ``op.uninstall_pgque()``: the engine inside one revision of the host's own chain.

For applications that keep a linear history instead of including the
``pgque`` branch. ``install_pgque`` calls the ``upgrade()`` of each engine
revision in order, ``uninstall_pgque`` the ``downgrade()`` of each in reverse
order, inside the host's migration (same connection, same transaction, same
``--sql`` output). Nothing is recorded in a version table: the host's
revision is the record, so pin the engine revision in it
(``op.install_pgque("pgque_0002")``) and add a host revision with
``op.install_pgque(<new>, from_revision=<old>)`` when a later sa_pgque ships a
new engine revision.

The engine revisions see the host's command through Alembic's ``context``:
a downgrade that stops above base (``alembic downgrade -1``) runs their
"stopping here is safe" guards, ``alembic downgrade base`` skips them as
the whole engine goes.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import MigrateOperation, Operations
from alembic.script import Script, ScriptDirectory

from sa_pgque import migrate


def _scripts(revision: str | None, from_revision: str | None) -> list[Script]:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    steps = script.iterate_revisions(revision or "heads", from_revision or "base")
    return [step for step in reversed(list(steps)) if step is not None]


def engine_revisions(revision: str | None = None, from_revision: str | None = None) -> list[str]:
    """Engine revision ids after ``from_revision`` (default: base) up to ``revision`` (default: head), base first."""
    return [script.revision for script in _scripts(revision, from_revision)]


@Operations.register_operation("install_pgque")
class InstallPgqueOp(MigrateOperation):
    """Install the engine (or upgrade it between two engine revisions) from this revision."""

    def __init__(self, revision: str | None = None, from_revision: str | None = None) -> None:
        self.revision = revision
        self.from_revision = from_revision

    @classmethod
    def install_pgque(
        cls, operations: Operations, revision: str | None = None, *, from_revision: str | None = None
    ) -> None:
        """Run the engine revisions after ``from_revision`` (default: none) up to ``revision`` (default: the latest).

        Pin ``revision`` so the host revision always installs the same engine.
        """
        operations.invoke(cls(revision, from_revision))

    def reverse(self) -> UninstallPgqueOp:
        return UninstallPgqueOp(self.revision, to_revision=self.from_revision)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("install_pgque", self.from_revision, self.revision)


@Operations.register_operation("uninstall_pgque")
class UninstallPgqueOp(MigrateOperation):
    """Revert the engine revisions down to ``to_revision`` (default: remove schema ``pgque``)."""

    def __init__(self, revision: str | None = None, to_revision: str | None = None) -> None:
        self.revision = revision
        self.to_revision = to_revision

    @classmethod
    def uninstall_pgque(
        cls, operations: Operations, revision: str | None = None, *, to_revision: str | None = None
    ) -> None:
        """Undo the engine revisions from ``revision`` (the installed one; default: the latest) down to ``to_revision``.

        Without ``to_revision`` the engine is removed with all its queues
        (the roles stay).
        """
        operations.invoke(cls(revision, to_revision))

    def reverse(self) -> InstallPgqueOp:
        return InstallPgqueOp(self.revision, from_revision=self.to_revision)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("uninstall_pgque", self.revision, self.to_revision)


@Operations.implementation_for(InstallPgqueOp)
def install_pgque(operations: Operations, operation: InstallPgqueOp) -> None:
    for script in _scripts(operation.revision, operation.from_revision):
        script.module.upgrade()


@Operations.implementation_for(UninstallPgqueOp)
def uninstall_pgque(operations: Operations, operation: UninstallPgqueOp) -> None:
    for script in reversed(_scripts(operation.revision, operation.to_revision)):
        script.module.downgrade()
