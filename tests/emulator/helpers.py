"""Shared steps for the emulator tests: seed a catalog, subscribe through Checkout."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.hosted import submit_form
from emulator.server import EmulatorServer
from tests.emulator.conftest import WEBHOOK_SECRET, Receiver, make_client
from tests.support import stripe_spec

DAY = 86400
APP = "http://app.test"


def monthly_product(client: Any, name: str, amount: int = 1000) -> tuple[Any, Any]:
    """A product of its own and a monthly USD price for it."""
    prod = client.v1.products.create(params={"name": name})
    price = client.v1.prices.create(
        params={
            "product": prod.id,
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month"},
        }
    )
    return prod, price


def seed(
    client: Any, control: EmulatorControl | None = None, *, lookup_prefix: str = "pro"
) -> dict[str, Any]:
    """A product with month/year prices, a second product, and a portal configuration.

    With ``control``, the configuration becomes the default, as saving it in the Dashboard does
    (configurations created through the API never are).
    """
    pro = client.v1.products.create(params={"name": "Pro", "metadata": {"plan": "pro"}})
    team = client.v1.products.create(params={"name": "Team"})
    month = client.v1.prices.create(
        params={
            "product": pro.id,
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
            "lookup_key": f"{lookup_prefix}_month",
        }
    )
    year = client.v1.prices.create(
        params={
            "product": pro.id,
            "currency": "usd",
            "unit_amount": 20000,
            "recurring": {"interval": "year"},
            "lookup_key": f"{lookup_prefix}_year",
        }
    )
    team_month = client.v1.prices.create(
        params={
            "product": team.id,
            "currency": "usd",
            "unit_amount": 5000,
            "recurring": {"interval": "month"},
            "lookup_key": "team_month",
        }
    )
    config = client.v1.billing_portal.configurations.create(
        params={
            "business_profile": {"headline": "Acme billing"},
            "default_return_url": f"{APP}/account",
            "features": {
                "customer_update": {"enabled": True, "allowed_updates": ["email"]},
                "invoice_history": {"enabled": True},
                "payment_method_update": {"enabled": True},
                "subscription_cancel": {
                    "enabled": True,
                    "mode": "at_period_end",
                    "proration_behavior": "none",
                    "cancellation_reason": {
                        "enabled": True,
                        "options": ["too_expensive", "unused", "other"],
                    },
                },
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "create_prorations",
                    "products": [
                        {"product": pro.id, "prices": [month.id, year.id]},
                        {"product": team.id, "prices": [team_month.id]},
                    ],
                },
            },
        }
    )
    if control is not None:
        control.set_default_portal(config.id)
    return {
        "pro": pro,
        "team": team,
        "month": month,
        "year": year,
        "team_month": team_month,
        "config": config,
    }


def portal_flow(
    client: Any,
    customer: str,
    flow: str,
    details: dict[str, Any] | None = None,
    *,
    configuration: str | None = None,
    **flow_data: Any,
) -> Any:
    """A portal session with ``flow_data`` of a type (``details``: that type's own hash)."""
    data: dict[str, Any] = {"type": flow, **flow_data}
    if details is not None:
        data[flow] = details
    params: dict[str, Any] = {"customer": customer, "flow_data": data}
    if configuration:
        params["configuration"] = configuration
    return client.v1.billing_portal.sessions.create(params=params)


def checkout(
    client: Any,
    customer: str | None,
    price: str,
    *,
    trial_days: int | None = None,
    metadata: dict[str, str] | None = None,
    quantity: int = 1,
) -> Any:
    """A subscription-mode Checkout Session."""
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price, "quantity": quantity}],
        "success_url": f"{APP}/done?session={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{APP}/pricing",
        "client_reference_id": "org_1",
        "metadata": {"org_id": "org_1"},
        "subscription_data": {"metadata": metadata or {"org_id": "org_1"}},
        "allow_promotion_codes": True,
    }
    if customer:
        params["customer"] = customer
    if trial_days:
        params["subscription_data"]["trial_period_days"] = trial_days
    return client.v1.checkout.sessions.create(params=params)


def pay(browser: httpx.Client, session: Any, **fields: str) -> str:
    """Pay on the hosted Checkout page; returns where the browser is sent."""
    result = submit_form(browser, session.url, "pay", **fields)
    assert isinstance(result, str), getattr(result, "text", result)
    return result


def subscribe(
    client: Any, browser: httpx.Client, catalog: dict[str, Any], price: str = "month", **kw: Any
) -> Any:
    """Customer + Checkout (``catalog[price]``; ``quantity=N`` for seats) + Pay; returns the
    subscription."""
    customer = client.v1.customers.create(
        params={"email": "ada@example.com", "metadata": {"org_id": "org_1"}}
    )
    session = checkout(client, customer.id, catalog[price].id, **kw)
    pay(browser, session)
    done = client.v1.checkout.sessions.retrieve(session.id)
    return client.v1.subscriptions.retrieve(done.subscription)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.02)


def steady_page(browser: httpx.Client, control: EmulatorControl, url: str) -> tuple[str, int]:
    """A page and the emulator second it was rendered in (retried across a clock tick)."""
    for _ in range(5):
        before = control.now()
        text = browser.get(url).text
        if control.now() == before:
            return text, before
    raise AssertionError("the emulator clock kept ticking")


def prorated(amount: int, now: int, start: int, end: int) -> int:
    """Stripe's seconds-based proration of amount over the rest of [start, end), to cents."""
    return int(Decimal(amount * (end - now)) / Decimal(end - start) + Decimal("0.5"))


def invalid_request(call: Callable[..., Any]) -> stripe.InvalidRequestError:
    """The InvalidRequestError a call raises."""
    with pytest.raises(stripe.InvalidRequestError) as info:
        call()
    return info.value


def assert_valid_events(events: Iterable[dict[str, Any]]) -> None:
    """Assert that every event matches Stripe's spec of an event."""
    for event in events:
        assert not stripe_spec.validate_object("event", event), event["type"]


@contextmanager
def emulator_on_file(
    receiver: Receiver, state_file: Path, secret: str = WEBHOOK_SECRET
) -> Iterator[tuple[EmulatorControl, Any]]:
    """A fresh emulator saving to ``state_file``, posting to ``receiver``: its control, a client."""
    with (
        EmulatorServer(webhooks=[(receiver.url, secret)], state_file=state_file) as server,
        EmulatorControl(server.url) as control,
    ):
        yield control, make_client(server.url)
