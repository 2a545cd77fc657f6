"""Per-org limit on the calls that reach Stripe, counted in the database (all workers share it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import delete
from sqlalchemy.orm import Session
from sqlmodel import col

from billing.errors import BillingErrorCode, BillingFailure
from billing.kit.database import Database
from billing.kit.sql import insert
from billing.models import RateLimitWindow

WINDOW_SECONDS = 60


@dataclass
class OrgRateLimit:
    """`per_minute` calls per org in each minute of `clock` (seconds since the epoch)."""

    db: Database
    per_minute: int
    clock: Callable[[], float] = time.time

    async def take(self, org_id: str) -> None:
        """Count one call for the org in the current minute, or raise RATE_LIMITED."""
        window = int(self.clock()) // WINDOW_SECONDS * WINDOW_SECONDS
        if await self.db.write(partial(_count, org_id, window, self.per_minute)) is None:
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
