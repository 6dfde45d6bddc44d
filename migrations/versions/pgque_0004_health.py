"""Queue and consumer statistics, health checks and metrics (spec 11).

Revision ID: pgque_0004
Revises: pgque_0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from sa_pgque._sqlfiles import run_step

revision: str = "pgque_0004"
down_revision: str | Sequence[str] | None = "pgque_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_step(op.get_context(), "pgque_0004")


def downgrade() -> None:
    run_step(op.get_context(), "pgque_0004_down")
