"""Strawberry types of the public contract, `schema.graphql` (a test keeps them equal)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from billing.catalog.plans import BillingInterval
from billing.entitlements.billing_state import RequiredActionCode
from billing.errors import BillingErrorCode
from billing.models import SubscriptionStatus
from billing.portal.sessions import PortalFlow

for _domain_enum in (
    PortalFlow,
    BillingErrorCode,
    SubscriptionStatus,
    BillingInterval,
    RequiredActionCode,
):
    strawberry.enum(_domain_enum)


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
ChangeSeatsResult = Annotated[PortalSession | BillingError, strawberry.union("ChangeSeatsResult")]


@strawberry.type
class PlanPrice:
    """One price of a plan."""

    interval: BillingInterval
    lookup_key: str
    amount: int
    currency: str


@strawberry.type
class SeatRange:
    """How many seats a per-seat plan sells."""

    min: int
    max: int


@strawberry.type
class Plan:
    """A plan of the public catalog."""

    slug: str
    name: str
    prices: list[PlanPrice]
    limits: JSON
    features: list[str] = strawberry.field(
        description="Feature lookup keys the plans file grants with this plan, sorted."
    )
    seats: SeatRange | None = strawberry.field(
        description="Set for a per-seat plan (its prices are per seat: quantity = seats)."
    )
    trial_days: int | None = strawberry.field(
        description="Days of trial Checkout starts a new subscriber with (one trial per org)."
    )


@strawberry.type(description="What the customer must do to keep paying.")
class RequiredAction:
    """What the customer must do to keep paying."""

    code: RequiredActionCode
    flow: PortalFlow | None = strawberry.field(
        description="The portal flow that fixes it, when one does (PAYMENT_METHOD_UPDATE)."
    )
    invoice_url: str | None = strawberry.field(
        description="Stripe's hosted invoice page, when the customer must confirm or pay there."
    )
    since: datetime = strawberry.field(description="When Stripe first reported it.")
    deadline: datetime | None = strawberry.field(
        description="When access changes if nothing is done, when Stripe says (trial end, "
        "next retry)."
    )


@strawberry.type(description="A change Stripe has scheduled for later.")
class PendingChange:
    """A change Stripe has scheduled for later."""

    plan: str = strawberry.field(
        description="The plan from effectiveAt on (the default plan for a scheduled end)."
    )
    interval: BillingInterval | None
    seats: int | None
    effective_at: datetime


@strawberry.enum(description="How long a discount lasts.")
class DiscountDuration(enum.Enum):
    """How long a discount lasts."""

    ONCE = "once"
    REPEATING = "repeating"
    FOREVER = "forever"


@strawberry.type(description="A discount on the subscription (a coupon, e.g. a retention offer).")
class Discount:
    """A discount on the subscription."""

    coupon: str = strawberry.field(description="The coupon's id.")
    name: str | None = strawberry.field(description="The coupon's name, when it has one.")
    percent_off: float | None
    amount_off: int | None = strawberry.field(description="In the currency's smallest unit.")
    currency: str | None
    duration: DiscountDuration
    duration_in_months: int | None = strawberry.field(
        description="For a REPEATING discount: how many months it lasts."
    )
    end: datetime | None = strawberry.field(description="When a REPEATING discount ends (UTC).")


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
    limits: JSON = strawberry.field(
        description="The plan's limits; on a per-seat plan `seats` is the purchased quantity."
    )
    updated_at: datetime | None = strawberry.field(
        description="When the webhook last wrote this entitlement."
    )
    interval: BillingInterval | None = strawberry.field(
        description="Of the subscribed price; null without a subscription."
    )
    seats: int | None = strawberry.field(
        description="Purchased seats on a per-seat plan; null otherwise."
    )
    features: list[str] = strawberry.field(
        description="Feature lookup keys the org has now: the plan's in the plans file and the "
        "customer's active entitlements in Stripe, sorted."
    )
    required_action: RequiredAction | None = strawberry.field(
        description="What the customer must do to keep paying; null when nothing."
    )
    pending_change: PendingChange | None = strawberry.field(
        description="A change Stripe has scheduled for later; null when none."
    )
    discount: Discount | None = strawberry.field(
        description="The subscription's discount (e.g. a retention offer accepted); null when none."
    )
