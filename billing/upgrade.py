"""Start an upgrade: Checkout for a new subscriber, a confirmed portal switch for a subscriber."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import cast

from billing.accounts import ensure_customer, live_customer
from billing.catalog.plans import BillingInterval, Catalog, CheckoutSpec, PlanSpec
from billing.errors import BillingErrorCode, BillingFailure, configured
from billing.gateway.client import CheckoutSessionParams, StripeGateway
from billing.gateway.views import SubscriptionView
from billing.kit.auth import Principal
from billing.kit.database import Database
from billing.kit.settings import Settings
from billing.portal.apps import app_base_url
from billing.portal.sessions import PortalLink, confirm_update, require_billing_role
from billing.ratelimit import OrgRateLimit
from billing.seats import require_seats, seats_for_checkout, seats_for_switch
from billing.subscriptions import current_of

CHECKOUT_KEY_WINDOW = 600
"""Seconds during which repeated clicks for the same plan get the same Checkout Session."""


@dataclass(frozen=True)
class CheckoutLink:
    """A Checkout Session to redirect the browser to."""

    id: str
    url: str


async def start_upgrade(
    db: Database,
    gateway: StripeGateway | None,
    catalog: Catalog,
    settings: Settings,
    rate_limit: OrgRateLimit,
    principal: Principal,
    plan: str,
    interval: BillingInterval,
    seats: int | None = None,
    app: str | None = None,
) -> CheckoutLink | PortalLink:
    """Checkout for an org without a paid subscription, else a portal plan-switch confirmation;
    every URL on `app`'s URL (APP_URL when None)."""
    require_billing_role(settings, principal)
    app_url = app_base_url(settings, app)
    spec = catalog.price(plan, interval)
    if spec is None:
        raise BillingFailure(BillingErrorCode.UNKNOWN_PLAN)
    plan_spec = catalog.plans[plan]
    require_seats(plan, plan_spec, seats)
    stripe = configured(gateway)  # STRIPE_NOT_CONFIGURED only once the local checks pass
    org_id = principal.org_id
    await rate_limit.take(org_id)
    price = await stripe.price_by_lookup_key(spec.lookup_key)
    if price is None:
        raise BillingFailure(
            BillingErrorCode.UNKNOWN_PLAN, f"No active price with lookup key {spec.lookup_key}."
        )
    customer_id = await live_customer(db, org_id)
    known: list[SubscriptionView] | None = None
    if customer_id is not None:
        # A just-paid checkout must not lead to a second subscription (its webhook may be late).
        known = await stripe.subscriptions_of(customer_id)
        current = current_of(known)
        if current is not None and current.item_id:
            quantity = seats_for_switch(plan_spec, current, seats)
            if current.price_lookup_key == spec.lookup_key and current.quantity == quantity:
                raise BillingFailure(BillingErrorCode.ALREADY_ON_PLAN)
            return await confirm_update(
                stripe,
                org_id,
                customer_id,
                current,
                price.id,
                quantity,
                f"{app_url}/settings/billing",
            )
    customer_id = await ensure_customer(db, stripe, org_id)
    quantity = seats_for_checkout(plan_spec, seats)
    checkout: CheckoutSessionParams = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": [{"price": price.id, "quantity": quantity}],
        "client_reference_id": org_id,
        "metadata": {"org_id": org_id},
        "subscription_data": {"metadata": {"org_id": org_id}},
        "success_url": f"{app_url}/settings/billing?checkout=success"
        "&session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": f"{app_url}/settings/billing?checkout=canceled",
        **checkout_options(catalog.checkout),
    }
    if plan_spec.trial_days and not had_trial(known or []):
        _add_trial(checkout, plan_spec)
    window = int(time.time()) // CHECKOUT_KEY_WINDOW
    digest = hashlib.sha256(json.dumps(checkout, sort_keys=True).encode()).hexdigest()[:16]
    key = f"org:{org_id}:checkout:{customer_id}:{price.id}:{quantity}:{window}:{digest}"
    session_id, url = await stripe.create_checkout_session(checkout, key)
    return CheckoutLink(id=session_id, url=url)


def checkout_options(spec: CheckoutSpec) -> CheckoutSessionParams:
    """The `[checkout]` section, one to one onto the Checkout Session.

    The session always names an existing customer, so what Checkout collects for tax is saved
    on it (`customer_update`): Stripe requires the address for automatic tax, the name for tax
    IDs."""
    options: CheckoutSessionParams = {
        "allow_promotion_codes": spec.promotion_codes,
        "automatic_tax": {"enabled": spec.automatic_tax},
        "tax_id_collection": {"enabled": spec.tax_id_collection},
        "billing_address_collection": spec.billing_address,
    }
    if spec.automatic_tax:
        options.setdefault("customer_update", {})["address"] = "auto"
    if spec.tax_id_collection:
        options.setdefault("customer_update", {})["name"] = "auto"
    return options


def had_trial(subscriptions: list[SubscriptionView]) -> bool:
    """Whether the customer ever had a trial (one trial per org), from Stripe's subscriptions
    (a customer created just now had none)."""
    return any(sub.trial_start is not None or sub.trial_end is not None for sub in subscriptions)


def _add_trial(checkout: CheckoutSessionParams, plan: PlanSpec) -> None:
    """The plan's trial: its days, and for a card-less one no card and what happens at its end."""
    checkout["subscription_data"]["trial_period_days"] = cast(int, plan.trial_days)
    if plan.trial_card == "optional":
        checkout["payment_method_collection"] = "if_required"
    if plan.trial_end_without_card:
        checkout["subscription_data"]["trial_settings"] = {
            "end_behavior": {"missing_payment_method": plan.trial_end_without_card}
        }
