"""rate limit counters shared by API replicas

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "rate_counts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "minute"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("rate_counts")
