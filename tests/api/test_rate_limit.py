"""The per-org limit on calls that reach Stripe: BILLING_RATE_LIMIT per org and minute,
counted in the database, so it holds across workers."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from harness.api import Api, app_client
from harness.db import customer_id
from harness.stack import Stack
from harness.stripe_side import portal_sessions
from harness.timing import ManualClock

LIMIT = 3
MID_MINUTE = 1_800_000_030.0
"""The clock of the apps under test: the middle of one minute, so every call falls in it."""


@pytest.fixture
def limited(stack: Stack) -> Any:
    """Settings with BILLING_RATE_LIMIT=3."""
    return stack.settings_with(billing_rate_limit=LIMIT)


APPLIER_READS = frozenset({"/v1/subscriptions", "/v1/entitlements/active_entitlements"})
"""What the shared server's applier asks Stripe, in the background, for events earlier tests
left it (a mutation refused before Stripe would create a customer or a session first)."""


def api_log(stack: Stack) -> int:
    """How many API requests the emulator has received, but the applier's re-reads."""
    return len(
        [
            r
            for r in stack.control.requests()
            if not (r["method"] == "GET" and r["path"] in APPLIER_READS)
        ]
    )


async def test_fourth_call_in_a_minute_is_rate_limited_before_stripe(
    stack: Stack, limited: Any
) -> None:
    async with app_client(limited, clock=ManualClock(MID_MINUTE)) as http:
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
    async with app_client(limited, clock=ManualClock(MID_MINUTE)) as http:
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
            assert (await member.change_seats(3))["code"] == "FORBIDDEN"
            assert (await owner.upgrade("business", seats=1))["code"] == "INVALID_SEATS"
            assert (await owner.change_seats(0))["code"] == "INVALID_SEATS"
            assert (await owner.change_seats(3))["code"] == "NO_SUBSCRIPTION"
        assert api_log(stack) == seen

        # The org's whole budget is still there.
        assert (await owner.upgrade("pro"))["__typename"] == "CheckoutSession"
        assert (await owner.open_portal())["__typename"] == "PortalSession"
        assert (await owner.open_portal("/x"))["__typename"] == "PortalSession"
        assert (await owner.open_portal())["code"] == "RATE_LIMITED"
        assert (await owner.change_seats(3))["code"] == "RATE_LIMITED"


async def test_the_limit_holds_across_two_workers_sharing_the_database(
    stack: Stack, limited: Any
) -> None:
    async with AsyncExitStack() as stack_of_apps:
        first = await stack_of_apps.enter_async_context(
            app_client(limited, clock=ManualClock(MID_MINUTE))
        )
        second = await stack_of_apps.enter_async_context(
            app_client(limited, clock=ManualClock(MID_MINUTE))
        )
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


async def test_the_next_minute_brings_a_fresh_budget(limited: Any) -> None:
    clock = ManualClock(MID_MINUTE)
    async with app_client(limited, clock=clock) as http:
        api = Api(http)
        for _ in range(LIMIT):
            assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"
        assert (await api.upgrade("pro"))["code"] == "RATE_LIMITED"
        clock.now = MID_MINUTE + 29.9  # the same minute still
        assert (await api.upgrade("pro"))["code"] == "RATE_LIMITED"
        clock.now = MID_MINUTE + 30  # the next one
        for _ in range(LIMIT):
            assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"
        assert (await api.upgrade("pro"))["code"] == "RATE_LIMITED"
