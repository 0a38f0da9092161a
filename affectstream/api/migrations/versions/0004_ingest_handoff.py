"""ingest hand-off between API replicas

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from affectstream.api.migrations.columns import cascade, created_at, id_key, session_id

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ingest_handoff",
        id_key(),
        session_id(),
        sa.Column("blocks", sa.JSON(), nullable=False),
        created_at(),
        cascade("session_id", "sessions"),
    )
    op.create_index("ix_ingest_handoff_session_id", "ingest_handoff", ["session_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_ingest_handoff_session_id", table_name="ingest_handoff")
    op.drop_table("ingest_handoff")
