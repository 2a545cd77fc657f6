"""`requiredAction` under reordered, duplicated and late events: a private emulator holds the
events until the test delivers them, newest first and again; the action (and its `since`)
ends as Stripe has it, and a fix delivered before the failure it fixes stays fixed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from emulator.client import EmulatorControl
from harness.api import Api
from harness.stack import Stack
from harness.stripe_side import customer_of
from tests.support.journeys import click
from tests.support.private_stack import PrivateStack, deliver, new_events, settled, with_duplicates

pytestmark = pytest.mark.xdist_group("billing_state")

DAY = 86400
GOOD_CARD = "4242424242424242"
CARDS = {"PAYMENT_FAILED": "4000000000000341", "PAYMENT_CONFIRMATION_REQUIRED": "4000002760003184"}
ADDRESS = {"address_line1": "1 Main St", "address_city": "Springfield", "address_country": "US"}
REPORTING = ("invoice.payment_failed", "invoice.payment_action_required")


@pytest.fixture
def private(billing_stack: Stack) -> Iterator[PrivateStack]:
    """A private system with the billing-state plans file."""
    private = PrivateStack(billing_stack)
    yield private
    private.close()


def reported_at(bodies: list[bytes], invoice: str) -> int:
    """When Stripe first reported a problem with the invoice, among these events."""
    events = [json.loads(b) for b in bodies]
    return min(
        e["created"]
        for e in events
        if (e["type"] in REPORTING and e["data"]["object"]["id"] == invoice)
        or (
            e["type"] == "customer.subscription.updated"
            and e["data"]["object"].get("latest_invoice") == invoice
            and e["data"]["object"]["status"] == "past_due"
        )
    )


async def delivered(private: PrivateStack, bodies: list[bytes], customer: str) -> None:
    """POST the bodies (all acknowledged) and wait until the customer's events are applied."""
    assert await deliver(private.api.url, bodies) == []
    await settled(private.settings.database_url, customer=customer)


@pytest.mark.parametrize("expected", sorted(CARDS))
async def test_payment_actions_survive_reordered_duplicated_and_late_events(
    private: PrivateStack, expected: str
) -> None:
    """A renewal fails (declined, or 3-D Secure). Its events, newest first and duplicated,
    the first failure held back, give the action with `since` = the first report among them;
    the payment's events, then the held-back failure arriving late, leave nothing to do."""
    seen: set[str] = set()
    control = EmulatorControl(private.emulator.url)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        api = Api(http)
        checkout = await api.upgrade("pro")
        await click(checkout["url"], "pay", card=CARDS[expected], **ADDRESS)
        customer = customer_of(private.sdk, api.org)
        await delivered(private, await new_events(private, customer, seen), customer)
        [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
        control.advance(sub["items"].data[0].current_period_end - control.now() + 60)
        failure = await new_events(private, customer, seen)
        [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
        invoice = private.sdk.v1.invoices.retrieve(str(sub.latest_invoice))
        assert invoice.status == "open"
        held = next(b for b in failure if json.loads(b)["type"] == "invoice.payment_failed")
        early = [b for b in failure if b is not held]
        await delivered(private, with_duplicates(early[::-1], 1.0, seed=26), customer)
        state = await api.billing_state()
        action = state["requiredAction"]
        assert action is not None and action["code"] == expected, state
        assert datetime.fromisoformat(action["since"]).timestamp() == reported_at(early, invoice.id)

        if expected == "PAYMENT_FAILED":
            portal = await api.open_portal(flow="PAYMENT_METHOD_UPDATE")
            await click(portal["url"], "update-payment-method", card=GOOD_CARD)
        else:
            await click(str(invoice.hosted_invoice_url), "confirm-payment")
        fix = await new_events(private, customer, seen)
        assert any(json.loads(b)["type"] == "invoice.paid" for b in fix)
        await delivered(private, fix[::-1], customer)
        await delivered(private, [held], customer)
        final = await api.billing_state()
        assert (final["status"], final["requiredAction"]) == ("ACTIVE", None), final


async def test_a_trial_warning_survives_reordered_and_duplicated_events(
    private: PrivateStack,
) -> None:
    """A card-less trial: until Stripe's `trial_will_end` arrives nothing is asked; that event
    newest-first and twice gives the action dated by it; a card on file, its events delivered
    newest first, clears it, and the warning delivered again does not bring it back."""
    seen: set[str] = set()
    control = EmulatorControl(private.emulator.url)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        api = Api(http)
        checkout = await api.upgrade("team")
        await click(checkout["url"], "pay", card="", **ADDRESS)
        customer = customer_of(private.sdk, api.org)
        await delivered(private, await new_events(private, customer, seen), customer)
        [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
        assert sub.status == "trialing" and sub.trial_end is not None
        control.advance(sub.trial_end - 3 * DAY - control.now() + 60)
        warning = await new_events(private, customer, seen)
        [will_end] = [json.loads(b) for b in warning if b"trial_will_end" in b]
        others = [b for b in warning if b"trial_will_end" not in b]
        await delivered(private, others, customer)
        assert (await api.billing_state())["requiredAction"] is None  # not reported yet

        await delivered(private, with_duplicates(warning[::-1], 1.0, seed=28), customer)
        action = (await api.billing_state())["requiredAction"]
        assert action is not None and action["code"] == "TRIAL_ENDING_WITHOUT_PAYMENT_METHOD"
        assert datetime.fromisoformat(action["since"]).timestamp() == will_end["created"]
        assert datetime.fromisoformat(action["deadline"]).timestamp() == sub.trial_end

        control.attach_card(customer, GOOD_CARD)
        fix = await new_events(private, customer, seen)
        await delivered(private, fix[::-1], customer)
        await delivered(private, warning, customer)
        final = await api.billing_state()
        assert (final["status"], final["requiredAction"]) == ("TRIALING", None), final
