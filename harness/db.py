"""The suite's databases: a fresh, migrated one per run and backend, and direct reads of the
service's tables to assert what was (not) written."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from billing.kit.migrations import migrate
from harness.threads import in_thread


def backends() -> list[str]:
    """SQLite always; PostgreSQL when TEST_DATABASE_URL is set."""
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


CONNECTIONS_PER_WORKER = 75
"""PostgreSQL connections one test worker may hold at its busiest: its shared stack's API, and
a test's API processes (three at most, each up to 23: README, "PostgreSQL connections")."""


def max_connections(url: str) -> int:
    """The PostgreSQL server's `max_connections`."""

    async def read() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SHOW max_connections"))).scalar_one())
        finally:
            await engine.dispose()

    return in_thread(read)


async def _admin(url: str, statement: str) -> None:
    """Run a statement outside a transaction (CREATE/DROP DATABASE)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


def fresh_database(backend: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    """An empty, migrated database of its own for this run, and how to drop it."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'billing.db'}"

        def drop() -> None:
            """Nothing to drop: the file goes with the temporary directory."""

    else:
        # A database per run: concurrent runs on one server never see each other's rows.
        server = make_url(os.environ["TEST_DATABASE_URL"])
        name = f"billing_test_{uuid.uuid4().hex[:12]}"
        admin = server.render_as_string(hide_password=False)
        in_thread(lambda: _admin(admin, f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            """Drop this run's database, even with connections still open."""
            in_thread(lambda: _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    in_thread(lambda: asyncio.to_thread(migrate, url))
    return url, drop


async def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run a query on the service's database; rows as dicts."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def execute(url: str, sql: str, **params: Any) -> None:
    """Run one statement on the service's database and commit it (behind the service's back)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


async def stored_event(url: str, event_id: str) -> dict[str, Any] | None:
    """The stored webhook event, if any."""
    found = await rows(url, "SELECT * FROM webhook_events WHERE id = :id", id=event_id)
    return found[0] if found else None


async def customer_id(url: str, org: str) -> str | None:
    """The org's Stripe customer id as the service stored it."""
    found = await rows(
        url, "SELECT stripe_customer_id FROM billing_accounts WHERE org_id = :org", org=org
    )
    return str(found[0]["stripe_customer_id"]) if found else None
