"""Alembic environment: runs migrations on the async engine of DATABASE_URL (or -x url=...)."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import billing.models  # noqa: F401  (registers the tables)
from alembic import context
from billing.kit.database import make_engine
from billing.kit.settings import get_settings

target_metadata = SQLModel.metadata


def _url() -> str:
    """The database to migrate."""
    configured = context.config.attributes.get("url") or context.get_x_argument(
        as_dictionary=True
    ).get("url")
    return str(configured or get_settings().database_url)


def _run(connection: Connection) -> None:
    """Run the migrations on one connection."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    """Connect and migrate."""
    engine = make_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
