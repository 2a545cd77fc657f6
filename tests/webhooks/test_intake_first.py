"""Intake before applying: while a server answers deliveries, its applier starts no apply
beyond its share (here none: the share is one an hour), and once they pause it applies them all.

The server runs in this process (a thread of its own, over HTTP) so the share and the pause can
be set for the test: a pause of seconds, which no sender here leaves between deliveries, and a
share of one apply an hour, so the property is an ordering, not a rate: every apply that ended
while deliveries were answered had begun before they started."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from billing.kit.settings import Settings
from harness.db import rows
from harness.servers import ThreadedServer
from harness.signing import event_body
from harness.stripe_side import price_id
from harness.timing import eventually
from server.app import create_app
from tests.support.private_stack import PrivateStack, deliver, settled
from webhooks import priority
from webhooks.applier import CONCURRENCY

BUSY_CUSTOMERS = 30
"""Customers whose events keep the applier working when the second burst starts."""
BURST_CUSTOMERS = 30
EVENTS_EACH = 6
QUIET = 3.0
"""Seconds without a delivery after which the intake counts as idle in this test."""
RATE = 40.0
"""STRIPE_RATE_LIMIT: 20 customers a second, so the first customers take the applier a while."""


def subscribed(private: PrivateStack, count: int) -> list[dict[str, Any]]:
    """`count` customers of new orgs with a Pro subscription, as Stripe returns it."""
    pro = price_id(private.sdk, "pro_monthly")

    def one(i: int) -> dict[str, Any]:
        customer = private.sdk.v1.customers.create(params={"metadata": {"org_id": f"org_if_{i}"}})
        sub = private.sdk.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": pro}]}
        )
        assert sub.last_response is not None
        return dict(json.loads(sub.last_response.body))

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def bodies(subscriptions: list[dict[str, Any]], each: int) -> list[bytes]:
    """`each` subscription events per subscription, interleaved."""
    return [
        event_body("customer.subscription.updated", sub)
        for _ in range(each)
        for sub in subscriptions
    ]


async def applied_customers(url: str) -> int:
    """Customers with an event applied so far."""
    [found] = await rows(
        url,
        "SELECT count(DISTINCT customer_id) AS n FROM webhook_events WHERE status = 'processed'",
    )
    return int(found["n"])


def _utc(value: Any) -> datetime:
    """A stored timestamp (SQLite hands back naive text or datetimes) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.fixture
def server(private: PrivateStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedServer]:
    """The API in a thread of this process, its applier yielding to deliveries for `QUIET`
    seconds after each and taking no share while they last."""
    monkeypatch.setattr(priority, "QUIET", QUIET)
    monkeypatch.setattr(priority, "BUSY_SPACING", 3600.0)
    values = {**private.settings.model_dump(), "stripe_rate_limit": RATE}
    running = ThreadedServer(create_app(Settings(_env_file=None, **values))).start()
    yield running
    running.stop()


async def test_deliveries_are_answered_before_applies_start(
    private: PrivateStack, server: ThreadedServer
) -> None:
    subscriptions = subscribed(private, BUSY_CUSTOMERS + BURST_CUSTOMERS)
    busy, burst = subscriptions[:BUSY_CUSTOMERS], subscriptions[BUSY_CUSTOMERS:]
    url = private.settings.database_url

    assert await deliver(server.url, bodies(busy, 1)) == []
    await eventually(  # past the pause after them: the applier is at work on the rest
        lambda: applied_customers(url), lambda n: n >= 2, timeout=60, what="two applies"
    )

    first_ack: list[datetime] = []
    burst_bodies = bodies(burst, EVENTS_EACH)
    unanswered = await deliver_noting_first_ack(server.url, burst_bodies, first_ack)
    last_ack = datetime.now(UTC)
    assert unanswered == []
    [left] = await rows(url, "SELECT count(*) AS n FROM webhook_events WHERE status = 'received'")
    assert left["n"] >= len(burst_bodies)  # due work waited: none of the burst's was applied

    await settled(url, timeout=120)
    applied = await rows(
        url, "SELECT customer_id, processed_at FROM webhook_events WHERE status = 'processed'"
    )
    during = {
        r["customer_id"] for r in applied if first_ack[0] < _utc(r["processed_at"]) <= last_ack
    }
    # Only applies already under way when the deliveries began ended while they were answered.
    assert len(during) <= CONCURRENCY, during
    assert not during & {sub["customer"] for sub in burst}
    assert len({r["customer_id"] for r in applied}) == len(subscriptions)  # all applied after
    plans = await rows(url, "SELECT plan FROM entitlements WHERE org_id LIKE 'org_if_%'")
    assert [r["plan"] for r in plans] == ["pro"] * len(subscriptions)


async def deliver_noting_first_ack(
    url: str, signed: list[bytes], first_ack: list[datetime]
) -> list[bytes]:
    """`deliver`, noting when the first delivery was answered."""
    first = asyncio.create_task(deliver(url, signed[:1]))
    rest = asyncio.create_task(deliver(url, signed[1:]))
    unanswered = await first
    first_ack.append(datetime.now(UTC))
    return unanswered + await rest


async def test_an_apply_waits_for_a_delivery_being_answered() -> None:
    gate = priority.IntakeFirst()
    gate.spacing = 3600.0  # no share: only a pause lets an apply start
    assert await gate.turn() is False  # nothing answered: at once
    with gate.answering():
        waiting = asyncio.create_task(gate.turn())
        await asyncio.sleep(10 * gate.quiet)
        assert not waiting.done()
    assert await waiting is True  # started once the delivery was answered, after waiting
