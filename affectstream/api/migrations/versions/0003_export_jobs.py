"""export jobs; the owner process of sessions and jobs

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from affectstream.api.migrations.columns import cascade, created_at, id_key, session_id, study_id

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "export_jobs",
        id_key(),
        session_id(),
        study_id(),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        created_at(),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("owner", sa.String(length=300), nullable=True),
        cascade("session_id", "sessions"),
        cascade("study_id", "studies"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=300), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("owner")
    op.drop_table("export_jobs")
