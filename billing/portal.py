"""Open the Customer Portal for the caller's org, optionally deep-linked to a flow."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from billing.accounts import live_customer
from billing.auth import Principal
from billing.errors import BillingErrorCode, BillingFailure
from billing.ratelimit import take_slot
from billing.return_path import safe_return_url
from billing.services import Services
from billing.stripe_api import PortalAfterCompletionParams, PortalSessionParams
from billing.subscriptions import is_paid, pick_current


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


def require_billing_role(services: Services, principal: Principal) -> None:
    """FORBIDDEN unless the caller's role may manage billing."""
    if principal.role not in services.settings.billing_roles:
        raise BillingFailure(BillingErrorCode.FORBIDDEN)


async def open_portal(
    services: Services, principal: Principal, return_path: str, flow: PortalFlow | None
) -> PortalLink:
    """Check everything locally, then mint a new portal session for the caller's org."""
    require_billing_role(services, principal)
    return_url = safe_return_url(services.settings.app_url, return_path)
    if return_url is None:
        raise BillingFailure(BillingErrorCode.INVALID_RETURN_PATH)
    stripe = services.stripe
    customer_id = await live_customer(services, principal.org_id)
    if customer_id is None:
        raise BillingFailure(BillingErrorCode.NO_CUSTOMER)
    await take_slot(services.db, principal.org_id, services.settings.billing_rate_limit)
    params: PortalSessionParams = {"customer": customer_id, "return_url": return_url}
    if flow is PortalFlow.PAYMENT_METHOD_UPDATE:
        params["flow_data"] = {"type": "payment_method_update"}
    elif flow is not None:
        current = pick_current(await stripe.subscriptions_of(customer_id))
        if current is None or not is_paid(current):
            raise BillingFailure(BillingErrorCode.NO_SUBSCRIPTION)
        after: PortalAfterCompletionParams = {
            "type": "redirect",
            "redirect": {"return_url": return_url},
        }
        if flow is PortalFlow.SUBSCRIPTION_CANCEL:
            params["flow_data"] = {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": current.id},
                "after_completion": after,
            }
        else:
            params["flow_data"] = {
                "type": "subscription_update",
                "subscription_update": {"subscription": current.id},
                "after_completion": after,
            }
    key = f"org:{principal.org_id}:portal:{uuid.uuid4()}"
    url = await stripe.create_portal_session(params, key)
    return PortalLink(url=url, flow=flow)
