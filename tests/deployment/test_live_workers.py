"""`entitlementChanged` across processes on one PostgreSQL: a change written by any process
(another API worker's applier, a hand-made fix, `resync` from the command line) is pushed to
subscribers on every process through LISTEN/NOTIFY, within PUSHED_WITHIN. SQLite runs one
process (tests/api/test_live.py covers it)."""

from __future__ import annotations

import json
import time

import httpx

from harness.api import Api, new_org
from harness.cli import run_cli
from harness.db import execute
from harness.servers import ApiProcess
from harness.signing import post_signed
from tests.support.freshness import put_entitlement
from tests.support.journeys import click
from tests.support.live import LiveClient, subscribed
from tests.support.private_stack import PrivateStack, all_events

PUSHED_WITHIN = 1.0
"""Seconds from a commit in one process to the message on another."""


async def pushed(live: LiveClient, plan: str, since: float, what: str) -> dict[str, object]:
    """Messages until the plan is `plan`; print and check the delay since `since`."""
    while True:
        got = await live.next(timeout=10)
        if got["plan"] == plan:
            break
    delay = time.monotonic() - since
    print(f"{what}: pushed after {delay * 1000:.0f} ms")
    assert delay <= PUSHED_WITHIN, f"{what} took {delay * 1000:.0f} ms"
    return got


async def test_a_webhook_applied_by_one_process_is_pushed_by_the_other(
    private: PrivateStack, second: ApiProcess
) -> None:
    org = new_org()
    async with (
        httpx.AsyncClient(base_url=private.api.url, timeout=30) as on_a,
        subscribed(private.api.url, org) as live_a,
        subscribed(second.url, org) as live_b,
    ):
        assert (await live_a.next())["plan"] == "free"
        assert (await live_b.next())["plan"] == "free"
        checkout = await Api(on_a, org).upgrade("pro")
        await click(checkout["url"], "pay")

        events = await all_events(private)
        [created] = [e for e in events if e["type"] == "customer.subscription.created"]
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as hook:
            response = await post_signed(hook, json.dumps(created).encode())
        answered = time.monotonic()
        assert response.status_code == 200, response.text

        on_a_got = await pushed(live_a, "pro", answered, "process A, a webhook B applied")
        on_b_got = await pushed(live_b, "pro", answered, "process B, a webhook it applied")
    assert on_a_got == on_b_got
    assert on_a_got["status"] == "ACTIVE" and on_a_got["orgId"] == org


async def test_writes_from_outside_the_api_are_pushed_by_every_process(
    private: PrivateStack, second: ApiProcess
) -> None:
    """A hand-made fix, then `resync` from the command line, reach both processes."""
    url, org = private.settings.database_url, new_org()
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as on_a:
        checkout = await Api(on_a, org).upgrade("pro")
        await click(checkout["url"], "pay")
    async with subscribed(private.api.url, org) as live_a, subscribed(second.url, org) as live_b:
        for live in (live_a, live_b):
            assert (await live.next())["plan"] == "free"  # no webhook delivered yet

        await put_entitlement(url, org, "team", "active")
        since = time.monotonic()
        for name, live in (("A", live_a), ("B", live_b)):
            await pushed(live, "team", since, f"process {name}, a row written by hand")

        await execute(url, "UPDATE entitlements SET plan = 'free' WHERE org_id = :org", org=org)
        since = time.monotonic()
        for name, live in (("A", live_a), ("B", live_b)):
            await pushed(live, "free", since, f"process {name}, a row updated by hand")

        resync = run_cli("resync", "--org", org, env=private.env)
        assert resync.returncode == 0, resync.stderr
        since = time.monotonic()
        for live in (live_a, live_b):
            got = await pushed(live, "pro", since, "resync from the command line")
            assert got["status"] == "ACTIVE" and got["hasBillingAccount"] is True
