"""Seats: the quantity of a per-seat plan's price, checked against the plans file, changed on
Stripe's confirmation page."""

from __future__ import annotations

from billing.catalog.plans import Catalog, PlanSpec
from billing.entitlements.read import read_entitlement
from billing.errors import BillingErrorCode, BillingFailure
from billing.gateway.client import StripeGateway
from billing.gateway.views import SubscriptionView
from billing.kit.auth import Principal
from billing.kit.database import Database
from billing.kit.settings import Settings
from billing.portal.sessions import (
    PortalLink,
    allowed_return_url,
    confirm_update,
    portal_customer,
)
from billing.ratelimit import OrgRateLimit
from billing.subscriptions import current_paid


def require_seats(slug: str, plan: PlanSpec, seats: int | None) -> None:
    """INVALID_SEATS for seats on a plan that is not per seat, or outside its min..max."""
    if seats is None:
        return
    if plan.seats is None:
        raise BillingFailure(
            BillingErrorCode.INVALID_SEATS, f"The plan {slug} is not sold per seat."
        )
    if seats not in plan.seats:
        raise BillingFailure(
            BillingErrorCode.INVALID_SEATS,
            f"The plan {slug} sells {plan.seats.min} to {plan.seats.max} seats.",
        )


def seats_for_checkout(plan: PlanSpec, seats: int | None) -> int:
    """The quantity of a new subscription: the seats asked for, else the plan's minimum (1 on
    a plan that is not per seat)."""
    if plan.seats is None:
        return 1
    return seats if seats is not None else plan.seats.min


def seats_for_switch(plan: PlanSpec, current: SubscriptionView, seats: int | None) -> int:
    """The quantity of a plan switch: the seats asked for, else the current quantity within the
    new plan's range (1 on a plan that is not per seat)."""
    if plan.seats is None:
        return 1
    return seats if seats is not None else plan.seats.clamp(current.quantity)


async def _require_plausible(db: Database, catalog: Catalog, org_id: str, seats: int) -> None:
    """INVALID_SEATS, before anything reaches Stripe, for a count that no per-seat plan sells
    or that the org's plan (as the webhook last projected it) does not sell."""
    if not any(plan.seats and seats in plan.seats for plan in catalog.plans.values()):
        raise BillingFailure(BillingErrorCode.INVALID_SEATS)
    current = (await read_entitlement(db, catalog, org_id)).plan
    if catalog.plans[current].seats is not None:
        require_seats(current, catalog.plans[current], seats)


async def change_seats(
    db: Database,
    gateway: StripeGateway | None,
    catalog: Catalog,
    settings: Settings,
    rate_limit: OrgRateLimit,
    principal: Principal,
    seats: int,
    return_path: str,
    app: str | None = None,
) -> PortalLink:
    """Stripe's confirmation page for the current per-seat subscription at `seats` seats."""
    return_url = allowed_return_url(settings, principal, return_path, app)
    org_id = principal.org_id
    await _require_plausible(db, catalog, org_id, seats)
    stripe, customer_id = await portal_customer(
        db, gateway, rate_limit, org_id, BillingErrorCode.NO_SUBSCRIPTION
    )
    current = await current_paid(stripe, customer_id)
    if current is None or not current.item_id or not current.price_id:
        raise BillingFailure(BillingErrorCode.NO_SUBSCRIPTION)
    found = catalog.by_lookup_key(current.price_lookup_key)
    if found is None:
        raise BillingFailure(
            BillingErrorCode.INVALID_SEATS, "The current subscription's price names no plan."
        )
    slug = found[0]
    require_seats(slug, catalog.plans[slug], seats)
    if seats == current.quantity:
        raise BillingFailure(
            BillingErrorCode.ALREADY_ON_PLAN, f"The organization already has {seats} seats."
        )
    return await confirm_update(
        stripe, org_id, customer_id, current, current.price_id, seats, return_url
    )
