"""PaymentIntents and invoice payments.

An invoice with an amount due is charged through one PaymentIntent (``pi_...``), created on its
first attempt and confirmed again on each retry, as Stripe does; the invoice's default
``invoice_payment`` (``inpay_...``, ``GET /v1/invoices/{id}?expand[]=payments``) links them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.cards import Outcome
from emulator.ids import new_id
from emulator.shapes import Obj
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState


def payment_id(inv: Obj) -> str:
    """The id of an invoice's default invoice_payment (derived from the invoice's)."""
    return "inpay_" + str(inv["id"]).removeprefix("in_")


def intent_of(state: EmulatorState, inv: Obj) -> Obj | None:
    """The invoice's PaymentIntent, None before its first attempt."""
    pay = state.db.invoice_payments.get(payment_id(inv))
    return None if pay is None else state.db.payment_intents[pay["payment"]["payment_intent"]]


def _description(inv: Obj) -> str:
    """Stripe's description of an invoice's PaymentIntent."""
    create = inv["billing_reason"] == "subscription_create"
    return "Subscription creation" if create else "Subscription update"


def _open(state: EmulatorState, inv: Obj) -> Obj:
    """The invoice's PaymentIntent, created with its invoice_payment (payment_intent.created)."""
    found = intent_of(state, inv)
    if found is not None:
        return found
    now = state.now()
    pi_id = new_id("pi_")
    pi = template(
        "payment_intent",
        id=pi_id,
        amount=inv["amount_due"],
        client_secret=f"{pi_id}_secret_{new_id('', 25)}",
        created=now,
        currency=inv["currency"],
        customer=inv["customer"],
        description=_description(inv),
    )
    state.db.payment_intents[pi_id] = pi
    state.db.invoice_payments[payment_id(inv)] = template(
        "invoice_payment",
        id=payment_id(inv),
        amount_requested=inv["amount_due"],
        created=now,
        currency=inv["currency"],
        invoice=inv["id"],
        payment={"type": "payment_intent", "payment_intent": pi_id},
        status_transitions={"canceled_at": None, "paid_at": None},
    )
    state.emit("payment_intent.created", pi)
    return pi


def _decline(state: EmulatorState, charge: str, payment_method: str | None) -> Obj:
    """Stripe's ``last_payment_error`` of a declined card."""
    error: Obj = {
        "charge": charge,
        "code": "card_declined",
        "decline_code": "generic_decline",
        "doc_url": "https://docs.stripe.com/error-codes/card-declined",
        "message": "Your card was declined.",
        "type": "card_error",
    }
    pm = state.db.payment_methods.get(payment_method or "")
    if pm is not None:
        error["payment_method"] = copy_json(pm)
    return error


def _three_d_secure(state: EmulatorState, inv: Obj) -> Obj:
    """The ``next_action`` of a payment awaiting 3-D Secure: finish it on the invoice's page."""
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "stripe_js": inv["hosted_invoice_url"],
            "source": new_id("src_"),
        },
    }


def confirm(state: EmulatorState, inv: Obj, result: Outcome, payment_method: str | None) -> Obj:
    """Confirm the invoice's PaymentIntent with ``result``; fires its payment_intent event.

    ``succeeded`` pays it (and the invoice_payment); ``declined`` leaves it
    ``requires_payment_method`` with ``last_payment_error``; ``requires_action`` sets
    ``next_action``; without a payment method it stays ``requires_payment_method``, unconfirmed.
    """
    pi = _open(state, inv)
    pi["payment_method"] = payment_method
    if result == "succeeded":
        succeed(state, inv)
    elif result == "requires_action":
        pi.update(status="requires_action", next_action=_three_d_secure(state, inv))
        pi["last_payment_error"] = None
        state.emit("payment_intent.requires_action", pi)
    elif result == "declined":
        charge = new_id("ch_")
        pi.update(status="requires_payment_method", next_action=None, latest_charge=charge)
        pi["last_payment_error"] = _decline(state, charge, payment_method)
        state.emit("payment_intent.payment_failed", pi)
    else:
        pi.update(status="requires_payment_method", next_action=None, last_payment_error=None)
    return pi


def succeed(state: EmulatorState, inv: Obj) -> None:
    """The invoice's PaymentIntent succeeds and its invoice_payment is paid."""
    pi = _open(state, inv)
    pi.update(
        status="succeeded",
        amount_received=pi["amount"],
        last_payment_error=None,
        next_action=None,
        latest_charge=new_id("ch_"),
    )
    pay = state.db.invoice_payments[payment_id(inv)]
    pay.update(status="paid", amount_paid=pi["amount"])
    pay["status_transitions"]["paid_at"] = state.now()
    state.emit("payment_intent.succeeded", pi)
