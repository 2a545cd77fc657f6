"""The per-org limit on calls that reach Stripe: BILLING_RATE_LIMIT per org and minute,
counted in the database, so it holds across workers."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from tests.support.api import Api, app_client
from tests.support.db import customer_id
from tests.support.stack import Stack
from tests.support.stripe_side import portal_sessions
from tests.support.timing import wait_for_fresh_window

LIMIT = 3


@pytest.fixture
def limited(stack: Stack) -> Any:
    """Settings with BILLING_RATE_LIMIT=3."""
    wait_for_fresh_window()
    return stack.settings_with(billing_rate_limit=LIMIT)


def api_log(stack: Stack) -> int:
    """How many API requests the emulator has received."""
    return len(stack.control.requests())


async def test_fourth_call_in_a_minute_is_rate_limited_before_stripe(
    stack: Stack, limited: Any
) -> None:
    async with app_client(limited) as http:
        api = Api(http)
        assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"
        assert (await api.open_portal())["__typename"] == "PortalSession"
        assert (await api.upgrade("pro", "YEAR"))["__typename"] == "CheckoutSession"

        seen = api_log(stack)
        for call in (
            api.upgrade("pro"),
            api.open_portal(),
            api.open_portal(flow="SUBSCRIPTION_CANCEL"),
        ):
            result = await call
            assert result["__typename"] == "BillingError" and result["code"] == "RATE_LIMITED"
            assert "retry" in result["message"].lower()
        assert api_log(stack) == seen  # not one request reached Stripe

        # Reads are not limited.
        assert (await api.entitlement())["orgId"] == api.org

        # Another org has its own budget.
        other = Api(http)
        for _ in range(LIMIT):
            assert (await other.upgrade("team"))["__typename"] == "CheckoutSession"
        assert (await other.upgrade("team"))["code"] == "RATE_LIMITED"


async def test_calls_refused_before_stripe_do_not_count(stack: Stack, limited: Any) -> None:
    async with app_client(limited) as http:
        owner = Api(http)
        member = Api(http, org=owner.org, role="member")
        seen = api_log(stack)
        for _ in range(2 * LIMIT):
            assert (await member.upgrade("pro"))["code"] == "FORBIDDEN"
            assert (await member.open_portal())["code"] == "FORBIDDEN"
            assert (await owner.upgrade("enterprise"))["code"] == "UNKNOWN_PLAN"
            assert (await owner.upgrade("team", "YEAR"))["code"] == "UNKNOWN_PLAN"
            assert (await owner.open_portal("//evil.example"))["code"] == "INVALID_RETURN_PATH"
            assert (await owner.open_portal())["code"] == "NO_CUSTOMER"
        assert api_log(stack) == seen

        # The org's whole budget is still there.
        assert (await owner.upgrade("pro"))["__typename"] == "CheckoutSession"
        assert (await owner.open_portal())["__typename"] == "PortalSession"
        assert (await owner.open_portal("/x"))["__typename"] == "PortalSession"
        assert (await owner.open_portal())["code"] == "RATE_LIMITED"


async def test_the_limit_holds_across_two_workers_sharing_the_database(
    stack: Stack, limited: Any
) -> None:
    async with AsyncExitStack() as stack_of_apps:
        first = await stack_of_apps.enter_async_context(app_client(limited))
        second = await stack_of_apps.enter_async_context(app_client(limited))
        org = Api(first).org

        # Alternating workers: the count is shared, not per process.
        results = [
            await Api(http, org=org).upgrade("pro")
            for http in (first, second, first, second, first)
        ]
        kinds = [
            r["__typename"] if r["__typename"] != "BillingError" else r["code"] for r in results
        ]
        assert kinds == ["CheckoutSession"] * LIMIT + ["RATE_LIMITED"] * 2

        # Concurrent calls of a fresh org through both workers: exactly LIMIT get through.
        racer = Api(first).org
        customer_setup = await Api(first, org=racer).upgrade("pro")  # customer exists first
        assert customer_setup["__typename"] == "CheckoutSession"
        customer = await customer_id(stack.settings.database_url, racer)
        assert customer is not None

        async def portal(http: httpx.AsyncClient) -> str:
            result = await Api(http, org=racer).open_portal()
            return str(
                result["__typename"] if result["__typename"] != "BillingError" else result["code"]
            )

        outcomes = await asyncio.gather(*(portal(h) for h in [first, second] * 5))
        assert sorted(outcomes).count("PortalSession") == LIMIT - 1, outcomes
        assert outcomes.count("RATE_LIMITED") == 10 - (LIMIT - 1), outcomes
        assert len(portal_sessions(stack, customer)) == LIMIT - 1
