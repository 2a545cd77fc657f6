"""Several server processes on one PostgreSQL database, as production runs them: `serve
--workers 2` (A, two processes sharing a port) beside a plain `serve` (B).

They share the per-org rate limit; a burst of webhooks delivered to both converges, each event
applied once and no customer by two processes at once; a subscriber on either hears what the
other applied; `/metrics` on A adds up both of its workers; `drift` finds nothing on the
result, then exactly the org whose row was changed behind the service's back, and `--fix`
repairs it. Every line any of them logs is JSON (LOG_FORMAT=json). A worker killed with
SIGKILL is replaced, and its open subscriptions stop counting."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import time
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from emulator.client import EmulatorControl
from harness.api import Api, new_org
from harness.cli import run_cli
from harness.db import execute
from harness.servers import logged_applies
from harness.timing import eventually
from tests.deployment.conftest import RATE_LIMIT, DeploymentStack
from tests.support.deployment import Server, worker_pids
from tests.support.lifecycles import bodies_of, customers_by_org, live_orgs, target_customer
from tests.support.live import LiveClient, subscribed
from tests.support.metrics import Scrape, scrape
from tests.support.private_stack import (
    all_events,
    burst_to_both,
    closest_rereads,
    with_duplicates,
)

pytestmark = pytest.mark.xdist_group("deployment")  # one deployment (module fixture) per run

ORGS = 12
DUPLICATES = 0.3
STRIPE_DELAY = 0.05
"""Seconds Stripe takes to answer each re-read: two overlapping reads of one customer would
arrive closer together than this."""
EVENTS = "billing_webhook_events_total"


async def scrapes(d: DeploymentStack) -> tuple[Scrape, Scrape]:
    """A's and B's metrics."""
    async with (
        httpx.AsyncClient(base_url=d.a.url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=d.b.url, timeout=30) as on_b,
    ):
        return await scrape(on_a), await scrape(on_b)


async def both(
    d: DeploymentStack, name: str, before: tuple[Scrape, Scrape], **labels: str
) -> float:
    """How much a counter grew on A and B together (summed over other labels)."""
    now = await scrapes(d)
    return sum(
        n.total(name, **labels) - b.total(name, **labels) for n, b in zip(now, before, strict=True)
    )


async def upgrade_once(url: str, org: str) -> str:
    """One `upgrade` on a new connection (on A, the kernel picks the worker); its result type
    or error code."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        result = await Api(client, org).upgrade("pro")
    return str(result.get("code") or result["__typename"])


async def test_the_per_org_rate_limit_is_shared_by_every_process(
    deployment: DeploymentStack,
) -> None:
    if time.time() % 60 > 55:  # the limit counts per minute: stay inside one
        await asyncio.sleep(61 - time.time() % 60)
    before = await scrapes(deployment)
    org = new_org()
    calls = [deployment.a.url, deployment.b.url] * 6
    results = await asyncio.gather(*(upgrade_once(url, org) for url in calls))
    assert Counter(results) == {"CheckoutSession": RATE_LIMIT, "RATE_LIMITED": 12 - RATE_LIMIT}
    limited = await both(deployment, "billing_errors_total", before, code="RATE_LIMITED")
    assert limited == 12 - RATE_LIMIT


async def test_a_burst_to_both_converges_and_drift_finds_only_what_was_changed_behind_its_back(
    deployment: DeploymentStack,
) -> None:
    private, a, b = deployment.private, deployment.a, deployment.b
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as client:
        orgs = [api.org for api in await live_orgs(private, client, ORGS)]
    control = EmulatorControl(private.emulator.url)
    control.advance(35 * 86_400)  # renewals, trial ends, cancellations
    events = await all_events(private)
    bodies = with_duplicates(bodies_of(events), DUPLICATES, seed=1313)
    pending = {e["id"] for e in events if target_customer(e)}

    async with AsyncExitStack() as stack:
        listeners = {
            (side, org): await stack.enter_async_context(subscribed(server.url, org))
            for org in orgs
            for side, server in (("a", a), ("b", b))
        }
        for live in listeners.values():
            await live.next()
        before = await scrapes(deployment)
        assert before[0].value("billing_graphql_subscriptions_open") == ORGS  # both workers

        reads = await burst_to_both(private, (a.url, b.url), bodies, STRIPE_DELAY, timeout=90)

        # Every event applied exactly once, by one process; a customer's Stripe re-reads never
        # overlapped (each came after the one before had been answered).
        on_a, on_b = await logged_applies(a.applies, b.applies, events=len(pending))
        applied = {"a": on_a, "b": on_b}
        assert applied["a"] and applied["b"], "both deployments applied events"
        where: dict[str, list[str]] = defaultdict(list)
        sides: dict[str, set[str]] = defaultdict(set)
        for side, done in applied.items():
            for customer, ids in done:
                sides[customer].add(side)
                for event_id in ids:
                    where[event_id].append(side)
        assert set(where) == pending
        assert {i: w for i, w in where.items() if len(w) != 1} == {}
        closest = closest_rereads(reads, default=STRIPE_DELAY)
        assert closest >= STRIPE_DELAY * 0.9, closest

        # The metrics of A add up both of its workers: with B's, every delivery is counted
        # once, as stored or as a duplicate, and every stored event as applied once.
        stored = await both(deployment, EVENTS, before, outcome="stored")
        duplicates = await both(deployment, EVENTS, before, outcome="duplicate")
        processed = await both(deployment, EVENTS, before, outcome="processed")
        ignored_early = len({e["id"] for e in events} - pending)
        assert stored == len(pending)
        assert duplicates == len(bodies) - len(events)
        assert (
            processed + await both(deployment, EVENTS, before, outcome="ignored")
            == len(pending) + ignored_early
        )

        # Subscribers on both sides end on what the API reads, whichever side applied it.
        customers = await customers_by_org(private)
        heard_from_other = Counter[str]()
        async with httpx.AsyncClient(base_url=b.url, timeout=30) as client:
            for (side, org), live in listeners.items():
                want = await Api(client, org).entitlement()
                await latest_is(live, want)
                if sides[customers[org]] - {side}:
                    heard_from_other[side] += 1
        assert heard_from_other["a"] and heard_from_other["b"], heard_from_other

        # drift: nothing on the result.
        clean = await drift(deployment, "--json")
        assert clean["code"] == 0, clean
        assert clean["report"]["drifted"] == [] and clean["report"]["errors"] == []
        assert clean["report"]["checked"] == len(customers)

        # A row changed behind the service's back: exactly that org, and --fix repairs it.
        plans = {org: (await entitlement_of(b, org))["plan"] for org in orgs}
        target = next(org for org, plan in plans.items() if plan == "pro")
        url = private.settings.database_url
        await execute(url, "UPDATE entitlements SET plan = 'team' WHERE org_id = :o", o=target)
        found = await drift(deployment, "--json")
        assert found["code"] == 1
        [drifted] = found["report"]["drifted"]
        assert drifted["org_id"] == target
        assert drifted["differences"] == [{"column": "plan", "stored": "team", "stripe": "pro"}]
        table = await asyncio.to_thread(run_cli, "drift", env=deployment.env)
        assert table.returncode == 1 and target in table.stdout
        assert [o for o in orgs if o in table.stdout] == [target]
        fixed = await drift(deployment, "--fix", "--json")
        assert fixed["code"] == 0 and fixed["report"]["fixed"] == [target], fixed
        await latest_is(listeners[("a", target)], await entitlement_of(b, target))
        assert (await drift(deployment, "--json"))["code"] == 0
        assert (await entitlement_of(a, target))["plan"] == "pro"
    control.close()

    # Every line every process logged is one JSON object (records() parses each).
    for server in (a, b):
        records = server.records()
        assert {"time", "level", "message"} <= set(records[0])
        assert any(r.get("event_id") for r in records)


def replaced(victim: int, pids: list[int]) -> bool:
    """Two workers again, the killed one not among them."""
    return len(pids) == 2 and victim not in pids


async def entitlement_of(server: Server, org: str) -> dict[str, Any]:
    """The org's entitlement, read through one of the servers."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await Api(client, org).entitlement()


async def latest_is(live: LiveClient, want: dict[str, Any], timeout: float = 20) -> None:
    """Messages until one equals `want` (the subscription ends where the API is)."""
    deadline = time.monotonic() + timeout
    seen = None
    while seen != want:
        seen = await live.next(timeout=max(0.1, deadline - time.monotonic()))


async def drift(d: DeploymentStack, *args: str) -> dict[str, Any]:
    """`python main.py drift ARGS` against the deployment's database and emulator."""
    done = await asyncio.to_thread(run_cli, "drift", *args, env=d.env)
    report = json.loads(done.stdout) if "--json" in args and done.stdout.strip() else None
    return {"code": done.returncode, "report": report, "stderr": done.stderr}


async def test_a_killed_worker_is_replaced_and_its_subscriptions_stop_counting(
    deployment: DeploymentStack,
) -> None:
    a = deployment.a
    async with AsyncExitStack() as stack:
        listeners = [
            await stack.enter_async_context(subscribed(a.url, new_org())) for _ in range(6)
        ]
        for live in listeners:
            await live.next()
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            assert (await scrape(http)).value("billing_graphql_subscriptions_open") == 6
            # SIGKILL each worker in turn: no clean exit, so nothing of its own says it is gone;
            # the supervisor starts a new one, which forgets the dead one's open subscriptions.
            for victim in worker_pids(a.process.pid):
                os.kill(victim, signal.SIGKILL)
                await eventually(
                    functools.partial(asyncio.to_thread, worker_pids, a.process.pid),
                    functools.partial(replaced, victim),
                    timeout=60,
                    what="a new worker in place of the killed one",
                )
            for live in listeners:
                await live.closed(timeout=10)  # every subscriber was on one of them
            await eventually(
                lambda: scrape(http),
                lambda s: s.value("billing_graphql_subscriptions_open") == 0,
                timeout=60,
                what="the killed workers' subscriptions no longer counted",
            )
        async with subscribed(a.url, new_org()) as again:
            assert (await again.next())["plan"] == "free"
