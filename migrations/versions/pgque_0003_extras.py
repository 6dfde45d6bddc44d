"""Idempotent send, delayed delivery, pause/resume and create_queue options (spec 6.10, 7.11, 11).

Revision ID: pgque_0003
Revises: pgque_0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

from sa_pgque._sqlfiles import read_script, run_script, run_step

revision: str = "pgque_0003"
down_revision: str | Sequence[str] | None = "pgque_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_step(op.get_context(), "pgque_0003")


def downgrade() -> None:
    # Stopping at revision 0002 is refused while delayed events are parked
    # (see pgque_0003_down_guard). Going to base is a full uninstall that
    # drops schema pgque anyway, so it is not held up by them.
    stops_above_base = context.get_revision_argument() is not None
    if stops_above_base:
        run_step(op.get_context(), "pgque_0003_down_guard")
    run_step(op.get_context(), "pgque_0003_down")
    if stops_above_base:
        # This revision made maint_retry_events deliver delayed events too;
        # put back revision 0001's definitions of the retry functions.
        run_script(op.get_context(), read_script("pgque_0001", "60_retry.sql"))
