"""Stripe not configured, or failing: a BillingError with a safe message, within a bound."""

from __future__ import annotations

from harness.api import UPGRADE, Api, app_client
from harness.stack import Stack
from harness.stripe_side import stripe_calls
from harness.timing import timed


async def test_stripe_not_configured(stack: Stack) -> None:
    settings = stack.settings_with(stripe_secret_key=None)
    assert settings.stripe_secret_key is None
    async with app_client(settings) as http:
        api = Api(http)
        assert (await api.upgrade("pro"))["code"] == "STRIPE_NOT_CONFIGURED"
        assert (await api.open_portal())["code"] == "STRIPE_NOT_CONFIGURED"
        assert (await api.entitlement())["plan"] == "free"  # reads never need Stripe


async def test_stripe_outage_is_stripe_unavailable(api: Api, stack: Stack) -> None:
    stack.control.fail("/v1/customers", status=500, count=10, method="POST")
    try:
        result, elapsed = await timed(api.upgrade("pro"))
    finally:
        stack.control.clear_faults()
    assert result["__typename"] == "BillingError" and result["code"] == "STRIPE_UNAVAILABLE"
    assert "http" not in result["message"] and "500" not in result["message"]
    attempts = stripe_calls(stack, "/v1/customers", mentions=api.org)
    assert len(attempts) == 1 + stack.settings.stripe_max_retries
    assert len({a["idempotency_key"] for a in attempts}) == 1
    assert elapsed < 10
    # Once Stripe is back, the same call goes through and creates one customer.
    assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"


async def test_a_permanent_stripe_refusal_is_masked(api: Api, stack: Stack) -> None:
    """A 400 from Stripe is a bug or a misconfiguration, not "try again": clients get the
    masked internal error with a request id, never Stripe's message or a retry hint."""
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "parameter_invalid_empty",
            "message": "You passed an empty string for 'line_items[0][price]'.",
        }
    }
    stack.control.fail("/v1/checkout/sessions", status=400, method="POST", body=body)
    try:
        response = await api.raw(UPGRADE, {"plan": "pro"})
    finally:
        stack.control.clear_faults()
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] is None
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "line_items" not in response.text and "empty string" not in response.text
    attempts = stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)
    assert len(attempts) == 1  # the SDK does not retry a 400
