"""initial metadata schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from affectstream.api.migrations.columns import cascade, created_at, id_key, session_id, study_id

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_log",
        id_key(),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=False),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_time", ["t"], unique=False)

    op.create_table(
        "studies",
        id_key(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        created_at(),
    )
    op.create_table(
        "participants",
        id_key(),
        study_id(),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("consent", sa.String(length=20), nullable=False),
        created_at(),
        cascade("study_id", "studies"),
        sa.UniqueConstraint("study_id", "pseudonym"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=80), nullable=False),
        study_id(),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("stopped_at", sa.Float(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        cascade("participant_id", "participants"),
        cascade("study_id", "studies"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "users",
        id_key(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=True),
        created_at(),
        cascade("participant_id", "participants", "SET NULL"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_keys",
        id_key(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("hash", sa.String(length=200), nullable=False),
        created_at(),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        cascade("user_id", "users"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "ingest_cursors",
        session_id(),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("gap_samples", sa.Integer(), nullable=False),
        cascade("session_id", "sessions"),
        sa.PrimaryKeyConstraint("session_id", "stream"),
    )
    op.create_table(
        "markers",
        id_key(),
        session_id(),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        cascade("session_id", "sessions"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.Integer(), nullable=False),
        study_id(),
        cascade("study_id", "studies"),
        cascade("user_id", "users"),
        sa.PrimaryKeyConstraint("user_id", "study_id"),
    )
    op.create_table(
        "self_reports",
        id_key(),
        session_id(),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("arousal", sa.Integer(), nullable=False),
        sa.Column("valence", sa.Integer(), nullable=False),
        sa.Column("dominance", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        cascade("session_id", "sessions"),
    )
    _append_only_audit()


def _append_only_audit() -> None:
    """The audit log is append-only in the database itself, not only by convention."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("self_reports")
    op.drop_table("memberships")
    op.drop_table("markers")
    op.drop_table("ingest_cursors")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("sessions")
    op.drop_table("participants")
    op.drop_table("studies")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_time")

    op.drop_table("audit_log")
