"""Per-org limit on the calls that reach Stripe, counted in the database (all workers share it)."""

from __future__ import annotations

import time

from sqlalchemy import delete
from sqlmodel import col

from billing.db import Database
from billing.errors import BillingErrorCode, BillingFailure
from billing.models import RateLimitWindow
from billing.upsert import insert

WINDOW_SECONDS = 60


async def take_slot(db: Database, org_id: str, limit: int) -> None:
    """Count one call for the org in the current minute, or raise RATE_LIMITED."""
    window = int(time.time()) // WINDOW_SECONDS * WINDOW_SECONDS
    async with db.write() as session:
        table = RateLimitWindow.__table__  # type: ignore[attr-defined]
        stmt = insert(session, table).values(org_id=org_id, window_start=window, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id", "window_start"],
            set_={"count": table.c.count + 1},
            where=table.c.count < limit,
        ).returning(table.c.count)
        counted = (await session.execute(stmt)).scalar_one_or_none()
        await session.execute(
            delete(RateLimitWindow).where(
                col(RateLimitWindow.org_id) == org_id,
                col(RateLimitWindow.window_start) < window,
            )
        )
    if counted is None:
        raise BillingFailure(BillingErrorCode.RATE_LIMITED)
