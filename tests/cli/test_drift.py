"""`python main.py drift`: entitlements compared with Stripe's state, run as a user would,
against the real emulator and database. A PrivateStack (its emulator delivers no webhook on its
own) holds only this test's orgs, so "exactly that org" is asserted over the whole database."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from typing import Any

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.cli import invoke_cli
from harness.db import customer_id, execute
from harness.servers import settings_env
from harness.stack import Stack
from harness.stripe_side import new_feature
from tests.support.freshness import PERIOD_END
from tests.support.journeys import click, subscribe
from tests.support.private_stack import PrivateStack

FIX_HINT = "`python main.py drift --fix` re-syncs them"


async def drift(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python main.py drift ARGS` with these settings."""
    return await asyncio.to_thread(invoke_cli, "drift", *args, env=env)


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object `--json` prints (nothing else on stdout)."""
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def table(stdout: str) -> list[list[str]]:
    """The body rows of the drift table: org, column, stored, stripe."""
    cells = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]
    return [row for row in cells if row[0] != "org"]


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The line a run ends with."""
    return result.stdout.strip().splitlines()[-1]


async def paid_without_webhook(http: httpx.AsyncClient) -> Api:
    """A fresh org that paid a pro Checkout; no webhook reached the API, so no entitlement row."""
    api = Api(http)
    await click((await api.upgrade("pro"))["url"], "pay")
    return api


async def resync(private: PrivateStack, *orgs: str) -> None:
    """Project these orgs from Stripe now: `python main.py resync --org ORG` for each."""
    for org in orgs:
        done = await asyncio.to_thread(private.cli, "resync", "--org", org)
        assert done.returncode == 0, done.stderr


def period_end(private: PrivateStack, customer: str) -> str:
    """The current period end of the customer's subscription, as Stripe has it (ISO 8601)."""
    [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
    return datetime.fromtimestamp(sub["items"].data[0].current_period_end, UTC).isoformat()


def subscription_of(private: PrivateStack, customer: str) -> str:
    """The id of the customer's one subscription."""
    [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
    return str(sub.id)


async def test_no_drift_after_subscribing(stack: Stack, client: httpx.AsyncClient) -> None:
    api = Api(client)
    await subscribe(api)  # the webhook made the plan apply
    env = settings_env(stack.settings)

    text = await drift(env, "--org", api.org)
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == "no drift in 1 org(s)"

    machine = await drift(env, "--org", api.org, "--json")
    assert machine.returncode == 0, machine.stderr
    assert as_json(machine) == {"checked": 1, "drifted": [], "fixed": None, "errors": []}


async def test_drift_is_found_shown_and_fixed(private: PrivateStack) -> None:
    url, env = private.settings.database_url, private.env
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        altered, other = await paid_without_webhook(http), await paid_without_webhook(http)

    # Missing rows where Stripe has a subscription (webhooks never delivered) are drift; the
    # stored side is what the API serves without a row.
    missing = await drift(env, "--json")
    assert missing.returncode == 1, missing.stderr
    found = as_json(missing)
    assert found["checked"] == 2 and found["fixed"] is None and found["errors"] == []
    assert sorted(d["org_id"] for d in found["drifted"]) == sorted([altered.org, other.org])
    for org in found["drifted"]:
        assert {"column": "plan", "stored": "free", "stripe": "pro"} in org["differences"]
        assert {"column": "status", "stored": "none", "stripe": "active"} in org["differences"]

    fixed = await drift(env, "--fix")
    assert fixed.returncode == 0, fixed.stderr
    assert last_line(fixed) == "fixed 2 org(s)"

    # One org's row changed behind the service's back.
    await execute(
        url,
        "UPDATE entitlements SET plan = 'team', status = 'past_due',"
        " cancel_at_period_end = :cancel, current_period_end = :end WHERE org_id = :org",
        cancel=True,
        end=PERIOD_END,
        org=altered.org,
    )
    customer = await customer_id(url, altered.org)
    assert customer is not None
    stripe_end = period_end(private, customer)
    stored_end = PERIOD_END.isoformat()

    shown = await drift(env)
    assert shown.returncode == 1, shown.stderr
    assert table(shown.stdout) == [
        [altered.org, "plan", "team", "pro"],
        [altered.org, "status", "past_due", "active"],
        [altered.org, "cancel_at_period_end", "true", "false"],
        [altered.org, "current_period_end", stored_end, stripe_end],
    ]
    assert last_line(shown) == f"1 of 2 org(s) differ from Stripe; {FIX_HINT}"

    machine = await drift(env, "--json")
    assert machine.returncode == 1
    assert as_json(machine) == {
        "checked": 2,
        "drifted": [
            {
                "org_id": altered.org,
                "customer_id": customer,
                "differences": [
                    {"column": "plan", "stored": "team", "stripe": "pro"},
                    {"column": "status", "stored": "past_due", "stripe": "active"},
                    {"column": "cancel_at_period_end", "stored": True, "stripe": False},
                    {"column": "current_period_end", "stored": stored_end, "stripe": stripe_end},
                ],
            }
        ],
        "fixed": None,
        "errors": [],
    }

    # One org at a time; an unknown org is one line and exit 1, as `resync` does.
    one = await drift(env, "--org", other.org)
    assert (one.returncode, one.stdout.strip()) == (0, "no drift in 1 org(s)")
    unknown = await drift(env, "--org", "org_nobody")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == ["error: org org_nobody has no billing account"]

    repaired = await drift(env, "--fix", "--json")
    assert repaired.returncode == 0, repaired.stderr
    report = as_json(repaired)
    assert [d["org_id"] for d in report["drifted"]] == [altered.org]
    assert report["fixed"] == [altered.org] and report["errors"] == []
    after = await drift(env)
    assert (after.returncode, after.stdout.strip()) == (0, "no drift in 2 org(s)")


async def test_changes_in_stripe_without_their_webhook_are_drift(private: PrivateStack) -> None:
    url, env = private.settings.database_url, private.env
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        changed, other = await paid_without_webhook(http), await paid_without_webhook(http)
    await resync(private, changed.org, other.org)
    customer = await customer_id(url, changed.org)
    assert customer is not None

    # Canceled at period end in Stripe (the Portal, the Dashboard); the webhook never came.
    subscription = subscription_of(private, customer)
    canceling = private.sdk.v1.subscriptions.update(
        subscription, params={"cancel_at_period_end": True}
    )
    found = await drift(env, "--json")
    assert found.returncode == 1
    ending = {"plan": "free", "interval": None, "seats": None, "effective_at": canceling.cancel_at}
    assert as_json(found)["drifted"] == [
        {
            "org_id": changed.org,
            "customer_id": customer,
            "differences": [
                {"column": "cancel_at_period_end", "stored": False, "stripe": True},
                {"column": "pending_change", "stored": None, "stripe": ending},
            ],
        }
    ]

    # The quantity changed in Stripe (seats bought in the Dashboard); no webhook either.
    fix_cancel = await drift(env, "--fix", "--org", changed.org)
    assert fix_cancel.returncode == 0, fix_cancel.stderr
    [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
    item = sub["items"].data[0].id
    private.sdk.v1.subscriptions.update(
        subscription, params={"items": [{"id": item, "quantity": 3}]}
    )
    more = await drift(env, "--json")
    assert [d["differences"] for d in as_json(more)["drifted"]] == [
        [{"column": "quantity", "stored": 1, "stripe": 3}]
    ]

    # A feature attached to the pro product in the Dashboard: both orgs are entitled to it in
    # Stripe; no webhook either.
    assert (await drift(env, "--fix", "--org", changed.org)).returncode == 0
    new_feature(private.sdk, "beta", str(sub["items"].data[0].price.product))
    granted = await drift(env, "--json")
    assert {d["org_id"] for d in as_json(granted)["drifted"]} == {changed.org, other.org}
    assert {json.dumps(d["differences"]) for d in as_json(granted)["drifted"]} == {
        json.dumps(
            [
                {
                    "column": "stripe_features",
                    "stored": ["exports", "priority_support"],
                    "stripe": ["beta", "exports", "priority_support"],
                }
            ]
        )
    }
    assert (await drift(env, "--fix")).returncode == 0

    # The customer deleted in Stripe: the account's deletion and the entitlement both differ.
    private.sdk.v1.customers.delete(customer)
    gone = await drift(env, "--json")
    assert gone.returncode == 1
    [drifted] = as_json(gone)["drifted"]
    differences = {d["column"]: (d["stored"], d["stripe"]) for d in drifted["differences"]}
    assert drifted["org_id"] == changed.org
    assert differences["deleted"] == (False, True)
    assert differences["plan"] == ("pro", "free")
    assert differences["status"] == ("active", "canceled")
    assert differences["subscription_id"] == (subscription, None)

    fixed = await drift(env, "--fix")
    assert fixed.returncode == 0, fixed.stderr
    assert [row[0] for row in table(fixed.stdout)] == [changed.org] * len(differences)
    assert last_line(fixed) == "fixed 1 org(s)"
    # Deleted accounts are still checked, and agree with Stripe once re-synced.
    after = await drift(env)
    assert (after.returncode, after.stdout.strip()) == (0, "no drift in 2 org(s)"), after.stdout
    assert other.org != changed.org


async def test_a_failing_org_is_an_error_and_429s_are_waited_out(private: PrivateStack) -> None:
    url, env = private.settings.database_url, private.env
    control = EmulatorControl(private.emulator.url)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        paid = await paid_without_webhook(http)
        # Checkout opened, never paid: a customer, no subscription and no entitlement row, which
        # is no drift. Its state needs GET /v1/customers/cus_...
        unpaid = Api(http)
        assert (await unpaid.upgrade("pro"))["__typename"] == "CheckoutSession"
    await resync(private, paid.org)
    customer = await customer_id(url, unpaid.org)

    control.fail(f"/v1/customers/{customer}", status=503, count=1000, method="GET")
    try:
        failing = await drift(env, "--json")
        text = await drift(env)
    finally:
        control.clear_faults()
    assert failing.returncode == 1
    report = as_json(failing)
    assert (report["checked"], report["drifted"]) == (2, [])
    [error] = report["errors"]
    assert (error["org_id"], error["customer_id"], error["during"]) == (
        unpaid.org,
        customer,
        "check",
    )
    assert error["error"].startswith("StripeUnavailable: customers.retrieve"), error
    assert text.returncode == 1
    assert text.stdout.strip().splitlines()[-2:] == [
        "no drift in 1 org(s)",
        "1 of 2 org(s) could not be checked",
    ]

    # Stripe's 429s slow the orgs down (each waits out the throttle's pause); none fails.
    control.clear_requests()
    control.fail("/v1/subscriptions", status=429, count=2, method="GET")
    limited = await drift(env)
    assert (limited.returncode, limited.stdout.strip()) == (0, "no drift in 2 org(s)"), limited
    statuses = [r["status"] for r in control.requests(path="/v1/subscriptions", method="GET")]
    assert sorted(statuses) == [200, 200, 429, 429], statuses
