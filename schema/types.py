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


@strawberry.type
class Entitlement:
    """What the caller's org may use now."""

    org_id: str
    plan: str
    status: SubscriptionStatus
    cancel_at_period_end: bool
    current_period_end: datetime | None
    trial_end: datetime | None
    has_billing_account: bool
    limits: JSON
    updated_at: datetime | None
