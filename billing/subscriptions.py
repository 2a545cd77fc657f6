"""Which of a customer's Stripe subscriptions is the current one."""

from __future__ import annotations

from billing.gateway.client import StripeGateway
from billing.gateway.views import ENDED_STATUSES, SubscriptionView
from billing.models import PAID_STATUSES, SubscriptionStatus

ENDED = frozenset(SubscriptionStatus(status) for status in ENDED_STATUSES)
_RANK: dict[str, int] = {
    **{status: 3 for status in PAID_STATUSES},
    SubscriptionStatus.UNPAID: 2,
    SubscriptionStatus.PAUSED: 2,
    SubscriptionStatus.INCOMPLETE: 1,
}


def pick_current(subscriptions: list[SubscriptionView]) -> SubscriptionView | None:
    """The live subscription that matters most (paid first, newest first), else the newest ended."""
    if not subscriptions:
        return None
    return max(
        subscriptions,
        key=lambda sub: (_RANK.get(sub.status, 0), sub.created, sub.id),
    )


def is_paid(sub: SubscriptionView | None) -> bool:
    """True when the subscription's plan applies (trialing, active, past due)."""
    return sub is not None and sub.status in PAID_STATUSES


async def current_paid(stripe: StripeGateway, customer_id: str) -> SubscriptionView | None:
    """The customer's current subscription as Stripe has it now, when its plan applies.

    Stripe, not the webhook-fed projection, decides: its webhook may not have arrived yet."""
    return current_of(await stripe.subscriptions_of(customer_id))


def current_of(subscriptions: list[SubscriptionView]) -> SubscriptionView | None:
    """The current subscription among these, when its plan applies."""
    current = pick_current(subscriptions)
    return current if is_paid(current) else None
