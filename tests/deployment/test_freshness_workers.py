"""Two API processes on one PostgreSQL database and one emulator: a webhook applied by one
process, or a row written behind both, shows on the other within FRESH_WITHIN however warm
its reads were (once reads are cached, through LISTEN/NOTIFY). SQLite runs one process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from harness.api import Api, new_org
from harness.servers import ApiProcess
from harness.signing import post_signed
from tests.support.freshness import (
    PERIOD_END,
    WARM,
    change_entitlement,
    put_entitlement,
    seen_within,
    state,
    warm,
)
from tests.support.journeys import click
from tests.support.private_stack import PrivateStack, all_events


@pytest.fixture
async def apis(private: PrivateStack, second: ApiProcess) -> AsyncIterator[tuple[Api, Api]]:
    """One fresh org's GraphQL clients on process A and on process B."""
    org = new_org()
    async with (
        httpx.AsyncClient(base_url=private.api.url, timeout=30) as a,
        httpx.AsyncClient(base_url=second.url, timeout=30) as b,
    ):
        yield Api(a, org), Api(b, org)


async def on_both(apis: tuple[Api, Api], want: dict[str, object], what: str) -> None:
    """Both processes, polled at once, read `want` within 1 s of a change committed just now."""
    since = time.monotonic()
    await asyncio.gather(
        *(
            seen_within(api, lambda got: got == want, since, f"process {name}, {what}")
            for name, api in zip("AB", apis, strict=True)
        )
    )


async def test_a_webhook_applied_by_one_process_shows_on_the_other(
    private: PrivateStack, second: ApiProcess, apis: tuple[Api, Api]
) -> None:
    on_a, on_b = apis
    checkout = await on_a.upgrade("pro")
    await click(checkout["url"], "pay")
    before = state(on_a.org, account=True)
    await warm(on_a, before, times=5 * WARM)
    await warm(on_b, before)

    [created] = [
        e for e in await all_events(private) if e["type"] == "customer.subscription.created"
    ]
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as hook:
        response = await post_signed(hook, json.dumps(created).encode())
    answered = time.monotonic()
    assert response.status_code == 200 and response.json()["duplicate"] is False, response.text

    def subscribed(got: dict[str, object]) -> bool:
        """True once the entitlement is the paid plan."""
        return got["plan"] == "pro" and got["status"] == "ACTIVE"

    await seen_within(on_a, subscribed, answered, "process A, a plan B's applier applied")
    await seen_within(on_b, subscribed, answered, "process B, the plan its applier applied")


async def test_a_row_written_behind_both_processes_shows_on_both(
    private: PrivateStack, apis: tuple[Api, Api]
) -> None:
    url, org = private.settings.database_url, apis[0].org
    for api in apis:
        await warm(api, state(org))

    await put_entitlement(url, org, "team", "active")
    await on_both(apis, state(org, "team", "ACTIVE"), "an inserted entitlement row")

    for api in apis:
        await warm(api, state(org, "team", "ACTIVE"))
    await change_entitlement(url, org, "pro", "active", cancel=True, period_end=PERIOD_END)
    changed = state(org, "pro", "ACTIVE", cancel=True, period_end=PERIOD_END)
    await on_both(apis, changed, "an updated entitlement row")
