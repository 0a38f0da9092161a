"""alert rules and their delivery log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from affectstream.api.migrations.columns import cascade, created_at, id_key, session_id, study_id

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "alert_rules",
        id_key(),
        study_id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("clear", sa.Float(), nullable=False),
        sa.Column("min_duration_s", sa.Float(), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=False),
        sa.Column("cooldown_s", sa.Float(), nullable=False),
        sa.Column("lost_after_s", sa.Float(), nullable=False),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("webhook_secret", sa.String(length=200), nullable=True),
        created_at(),
        cascade("study_id", "studies"),
    )
    op.create_table(
        "alert_deliveries",
        id_key(),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        session_id(),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        cascade("rule_id", "alert_rules"),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_alert_deliveries_rule", ["rule_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_deliveries_rule")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_rules")
