"""Per-org limit on the calls that reach Stripe, counted in the database (all workers share it)."""

from __future__ import annotations

import time
from functools import partial

from sqlalchemy import delete
from sqlalchemy.orm import Session
from sqlmodel import col

from billing.db import Database
from billing.errors import BillingErrorCode, BillingFailure
from billing.models import RateLimitWindow
from billing.upsert import insert

WINDOW_SECONDS = 60


async def take_slot(db: Database, org_id: str, limit: int) -> None:
    """Count one call for the org in the current minute, or raise RATE_LIMITED."""
    window = int(time.time()) // WINDOW_SECONDS * WINDOW_SECONDS
    if await db.write(partial(_count, org_id, window, limit)) is None:
        raise BillingFailure(BillingErrorCode.RATE_LIMITED)


def _count(org_id: str, window: int, limit: int, session: Session) -> int | None:
    """Count the call in the window unless it is full (None); drop the org's older windows."""
    table = RateLimitWindow.__table__  # type: ignore[attr-defined]
    stmt = insert(session, table).values(org_id=org_id, window_start=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_id", "window_start"],
        set_={"count": table.c.count + 1},
        where=table.c.count < limit,
    ).returning(table.c.count)
    counted: int | None = session.execute(stmt).scalar_one_or_none()
    session.execute(
        delete(RateLimitWindow).where(
            col(RateLimitWindow.org_id) == org_id,
            col(RateLimitWindow.window_start) < window,
        )
    )
    return counted
