"""live messages too large for a NOTIFY payload, relayed between API replicas

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from affectstream.api.migrations.columns import created_at, id_key

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "bus_messages",
        id_key(),
        sa.Column("payload", sa.Text(), nullable=False),
        created_at(),
    )
    op.create_index("ix_bus_messages_created_at", "bus_messages", ["created_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_bus_messages_created_at", table_name="bus_messages")
    op.drop_table("bus_messages")
