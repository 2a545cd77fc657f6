"""Stripe not configured, or failing: a BillingError with a safe message, within a bound."""

from __future__ import annotations

import time

import httpx

from tests.conftest import Stack
from tests.support.api import Api
from tests.support.journeys import sent
from web import create_app


async def test_stripe_not_configured(stack: Stack) -> None:
    settings = stack.settings_with(stripe_secret_key=None)
    assert settings.stripe_secret_key is None
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        api = Api(http)
        assert (await api.upgrade("pro"))["code"] == "STRIPE_NOT_CONFIGURED"
        assert (await api.open_portal())["code"] == "STRIPE_NOT_CONFIGURED"
        assert (await api.entitlement())["plan"] == "free"  # reads never need Stripe
    await app.state.billing.db.dispose()


async def test_stripe_outage_is_stripe_unavailable(api: Api, stack: Stack) -> None:
    stack.control.fail("/v1/customers", status=500, count=10, method="POST")
    try:
        started = time.monotonic()
        result = await api.upgrade("pro")
        elapsed = time.monotonic() - started
    finally:
        stack.control.clear_faults()
    assert result["__typename"] == "BillingError" and result["code"] == "STRIPE_UNAVAILABLE"
    assert "http" not in result["message"] and "500" not in result["message"]
    attempts = [r for r in sent(stack, "/v1/customers") if api.org in str(r["params"])]
    assert len(attempts) == 1 + stack.settings.stripe_max_retries
    assert len({a["idempotency_key"] for a in attempts}) == 1
    assert elapsed < 10
    # Once Stripe is back, the same call goes through and creates one customer.
    assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"
