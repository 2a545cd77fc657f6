"""What a webhook event says happened, for the retention records: facts of their moment,
never state (the entitlement is re-read from Stripe; these are history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CancellationAsked:
    """A subscription was set to cancel (or canceled) in the period ending `period_end`."""

    subscription_id: str
    period_end: int
    at: datetime
    """Stripe's `canceled_at`: when the cancellation was asked for."""
    reason: str | None
    feedback: str | None
    comment: str | None


@dataclass(frozen=True)
class CancellationUndone:
    """A scheduled cancellation was taken back ("Keep my plan") in the period."""

    subscription_id: str
    period_end: int
    at: datetime
    """The event's `created`."""


@dataclass(frozen=True)
class DiscountGained:
    """A subscription gained a discount of a coupon (an accepted retention offer when the
    coupon is the one offered)."""

    subscription_id: str
    discount_id: str
    coupon: str
    at: datetime


@dataclass(frozen=True)
class SubscriptionStarted:
    """A subscription was created: perhaps the org coming back after a cancellation."""

    subscription_id: str


RetentionFact = CancellationAsked | CancellationUndone | DiscountGained | SubscriptionStarted
