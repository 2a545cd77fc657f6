"""Stripe's test cards: classify a number, save it as the customer's default PaymentMethod, and
tell what charging it does.

``4000 0000 0000 0002`` (and the other declined numbers) is refused when entered;
``4000 0000 0000 0341`` attaches but its off-session charges (renewals, retries) are declined;
``4000 0027 6000 3184`` requires authentication (3-D Secure) on every transaction: it
authenticates on a hosted page (Checkout, the hosted invoice page), so its off-session charges
end ``requires_action``; any other valid number works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from emulator.errors import StripeError, card_declined
from emulator.ids import new_id
from emulator.shapes import Obj
from emulator.spec import template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

DECLINED = {"4000000000000002", "4000000000009995", "4000000000000069", "4000000000000127"}
FAILS_LATER = "4000000000000341"
REQUIRES_AUTH = "4000002760003184"
GOOD = "4242424242424242"
Outcome = Literal["succeeded", "declined", "requires_action", "no_payment_method"]
_BRANDS = (("34", "amex"), ("37", "amex"), ("4", "visa"), ("5", "mastercard"), ("6", "discover"))


def digits(card: str | None) -> str:
    """The digits of a card number as typed (spaces and dashes dropped)."""
    return "".join(ch for ch in (card or "") if ch.isdigit())


def _luhn(number: str) -> bool:
    """Whether a number passes the Luhn checksum every card number carries."""
    total = 0
    for n, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if n % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def incomplete() -> StripeError:
    """The hosted pages' error for a missing card number."""
    return StripeError(
        "Your card number is incomplete.", status=402, type="card_error", code="incomplete_number"
    )


def check_number(number: str) -> None:
    """Raise Stripe's card_error for an invalid or declined number."""
    if not 12 <= len(number) <= 19 or not _luhn(number):
        raise StripeError(
            "Your card number is invalid.", status=402, type="card_error", code="invalid_number"
        )
    if number in DECLINED:
        raise card_declined()


def _brand(number: str) -> str:
    """The card brand of a number (``visa``, ``mastercard``...)."""
    return next((brand for prefix, brand in _BRANDS if number.startswith(prefix)), "unknown")


def _new_payment_method(state: EmulatorState, customer_id: str, number: str) -> Obj:
    """A stored card PaymentMethod attached to the customer."""
    brand = _brand(number)
    year = datetime.fromtimestamp(state.now(), UTC).year + 3
    pm = template("payment_method", id=new_id("pm_"), created=state.now(), customer=customer_id)
    pm["card"].update(
        brand=brand,
        display_brand=brand,
        exp_year=year,
        fingerprint=new_id("", 16),
        last4=number[-4:],
        networks={"available": [brand], "preferred": None},
    )
    state.db.payment_methods[pm["id"]] = pm
    return pm


def _flag(members: set[str], customer_id: str, on: bool) -> None:
    """Add the customer to a set of card behaviours, or take them out."""
    if on:
        members.add(customer_id)
    else:
        members.discard(customer_id)


def save_card(
    state: EmulatorState, customer_id: str, card: str | None, *, subscription: Obj | None = None
) -> str | None:
    """Attach a test card as the customer's (and ``subscription``'s) default payment method.

    Returns the new ``pm_...`` id, None when no number was entered; raises the 402 card_error
    of an invalid or declined number. Fires payment_method.attached, customer.updated
    (``invoice_settings``) and, with a subscription, customer.subscription.updated.
    """
    number = digits(card)
    if not number:
        return None
    check_number(number)
    pm = _new_payment_method(state, customer_id, number)
    _flag(state.failing_cards, customer_id, number == FAILS_LATER)
    _flag(state.auth_cards, customer_id, number == REQUIRES_AUTH)
    state.emit("payment_method.attached", pm)
    cus = state.db.customers[customer_id]
    settings = cus["invoice_settings"]
    previous = {"invoice_settings": {"default_payment_method": settings["default_payment_method"]}}
    settings["default_payment_method"] = pm["id"]
    state.emit("customer.updated", cus, previous)
    if subscription is not None:
        set_subscription_default(state, subscription, pm["id"])
    return str(pm["id"])


def set_subscription_default(state: EmulatorState, sub: Obj, pm_id: str) -> None:
    """Make a payment method the subscription's default (customer.subscription.updated)."""
    before = {"default_payment_method": sub["default_payment_method"]}
    sub["default_payment_method"] = pm_id
    state.emit_changes("customer.subscription.updated", sub, before)


def default_payment_method(
    state: EmulatorState, customer_id: str, sub: Obj | None = None
) -> str | None:
    """The payment method a charge uses: the subscription's default, else the customer's."""
    if sub is not None and sub.get("default_payment_method"):
        return str(sub["default_payment_method"])
    cus = state.db.customers.get(customer_id) or {}
    found = (cus.get("invoice_settings") or {}).get("default_payment_method")
    return str(found) if found else None


def outcome(
    state: EmulatorState,
    customer_id: str,
    payment_method: str | None,
    *,
    on_session: bool,
    required: bool,
) -> Outcome:
    """What charging the customer does now.

    ``required``: no payment method on file fails (a trial that ended without one); otherwise
    a customer without a card pays as if they had one (the emulator's leniency). On a hosted
    page (``on_session``) the customer is there: every saved card pays (3-D Secure
    authenticates there). Off session, the failing card declines and the 3-D Secure card
    requires action.
    """
    if payment_method is None and required:
        return "no_payment_method"
    if on_session:
        return "succeeded"
    if customer_id in state.failing_cards:
        return "declined"
    if customer_id in state.auth_cards:
        return "requires_action"
    return "succeeded"
