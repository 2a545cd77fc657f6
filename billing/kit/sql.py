"""INSERT ... ON CONFLICT for the dialect in use (SQLite and PostgreSQL share the syntax)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(dialect: str, table: Any) -> Any:
    """A dialect-specific insert that supports on_conflict_do_nothing/do_update."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert(session: Session, table: Any) -> Any:
    """The session's dialect's insert with ON CONFLICT support."""
    return dialect_insert(session.get_bind().dialect.name, table)
