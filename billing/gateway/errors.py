"""How Stripe failed: transient (retry) or final (a bug or bad configuration)."""

from __future__ import annotations


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
