"""Billing state a client can act on, through the emulator's clock and test cards: each
`requiredAction` code appears from the webhook alone and clears, `pendingChange` follows a
schedule through its phase change, card-less trials end both ways, one trial per org, and
every Checkout option reaches the Checkout Session."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from harness.api import Api, token
from harness.cli import invoke_cli
from harness.db import execute, rows
from harness.servers import settings_env
from harness.stack import Stack
from harness.stripe_side import customer_of, stripe_sdk
from harness.timing import eventually
from tests.support.journeys import cancel_in_portal, click
from tests.support.live import connected, pushed_until
from tests.support.private_stack import settled

pytestmark = pytest.mark.xdist_group("billing_state")  # one system, one clock, per worker

LIVE_BILLING_STATE = """
subscription { entitlementChanged { status updatedAt requiredAction { code flow deadline } } }
"""
LIVE_PENDING_CHANGE = """
subscription { entitlementChanged { updatedAt pendingChange { plan interval } } }
"""
DAY = 86400
GOOD_CARD = "4242424242424242"
AUTH_CARD = "4000002760003184"
ADDRESS = {"address_line1": "1 Main St", "address_city": "Springfield", "address_country": "US"}


def ts(value: str | None) -> int | None:
    """An ISO 8601 DateTime from the API as unix seconds."""
    return int(datetime.fromisoformat(value).timestamp()) if value else None


async def state_until(api: Api, check: Any, what: str, timeout: float = 20.0) -> dict[str, Any]:
    """The org's billing state once `check` holds."""
    return await eventually(api.billing_state, check, timeout=timeout, what=what)


def code(state: dict[str, Any]) -> str | None:
    """The required action's code (None when nothing is required)."""
    action = state["requiredAction"]
    return action["code"] if action else None


async def checkout(api: Api, plan: str, card: str | None = GOOD_CARD) -> dict[str, Any]:
    """Upgrade, pay (or start a card-less trial) on Checkout; the state once the plan applies."""
    session = await api.upgrade(plan)
    assert session["__typename"] == "CheckoutSession", session
    fields = {**ADDRESS, **({"card": card} if card else {})}
    await click(session["url"], "pay", **fields)
    return await state_until(api, lambda s: s["plan"] == plan, f"{plan} to apply")


def latest_invoice(billing_stack: Stack, customer: str) -> Any:
    """The customer's subscription's latest invoice, as Stripe has it."""
    sdk = stripe_sdk(billing_stack.emulator.url)
    [sub] = sdk.v1.subscriptions.list(params={"customer": customer}).data
    return sdk.v1.invoices.retrieve(str(sub.latest_invoice))


def first_event(billing_stack: Stack, event_type: str, object_id: str) -> dict[str, Any]:
    """The first event of a type about an object."""
    found = [
        e
        for e in billing_stack.control.events(event_type)
        if e["data"]["object"]["id"] == object_id
    ]
    assert found, f"no {event_type} for {object_id}"
    return min(found, key=lambda e: e["created"])


async def to_renewal(billing_stack: Stack, state: dict[str, Any]) -> None:
    """Move the clock just past the current period's end."""
    now = billing_stack.control.now()
    billing_stack.control.advance(ts(state["currentPeriodEnd"]) - now + 60)  # type: ignore[operator]


async def applied(billing_stack: Stack, customer: str) -> None:
    """Wait until the emulator delivered every event and the service applied the customer's."""
    await asyncio.to_thread(billing_stack.control.wait_idle)
    await settled(billing_stack.settings.database_url, customer=customer)


@pytest.fixture
async def api(billing_stack: Stack) -> Any:
    """A fresh org on the billing-state system."""
    async with httpx.AsyncClient(base_url=billing_stack.api.url, timeout=30) as http:
        yield Api(http)


async def test_a_failed_renewal_asks_for_a_card_until_a_good_one_pays(
    billing_stack: Stack, api: Api
) -> None:
    """PAYMENT_FAILED with the next retry as deadline, pushed live; a retry keeps its `since`;
    a card saved in the Portal pays the invoice and clears it."""
    state = await checkout(api, "pro")
    customer = customer_of(stripe_sdk(billing_stack.emulator.url), api.org)
    billing_stack.control.set_card(customer, True)
    async with connected(billing_stack.api.url) as live:
        assert (await live.init({"authorization": f"Bearer {token(api.org)}"}))["type"] == (
            "connection_ack"
        )
        await live.subscribe(query=LIVE_BILLING_STATE)
        first = await live.next()
        await to_renewal(billing_stack, state)
        pushed = await pushed_until(live, first, lambda e: e["requiredAction"] is not None)
        await applied(billing_stack, customer)
        failed = await api.billing_state()
    assert pushed[-1]["requiredAction"]["code"] == "PAYMENT_FAILED"
    invoice = latest_invoice(billing_stack, customer)
    action = failed["requiredAction"]
    assert failed["status"] == "PAST_DUE" and failed["plan"] == "pro"
    assert action["flow"] == "PAYMENT_METHOD_UPDATE" and action["invoiceUrl"] is None
    assert ts(action["deadline"]) == invoice.next_payment_attempt
    assert (
        ts(action["since"])
        == first_event(billing_stack, "invoice.payment_failed", invoice.id)["created"]
    )

    billing_stack.control.advance(invoice.next_payment_attempt - billing_stack.control.now() + 60)
    retried = latest_invoice(billing_stack, customer)
    again = await state_until(
        api,
        lambda s: ts(s["requiredAction"]["deadline"]) == retried.next_payment_attempt,
        "the next retry as deadline",
    )
    assert retried.next_payment_attempt > invoice.next_payment_attempt
    assert again["requiredAction"]["since"] == action["since"]

    portal = await api.open_portal(flow="PAYMENT_METHOD_UPDATE")
    await click(portal["url"], "update-payment-method", card=GOOD_CARD)
    fixed = await state_until(api, lambda s: s["requiredAction"] is None, "the action to clear")
    assert fixed["status"] == "ACTIVE"
    assert latest_invoice(billing_stack, customer).status == "paid"


async def test_3d_secure_on_renewal_asks_for_a_confirmation_on_the_invoice_page(
    billing_stack: Stack, api: Api
) -> None:
    """PAYMENT_CONFIRMATION_REQUIRED with Stripe's hosted invoice page; confirming there clears
    it."""
    state = await checkout(api, "pro", card=AUTH_CARD)
    customer = customer_of(stripe_sdk(billing_stack.emulator.url), api.org)
    await to_renewal(billing_stack, state)
    await state_until(
        api, lambda s: code(s) == "PAYMENT_CONFIRMATION_REQUIRED", "a confirmation to be asked"
    )
    await applied(billing_stack, customer)
    waiting = await api.billing_state()
    invoice = latest_invoice(billing_stack, customer)
    action = waiting["requiredAction"]
    assert action["invoiceUrl"] == invoice.hosted_invoice_url
    assert action["flow"] is None
    assert (
        ts(action["since"])
        == first_event(billing_stack, "invoice.payment_action_required", invoice.id)["created"]
        or ts(action["since"])
        == first_event(billing_stack, "invoice.payment_failed", invoice.id)["created"]
    )

    url = billing_stack.settings.database_url
    await execute(
        url, "UPDATE entitlements SET required_action = NULL WHERE org_id = :o", o=api.org
    )
    env = settings_env(billing_stack.settings)
    found = await asyncio.to_thread(invoke_cli, "drift", "--json", env=env)
    [drifted] = [o for o in json.loads(found.stdout)["drifted"] if o["org_id"] == api.org]
    [difference] = drifted["differences"]
    assert difference["column"] == "required_action" and difference["stored"] is None
    assert difference["stripe"]["code"] == "PAYMENT_CONFIRMATION_REQUIRED"
    fixed = await asyncio.to_thread(invoke_cli, "drift", "--fix", env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert code(await api.billing_state()) == "PAYMENT_CONFIRMATION_REQUIRED"

    await click(action["invoiceUrl"], "confirm-payment")
    done = await state_until(api, lambda s: s["requiredAction"] is None, "the action to clear")
    assert done["status"] == "ACTIVE"


async def test_a_card_less_trial_warns_pauses_and_resumes_with_a_card(
    billing_stack: Stack, api: Api
) -> None:
    """Team: no card at Checkout; three days before the end TRIAL_ENDING_WITHOUT_PAYMENT_METHOD
    (deadline = trial end); at the end PAUSED on the default plan, still asking; a card saved in
    the Portal resumes it."""
    trial = await checkout(api, "team", card=None)
    assert (trial["status"], trial["requiredAction"]) == ("TRIALING", None)
    end = ts(trial["trialEnd"])
    assert end is not None
    billing_stack.control.advance(end - 3 * DAY - billing_stack.control.now() + 60)
    warned = await state_until(
        api, lambda s: code(s) == "TRIAL_ENDING_WITHOUT_PAYMENT_METHOD", "the trial warning"
    )
    action = warned["requiredAction"]
    assert ts(action["deadline"]) == end and action["flow"] == "PAYMENT_METHOD_UPDATE"
    [warning] = [
        e
        for e in billing_stack.control.events("customer.subscription.trial_will_end")
        if e["data"]["object"]["customer"]
        == customer_of(stripe_sdk(billing_stack.emulator.url), api.org)
    ]
    assert ts(action["since"]) == warning["created"]

    billing_stack.control.advance(3 * DAY)
    paused = await state_until(api, lambda s: s["status"] == "PAUSED", "the trial to pause")
    assert paused["plan"] == "free"
    assert code(paused) == "TRIAL_ENDING_WITHOUT_PAYMENT_METHOD"

    portal = await api.open_portal(flow="PAYMENT_METHOD_UPDATE")
    await click(portal["url"], "update-payment-method", card=GOOD_CARD)
    resumed = await state_until(api, lambda s: s["status"] == "ACTIVE", "the trial to resume")
    assert (resumed["plan"], resumed["requiredAction"]) == ("team", None)


async def test_a_card_less_trial_that_cancels_ends_with_nothing_to_do_and_no_second_trial(
    billing_stack: Stack, api: Api
) -> None:
    """Studio ends without a card: CANCELED, no action (an ended subscription has none); a
    second Checkout for the org starts without a trial."""
    trial = await checkout(api, "studio", card=None)
    billing_stack.control.advance(ts(trial["trialEnd"]) - billing_stack.control.now() + 60)  # type: ignore[operator]
    ended = await state_until(api, lambda s: s["status"] == "CANCELED", "the trial to cancel")
    assert (ended["plan"], ended["requiredAction"], ended["pendingChange"]) == ("free", None, None)

    billing_stack.control.clear_requests()
    again = await api.upgrade("studio")
    assert again["__typename"] == "CheckoutSession", again
    [request] = billing_stack.control.requests("/v1/checkout/sessions", "POST")
    params = request["params"]
    assert "trial_period_days" not in params.get("subscription_data", {}), params
    assert "payment_method_collection" not in params, params


async def test_a_card_less_trial_without_end_behaviour_fails_its_first_invoice(
    billing_stack: Stack, api: Api
) -> None:
    """Agency sets no end behaviour: Stripe invoices at the trial's end, the payment fails for
    want of a card, PAST_DUE asks for one."""
    trial = await checkout(api, "agency", card=None)
    billing_stack.control.advance(ts(trial["trialEnd"]) - billing_stack.control.now() + 60)  # type: ignore[operator]
    due = await state_until(api, lambda s: code(s) == "PAYMENT_FAILED", "the first invoice")
    assert (due["status"], due["plan"]) == ("PAST_DUE", "agency")


async def test_every_checkout_option_and_trial_setting_reaches_the_session(
    billing_stack: Stack, api: Api
) -> None:
    """`[checkout]` one to one, and a card-less trial's settings, on the Checkout Session."""
    billing_stack.control.clear_requests()
    session = await api.upgrade("team")
    assert session["__typename"] == "CheckoutSession", session
    [request] = billing_stack.control.requests("/v1/checkout/sessions", "POST")
    params = request["params"]
    assert params["allow_promotion_codes"] in (True, "true")
    assert params["automatic_tax"]["enabled"] in (True, "true")
    assert params["tax_id_collection"]["enabled"] in (True, "true")
    assert params["billing_address_collection"] == "required"
    assert params["payment_method_collection"] == "if_required"
    data = params["subscription_data"]
    assert str(data["trial_period_days"]) == "14"
    assert data["trial_settings"]["end_behavior"]["missing_payment_method"] == "pause"
    found = stripe_sdk(billing_stack.emulator.url).v1.checkout.sessions.retrieve(session["id"])
    assert found.allow_promotion_codes is True
    assert found.billing_address_collection == "required"
    assert found.payment_method_collection == "if_required"


async def test_a_downgrade_at_period_end_is_pending_until_its_phase_starts(
    billing_stack: Stack, api: Api
) -> None:
    """Pro yearly → monthly (a shorter interval) through `upgrade`: Stripe schedules it, the
    plan stays, `pendingChange` shows it; at the period's end the subscription moves and the
    pending change clears."""
    session = await api.upgrade("pro", "YEAR")
    await click(session["url"], "pay", card=GOOD_CARD, **ADDRESS)
    yearly = await state_until(api, lambda s: s["interval"] == "YEAR", "pro yearly")
    switch = await api.upgrade("pro", "MONTH")
    assert switch["__typename"] == "PortalSession", switch
    async with connected(billing_stack.api.url) as live:
        await live.init({"authorization": f"Bearer {token(api.org)}"})
        await live.subscribe(query=LIVE_PENDING_CHANGE)
        first = await live.next()
        await click(switch["url"], "confirm")
        pushed = await pushed_until(live, first, lambda e: e["pendingChange"] is not None)
    assert pushed[-1]["pendingChange"] == {"plan": "pro", "interval": "MONTH"}
    pending = await state_until(api, lambda s: s["pendingChange"] is not None, "the schedule")
    assert pending["pendingChange"] == {
        "plan": "pro",
        "interval": "MONTH",
        "seats": None,
        "effectiveAt": yearly["currentPeriodEnd"],
    }
    assert (pending["plan"], pending["interval"]) == ("pro", "YEAR")

    await to_renewal(billing_stack, yearly)
    moved = await state_until(api, lambda s: s["interval"] == "MONTH", "the phase change")
    assert moved["pendingChange"] is None and moved["plan"] == "pro"


async def test_fewer_seats_wait_for_the_period_end_and_a_cancellation_is_pending_too(
    billing_stack: Stack, api: Api
) -> None:
    """changeSeats down on Business is scheduled (seats in `pendingChange`); a cancellation at
    period end shows as a pending change to the default plan."""
    session = await api.upgrade("business", seats=5)
    await click(session["url"], "pay", card=GOOD_CARD, **ADDRESS)
    five = await state_until(api, lambda s: s["seats"] == 5, "business with 5 seats")
    fewer = await api.change_seats(3)
    await click(fewer["url"], "confirm")
    pending = await state_until(api, lambda s: s["pendingChange"] is not None, "the schedule")
    assert pending["seats"] == 5
    assert pending["pendingChange"] == {
        "plan": "business",
        "interval": "MONTH",
        "seats": 3,
        "effectiveAt": five["currentPeriodEnd"],
    }

    cancel = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
    await cancel_in_portal(cancel["url"])
    ending = await state_until(api, lambda s: s["cancelAtPeriodEnd"], "the cancellation")
    assert ending["pendingChange"] == {
        "plan": "free",
        "interval": None,
        "seats": None,
        "effectiveAt": ending["currentPeriodEnd"],
    }


async def test_portal_sync_schedules_downgrades_and_lets_customers_update_details(
    billing_stack: Stack,
) -> None:
    """The portal configuration `portal sync` made from the plans file."""
    sdk = stripe_sdk(billing_stack.emulator.url)
    [config] = [
        c
        for c in sdk.v1.billing_portal.configurations.list().data
        if c.metadata and c.metadata.to_dict().get("managed_by") == "billing-api"
    ]
    update = config.features.subscription_update
    conditions = {c.type for c in update.schedule_at_period_end.conditions}
    assert conditions == {"decreasing_item_amount", "shortening_interval"}
    assert config.features.customer_update.enabled is True
    assert set(config.features.customer_update.allowed_updates) == {"email", "address", "tax_id"}


async def test_metrics_count_open_required_actions_by_code(billing_stack: Stack, api: Api) -> None:
    """`billing_required_actions{code}` on /metrics: every code, each the orgs whose stored
    entitlement has it open (one more PAYMENT_FAILED after a declined renewal)."""

    async def gauges() -> dict[str, float]:
        async with httpx.AsyncClient(base_url=billing_stack.api.url) as http:
            text = (await http.get("/metrics")).text
        found = re.findall(r'^billing_required_actions\{code="(\w+)"\} (\S+)$', text, re.M)
        return {name: float(value) for name, value in found}

    state = await checkout(api, "pro", card="4000000000000341")
    before = await gauges()
    assert set(before) == {
        "PAYMENT_FAILED",
        "PAYMENT_CONFIRMATION_REQUIRED",
        "TRIAL_ENDING_WITHOUT_PAYMENT_METHOD",
    }
    await to_renewal(billing_stack, state)
    await state_until(api, lambda s: code(s) == "PAYMENT_FAILED", "PAYMENT_FAILED")
    await asyncio.to_thread(billing_stack.control.wait_idle)
    await settled(billing_stack.settings.database_url)
    stored = await rows(
        billing_stack.settings.database_url,
        "SELECT required_action FROM entitlements WHERE required_action IS NOT NULL",
    )
    after = await gauges()
    counted = Counter(
        (
            r["required_action"]
            if isinstance(r["required_action"], dict)
            else json.loads(r["required_action"])
        )["code"]
        for r in stored
    )
    assert after == {name: float(counted[name]) for name in after}
    assert after["PAYMENT_FAILED"] >= 1


def _when(value: int) -> str:
    """Unix seconds as the API's DateTime."""
    return datetime.fromtimestamp(value, UTC).isoformat()
