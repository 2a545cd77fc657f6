"""Stripe faults injected through the emulator's controls (500, 429, hang, reset) on every
Stripe write `upgrade` and `openPortal` make: the mutation answers STRIPE_UNAVAILABLE within
a bound derived from the settings, says nothing about the provider, and the emulator saw at
most 1 + STRIPE_MAX_RETRIES attempts, all with one idempotency key."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from stripe._http_client import HTTPClient

from billing.kit.settings import Settings
from harness.api import Api, app_client
from harness.db import customer_id
from harness.stack import Stack
from harness.stripe_side import stripe_calls
from harness.timing import timed

TIMEOUT = 0.5
RETRIES = 2
SLACK = 1.5
"""Seconds for everything that is not the failing call: the other Stripe calls of the
mutation, the database, and a loaded test machine."""


def bound(settings: Settings) -> float:
    """The longest a failing Stripe call may take: every attempt may use the whole timeout,
    and the SDK waits its longest backoff before each retry."""
    backoff = sum(
        min(float(HTTPClient.INITIAL_DELAY) * 2.0 ** (n - 1), float(HTTPClient.MAX_DELAY))
        for n in range(1, settings.stripe_max_retries + 1)
    )
    return settings.stripe_timeout * (1 + settings.stripe_max_retries) + backoff + SLACK


@dataclass(frozen=True)
class Target:
    """A Stripe write one of our mutations makes, and how to make it."""

    path: str
    prepare: Callable[[Api], Awaitable[None]]
    act: Callable[[Api], Awaitable[dict[str, Any]]]
    mine: Callable[[dict[str, Any], Api, str | None], bool]


async def _nothing(api: Api) -> None:
    return None


async def _with_customer(api: Api) -> None:
    assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"


TARGETS: dict[str, Target] = {
    "upgrade: customers.create": Target(
        "/v1/customers",
        _nothing,
        lambda api: api.upgrade("pro"),
        lambda r, api, cus: r["params"].get("metadata", {}).get("org_id") == api.org,
    ),
    "upgrade: checkout.sessions.create": Target(
        "/v1/checkout/sessions",
        _with_customer,
        lambda api: api.upgrade("team"),  # not pro: a checkout of its own, a new key
        lambda r, api, cus: r["params"].get("client_reference_id") == api.org,
    ),
    "openPortal: billing_portal.sessions.create": Target(
        "/v1/billing_portal/sessions",
        _with_customer,
        lambda api: api.open_portal("/settings/billing"),
        lambda r, api, cus: r["params"].get("customer") == cus,
    ),
}

# (mode, status, attempts the SDK makes with STRIPE_MAX_RETRIES retries allowed)
FAULTS: dict[str, tuple[str, int, Callable[[int], int]]] = {
    "500": ("status", 500, lambda retries: 1 + retries),
    "503": ("status", 503, lambda retries: 1 + retries),
    # The SDK does not retry a 429 unless Stripe sends `Stripe-Should-Retry: true`:
    # exactly one attempt, then STRIPE_UNAVAILABLE ("retry later") to the client.
    "429": ("status", 429, lambda retries: 1),
    "hang": ("hang", 200, lambda retries: 1 + retries),
    "reset": ("reset", 200, lambda retries: 1 + retries),
}

UNSAFE_DETAIL = re.compile(
    r"https?:|127\.0\.0\.1|localhost|stripe\.com|/v1/|req_|cus_|rate.?limit|emulated|"
    r"Error\b|APIConnection|Timeout|[45]\d\d",
    re.IGNORECASE,
)


@pytest.fixture
async def faulty(stack: Stack) -> AsyncIterator[tuple[Stack, Settings, httpx.AsyncClient]]:
    settings = stack.settings_with(stripe_timeout=TIMEOUT, stripe_max_retries=RETRIES)
    async with app_client(settings) as http:
        try:
            yield stack, settings, http
        finally:
            stack.control.clear_faults()


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("target", list(TARGETS))
async def test_stripe_fault_becomes_stripe_unavailable_within_the_bound(
    faulty: tuple[Stack, Settings, httpx.AsyncClient], target: str, fault: str
) -> None:
    stack, settings, http = faulty
    spec = TARGETS[target]
    mode, status, expected_attempts = FAULTS[fault]
    api = Api(http)
    await spec.prepare(api)
    customer = await customer_id(stack.settings.database_url, api.org)
    before = len(stripe_calls(stack, spec.path))

    stack.control.fail(
        spec.path, status=status, count=20, method="POST", mode=mode, hang_seconds=10
    )
    try:
        result, elapsed = await timed(spec.act(api))
    finally:
        stack.control.clear_faults()

    assert result["__typename"] == "BillingError", result
    assert result["code"] == "STRIPE_UNAVAILABLE"
    assert not UNSAFE_DETAIL.search(result["message"]), result["message"]
    assert elapsed < bound(settings), (elapsed, bound(settings))

    attempts = [r for r in stripe_calls(stack, spec.path)[before:] if spec.mine(r, api, customer)]
    assert 1 <= len(attempts) <= 1 + settings.stripe_max_retries
    assert len(attempts) == expected_attempts(settings.stripe_max_retries), [
        (a["status"], a["idempotency_key"]) for a in attempts
    ]
    keys = {a["idempotency_key"] for a in attempts}
    assert len(keys) == 1 and None not in keys, keys
    assert api.org in next(iter(keys))

    # Once Stripe answers again, the same call goes through.
    recovered = await spec.act(api)
    assert recovered["__typename"] in ("CheckoutSession", "PortalSession"), recovered


async def test_hang_on_reads_is_bounded_too(
    faulty: tuple[Stack, Settings, httpx.AsyncClient],
) -> None:
    """A hang on a read (the subscription lookup of a portal flow) is bounded the same way."""
    stack, settings, http = faulty
    api = Api(http)
    await _with_customer(api)
    stack.control.fail("/v1/subscriptions", count=20, method="GET", mode="hang", hang_seconds=10)
    result, elapsed = await timed(api.open_portal(flow="SUBSCRIPTION_CANCEL"))
    stack.control.clear_faults()
    assert result["code"] == "STRIPE_UNAVAILABLE"
    assert elapsed < bound(settings)
    assert json.dumps(result).count("subscriptions") == 0


async def test_one_deadline_for_all_the_stripe_calls_of_a_mutation(stack: Stack) -> None:
    """Each call slow but inside its own timeout: together they pass the mutation's deadline,
    which answers STRIPE_UNAVAILABLE instead of holding the request for their sum."""
    settings = stack.settings_with(stripe_timeout=1.0, stripe_max_retries=0)
    slow = 0.7  # prices.list, customers.create, checkout.sessions.create: 2.1 s in all
    async with app_client(settings) as http:
        api = Api(http)
        for path in ("/v1/prices", "/v1/customers", "/v1/checkout/sessions"):
            stack.control.fail(path, count=5, mode="delay", hang_seconds=slow)
        try:
            result, elapsed = await timed(api.upgrade("pro"))
        finally:
            stack.control.clear_faults()
    assert result["__typename"] == "BillingError" and result["code"] == "STRIPE_UNAVAILABLE"
    assert 1.0 <= elapsed < 1.0 + SLACK, elapsed
