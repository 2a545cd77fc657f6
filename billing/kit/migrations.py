"""Bring a database to the latest Alembic revision."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

ROOT = Path(__file__).resolve().parents[2]


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision`, the latest by default (call outside a
    running event loop)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = url
    command.upgrade(config, revision)
