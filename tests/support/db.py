"""Read the service's tables directly, to assert what was (not) written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run a query on the service's database; rows as dicts."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def stored_event(url: str, event_id: str) -> dict[str, Any] | None:
    """The stored webhook event, if any."""
    found = await rows(url, "SELECT * FROM webhook_events WHERE id = :id", id=event_id)
    return found[0] if found else None
