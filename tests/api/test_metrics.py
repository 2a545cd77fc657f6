"""`GET /metrics`: what the API did, scraped over HTTP and parsed with prometheus-client's own
parser; who may read it in production. (Several processes: tests/deployment.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from billing.kit.settings import Settings
from harness.api import Api, app_client, new_org
from harness.db import customer_id
from harness.signing import WEBHOOK_PATH, event_body, post_signed, signed_headers
from harness.stack import Stack, suite_settings
from harness.timing import eventually
from tests.support.journeys import click, subscribe
from tests.support.live import subscribed
from tests.support.metrics import Scrape, scrape

OPS = "billing_graphql_operations_total"
OPS_SECONDS = "billing_graphql_operation_duration_seconds_count"
EVENTS = "billing_webhook_events_total"
STRIPE = "billing_stripe_requests_total"


async def until(http: httpx.AsyncClient, check: Callable[[Scrape], bool], what: str) -> Scrape:
    """Scrape until `check(scrape)` holds."""
    return await eventually(lambda: scrape(http), check, timeout=20, interval=0.1, what=what)


async def test_queries_and_mutations_are_counted_by_root_field_and_outcome(
    client: httpx.AsyncClient, api: Api
) -> None:
    before = await scrape(client)
    await api.entitlement()
    await api.entitlement()  # answered from memory: counted all the same
    named = await api.raw("query MadeUpByTheClient123 { entitlement { plan } }")
    assert named.status_code == 200 and "errors" not in named.json()
    refused = await client.post("/graphql", json={"query": "{ entitlement { plan } }"})
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    invalid = await api.raw("{ noSuchField }")
    assert invalid.json()["errors"]
    failed = await api.upgrade("no-such-plan")
    assert failed["code"] == "UNKNOWN_PLAN"
    after = await scrape(client)

    assert after.delta(before, OPS, operation="entitlement", outcome="ok") == 3
    assert after.delta(before, OPS_SECONDS, operation="entitlement") == 4
    assert after.delta(before, OPS, operation="entitlement", outcome="unauthenticated") == 1
    assert after.delta(before, OPS, operation="invalid", outcome="invalid") == 1
    assert after.delta(before, OPS, operation="upgrade", outcome="billing_error") == 1
    assert after.delta(before, "billing_errors_total", code="UNKNOWN_PLAN") == 1
    labels = after.label_values()
    assert "MadeUpByTheClient123" not in labels and "noSuchField" not in labels


async def test_stripe_calls_and_webhook_events_are_counted_without_ids(
    stack: Stack, client: httpx.AsyncClient, api: Api
) -> None:
    before = await scrape(client)
    await subscribe(api)
    after = await until(
        client,
        lambda s: (
            s.delta(before, EVENTS, type="customer.subscription.created", outcome="processed") >= 1
        ),
        "the subscription's event counted as processed",
    )
    for operation in ("customers.create", "checkout.sessions.create", "subscriptions.list"):
        assert after.delta(before, STRIPE, operation=operation, outcome="ok") >= 1, operation
        assert (
            after.delta(
                before, "billing_stripe_request_duration_seconds_count", operation=operation
            )
            >= 1
        )
    assert after.delta(before, EVENTS, type="customer.subscription.created", outcome="stored") >= 1
    lag = after.delta(before, "billing_webhook_apply_lag_seconds_count")
    assert lag >= 1
    assert after.value("billing_webhook_apply_lag_seconds_bucket", le="+Inf") >= lag
    assert after.delta(before, OPS, operation="upgrade", outcome="ok") == 1

    entitlement = await api.entitlement()
    customer = await customer_id(stack.settings.database_url, api.org) or ""
    labels = after.label_values()
    assert api.org not in labels and entitlement["orgId"] not in labels
    assert customer.startswith("cus_") and not any(customer in value for value in labels)


async def test_refused_duplicate_and_ignored_deliveries_are_counted(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    body = event_body("ping.unhandled")
    assert (await post_signed(client, body)).status_code == 200
    assert (await post_signed(client, body)).json()["duplicate"] is True
    forged = await client.post(
        WEBHOOK_PATH, content=body, headers=signed_headers(body, "whsec_not_ours")
    )
    assert forged.status_code == 400
    not_event = json.dumps({"hello": "there"}).encode()
    assert (await post_signed(client, not_event)).status_code == 400
    after = await scrape(client)

    assert after.delta(before, EVENTS, type="ping.unhandled", outcome="ignored") == 1
    assert after.delta(before, EVENTS, type="ping.unhandled", outcome="duplicate") == 1
    assert after.delta(before, "billing_webhook_rejected_total", reason="signature") == 1
    assert after.delta(before, "billing_webhook_rejected_total", reason="not_an_event") == 1


async def test_a_failing_apply_shows_in_the_backlog_until_it_succeeds(
    stack: Stack, client: httpx.AsyncClient, api: Api
) -> None:
    await subscribe(api)
    before = await scrape(client)
    portal = await api.open_portal()
    stack.control.fail("/v1/subscriptions", status=500, count=1000, method="GET")
    try:
        await click(portal["url"], "cancel")  # Stripe sends customer.subscription.updated
        stuck = await until(
            client,
            lambda s: (
                s.value("billing_webhook_events_pending") >= 1
                and s.delta(before, EVENTS, type="customer.subscription.updated", outcome="failed")
                >= 1
            ),
            "the event failing and pending",
        )
        assert stuck.value("billing_webhook_oldest_pending_age_seconds") > 0
        assert stuck.delta(before, STRIPE, operation="subscriptions.list", outcome="unavailable")
    finally:
        stack.control.clear_faults()
    await until(
        client,
        lambda s: (
            s.delta(before, EVENTS, type="customer.subscription.updated", outcome="processed") >= 1
        ),
        "the event applied once Stripe answers",
    )
    await api.wait_for(lambda e: e["cancelAtPeriodEnd"] is True)


async def test_open_subscriptions_are_counted_while_open(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    before = (await scrape(client)).value("billing_graphql_subscriptions_open")
    async with subscribed(stack.api.url, new_org()) as live:
        await live.next()
        during = (await scrape(client)).value("billing_graphql_subscriptions_open")
        assert during == before + 1
    await until(
        client,
        lambda s: s.value("billing_graphql_subscriptions_open") == before,
        "the closed subscription no longer counted",
    )


async def test_stripe_429s_are_counted(stack: Stack, client: httpx.AsyncClient, api: Api) -> None:
    before = await scrape(client)
    stack.control.fail("/v1/customers", status=429, count=1, method="POST")
    await api.upgrade("pro")
    after = await scrape(client)
    assert after.delta(before, "billing_stripe_rate_limited_responses_total") == 1
    assert (
        after.delta(before, STRIPE, operation="customers.create", outcome="ok")
        + after.delta(before, STRIPE, operation="customers.create", outcome="rate_limited")
        == 1
    )


def production(stack: Stack, **overrides: object) -> Settings:
    """The stack's settings in production (the suite's secrets are long enough)."""
    return stack.settings_with(environment="production", **overrides)


TOKEN = "metrics-token-0123456789abcdef"


async def test_production_serves_metrics_only_with_the_token(stack: Stack) -> None:
    async with app_client(production(stack, metrics_token=TOKEN)) as http:
        missing = await http.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in missing.text
        wrong = await http.get("/metrics", headers={"authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        basic = await http.get("/metrics", headers={"authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        scraped = await scrape(http, TOKEN)
        assert ("billing_graphql_subscriptions_open", frozenset()) in scraped.samples
        assert ("billing_webhook_events_pending", frozenset()) in scraped.samples


async def test_production_without_a_token_does_not_serve_metrics(stack: Stack) -> None:
    async with app_client(production(stack)) as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (
            await http.get("/metrics", headers={"authorization": "Bearer x"})
        ).status_code == 404


async def test_development_serves_metrics_unless_a_token_is_set(stack: Stack) -> None:
    async with app_client(stack.settings) as http:
        await scrape(http)
    async with app_client(stack.settings_with(metrics_token="dev")) as http:
        assert (await http.get("/metrics")).status_code == 401
        await scrape(http, "dev")


def test_a_short_production_token_is_refused() -> None:
    with pytest.raises(ValueError, match="METRICS_TOKEN must be at least 16 characters"):
        suite_settings(environment="production", metrics_token="short")
