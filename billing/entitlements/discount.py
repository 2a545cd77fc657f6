"""`entitlement.discount`: the current subscription's discount, stored as JSON (times as unix
seconds) and read back as the gateway's `DiscountView`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from billing.gateway.views import DiscountView, SubscriptionView, from_timestamp


def discount_column(sub: SubscriptionView) -> dict[str, Any] | None:
    """The subscription's first discount whose coupon was read with it (None: none)."""
    found = next((d for d in sub.discounts if d.coupon_id), None)
    if found is None:
        return None
    return {**asdict(found), "end": int(found.end.timestamp()) if found.end else None}


def discount_view(stored: dict[str, Any] | None) -> DiscountView | None:
    """The view of a stored `discount` (None when none)."""
    if not stored or not stored.get("coupon_id"):
        return None
    return DiscountView(**{**stored, "end": from_timestamp(stored.get("end"))})
