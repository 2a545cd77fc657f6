"""Open the Customer Portal for the caller's org, optionally deep-linked to a flow."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from billing.accounts import live_customer
from billing.catalog.plans import Catalog
from billing.errors import BillingErrorCode, BillingFailure, configured
from billing.gateway.client import (
    PortalAfterCompletionParams,
    PortalCancelParams,
    PortalFlowParams,
    PortalSessionParams,
    StripeGateway,
)
from billing.gateway.views import SubscriptionView
from billing.kit.auth import Principal
from billing.kit.database import Database
from billing.kit.settings import Settings
from billing.portal.apps import app_base_url
from billing.portal.return_path import safe_return_url
from billing.ratelimit import OrgRateLimit
from billing.retention.offers import CouponOffer, record_offer, retention_offer
from billing.subscriptions import current_paid


class PortalFlow(enum.Enum):
    """Where the portal opens."""

    SUBSCRIPTION_CANCEL = "subscription_cancel"
    SUBSCRIPTION_UPDATE = "subscription_update"
    PAYMENT_METHOD_UPDATE = "payment_method_update"


@dataclass(frozen=True)
class PortalLink:
    """A freshly minted portal URL."""

    url: str
    flow: PortalFlow | None


def require_billing_role(settings: Settings, principal: Principal) -> None:
    """FORBIDDEN unless the caller's role may manage billing."""
    if principal.role not in settings.billing_roles:
        raise BillingFailure(BillingErrorCode.FORBIDDEN)


async def confirm_update(
    stripe: StripeGateway,
    org_id: str,
    customer_id: str,
    current: SubscriptionView,
    price_id: str,
    quantity: int,
    return_url: str,
) -> PortalLink:
    """Stripe's `subscription_update_confirm` page for the current subscription's item at this
    price and quantity: Stripe shows and computes the proration, the customer confirms there,
    and the change lands through the webhook."""
    params: PortalSessionParams = {
        "customer": customer_id,
        "return_url": return_url,
        "flow_data": {
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "subscription": current.id,
                "items": [{"id": str(current.item_id), "price": price_id, "quantity": quantity}],
            },
            "after_completion": back_to(return_url, PortalFlow.SUBSCRIPTION_UPDATE),
        },
    }
    url = await stripe.create_portal_session(params, f"org:{org_id}:confirm:{uuid.uuid4()}")
    return PortalLink(url=url, flow=PortalFlow.SUBSCRIPTION_UPDATE)


FLOW_MARKER = "billing_flow"
"""The query parameter a deep-link flow's redirect adds: the flow that completed (a hint for
the page, never proof: the page reads `entitlement` and waits for `entitlementChanged`)."""


def back_to(return_url: str, flow: PortalFlow) -> PortalAfterCompletionParams:
    """A deep-link flow's `after_completion`: straight back to the return URL (an in-app
    browser closes on the app's universal link with no "Return" click), marked with the flow."""
    marked = with_marker(return_url, f"{FLOW_MARKER}={flow.name}")
    return {"type": "redirect", "redirect": {"return_url": marked}}


def with_marker(url: str, marker: str) -> str:
    """`url` with a query marker added before any fragment."""
    parts = urlsplit(url)
    query = f"{parts.query}&{marker}" if parts.query else marker
    return urlunsplit(parts._replace(query=query))


def allowed_return_url(
    settings: Settings, principal: Principal, return_path: str, app: str | None
) -> str:
    """The caller may manage billing, `app` is known and `return_path` is safe: the absolute
    return URL on that app's URL."""
    require_billing_role(settings, principal)
    return_url = safe_return_url(app_base_url(settings, app), return_path)
    if return_url is None:
        raise BillingFailure(BillingErrorCode.INVALID_RETURN_PATH)
    return return_url


async def portal_customer(
    db: Database,
    gateway: StripeGateway | None,
    rate_limit: OrgRateLimit,
    org_id: str,
    missing: BillingErrorCode,
) -> tuple[StripeGateway, str]:
    """Stripe and the org's customer, once a call to Stripe is allowed; `missing` without one."""
    stripe = configured(gateway)  # STRIPE_NOT_CONFIGURED only once the local checks pass
    customer_id = await live_customer(db, org_id)
    if customer_id is None:
        raise BillingFailure(missing)
    await rate_limit.take(org_id)
    return stripe, customer_id


async def open_portal(
    db: Database,
    gateway: StripeGateway | None,
    catalog: Catalog,
    settings: Settings,
    rate_limit: OrgRateLimit,
    principal: Principal,
    return_path: str,
    flow: PortalFlow | None,
    app: str | None = None,
) -> PortalLink:
    """Check everything locally, then mint a new portal session for the caller's org."""
    return_url = allowed_return_url(settings, principal, return_path, app)
    stripe, customer_id = await portal_customer(
        db, gateway, rate_limit, principal.org_id, BillingErrorCode.NO_CUSTOMER
    )
    params: PortalSessionParams = {"customer": customer_id, "return_url": return_url}
    offer: CouponOffer | None = None
    if flow is not None:
        params["flow_data"], offer = await _deep_link(
            stripe, catalog, principal.org_id, customer_id, flow, return_url
        )
    key = f"org:{principal.org_id}:portal:{uuid.uuid4()}"
    url = await stripe.create_portal_session(params, key)
    if offer is not None:
        await record_offer(db, offer)
    return PortalLink(url=url, flow=flow)


async def _deep_link(
    stripe: StripeGateway,
    catalog: Catalog,
    org_id: str,
    customer_id: str,
    flow: PortalFlow,
    return_url: str,
) -> tuple[PortalFlowParams, CouponOffer | None]:
    """A flow's `flow_data`, back to the return URL when done, and the retention offer its cancel
    flow makes (NO_SUBSCRIPTION for a subscription flow without a current subscription)."""
    after = back_to(return_url, flow)
    if flow is PortalFlow.PAYMENT_METHOD_UPDATE:
        return {"type": "payment_method_update", "after_completion": after}, None
    current = await current_paid(stripe, customer_id)
    if current is None:
        raise BillingFailure(BillingErrorCode.NO_SUBSCRIPTION)
    if flow is PortalFlow.SUBSCRIPTION_UPDATE:
        update: PortalFlowParams = {
            "type": "subscription_update",
            "subscription_update": {"subscription": current.id},
            "after_completion": after,
        }
        return update, None
    cancel: PortalCancelParams = {"subscription": current.id}
    offer = retention_offer(catalog, org_id, current)
    if offer is not None:
        cancel["retention"] = {"type": "coupon_offer", "coupon_offer": {"coupon": offer.coupon}}
    data: PortalFlowParams = {
        "type": "subscription_cancel",
        "subscription_cancel": cancel,
        "after_completion": after,
    }
    return data, offer
