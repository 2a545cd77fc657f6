"""What the response cache and the prepared documents must never do: keep a refused document or
an error, or trust its memory while PostgreSQL's LISTEN connection is down."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

import pytest

from billing.kit.change_feed import APPLICATION_NAME
from harness.api import ENTITLEMENT, Api
from harness.db import execute, rows
from harness.stack import Stack
from harness.timing import eventually
from tests.support.freshness import put_entitlement
from tests.support.live import subscribed


async def test_a_refused_document_is_refused_every_time(api: Api) -> None:
    for _ in range(3):
        response = await api.raw("{ entitlement { orgId nope } }")
        assert response.status_code == 200
        [error] = response.json()["errors"]
        assert "nope" in error["message"]


async def test_an_answer_with_errors_is_not_kept(api: Api) -> None:
    bad = {"authorization": "Bearer not-a-token"}
    for _ in range(3):
        body = (await api.raw(ENTITLEMENT, headers=bad)).json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await api.entitlement())["orgId"] == api.org


async def test_plans_from_memory_equal_the_catalog(api: Api, stack: Stack) -> None:
    query = "{ plans { slug name prices { lookupKey amount } } }"
    first, second = (await api.gql(query)), (await api.gql(query))
    assert first == second
    with stack.settings.plans_file.open("rb") as plans:
        assert [p["slug"] for p in first["plans"]] == list(tomllib.load(plans)["plans"])


async def _listeners(url: str) -> list[int]:
    """Backend pids of the service's LISTEN connections on this database."""
    found = await rows(
        url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = :name",
        name=APPLICATION_NAME,
    )
    return [int(row["pid"]) for row in found]


async def test_a_lost_listen_connection_neither_loses_a_change_nor_stays_lost(
    api: Api, stack: Stack
) -> None:
    if stack.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    url = stack.settings.database_url
    await api.upgrade("pro")  # creates the org's billing account
    assert (await api.entitlement())["plan"] == "free"
    assert (await api.entitlement())["plan"] == "free"  # answered from memory now
    [pid] = await eventually(lambda: _listeners(url), what="one LISTEN connection")
    await execute(url, "SELECT pg_terminate_backend(:pid)", pid=pid)
    await execute(
        url,
        "INSERT INTO entitlements (org_id, plan, status, cancel_at_period_end, updated_at)"
        " VALUES (:org, 'team', 'active', false, :now)"
        " ON CONFLICT (org_id) DO UPDATE SET plan = 'team', status = 'active'",
        org=api.org,
        now=datetime.now(UTC),
    )
    seen = await api.wait_for(lambda e: e["plan"] == "team", timeout=2)
    assert seen["status"] == "ACTIVE"
    [again] = await eventually(lambda: _listeners(url), what="LISTEN to be re-established")
    assert again != pid
    await execute(url, "UPDATE entitlements SET plan = 'pro' WHERE org_id = :org", org=api.org)
    await api.wait_for(lambda e: e["plan"] == "pro", timeout=1)


async def test_a_subscriber_misses_no_change_across_a_lost_listen_connection(
    api: Api, stack: Stack
) -> None:
    """While LISTEN is down other processes' writes go unheard; re-established, the feed
    counts everything as changed, so the subscriber is sent what it missed."""
    if stack.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    url = stack.settings.database_url
    async with subscribed(stack.api.url, api.org) as live:
        assert (await live.next())["plan"] == "free"
        [pid] = await eventually(lambda: _listeners(url), what="one LISTEN connection")
        await execute(url, "SELECT pg_terminate_backend(:pid)", pid=pid)
        await put_entitlement(url, api.org, "team", "active")
        assert (await live.next(timeout=5))["plan"] == "team"
        await eventually(lambda: _listeners(url), lambda pids: pids not in ([], [pid]))
        await execute(url, "UPDATE entitlements SET plan = 'pro' WHERE org_id = :org", org=api.org)
        assert (await live.next(timeout=2))["plan"] == "pro"
        await live.nothing_within(0.3)
