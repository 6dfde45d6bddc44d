"""Engine core: schema pgque, queues, ticks, batches, retry and dead letters.

Revision ID: pgque_0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from sa_pgque._sqlfiles import run_step

revision: str = "pgque_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("pgque",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_step(op.get_context(), "pgque_0001")


def downgrade() -> None:
    run_step(op.get_context(), "pgque_0001_down")
