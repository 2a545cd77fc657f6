"""Events API, webhook endpoints, signed delivery, retries and hand delivery."""

from __future__ import annotations

import itertools
import socket
import time
from typing import Any

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.delivery import backoff
from emulator.server import EmulatorServer
from emulator.state import Config
from tests.emulator.conftest import WEBHOOK_SECRET, Receiver, spec_errors
from tests.emulator.helpers import seed, subscribe, wait_until
from tests.support import stripe_spec


def test_event_list_and_retrieve(client: Any) -> None:
    cus = client.v1.customers.create(
        params={"email": "e@example.com"}, options={"idempotency_key": "evt-key"}
    )
    client.v1.customers.update(cus.id, params={"name": "E"})
    seed(client)
    events = client.v1.events.list(params={"limit": 100})
    assert events.data[-1].type == "customer.created"  # newest first
    created = client.v1.events.list(params={"type": "customer.created"}).data[0]
    assert created.data.object.id == cus.id and created.request.idempotency_key == "evt-key"
    assert created.request.id.startswith("req_") and created.api_version
    assert not spec_errors("event", created)
    updated = client.v1.events.retrieve(
        client.v1.events.list(params={"type": "customer.updated"}).data[0].id
    )
    assert updated.data.previous_attributes.to_dict() == {"name": None}
    wildcard = client.v1.events.list(params={"type": "price.*"}).data
    assert len(wildcard) == 3 and {e.type for e in wildcard} == {"price.created"}
    both = client.v1.events.list(params={"types": ["product.created", "customer.updated"]})
    assert len(both.data) == 3
    since = client.v1.events.list(params={"created": {"gte": created.created}})
    assert len(since.data) == len(events.data)
    assert client.v1.events.list(params={"created": {"gt": created.created + 10**6}}).data == []


def test_webhook_endpoints_crud(client: Any) -> None:
    ep = client.v1.webhook_endpoints.create(
        params={
            "url": "https://example.com/hook",
            "enabled_events": ["customer.created"],
            "description": "mine",
            "metadata": {"a": "b"},
        }
    )
    assert ep.secret.startswith("whsec_") and ep.status == "enabled"
    assert not spec_errors("webhook_endpoint", ep)
    fetched = client.v1.webhook_endpoints.retrieve(ep.id)
    assert "secret" not in fetched.to_dict()
    disabled = client.v1.webhook_endpoints.update(ep.id, params={"disabled": True})
    assert disabled.status == "disabled"
    urls = [e.url for e in client.v1.webhook_endpoints.list().data]
    assert "https://example.com/hook" in urls and len(urls) == 2  # + the pre-registered one
    gone = client.v1.webhook_endpoints.delete(ep.id)
    assert gone.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.retrieve(ep.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.create(params={"url": "https://example.com/x"})
    assert info.value.param == "enabled_events"


def test_signed_delivery(client: Any, receiver: Receiver, control: EmulatorControl) -> None:
    cus = client.v1.customers.create(params={"email": "w@example.com"})
    wait_until(lambda: receiver.events("customer.created"))
    got = receiver.received[0]
    assert got.headers["content-type"].startswith("application/json")
    event = stripe.Webhook.construct_event(
        got.body.decode(), got.headers["stripe-signature"], WEBHOOK_SECRET
    )
    assert event.type == "customer.created" and event.data.object.id == cus.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            got.body.decode(), got.headers["stripe-signature"], "whsec_wrong"
        )
    assert not stripe_spec.validate_object("event", got.event)
    delivery = control.wait_for_deliveries(1, event_type="customer.created")[0]
    assert delivery["status"] == 200 and delivery["attempt"] == 1
    assert delivery["url"] == receiver.url


def test_signature_uses_wall_clock(
    client: Any, browser: httpx.Client, receiver: Receiver, control: EmulatorControl
) -> None:
    control.advance(40 * 86400)
    client.v1.customers.create(params={"email": "t@example.com"})
    wait_until(lambda: receiver.received)
    header = receiver.received[0].headers["stripe-signature"]
    stamp = int(header.split(",")[0].split("=")[1])
    assert abs(stamp - time.time()) < 60
    assert receiver.verified()
    assert receiver.events()[0]["created"] >= int(time.time()) + 39 * 86400


def test_retries_until_success(client: Any, receiver: Receiver, control: EmulatorControl) -> None:
    receiver.statuses.put(500)
    receiver.statuses.put(503)
    cus = client.v1.customers.create(params={"email": "r@example.com"})
    control.wait_for_deliveries(1, event_type="customer.created", ok=True)
    attempts = [d for d in control.deliveries() if d["type"] == "customer.created"]
    assert [(d["attempt"], d["status"], d["ok"]) for d in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert len(receiver.events("customer.created")) == 3
    assert all(e["data"]["object"]["id"] == cus.id for e in receiver.events())
    event = client.v1.events.list(params={"type": "customer.created"}).data[0]
    assert event.pending_webhooks == 0


def test_gives_up_after_max_attempts(
    client: Any, server: EmulatorServer, control: EmulatorControl
) -> None:
    control.configure(max_attempts=2)
    client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/nothing", "enabled_events": ["*"]}
    )
    client.v1.products.create(params={"name": "X"})
    failures = control.wait_for_deliveries(2, ok=False, event_type="product.created")
    assert [d["attempt"] for d in failures] == [1, 2]
    assert failures[0]["status"] is None and failures[0]["error"]
    control.wait_idle()


def test_retry_delays_double_up_to_the_cap(
    client: Any, receiver: Receiver, control: EmulatorControl
) -> None:
    control.configure(retry_base_seconds=0.05, retry_max_seconds=0.3, max_attempts=6)
    for _ in range(5):
        receiver.statuses.put(500)
    client.v1.customers.create(params={"email": "b@example.com"})
    attempts = control.wait_for_deliveries(6, event_type="customer.created", ok=None)
    assert [(d["attempt"], d["ok"]) for d in attempts] == [(n, n == 6) for n in range(1, 7)]
    # From one attempt's answer to the next attempt's start: the backoff, plus however late a
    # busy test worker wakes the emulator's loop. Never shorter than the backoff (give or take
    # the loop's clock, which may wake a few ms early); the last two stay near the cap
    # (uncapped, they would wait 0.4 and 0.8 s).
    waits = [b["sent"] - a["time"] for a, b in itertools.pairwise(attempts)]
    for wait, delay in zip(waits, [0.05, 0.1, 0.2, 0.3, 0.3], strict=True):
        assert delay - 0.01 <= wait < delay + 0.25, waits


def test_default_retries_span_days() -> None:
    config = Config()
    schedule = [backoff(config, n) for n in range(2, config.max_attempts + 1)]
    assert schedule[:3] == [0.5, 1.0, 2.0] and max(schedule) == 60
    assert sum(schedule) > 3 * 86400


def test_hanging_endpoint_does_not_slow_the_api(
    client: Any, receiver: Receiver, control: EmulatorControl
) -> None:
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)  # connections are accepted by the kernel, never answered
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
        control.add_webhook_endpoint(url, "whsec_hanging")
        timings = []
        for i in range(20):
            started = time.perf_counter()
            client.v1.customers.create(params={"email": f"h{i}@example.com"})
            timings.append(time.perf_counter() - started)
        assert max(timings) < 0.5 and sum(timings) < 2, timings
        wait_until(lambda: len(receiver.events("customer.created")) == 20, timeout=5)
        assert not [d for d in control.deliveries() if d["url"] == url]
        assert control.pending_deliveries() >= 20
    control.reset()  # drop the deliveries still waiting on the hanging endpoint


def test_hand_delivery(client: Any, receiver: Receiver, control: EmulatorControl) -> None:
    control.configure(auto_deliver=False)
    ids = [client.v1.customers.create(params={"email": f"h{i}@example.com"}).id for i in range(5)]
    time.sleep(0.1)
    assert receiver.received == []
    events = control.events("customer.created")
    results = control.deliver(events[0]["id"], duplicate=2)
    assert len(results) == 3 and all(r["ok"] for r in results)
    assert len(receiver.events()) == 3
    in_order = [i for i in ids for _ in range(2)]  # each event and its duplicate
    orders = []
    for _ in range(2):
        receiver.clear()
        results = control.deliver_events(
            [e["id"] for e in events], shuffle=True, duplicates=1.0, seed=7, concurrency=1
        )
        assert len(results) == 10
        orders.append([e["data"]["object"]["id"] for e in receiver.events()])
    assert sorted(orders[0]) == sorted(in_order)  # every event arrives, twice
    assert orders[0] != in_order  # ... shuffled
    assert orders[1] == orders[0]  # ... the same way for the same seed
    receiver.clear()
    everything = control.deliver_events(None)
    assert len(everything) == len(control.events())


def test_enabled_events_filter(client: Any, control: EmulatorControl) -> None:
    control.add_webhook_endpoint("http://127.0.0.1:9/only", "whsec_x", ["invoice.paid"])
    client.v1.customers.create(params={"email": "f@example.com"})
    control.wait_for_deliveries(1, event_type="customer.created")
    assert all(d["url"] != "http://127.0.0.1:9/only" for d in control.deliveries())


def test_subscription_events_carry_snapshots(
    client: Any, browser: httpx.Client, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    updates = wait_until(
        lambda: (
            len(receiver.events("customer.subscription.updated")) == 2
            and receiver.events("customer.subscription.updated")
        )
    )
    assert updates[0]["data"]["object"]["cancel_at_period_end"] is True
    assert updates[0]["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert updates[1]["data"]["object"]["cancel_at_period_end"] is False
    for event in receiver.events():
        assert not stripe_spec.validate_object("event", event), event["type"]
