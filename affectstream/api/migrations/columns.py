"""Column and constraint builders the revisions in ``versions/`` share.

Frozen: a released revision must build the same schema for ever, so a builder here never
changes once a revision uses it; a new shape of column gets a new builder. Alembic loads the
revisions by path, so they import this module by its full name. Each builder returns a new
object (SQLAlchemy binds a column to one table).
"""

from __future__ import annotations

import sqlalchemy as sa


def id_key() -> sa.Column[int]:
    """The integer ``id`` primary key most tables have.

    Returns
    -------
    sqlalchemy.Column
    """
    return sa.Column("id", sa.Integer(), nullable=False, primary_key=True)


def created_at() -> sa.Column[float]:
    """``created_at``: when the row was made, in Unix seconds.

    Returns
    -------
    sqlalchemy.Column
    """
    return sa.Column("created_at", sa.Float(), nullable=False)


def session_id() -> sa.Column[str]:
    """``session_id``: the session a row belongs to (pair with ``cascade("session_id", ...)``).

    Returns
    -------
    sqlalchemy.Column
    """
    return sa.Column("session_id", sa.String(length=80), nullable=False)


def study_id() -> sa.Column[int]:
    """``study_id``: the study a row belongs to (pair with ``cascade("study_id", ...)``).

    Returns
    -------
    sqlalchemy.Column
    """
    return sa.Column("study_id", sa.Integer(), nullable=False)


def cascade(column: str, table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    """``column`` refers to ``table.id``; deleting that row deletes (or ``ondelete``) this one.

    Parameters
    ----------
    column : str
        The referring column of the table being made.
    table : str
        The referred table; its ``id`` column is the key.
    ondelete : str
        What deleting the referred row does to this one.

    Returns
    -------
    sqlalchemy.ForeignKeyConstraint
    """
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], ondelete=ondelete)
