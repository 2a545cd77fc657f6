"""The background applier against Stripe's limits: 429s only slow it down, its own throttle keeps
it under STRIPE_RATE_LIMIT, a customer's events coalesce into few re-reads, and `events status`
/ `events replay` show and recover what it could not apply."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import random
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.db import rows
from harness.servers import LoggedApi
from harness.signing import post_signed
from harness.timing import eventually
from tests.support.journeys import click
from tests.support.lifecycles import (
    EVENTS_SQL,
    all_on_pro,
    bodies_of,
    customers_by_org,
    subscribe_orgs,
    subscription_reads,
    target_customer,
)
from tests.support.private_stack import (
    PENDING_SQL,
    PrivateStack,
    all_events,
    deliver,
    settled,
)

# helpers ----------------------------------------------------------------------------------


def stripe_api_requests(control: EmulatorControl) -> list[dict[str, Any]]:
    """The /v1 requests the emulator received since its log was last cleared."""
    return [r for r in control.requests() if r["path"].startswith("/v1/")]


def densest(times: list[float], seconds: float = 1.0) -> tuple[int, list[float]]:
    """The most requests that arrived within `seconds` (a sliding window), and the gaps
    between those requests."""
    ordered = sorted(times)
    count, start = max(
        ((bisect.bisect_left(ordered, t + seconds) - i, i) for i, t in enumerate(ordered)),
        default=(0, 0),
    )
    window = ordered[start : start + count]
    return count, [round(b - a, 3) for a, b in itertools.pairwise(window)]


async def settle_watching(url: str, timeout: float = 90.0, interval: float = 0.2) -> Counter[str]:
    """Wait until nothing is pending; every status seen on the way, polled as it goes."""
    seen: Counter[str] = Counter()

    async def pending() -> int:
        for row in await rows(url, "SELECT status FROM webhook_events"):
            seen[row["status"]] += 1
        return int((await rows(url, PENDING_SQL))[0]["n"])

    await eventually(
        pending, lambda n: n == 0, timeout=timeout, interval=interval, what="no pending event"
    )
    return seen


def stripe_outcomes(server: LoggedApi) -> Counter[str]:
    """The Stripe call outcomes the server logged (its gateway's warnings), by message."""
    return Counter(
        re.sub(r" request=\S+", "", line.split("] ", 1)[-1])
        for line in server.lines()
        if "WARNING billing.gateway.client" in line
    )


def when(value: Any) -> datetime:
    """A timestamp read from either backend, as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# 1. 429s ----------------------------------------------------------------------------------


async def test_stripe_429s_slow_the_applier_down_and_never_fail_it(
    private: PrivateStack, tmp_path: Path
) -> None:
    orgs = await subscribe_orgs(private, 16)  # 32 reads: subscriptions and entitlements
    events = await all_events(private)  # before the limit: these reads are not the applier's
    control = EmulatorControl(private.emulator.url)
    server = private.restart_logged_api(tmp_path / "api.log", STRIPE_RATE_LIMIT="50")
    url = private.settings.database_url
    try:
        control.clear_requests()
        control.rate_limit(8)  # Stripe allows far less than this process would send (50/s)
        assert await deliver(private.api.url, bodies_of(events)) == []
        seen = await settle_watching(url, timeout=120)
        log = stripe_api_requests(control)
    finally:
        control.rate_limit(0)
    statuses = Counter(r["status"] for r in log)
    assert statuses[429] > 0, statuses  # Stripe did refuse some re-reads
    assert set(statuses) <= {200, 429}, statuses
    failures = [
        line for line in server.lines() if re.search(r"applying \d+ event\(s\) failed", line)
    ]
    assert seen["failed"] == 0 and not failures, (  # ... which never failed an event
        f"{len(failures)} applies failed; Stripe call outcomes logged: {stripe_outcomes(server)}"
    )

    stored = await rows(url, EVENTS_SQL)
    assert len(stored) == len(events)
    assert {r["status"] for r in stored} <= {"processed", "ignored"}
    assert {r["attempts"] for r in stored} == {1}, Counter(r["attempts"] for r in stored)
    assert all(r["last_error"] is None and r["next_attempt_at"] is None for r in stored)

    await all_on_pro(private, orgs)
    control.close()


REFUSALS = 4
"""429s in a row: the pause after the last (0.5, 1, 2, then 4 s) outlasts a call's deadline with
CALL_TIMEOUT (STRIPE_TIMEOUT=1, STRIPE_MAX_RETRIES=1: 2.5 s)."""
CALL_TIMEOUT = "1.0"


async def test_a_long_run_of_429s_still_fails_no_event(
    private: PrivateStack, tmp_path: Path
) -> None:
    """Stripe refuses every re-read for a while (its limit is shared with other clients): the
    throttle's pause doubles each time (0.5, 1, 2, 4 s), longer than one call may take."""
    [api] = await subscribe_orgs(private, 1)
    customer = (await customers_by_org(private))[api.org]
    events = [e for e in await all_events(private) if target_customer(e) == customer]
    control = EmulatorControl(private.emulator.url)
    server = private.restart_logged_api(tmp_path / "api.log", STRIPE_TIMEOUT=CALL_TIMEOUT)
    url = private.settings.database_url
    control.clear_requests()
    control.fail("/v1/subscriptions", method="GET", status=429, count=REFUSALS)
    try:
        assert await deliver(private.api.url, bodies_of(events)) == []
        seen = await settle_watching(url, timeout=60)
    finally:
        control.clear_faults()
    reads = [r["status"] for r in subscription_reads(control, customer)]
    assert reads == [429] * REFUSALS + [200], reads
    stored = await rows(url, EVENTS_SQL + " WHERE customer_id = :c", c=customer)
    assert seen["failed"] == 0, (
        f"events failed on the way; Stripe call outcomes: {stripe_outcomes(server)}"
    )
    assert {(r["status"], r["attempts"]) for r in stored} == {("processed", 1)}, stored
    control.close()


# 2. the throttle --------------------------------------------------------------------------


async def test_the_throttle_keeps_the_process_under_its_stripe_rate_limit(
    private: PrivateStack, tmp_path: Path
) -> None:
    orgs = await subscribe_orgs(private, 20)
    events = await all_events(private)
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if (customer := target_customer(event)) is not None:
            by_customer.setdefault(customer, []).append(event)
    assert len(by_customer) == len(orgs)
    customers = sorted(by_customer)
    control = EmulatorControl(private.emulator.url)
    private.restart_logged_api(tmp_path / "api.log", STRIPE_RATE_LIMIT="10")
    url = private.settings.database_url

    async def burst(group: list[str]) -> list[dict[str, Any]]:
        """Deliver every event of these customers; the Stripe requests their applies made."""
        control.clear_requests()
        mine = [e for c in group for e in by_customer[c]]
        random.Random(len(group)).shuffle(mine)
        assert await deliver(private.api.url, bodies_of(mine)) == []
        # Polled gently: the emulator shares this process, and its request times are the
        # measure.
        seen = await settle_watching(url, timeout=60, interval=0.5)
        assert seen["failed"] == 0, seen
        return stripe_api_requests(control)

    try:
        # Stripe sets no limit: the pace is the process's own.
        free = await burst(customers[:10])
        # Stripe's limit (15/s) is above the process's (10/s): it never meets a 429.
        control.rate_limit(15)
        limited_run = await burst(customers[10:])
    finally:
        control.rate_limit(0)

    for log in (free, limited_run):
        # Two reads per customer (subscriptions, entitlements): twice 10/s, unless spaced out.
        assert len(log) >= 20
        times = [r["time"] for r in log]
        # Counted where Stripe counts, at the receiving end (billing.gateway.throttle.SPACING_MARGIN).
        # One second may hold two more when requests were held up on their way: the emulator
        # records them on a thread of a test worker that shares two cores with three others
        # (three arrived within 30 ms once, after 100 ms gaps). Unthrottled, all 20 would land
        # within one second. Three seconds hold no more than three times the rate unless a
        # request is held up three times as long.
        most, gaps = densest(times)
        assert most <= 10 + 2, f"{most} requests within one second, {gaps} s apart"
        most, gaps = densest(times, 3.0)
        assert most <= 30, f"{most} requests within three seconds, {gaps} s apart"
        # ... and not by sending in bursts with pauses: starts are spread out evenly.
        assert max(times) - min(times) >= (len(times) - 1) / 10 - 0.5
        assert {r["status"] for r in log} == {200}, Counter(r["status"] for r in log)

    stored = await rows(url, EVENTS_SQL)
    assert {r["status"] for r in stored} <= {"processed", "ignored"}
    assert {r["attempts"] for r in stored} == {1}
    control.close()


# 3. coalescing ----------------------------------------------------------------------------


async def test_a_customers_events_coalesce_into_few_stripe_reads(private: PrivateStack) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client)
        await click((await api.upgrade("pro"))["url"], "pay")
        switch = await api.upgrade("pro", "YEAR")
        await click(switch["url"], "confirm")
    customer = (await customers_by_org(private))[api.org]
    events = [e for e in await all_events(private) if target_customer(e) == customer]
    assert len(events) >= 4, [e["type"] for e in events]
    first, rest = events[0], events[1:]
    bodies = bodies_of(events) * 6  # every event and five duplicates of each
    random.Random(7).shuffle(bodies)
    assert len(bodies) >= 8
    control = EmulatorControl(private.emulator.url)
    control.clear_requests()
    url = private.settings.database_url

    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        # The first event's apply re-reads the customer; Stripe answers it late, so everything
        # delivered meanwhile waits for the next apply of that customer.
        control.fail("/v1/subscriptions", method="GET", mode="delay", hang_seconds=1.5)
        try:
            answer = await post_signed(http, bodies_of([first])[0])
            assert answer.status_code == 200
            assert answer.json() == {"received": True, "duplicate": False}
            await eventually(
                lambda: asyncio.to_thread(subscription_reads, control, customer),
                what="the first apply's re-read in flight",
            )
            answers = await asyncio.gather(*(post_signed(http, body) for body in bodies))
            # Every delivery was stored before the first re-read was even answered.
            assert len(subscription_reads(control, customer)) == 1
        finally:
            control.clear_faults()
    assert [a.status_code for a in answers] == [200] * len(bodies)
    fresh = Counter(not a.json()["duplicate"] for a in answers)
    assert fresh[True] == len(rest), fresh  # each new id stored once; the rest are duplicates
    assert {a.json()["received"] for a in answers} == {True}

    await settled(url, timeout=30)
    reads = subscription_reads(control, customer)
    # One re-read for the first event, one for everything delivered while it was answered.
    assert len(reads) == 2, f"{len(reads)} re-reads for {len(bodies) + 1} deliveries"
    stored = await rows(url, EVENTS_SQL + " WHERE customer_id = :c", c=customer)
    assert sorted(r["id"] for r in stored) == sorted(e["id"] for e in events)
    assert {(r["status"], r["attempts"]) for r in stored} == {("processed", 1)}
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        got = await Api(client, api.org).entitlement()
    assert (got["plan"], got["status"]) == ("pro", "ACTIVE"), got
    control.close()


# 4. events status / replay ----------------------------------------------------------------


async def test_events_status_shows_failures_and_lag_and_replay_applies_them(
    private: PrivateStack,
) -> None:
    url = private.settings.database_url
    control = EmulatorControl(private.emulator.url)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        applied, stuck = Api(client), Api(client)
        await click((await applied.upgrade("pro"))["url"], "pay")
        assert await deliver(private.api.url, bodies_of(await all_events(private))) == []
        await settled(url)
        await click((await stuck.upgrade("pro"))["url"], "pay")
    stuck_customer = (await customers_by_org(private))[stuck.org]
    [event] = [
        e
        for e in await all_events(private)
        if e["type"] == "checkout.session.completed" and target_customer(e) == stuck_customer
    ]

    control.fail("/v1/subscriptions", status=503, count=1000, method="GET")
    try:
        assert await deliver(private.api.url, bodies_of([event])) == []

        async def row() -> dict[str, Any]:
            [found] = await rows(url, EVENTS_SQL + " WHERE id = :id", id=event["id"])
            return found

        # Retried after 2 s, then 4 s: after the third failure the next try is 8 s away.
        await eventually(
            row, lambda r: r["attempts"] >= 3, timeout=20, interval=0.1, what="three failures"
        )
        private.api.stop()  # nobody retries it while we look
    finally:
        control.clear_faults()
    failed = await row()
    assert failed["status"] == "failed" and failed["attempts"] == 3
    assert "StripeUnavailable" in failed["last_error"]
    retry_at = when(failed["next_attempt_at"])
    assert retry_at > datetime.now(UTC)

    as_json = await asyncio.to_thread(private.cli, "events", "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert datetime.now(UTC) < retry_at  # the report describes the backoff still running
    report = json.loads(as_json.stdout)
    stored = await rows(url, EVENTS_SQL)
    by_status = Counter(r["status"] for r in stored)
    assert report["counts"] == {
        s: by_status.get(s, 0) for s in ("received", "processed", "ignored", "failed")
    }
    assert report["counts"]["failed"] == 1 and report["pending"] == 1
    assert report["due_now"] == 0
    assert when(report["next_retry_at"]) == retry_at
    oldest = report["oldest_pending"]
    assert (oldest["id"], oldest["type"]) == (event["id"], "checkout.session.completed")
    assert oldest["age_seconds"] >= 4
    lags = sorted(r["lag_ms"] for r in stored if r["lag_ms"] is not None)
    assert lags and len(lags) == len(stored) - 1  # all but the failed one were applied
    lag = report["lag_ms"]
    assert lag["window_seconds"] == 3600 and lag["applied"] == len(lags)
    assert lag["max"] == lags[-1] and lag["p50"] in lags and lag["p95"] in lags
    assert lag["p50"] <= lag["p95"] <= lag["max"]

    table = await asyncio.to_thread(private.cli, "events", "status")
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.replace("\u2502", " ").split())
    assert "Stored webhook events" in text
    assert "failed 1" in text and f"processed {by_status['processed']}" in text
    assert "due now 0 (next retry at" in text
    assert f"oldest pending {event['id']} checkout.session.completed" in text
    assert f"lag (last hour) {len(lags)} applied: p50" in text

    replay = await asyncio.to_thread(private.cli, "events", "replay", "--failed")
    assert replay.returncode == 0, replay.stderr
    assert "1 processed" in replay.stdout
    [done] = await rows(url, EVENTS_SQL + " WHERE id = :id", id=event["id"])
    assert (done["status"], done["attempts"], done["last_error"]) == ("processed", 4, None)
    assert done["next_attempt_at"] is None and done["lag_ms"] is not None

    after = json.loads((await asyncio.to_thread(private.cli, "events", "status", "--json")).stdout)
    assert after["counts"]["failed"] == 0 and after["pending"] == 0
    assert after["due_now"] == 0 and after["next_retry_at"] is None
    assert after["oldest_pending"] is None and after["lag_ms"]["applied"] == len(lags) + 1

    private.restart_api()
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        got = await Api(client, stuck.org).entitlement()
    assert (got["plan"], got["status"]) == ("pro", "ACTIVE")
    control.close()
