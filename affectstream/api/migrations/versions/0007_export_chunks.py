"""export zips in the metadata database, so any API replica can serve the download

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from affectstream.api.migrations.columns import cascade

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "export_chunks",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        cascade("job_id", "export_jobs"),
        sa.PrimaryKeyConstraint("job_id", "seq"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("export_chunks")
