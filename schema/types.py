"""Strawberry types of the public contract (see SPEC.md)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from billing.errors import BillingErrorCode
from billing.models import SubscriptionStatus
from billing.portal import PortalFlow

for _domain_enum in (PortalFlow, BillingErrorCode, SubscriptionStatus):
    strawberry.enum(_domain_enum)


@strawberry.enum
class BillingInterval(enum.Enum):
    """How often a price bills."""

    MONTH = "month"
    YEAR = "year"


@strawberry.type
class BillingError:
    """An expected failure; branch on `code`."""

    code: BillingErrorCode
    message: str


@strawberry.type
class PortalSession:
    """A Customer Portal URL to redirect to; never stored."""

    url: str
    flow: PortalFlow | None


@strawberry.type
class CheckoutSession:
    """A Stripe Checkout URL to redirect to."""

    id: str
    url: str


OpenPortalResult = Annotated[PortalSession | BillingError, strawberry.union("OpenPortalResult")]
UpgradeResult = Annotated[
    CheckoutSession | PortalSession | BillingError, strawberry.union("UpgradeResult")
]


@strawberry.type
class PlanPrice:
    """One price of a plan."""

    interval: BillingInterval
    lookup_key: str
    amount: int
    currency: str


@strawberry.type
class Plan:
    """A plan of the public catalog."""

    slug: str
    name: str
    prices: list[PlanPrice]
    limits: JSON


@strawberry.type(description="What the caller's org may use now.")
class Entitlement:
    """What the caller's org may use now."""

    org_id: str = strawberry.field(description="The caller's org (from the token).")
    plan: str = strawberry.field(
        description="Slug of the plan whose limits apply now; the default plan when none."
    )
    status: SubscriptionStatus = strawberry.field(
        description="The subscription's status; NONE when the org never subscribed."
    )
    cancel_at_period_end: bool = strawberry.field(
        description="True while a cancellation is scheduled (the plan stays until then)."
    )
    current_period_end: datetime | None = strawberry.field(
        description="When the current billing period ends (UTC)."
    )
    trial_end: datetime | None = strawberry.field(description="When the trial ends (UTC).")
    has_billing_account: bool = strawberry.field(
        description='A Stripe customer exists: show "Manage billing", else "Upgrade".'
    )
    limits: JSON = strawberry.field(description="The plan's limits, from the plans file.")
    updated_at: datetime | None = strawberry.field(
        description="When the webhook last wrote this entitlement."
    )
