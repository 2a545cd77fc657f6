"""The subscription engine: subscriptions, invoices, payments, renewals and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emulator import cards, coupons, entitlements, payments, resources, schedules
from emulator.errors import StripeError, invalid
from emulator.ids import new_id
from emulator.periods import add_interval, day_of
from emulator.shapes import Obj
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Line = tuple[Obj, int, int, int, bool, str]  # (item, amount, start, end, proration, text)
DAY = 86400
RETRY_DAYS = (3, 5, 7)  # Stripe's custom retry schedule: days after each failed attempt
LIVE = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")


# -- helpers ------------------------------------------------------------------


def period(sub: Obj) -> tuple[int, int]:
    """The current period (start, end) of a subscription's first item."""
    items = sub["items"]["data"]
    if not items:
        return sub["created"], sub["created"]
    return int(items[0]["current_period_start"]), int(items[0]["current_period_end"])


def _recurring(item: Obj) -> Obj:
    """The recurring hash of an item's price."""
    rec: Obj = item["price"].get("recurring") or {"interval": "month", "interval_count": 1}
    return rec


def _amount(item: Obj) -> int:
    """An item's amount per period."""
    return int(item["price"].get("unit_amount") or 0) * int(item.get("quantity") or 1)


def snapshot(sub: Obj) -> Obj:
    """A copy for computing previous_attributes."""
    result: Obj = copy_json(sub)
    return result


def emit_updated(state: EmulatorState, sub: Obj, before: Obj) -> None:
    """Fire customer.subscription.updated when something changed."""
    state.emit_changes("customer.subscription.updated", sub, before)


def set_status(state: EmulatorState, sub: Obj, status: str, **fields: Any) -> None:
    """Move a subscription to ``status`` (and ``fields``): customer.subscription.updated."""
    before = snapshot(sub)
    sub.update(status=status, **fields)
    emit_updated(state, sub, before)


# -- subscription items -----------------------------------------------------------


def new_item(state: EmulatorState, sub_id: str, price: Obj, quantity: int, meta: Obj) -> Obj:
    """A subscription item for a price."""
    item = template(
        "subscription_item",
        id=new_id("si_", 14),
        created=state.now(),
        metadata=dict(meta),
        price=copy_json(price),
        quantity=quantity,
        subscription=sub_id,
    )
    return item


def set_period(sub: Obj, start: int, end: int) -> None:
    """Set every item's current period."""
    for item in sub["items"]["data"]:
        item["current_period_start"] = start
        item["current_period_end"] = end


def next_period_end(state: EmulatorState, sub: Obj, start: int) -> int:
    """The end of a period beginning at start (calendar-anchored)."""
    items = sub["items"]["data"]
    if not items:
        return start
    rec = _recurring(items[0])
    anchor = state.sub_internal.get(sub["id"], {}).get("anchor_day")
    return add_interval(start, rec["interval"], int(rec.get("interval_count") or 1), anchor)


# -- invoices ---------------------------------------------------------------------


def new_invoice(state: EmulatorState, sub: Obj, reason: str, lines: list[Line]) -> Obj:
    """A draft invoice for a subscription; lines are (item, amount, start, end, proration, text)."""
    now = state.now()
    cus = state.db.customers.get(sub["customer"]) or {}
    inv_id = resources.new_id("invoice")
    line_objs: list[Obj] = []
    for item, amount, start, end, proration, text in lines:
        line = template(
            "line_item",
            id=new_id("il_"),
            amount=amount,
            currency=sub["currency"],
            description=text,
            invoice=inv_id,
            metadata=dict(sub.get("metadata") or {}),
            period={"start": start, "end": end},
            quantity=item.get("quantity") or 1,
            subscription=sub["id"],
            subtotal=amount,
            quantity_decimal=str(item.get("quantity") or 1),
            parent={
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": item["id"],
                },
                "type": "subscription_item_details",
            },
            pricing={
                "price_details": {
                    "price": item["price"]["id"],
                    "product": item["price"]["product"],
                },
                "type": "price_details",
                "unit_amount_decimal": item["price"].get("unit_amount_decimal"),
            },
        )
        line_objs.append(line)
    total = sum(line["amount"] for line in line_objs)
    due = max(0, total)  # a negative total is a credit, never an amount due
    start, end = (lines[0][2], lines[0][3]) if lines else (now, now)
    inv = template(
        "invoice",
        id=inv_id,
        amount_due=due,
        amount_remaining=due,
        billing_reason=reason,
        created=now,
        currency=sub["currency"],
        customer=sub["customer"],
        customer_address=cus.get("address"),
        customer_email=cus.get("email"),
        customer_name=cus.get("name"),
        customer_phone=cus.get("phone"),
        customer_tax_exempt=cus.get("tax_exempt") or "none",
        hosted_invoice_url=f"{state.ctx.base_url}/i/{inv_id}",
        parent={
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub.get("metadata") or {}),
                "subscription": sub["id"],
            },
            "type": "subscription_details",
        },
        period_start=start if reason != "subscription_create" else now,
        period_end=end if reason != "subscription_create" else now,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
    )
    inv["lines"].update(data=line_objs, url=f"/v1/invoices/{inv_id}/lines")
    coupons.discount_invoice(state, sub, inv)
    state.db.invoices[inv_id] = inv
    sub["latest_invoice"] = inv_id
    return inv


def finalize(state: EmulatorState, inv: Obj) -> None:
    """Draft to open: number and finalized_at; fires invoice.created and invoice.finalized."""
    now = state.now()
    state.emit("invoice.created", inv)
    cus = state.db.customers.get(inv["customer"])
    if cus is not None:
        seq = int(cus.get("next_invoice_sequence") or 1)
        inv["number"] = f"{cus.get('invoice_prefix') or 'EMU'}-{seq:04d}"
        cus["next_invoice_sequence"] = seq + 1
    inv["status"] = "open"
    inv["effective_at"] = now
    inv["status_transitions"]["finalized_at"] = now
    state.emit("invoice.finalized", inv)


def invoice_subscription(state: EmulatorState, inv: Obj) -> Obj | None:
    """The subscription an invoice bills, if any."""
    parent = (inv.get("parent") or {}).get("subscription_details") or {}
    return state.db.subscriptions.get(str(parent.get("subscription")))


def charge_outcome(
    state: EmulatorState, inv: Obj, *, on_session: bool
) -> tuple[cards.Outcome, str | None]:
    """What charging an invoice now does (see ``cards.outcome``), and the payment method used.

    A subscription whose trial ended without a payment method needs one (``needs_pm``).
    """
    sub = invoice_subscription(state, inv)
    pm = cards.default_payment_method(state, inv["customer"], sub)
    required = sub is not None and bool(state.sub_internal.get(sub["id"], {}).get("needs_pm"))
    result = cards.outcome(state, inv["customer"], pm, on_session=on_session, required=required)
    return result, pm


def attempt_payment(state: EmulatorState, inv: Obj, *, on_session: bool = False) -> bool:
    """Charge an open invoice through its PaymentIntent (off session: a renewal or retry).

    Fires invoice.paid + invoice.payment_succeeded, or invoice.payment_failed (then
    invoice.payment_action_required for 3-D Secure) with the next retry scheduled.
    """
    if inv["amount_due"] > 0:
        result, pm = charge_outcome(state, inv, on_session=on_session)
        payments.confirm(state, inv, result, pm)
        if result != "succeeded":
            _failed(state, inv, result)
            return False
    mark_paid(state, inv)
    return True


def _retries(state: EmulatorState, inv: Obj) -> list[str]:
    """The open invoices of the invoice's subscription awaiting a retry (ids, in order)."""
    sub = invoice_subscription(state, inv)
    if sub is None:
        return []
    found: list[str] = state.sub_internal.setdefault(sub["id"], {}).setdefault("retries", [])
    return found


def _failed(state: EmulatorState, inv: Obj, result: str) -> None:
    """Count a failed attempt, schedule the next (Stripe's retry schedule), fire the events.

    Retries come 3, 5 and 7 days after the previous attempt (4 attempts in all); the first
    invoice of a subscription is never retried (the subscription stays incomplete).
    """
    inv["attempted"] = True
    inv["attempt_count"] += 1
    retries = _retries(state, inv)
    n = inv["attempt_count"]
    if inv["billing_reason"] != "subscription_create" and n <= len(RETRY_DAYS):
        inv["next_payment_attempt"] = state.now() + RETRY_DAYS[n - 1] * DAY
        if inv["id"] not in retries:
            retries.append(inv["id"])
    else:
        inv["next_payment_attempt"] = None
        if inv["id"] in retries:
            retries.remove(inv["id"])
    state.emit("invoice.payment_failed", inv)
    if result == "requires_action":
        state.emit("invoice.payment_action_required", inv)


def mark_paid(state: EmulatorState, inv: Obj) -> None:
    """An invoice is paid: invoice.paid and invoice.payment_succeeded; its retries stop."""
    now = state.now()
    retries = _retries(state, inv)
    if inv["id"] in retries:
        retries.remove(inv["id"])
    inv.update(
        status="paid",
        amount_paid=inv["amount_due"],
        amount_remaining=0,
        attempted=True,
        attempt_count=inv["attempt_count"] + (1 if inv["amount_due"] > 0 else 0),
        auto_advance=False,
        ending_balance=0,
        next_payment_attempt=None,
    )
    inv["status_transitions"]["paid_at"] = now
    state.emit("invoice.paid", inv)
    state.emit("invoice.payment_succeeded", inv)


TIMES = "\u00d7"
"""The times sign Stripe writes between a quantity and a product's name."""


def product_name(state: EmulatorState, price: Obj) -> str:
    """The name of the price's product (its id when the product is gone)."""
    return str((state.db.products.get(price["product"]) or {}).get("name", price["product"]))


def seats_label(quantity: int, name: str) -> str:
    """``3 x Business`` with a times sign, the name alone for a quantity of 1."""
    return f"{quantity} {TIMES} {name}" if quantity != 1 else name


def describe(item: Obj, state: EmulatorState) -> str:
    """Stripe-like line description: ``1 x Pro (at $20.00 / month)`` with a times sign."""
    price = item["price"]
    rec = price.get("recurring") or {}
    amount = (price.get("unit_amount") or 0) / 100
    return (
        f"{item.get('quantity') or 1} {TIMES} {product_name(state, price)} "
        f"(at ${amount:,.2f} / {rec.get('interval', 'one-time')})"
    )


def cycle_lines(state: EmulatorState, sub: Obj, start: int, end: int, trial: bool) -> list[Line]:
    """The invoice lines for one period of every item."""
    out: list[Line] = []
    for item in sub["items"]["data"]:
        if trial:
            text = f"Trial period for {product_name(state, item['price'])}"
            out.append((item, 0, start, end, False, text))
        else:
            out.append((item, _amount(item), start, end, False, describe(item, state)))
    return out


# -- create -----------------------------------------------------------------------


def create_subscription(
    state: EmulatorState,
    customer_id: str,
    prices: list[tuple[Obj, int, Obj]],
    *,
    trial_end: int | None = None,
    metadata: Obj | None = None,
    description: str | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: int | None = None,
    fields: Obj | None = None,
    prepare: Callable[[Obj], None] | None = None,
    on_session: bool = False,
) -> Obj:
    """Create a subscription, its first invoice, and charge it.

    ``fields`` are set on the subscription (``default_payment_method``, ``trial_settings``);
    ``prepare`` runs on it before its first invoice (a discount); ``on_session``: the customer
    pays on a hosted page (Checkout), where 3-D Secure authenticates.
    Fires customer.subscription.created, invoice.created, invoice.finalized and
    invoice.paid + invoice.payment_succeeded (or invoice.payment_failed: status incomplete).
    """
    now = state.now()
    sub_id = resources.new_id("subscription")
    first = prices[0][0]
    sub = template(
        "subscription",
        id=sub_id,
        billing_cycle_anchor=trial_end or now,
        created=now,
        currency=first["currency"],
        customer=customer_id,
        description=description,
        metadata=dict(metadata or {}),
        start_date=now,
        status="trialing" if trial_end else "active",
        trial_end=trial_end,
        trial_start=now if trial_end else None,
        **(fields or {}),
    )
    items = [new_item(state, sub_id, p, q, m) for p, q, m in prices]
    sub["items"].update(data=items, url=f"/v1/subscription_items?subscription={sub_id}")
    state.sub_internal[sub_id] = {"anchor_day": day_of(trial_end or now)}
    end = trial_end if trial_end else next_period_end(state, sub, now)
    set_period(sub, now, end)
    if cancel_at_period_end:
        sub["cancel_at_period_end"] = True
        sub["cancel_at"] = end
        sub["canceled_at"] = now
    elif cancel_at:
        sub["cancel_at"] = cancel_at
    state.db.subscriptions[sub_id] = sub
    if prepare is not None:
        prepare(sub)
    inv = new_invoice(
        state, sub, "subscription_create", cycle_lines(state, sub, now, end, bool(trial_end))
    )
    paid = inv["amount_due"] == 0 or charge_outcome(state, inv, on_session=on_session)[0] == (
        "succeeded"
    )
    if not paid:
        sub["status"] = "incomplete"
    state.emit("customer.subscription.created", sub)
    finalize(state, inv)
    attempt_payment(state, inv, on_session=on_session)
    return sub


# -- cancel -----------------------------------------------------------------------


def cancel_now(
    state: EmulatorState,
    sub: Obj,
    *,
    reason: str | None = "cancellation_requested",
    comment: str | None = None,
    feedback: str | None = None,
    at: int | None = None,
) -> None:
    """Cancel immediately: status canceled, ended_at; fires customer.subscription.deleted."""
    when = at if at is not None else state.now()
    sub["status"] = "canceled"
    sub["ended_at"] = when
    if sub["canceled_at"] is None:
        sub["canceled_at"] = when
    details = sub["cancellation_details"]
    if details.get("reason") is None:
        details["reason"] = reason
    if comment is not None:
        details["comment"] = comment or None
    if feedback is not None:
        details["feedback"] = feedback or None
    state.emit("customer.subscription.deleted", sub)
    schedules.on_subscription_canceled(state, sub)


def schedule_cancel(state: EmulatorState, sub: Obj, at_period_end: bool) -> None:
    """Set or clear cancel_at_period_end (cancel_at follows the period end)."""
    if at_period_end:
        sub["cancel_at_period_end"] = True
        sub["cancel_at"] = period(sub)[1]
        sub["canceled_at"] = state.now()
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    else:
        sub["cancel_at_period_end"] = False
        sub["cancel_at"] = None
        sub["canceled_at"] = None
        sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}


def set_cancel_at(state: EmulatorState, sub: Obj, when: int | None) -> None:
    """Schedule cancellation at a timestamp (None clears it)."""
    if when is None:
        schedule_cancel(state, sub, False)
        return
    if when <= state.now():
        raise invalid("cancel_at must be in the future.", param="cancel_at")
    sub["cancel_at"] = when
    sub["cancel_at_period_end"] = when == period(sub)[1]
    sub["canceled_at"] = state.now()
    sub["cancellation_details"]["reason"] = "cancellation_requested"


# -- plan changes -------------------------------------------------------------------


def prorate(amount: int, now: int, start: int, end: int) -> int:
    """``amount`` x remaining / period length, in seconds, rounded half up to whole cents."""
    length = end - start
    if length <= 0:
        return 0
    remaining = min(length, max(0, end - now))
    return (2 * amount * remaining + length) // (2 * length)


def _interval(items: list[Obj]) -> tuple[str, int] | None:
    """(interval, interval_count) of the first item's price."""
    if not items:
        return None
    rec = _recurring(items[0])
    return str(rec["interval"]), int(rec.get("interval_count") or 1)


def _same(a: Obj | None, b: Obj | None) -> bool:
    """Whether two items bill the same price and quantity."""
    return (
        a is not None
        and b is not None
        and a["price"]["id"] == b["price"]["id"]
        and (a.get("quantity") or 1) == (b.get("quantity") or 1)
    )


def _proration_text(state: EmulatorState, kind: str, item: Obj, now: int) -> str:
    """Stripe's proration description: ``Unused time on 3 x Business after 06 Dec 2026``
    (with a times sign).

    The quantity shows when it is not 1 (``Remaining time on Gold plan after 01 Sep 2020``).
    """
    what = seats_label(int(item.get("quantity") or 1), product_name(state, item["price"]))
    when = datetime.fromtimestamp(now, UTC).strftime("%d %b %Y")
    return f"{kind} time on {what} after {when}"


def _credit(state: EmulatorState, item: Obj, now: int, start: int, end: int) -> Line:
    """The credit for the unused time on an item's old price and quantity."""
    amount = -prorate(_amount(item), now, start, end)
    return (item, amount, now, end, True, _proration_text(state, "Unused", item, now))


def _charge(state: EmulatorState, item: Obj, now: int, start: int, end: int) -> Line:
    """The charge for the rest of the period on an item's new price and quantity."""
    amount = prorate(_amount(item), now, start, end)
    return (item, amount, now, end, True, _proration_text(state, "Remaining", item, now))


def switch_lines(
    state: EmulatorState, sub: Obj, old_items: list[Obj], old_period: tuple[int, int], behavior: str
) -> list[Line]:
    """The lines Stripe would invoice now for going from ``old_items`` to ``sub``'s items."""
    if sub["status"] == "trialing":
        return []
    now = state.now()
    start, end = old_period
    items = sub["items"]["data"]
    if _interval(old_items) != _interval(items):  # the cycle restarts: credits + a new period
        credits = (
            [] if behavior == "none" else [_credit(state, i, now, start, end) for i in old_items]
        )
        return credits + cycle_lines(state, sub, now, _restart_end(sub, now), False)
    if behavior == "none":
        return []
    # same interval: credit unused time on changed old items, charge the rest on changed new ones
    old = {i["id"]: i for i in old_items}
    new = {i["id"]: i for i in items}
    lines = [
        _credit(state, i, now, start, end) for i in old_items if not _same(i, new.get(i["id"]))
    ]
    lines += [_charge(state, i, now, start, end) for i in items if not _same(old.get(i["id"]), i)]
    return lines


def _restart_end(sub: Obj, now: int) -> int:
    """The end of a period starting now with the billing cycle anchored at now."""
    interval, count = _interval(sub["items"]["data"]) or ("month", 1)
    return add_interval(now, interval, count, day_of(now))


def _restart_cycle(state: EmulatorState, sub: Obj) -> None:
    """Anchor the billing cycle at now and start a new period (an interval change)."""
    now = state.now()
    state.sub_internal.setdefault(sub["id"], {})["anchor_day"] = day_of(now)
    sub["billing_cycle_anchor"] = now
    new_end = _restart_end(sub, now)
    set_period(sub, now, new_end)
    if sub["cancel_at_period_end"]:
        sub["cancel_at"] = new_end


def _apply_items(state: EmulatorState, sub: Obj, changes: list[Obj]) -> None:
    """Apply item changes (id/price/quantity/deleted) to ``sub`` in place."""
    start, end = period(sub)
    for change in changes:
        item_id = change.get("id")
        price: Obj | None = change.get("price")
        qty = change.get("quantity")
        if item_id:
            item = next((i for i in sub["items"]["data"] if i["id"] == item_id), None)
            if item is None:
                raise invalid(
                    f"Subscription item {item_id} does not belong to subscription {sub['id']}.",
                    param="items",
                )
            if change.get("deleted"):
                sub["items"]["data"].remove(item)
                continue
            if price is not None:
                item["price"] = copy_json(price)
            if qty is not None:
                item["quantity"] = qty
        else:
            if price is None:
                raise invalid("You must specify a price for new items.", param="items")
            if any(i["price"]["id"] == price["id"] for i in sub["items"]["data"]):
                raise invalid(
                    "Cannot add multiple subscription items with the same price.",
                    param="items",
                )
            item = new_item(state, sub["id"], price, qty or 1, change.get("metadata") or {})
            item["current_period_start"], item["current_period_end"] = start, end
            sub["items"]["data"].append(item)
    if not sub["items"]["data"]:
        raise invalid("A subscription must have at least one item.", param="items")


@dataclass(frozen=True)
class PreviewLine:
    """One line of an invoice preview, as the invoice would carry it."""

    description: str
    amount: int  # cents; negative for a credit
    quantity: int
    price: str


@dataclass(frozen=True)
class Preview:
    """Stripe's invoice preview of a change now: its lines and their total."""

    lines: tuple[PreviewLine, ...]

    @property
    def total(self) -> int:
        """The sum of the lines (negative: a credit)."""
        return sum(line.amount for line in self.lines)

    @property
    def amount_due(self) -> int:
        """What is due now: the total, never below 0 (a negative total is a credit)."""
        return max(0, self.total)


def _preview_line(line: Line) -> PreviewLine:
    """A preview line of an invoice line tuple."""
    item, amount, _, _, _, text = line
    return PreviewLine(
        description=text,
        amount=amount,
        quantity=int(item.get("quantity") or 1),
        price=str(item["price"]["id"]),
    )


def preview_change(
    state: EmulatorState, sub: Obj, changes: list[Obj], behavior: str = "create_prorations"
) -> Preview:
    """The lines and total of Stripe's invoice preview for a change now (see switch_lines).

    The same lines ``change_items`` invoices with, computed on a copy of the subscription.
    """
    after: Obj = copy_json(sub)
    _apply_items(state, after, changes)
    lines = switch_lines(state, after, sub["items"]["data"], period(sub), behavior)
    return Preview(tuple(_preview_line(line) for line in lines))


def change_items(
    state: EmulatorState,
    sub: Obj,
    changes: list[Obj],
    proration_behavior: str = "create_prorations",
) -> Obj | None:
    """Apply item changes; returns the invoice to charge now, if any (see switch_lines)."""
    if not changes:
        return None
    old_items: list[Obj] = copy_json(sub["items"]["data"])
    old_period = period(sub)
    _apply_items(state, sub, changes)
    lines = switch_lines(state, sub, old_items, old_period, proration_behavior)
    if sub["status"] == "trialing":
        return None
    if _interval(old_items) != _interval(sub["items"]["data"]):
        _restart_cycle(state, sub)
        return new_invoice(state, sub, "subscription_update", lines)
    # same interval: only always_invoice bills now (no pending items for the next invoice)
    if proration_behavior == "always_invoice" and any(line[1] for line in lines):
        return new_invoice(state, sub, "subscription_update", lines)
    return None


def settle(state: EmulatorState, sub: Obj, inv: Obj) -> None:
    """Finalize and charge an invoice raised by a change; failed payment makes past_due."""
    finalize(state, inv)
    if not attempt_payment(state, inv) and sub["status"] == "active":
        set_status(state, sub, "past_due")


# -- recovery -----------------------------------------------------------------------


def recovered(state: EmulatorState, inv: Obj) -> None:
    """A paid invoice's past_due, unpaid or incomplete subscription becomes active."""
    sub = invoice_subscription(state, inv)
    if sub is not None and sub["status"] in ("past_due", "unpaid", "incomplete"):
        set_status(state, sub, "active")


def pay_open_invoices(state: EmulatorState, customer_id: str) -> int:
    """Pay the open invoices of a customer's live subscriptions now, on session (a card was
    just saved on a hosted page); recovered subscriptions become active."""
    paid = 0
    for inv in list(state.db.invoices.values()):
        sub = invoice_subscription(state, inv)
        if inv["customer"] != customer_id or inv["status"] != "open":
            continue
        if sub is not None and sub["status"] in resources.ENDED:
            continue
        if attempt_payment(state, inv, on_session=True):
            paid += 1
            recovered(state, inv)
    return paid


def _retry(state: EmulatorState, sub: Obj) -> None:
    """Run the payment retries due now; after the last failed one the subscription is
    canceled (Stripe's default when all retries fail)."""
    now = state.now()
    for inv_id in list(state.sub_internal.get(sub["id"], {}).get("retries", [])):
        inv = state.db.invoices.get(inv_id)
        if inv is None or inv["status"] != "open" or int(inv["next_payment_attempt"] or 0) > now:
            continue
        if attempt_payment(state, inv):
            recovered(state, inv)
        elif inv["next_payment_attempt"] is None:
            cancel_now(state, sub, reason="payment_failed")
            return


def _retry_times(state: EmulatorState, sub: Obj) -> list[tuple[int, int, str]]:
    """When the subscription's open invoices are retried next."""
    out: list[tuple[int, int, str]] = []
    for inv_id in state.sub_internal.get(sub["id"], {}).get("retries", []):
        inv = state.db.invoices.get(inv_id)
        if inv is not None and inv["status"] == "open" and inv["next_payment_attempt"]:
            out.append((int(inv["next_payment_attempt"]), 1, "retry"))
    return out


def _trial_ends_without_card(state: EmulatorState, sub: Obj) -> bool:
    """A trial ends with no payment method on file: ``trial_settings.end_behavior``.

    ``cancel`` cancels it and ``pause`` pauses it (True: no invoice); ``create_invoice``
    invoices the first period, whose payment fails until a card is saved (False).
    """
    if cards.default_payment_method(state, sub["customer"], sub) is not None:
        return False
    end_behavior = (sub.get("trial_settings") or {}).get("end_behavior") or {}
    behavior = end_behavior.get("missing_payment_method") or "create_invoice"
    if behavior == "cancel":
        cancel_now(state, sub, at=period(sub)[1])
        return True
    if behavior == "pause":
        _pause_for_card(state, sub)
        return True
    state.sub_internal.setdefault(sub["id"], {})["needs_pm"] = True
    return False


def _pause_for_card(state: EmulatorState, sub: Obj) -> None:
    """Pause a subscription until a payment method is saved: customer.subscription.paused,
    customer.subscription.updated."""
    before = snapshot(sub)
    sub["status"] = "paused"
    state.sub_internal.setdefault(sub["id"], {})["paused_for_pm"] = True
    state.emit("customer.subscription.paused", sub)
    emit_updated(state, sub, before)


def resume(state: EmulatorState, sub: Obj, *, on_session: bool = False) -> None:
    """Resume a paused subscription as Stripe does (``billing_cycle_anchor=now``): a new
    period from now, invoiced and charged.

    Fires customer.subscription.resumed, customer.subscription.updated, then the invoice's
    events (a failed payment: past_due and the retry schedule).
    """
    before = snapshot(sub)
    sub["status"] = "active"
    state.sub_internal.setdefault(sub["id"], {}).pop("paused_for_pm", None)
    _restart_cycle(state, sub)
    start, end = period(sub)
    inv = new_invoice(state, sub, "subscription_update", cycle_lines(state, sub, start, end, False))
    state.emit("customer.subscription.resumed", sub)
    emit_updated(state, sub, before)
    finalize(state, inv)
    if not attempt_payment(state, inv, on_session=on_session):
        set_status(state, sub, "past_due")


def resume_paused(state: EmulatorState, customer_id: str, *, on_session: bool = False) -> None:
    """Resume the customer's subscriptions paused for want of a payment method (one was
    just saved)."""
    for sub in list(state.db.subscriptions.values()):
        internal = state.sub_internal.get(sub["id"], {})
        if sub["customer"] == customer_id and sub["status"] == "paused":
            if internal.get("paused_for_pm"):
                resume(state, sub, on_session=on_session)


# -- the clock ----------------------------------------------------------------------


Due = tuple[int, int, Obj, str]


def _subscription_due(state: EmulatorState, sub: Obj) -> list[tuple[int, int, str]]:
    """A live subscription's next transitions: (time, priority, action)."""
    internal = state.sub_internal.setdefault(sub["id"], {})
    if sub["status"] == "incomplete":
        return [(sub["created"] + 23 * 3600, 1, "expire")]
    cands: list[tuple[int, int, str]] = _retry_times(state, sub)
    if sub["cancel_at"]:
        cands.append((int(sub["cancel_at"]), 2, "cancel"))
    if sub["status"] == "paused":  # no renewals until resumed
        return cands
    cands.append((period(sub)[1], 3, "cycle"))
    if sub["status"] == "trialing" and sub["trial_end"] and not internal.get("twe"):
        twe = int(sub["trial_end"]) - 3 * DAY
        if twe > sub["created"]:
            cands.append((twe, 4, "trial_will_end"))
    return cands


def _all_due(state: EmulatorState) -> list[Due]:
    """Every pending transition: checkout sessions expiring, subscriptions moving on."""
    due: list[Due] = [
        (int(cs["expires_at"]), 0, cs, "checkout_expire")
        for cs in state.db.checkout_sessions.values()
        if cs["status"] == "open"
    ]
    for sub in state.db.subscriptions.values():
        if sub["status"] in LIVE:
            due.extend(
                (when, prio, sub, action) for when, prio, action in _subscription_due(state, sub)
            )
    due.extend(schedules.due(state))  # phase starts and schedule ends
    return due


def _next_due(state: EmulatorState, target: int) -> Due | None:
    """The earliest transition at or before target: (time, priority, object, action)."""
    due = [d for d in _all_due(state) if d[0] <= target]
    return min(due, key=lambda d: (d[0], d[1])) if due else None


def expire_checkout(state: EmulatorState, cs: Obj) -> None:
    """Mark a Checkout Session expired and fire checkout.session.expired."""
    cs["status"] = "expired"
    cs["url"] = None
    state.emit("checkout.session.expired", cs)


def _cycle(state: EmulatorState, sub: Obj, before: Obj | None = None) -> None:
    """Start the next period: invoice it and charge it (``before``: the subscription before a
    change that comes with the renewal, e.g. a schedule's new phase). A trial ending without a
    payment method follows its ``trial_settings`` (``_trial_ends_without_card``)."""
    if sub["status"] == "trialing" and _trial_ends_without_card(state, sub):
        return
    before = snapshot(sub) if before is None else before
    was_trial = sub["status"] == "trialing"
    start = period(sub)[1]
    end = next_period_end(state, sub, start)
    set_period(sub, start, end)
    if was_trial:
        sub["status"] = "active"
    if sub["cancel_at_period_end"]:
        sub["cancel_at"] = end
    inv = new_invoice(state, sub, "subscription_cycle", cycle_lines(state, sub, start, end, False))
    emit_updated(state, sub, before)
    finalize(state, inv)
    if not attempt_payment(state, inv) and sub["status"] != "past_due":
        set_status(state, sub, "past_due")


SCHEDULE_BILLING = schedules.Billing(
    apply=_apply_items,
    renew=_cycle,
    change=change_items,
    settle=settle,
    cancel=lambda state, sub: cancel_now(state, sub),
)
"""What a subscription schedule's phase change does to its subscription."""


def advance(state: EmulatorState, seconds: int) -> int:
    """Move the clock forward: checkout expiries, trial ends, renewals, cancellations, in order
    (each followed by the entitlement summaries it calls for)."""
    if seconds < 0:
        raise StripeError("The clock can only move forward.", param="seconds")
    target = state.now() + seconds
    for _ in range(100_000):
        due = _next_due(state, target)
        if due is None:
            break
        when, _, obj, action = due
        if when > state.now():
            state.set_now(when)
        if action == "checkout_expire":
            expire_checkout(state, obj)
        elif action == "cancel":
            cancel_now(state, obj, at=when)
        elif action == "cycle":
            _cycle(state, obj)
        elif action == "retry":
            _retry(state, obj)
        elif action in schedules.ACTIONS:
            schedules.run(state, obj, action, SCHEDULE_BILLING)
        elif action == "expire":
            set_status(state, obj, "incomplete_expired", ended_at=when)
        else:
            state.sub_internal[obj["id"]]["twe"] = True
            state.emit("customer.subscription.trial_will_end", obj)
        entitlements.sync(state)  # at the time of the change
    state.set_now(target)
    return target
