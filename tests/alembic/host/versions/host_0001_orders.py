"""Orders table and the orders queue.

Revision ID: host_0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("host",)
# The engine revision this one needs (create_queue, subscribe): pinned, so that
# later engine revisions do not become prerequisites of this old one.
depends_on: str | Sequence[str] | None = "pgque_0001"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_queue("orders", ticker_max_lag=datetime.timedelta(microseconds=100000), max_retries=10)
    op.subscribe("orders", "billing")


def downgrade() -> None:
    op.unsubscribe("orders", "billing")
    op.drop_queue("orders")
    op.drop_table("orders")
