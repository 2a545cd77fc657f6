"""Start an upgrade: Checkout for a new subscriber, a confirmed portal switch for a subscriber."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from billing.accounts import ensure_customer, live_customer
from billing.auth import Principal
from billing.errors import BillingErrorCode, BillingFailure
from billing.plans import Interval
from billing.portal import PortalFlow, PortalLink, require_billing_role
from billing.ratelimit import take_slot
from billing.services import Services
from billing.stripe_api import CheckoutSessionParams, PortalSessionParams
from billing.subscriptions import is_paid, pick_current

CHECKOUT_KEY_WINDOW = 600
"""Seconds during which repeated clicks for the same plan get the same Checkout Session."""


@dataclass(frozen=True)
class CheckoutLink:
    """A Checkout Session to redirect the browser to."""

    id: str
    url: str


async def start_upgrade(
    services: Services, principal: Principal, plan: str, interval: Interval
) -> CheckoutLink | PortalLink:
    """Checkout for an org without a paid subscription, else a portal plan-switch confirmation."""
    require_billing_role(services, principal)
    spec = services.catalog.price(plan, interval)
    if spec is None:
        raise BillingFailure(BillingErrorCode.UNKNOWN_PLAN)
    stripe = services.stripe
    org_id = principal.org_id
    await take_slot(services.db, org_id, services.settings.billing_rate_limit)
    price = await stripe.price_by_lookup_key(spec.lookup_key)
    if price is None:
        raise BillingFailure(
            BillingErrorCode.UNKNOWN_PLAN, f"No active price with lookup key {spec.lookup_key}."
        )
    app_url = services.settings.app_url
    customer_id = await live_customer(services, org_id)
    if customer_id is not None:
        # Stripe, not the webhook-fed projection, decides: a just-paid checkout must not lead
        # to a second subscription because its webhook has not arrived yet.
        current = pick_current(await stripe.subscriptions_of(customer_id))
        if current is not None and is_paid(current) and current.item_id:
            if current.price_lookup_key == spec.lookup_key:
                raise BillingFailure(BillingErrorCode.ALREADY_ON_PLAN)
            params: PortalSessionParams = {
                "customer": customer_id,
                "return_url": f"{app_url}/settings/billing",
                "flow_data": {
                    "type": "subscription_update_confirm",
                    "subscription_update_confirm": {
                        "subscription": current.id,
                        "items": [
                            {"id": current.item_id, "price": price.id, "quantity": current.quantity}
                        ],
                    },
                    "after_completion": {
                        "type": "redirect",
                        "redirect": {"return_url": f"{app_url}/settings/billing?switched=1"},
                    },
                },
            }
            url = await stripe.create_portal_session(params, f"org:{org_id}:switch:{uuid.uuid4()}")
            return PortalLink(url=url, flow=PortalFlow.SUBSCRIPTION_UPDATE)
    customer_id = await ensure_customer(services, org_id)
    checkout: CheckoutSessionParams = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": [{"price": price.id, "quantity": 1}],
        "client_reference_id": org_id,
        "metadata": {"org_id": org_id},
        "subscription_data": {"metadata": {"org_id": org_id}},
        "success_url": f"{app_url}/settings/billing?checkout=success"
        "&session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": f"{app_url}/settings/billing?checkout=canceled",
    }
    trial_days = services.catalog.plans[plan].trial_days
    if trial_days:
        checkout["subscription_data"]["trial_period_days"] = trial_days
    window = int(time.time()) // CHECKOUT_KEY_WINDOW
    key = f"org:{org_id}:checkout:{customer_id}:{price.id}:{window}"
    session_id, url = await stripe.create_checkout_session(checkout, key)
    return CheckoutLink(id=session_id, url=url)
