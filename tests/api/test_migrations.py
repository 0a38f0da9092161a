"""The Alembic revisions build the schema the ORM models declare (SQLite, in process)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from affectstream.api.db import Base, upgrade


def test_upgrade_head_matches_the_models() -> None:
    engine = sa.create_engine("sqlite://")
    upgrade(engine)
    with engine.connect() as connection:
        # Tables, columns, types, nullability, keys and indexes: what autogenerate would add.
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(sa.inspect(connection).get_table_names())
    assert diff == []
    assert set(Base.metadata.tables) <= tables


def test_the_audit_log_refuses_updates_and_deletes() -> None:
    engine = sa.create_engine("sqlite://")
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO audit_log (t, action, resource, detail) VALUES (1, 'a', 'r', '')")
        )
    for statement in ("UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
