"""The retention offer of the cancel flow: which coupon `openPortal` offers, and the record of
offers made (once per subscription and billing period)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from billing.catalog.plans import Catalog
from billing.gateway.views import SubscriptionView
from billing.kit.database import Database
from billing.kit.sql import insert
from billing.models import RetentionOffer, utcnow


@dataclass(frozen=True)
class CouponOffer:
    """The retention coupon offered to one subscription in its current billing period."""

    org_id: str
    subscription_id: str
    period_end: int
    coupon: str


def period_key(period_end: datetime | None) -> int:
    """A billing period's key: its end in unix seconds (0 when Stripe gave none)."""
    return int(period_end.timestamp()) if period_end else 0


def retention_offer(catalog: Catalog, org_id: str, current: SubscriptionView) -> CouponOffer | None:
    """The plans file's `retention_coupon` for this subscription, unless it already has a
    discount (then the plain cancel flow)."""
    coupon = catalog.portal.retention_coupon
    if coupon is None or current.discounts:
        return None
    return CouponOffer(org_id, current.id, period_key(current.current_period_end), coupon)


async def record_offer(db: Database, offer: CouponOffer) -> None:
    """Record an offer made; the same subscription and period again changes nothing."""

    def write(session: Session) -> None:
        stmt = insert(session, RetentionOffer).values(
            subscription_id=offer.subscription_id,
            period_end=offer.period_end,
            org_id=offer.org_id,
            coupon=offer.coupon,
            made_at=utcnow(),
        )
        session.execute(stmt.on_conflict_do_nothing())

    await db.write(write)
