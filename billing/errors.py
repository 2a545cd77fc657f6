"""Expected billing failures, reported to clients as data."""

from __future__ import annotations

import enum


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


DEFAULT_MESSAGES = {
    BillingErrorCode.NO_CUSTOMER: "This organization has no billing account yet; upgrade first.",
    BillingErrorCode.NO_SUBSCRIPTION: "This organization has no current subscription.",
    BillingErrorCode.FORBIDDEN: "Your role may not manage billing for this organization.",
    BillingErrorCode.INVALID_RETURN_PATH: (
        "returnPath must be a path inside the app, like /settings."
    ),
    BillingErrorCode.UNKNOWN_PLAN: "No such plan, or the plan has no price for that interval.",
    BillingErrorCode.ALREADY_ON_PLAN: "The organization is already on this plan and interval.",
    BillingErrorCode.STRIPE_NOT_CONFIGURED: "Billing is not configured on this server.",
    BillingErrorCode.STRIPE_UNAVAILABLE: "The payment provider is unavailable; try again shortly.",
    BillingErrorCode.RATE_LIMITED: "Too many billing requests for this organization; retry later.",
}


class BillingFailure(Exception):
    """An expected failure with a client-facing code and a safe message."""

    def __init__(self, code: BillingErrorCode, message: str | None = None) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES[code]
        super().__init__(self.message)


class StripeUnavailable(Exception):
    """Stripe failed, timed out or is rate limiting us: worth retrying; detail for logs only."""


class StripeRateLimited(StripeUnavailable):
    """Stripe answered 429: slow down and try again (not a failure of the work itself)."""


class StripeRejected(Exception):
    """Stripe refused the request for good (a 4xx other than 409/429): a bug or bad config.

    Not an expected failure: GraphQL masks it (logged with the request id), the webhook
    applier keeps the event as failed and retries it with backoff. The message is for logs only.
    """


class StripeNotFound(StripeRejected):
    """Stripe has no such object (`resource_missing`); `param` names the request field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
