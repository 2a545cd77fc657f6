"""Expected billing failures, reported to clients as data."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.gateway.client import StripeGateway


class BillingErrorCode(enum.Enum):
    """Why a billing call did not happen; clients branch on it."""

    NO_CUSTOMER = "NO_CUSTOMER"
    NO_SUBSCRIPTION = "NO_SUBSCRIPTION"
    FORBIDDEN = "FORBIDDEN"
    INVALID_RETURN_PATH = "INVALID_RETURN_PATH"
    UNKNOWN_PLAN = "UNKNOWN_PLAN"
    ALREADY_ON_PLAN = "ALREADY_ON_PLAN"
    STRIPE_NOT_CONFIGURED = "STRIPE_NOT_CONFIGURED"
    STRIPE_UNAVAILABLE = "STRIPE_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_SEATS = "INVALID_SEATS"
    UNKNOWN_APP = "UNKNOWN_APP"


DEFAULT_MESSAGES = {
    BillingErrorCode.NO_CUSTOMER: "This organization has no billing account yet; upgrade first.",
    BillingErrorCode.NO_SUBSCRIPTION: "This organization has no current subscription.",
    BillingErrorCode.FORBIDDEN: "Your role may not manage billing for this organization.",
    BillingErrorCode.INVALID_RETURN_PATH: (
        "returnPath must be a path inside the app, like /settings."
    ),
    BillingErrorCode.UNKNOWN_PLAN: "No such plan, or the plan has no price for that interval.",
    BillingErrorCode.ALREADY_ON_PLAN: (
        "The organization already has this plan, interval and seat count."
    ),
    BillingErrorCode.STRIPE_NOT_CONFIGURED: "Billing is not configured on this server.",
    BillingErrorCode.STRIPE_UNAVAILABLE: "The payment provider is unavailable; try again shortly.",
    BillingErrorCode.RATE_LIMITED: "Too many billing requests for this organization; retry later.",
    BillingErrorCode.INVALID_SEATS: "This seat count is not sold for this plan.",
    BillingErrorCode.UNKNOWN_APP: "No client app of that name is configured (APP_URLS).",
}


class BillingFailure(Exception):
    """An expected failure with a client-facing code and a safe message."""

    def __init__(self, code: BillingErrorCode, message: str | None = None) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES[code]
        super().__init__(self.message)


def configured(gateway: StripeGateway | None) -> StripeGateway:
    """The Stripe gateway, or STRIPE_NOT_CONFIGURED when STRIPE_SECRET_KEY is unset."""
    if gateway is None:
        raise BillingFailure(BillingErrorCode.STRIPE_NOT_CONFIGURED)
    return gateway
