"""`entitlement` never answers stale or another org's data: each org reads its own state
whatever the document's text, a change of its rows (by a webhook, or written behind the
service's back) shows on the next read (within FRESH_WITHIN on PostgreSQL, where another
writer is heard through LISTEN/NOTIFY), and a token stops working the moment it is no longer
valid, however often it worked before.

Black-box: these hold without any cache and pin down what caches of answers and of verified
tokens on the read path must keep true."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import jwt

from emulator.client import AsyncEmulatorControl
from harness.api import JWT_SECRET, Api, call, new_org, token, token_claims
from harness.db import customer_id, execute
from harness.stack import Stack
from tests.support.freshness import (
    DOCUMENT,
    DOCUMENTS,
    LEEWAY,
    PERIOD_END,
    answered_for,
    change_entitlement,
    concerns,
    put_account,
    put_entitlement,
    read,
    refused,
    shows,
    state,
    warm,
)
from tests.support.journeys import click
from tests.support.private_stack import settled


async def test_each_org_reads_its_own_entitlement(client: httpx.AsyncClient, stack: Stack) -> None:
    plain, paying = Api(client), Api(client)
    url = stack.settings.database_url
    await put_entitlement(url, paying.org, "team", "active", cancel=True, period_end=PERIOD_END)
    await put_account(url, paying.org)
    want = {
        plain.org: state(plain.org),
        paying.org: state(
            paying.org, "team", "ACTIVE", cancel=True, period_end=PERIOD_END, account=True
        ),
    }
    for round_ in range(4):
        orgs = (plain, paying) if round_ % 2 == 0 else (paying, plain)
        for document in DOCUMENTS:
            for api in orgs:
                assert await read(api, document) == want[api.org], (round_, document)

    at_once = [(api, document) for api in (plain, paying) for document in DOCUMENTS] * 8
    answers = await asyncio.gather(*(read(api, document) for api, document in at_once))
    for (api, document), answer in zip(at_once, answers, strict=True):
        assert answer == want[api.org], document


async def test_an_entitlement_row_changed_behind_the_service_shows(api: Api, stack: Stack) -> None:
    url, org = stack.settings.database_url, api.org
    await warm(api, state(org))

    await put_entitlement(url, org, "team", "active")
    await shows(stack, api, state(org, "team", "ACTIVE"), "an inserted entitlement row")
    await warm(api, state(org, "team", "ACTIVE"))

    await change_entitlement(url, org, "pro", "past_due", cancel=True, period_end=PERIOD_END)
    changed = state(org, "pro", "PAST_DUE", cancel=True, period_end=PERIOD_END)
    await shows(stack, api, changed, "an updated entitlement row")
    await warm(api, changed)

    await execute(url, "DELETE FROM entitlements WHERE org_id = :org", org=org)
    await shows(stack, api, state(org), "a deleted entitlement row")


async def test_a_billing_account_changed_behind_the_service_shows(api: Api, stack: Stack) -> None:
    url, org = stack.settings.database_url, api.org
    await warm(api, state(org))

    await put_account(url, org)
    await shows(stack, api, state(org, account=True), "an inserted billing account")
    await warm(api, state(org, account=True))

    soft_delete = "UPDATE billing_accounts SET deleted_at = :at WHERE org_id = :org"
    await execute(url, soft_delete, at=datetime.now(UTC), org=org)
    await shows(stack, api, state(org), "a soft-deleted billing account")
    await warm(api, state(org))

    await execute(url, soft_delete, at=None, org=org)
    await shows(stack, api, state(org, account=True), "a restored billing account")


async def test_a_subscription_shows_on_the_next_read_after_its_webhooks(
    api: Api, stack: Stack
) -> None:
    await warm(api, state(api.org))
    checkout = await api.upgrade("pro")
    assert checkout["__typename"] == "CheckoutSession", checkout
    # upgrade linked a customer in this process: the very next read says so
    assert await read(api) == state(api.org, account=True)
    await warm(api, state(api.org, account=True))

    await click(checkout["url"], "pay")
    customer = await customer_id(stack.settings.database_url, api.org)
    assert customer is not None
    async with AsyncEmulatorControl(stack.emulator.url) as control:
        mine = [e for e in await control.events() if concerns(e, customer)]
        assert {"customer.subscription.created", "checkout.session.completed"} <= {
            e["type"] for e in mine
        }
        for event in mine:  # each answered 2xx by the API: stored, applied in the background
            await control.wait_for_deliveries(event_id=event["id"])
    await settled(stack.settings.database_url, timeout=10, customer=customer)

    entitlement = await read(api)
    assert {k: entitlement[k] for k in ("plan", "status", "hasBillingAccount")} == {
        "plan": "pro",
        "status": "ACTIVE",
        "hasBillingAccount": True,
    }
    assert entitlement["currentPeriodEnd"] is not None


async def test_an_accepted_token_is_refused_once_expired(client: httpx.AsyncClient) -> None:
    org = new_org()
    claims = token_claims(org, ttl=1)
    bearer = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    ends = claims["exp"] + LEEWAY  # accepted while now < ends
    accepted = refusals = 0
    while refusals < 3:
        sent = time.time()
        assert sent < ends + 3, "the token was never refused"
        body = await call(client, "entitlement", bearer)
        if time.time() < ends - 0.25:
            assert answered_for(body, org), body
            accepted += 1
        elif sent > ends + 0.25:
            assert refused(body), body
            refusals += 1
        await asyncio.sleep(0.1)
    assert accepted >= 10


async def test_a_bad_signature_is_refused_right_after_the_good_token(
    client: httpx.AsyncClient,
) -> None:
    org = new_org()
    claims = token_claims(org)
    good = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    forged = jwt.encode(claims, "not-the-api-secret-0123456789abcdef", algorithm="HS256")
    unsigned = jwt.encode(claims, "", algorithm="none")
    stripped = good.rsplit(".", 1)[0] + "."
    other_org = new_org()
    other = token(other_org)
    spliced = f"{other.rsplit('.', 1)[0]}.{good.rsplit('.', 1)[1]}"
    assert forged.rsplit(".", 1)[0] == good.rsplit(".", 1)[0]  # same header and claims
    for _ in range(3):
        for _ in range(3):
            assert answered_for(await call(client, "entitlement", good), org)
        for bad in (forged, unsigned, stripped, spliced):
            assert refused(await call(client, "entitlement", bad)), bad
    assert answered_for(await call(client, "entitlement", other), other_org)


async def test_no_token_is_refused_after_cached_successes(client: httpx.AsyncClient) -> None:
    org = new_org()
    good = token(org)
    without: tuple[dict[str, str], ...] = (
        {},
        {"authorization": "Bearer"},
        {"authorization": f"Basic {good}"},
    )
    for _ in range(3):
        for _ in range(3):
            assert answered_for(await call(client, "entitlement", good), org)
        assert refused(await call(client, "entitlement", None))
        for headers in without:
            response = await client.post("/graphql", json={"query": DOCUMENT}, headers=headers)
            assert refused(response.json()), (headers, response.text)
