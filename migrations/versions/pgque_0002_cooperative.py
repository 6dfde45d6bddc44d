"""Cooperative consumers: subconsumers sharing one cursor (spec 6.3, 7.10).

Revision ID: pgque_0002
Revises: pgque_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

from sa_pgque._sqlfiles import run_step

revision: str = "pgque_0002"
down_revision: str | Sequence[str] | None = "pgque_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_step(op.get_context(), "pgque_0002")


def downgrade() -> None:
    # Stopping at revision 0001 is refused while cooperative members exist
    # (see pgque_0002_down_guard). Going to base is a full uninstall that
    # drops schema pgque anyway, so it is not held up by live groups.
    if context.get_revision_argument() is not None:
        run_step(op.get_context(), "pgque_0002_down_guard")
    run_step(op.get_context(), "pgque_0002_down")
