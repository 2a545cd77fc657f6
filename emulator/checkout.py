"""Checkout sessions (subscription, payment and setup mode) and their completion.

Retrieve and list go through the resource table (``emulator.resources``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import engine, resources
from emulator.customers import new_customer
from emulator.errors import StripeError, invalid, required
from emulator.ids import new_id
from emulator.params import (
    apply_metadata,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    one_of,
    positive_int,
)
from emulator.resources import paginate, respond
from emulator.shapes import Obj, Params
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

DECLINED = {"4000000000000002", "4000000000009995", "4000000000000069", "4000000000000127"}
FAILS_LATER = "4000000000000341"


def _line_items(state: EmulatorState, mode: str, params: Params) -> list[Obj]:
    """Validate line_items into checkout ``item`` objects."""
    raw_items = get_list(params, "line_items")
    if mode != "setup" and not raw_items:
        raise required("line_items")
    items: list[Obj] = []
    for i, raw in enumerate(raw_items):
        param = f"line_items[{i}][price]"
        price = resources.referenced(state, "price", raw, "price", param)
        if not price["active"]:
            raise invalid(f"The price `{price['id']}` is not active.", param=param)
        if mode == "payment" and price["type"] == "recurring":
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param="mode",
            )
        qty = _quantity(raw, price, i)
        amount = int(price.get("unit_amount") or 0) * qty
        prod = state.db.products.get(price["product"]) or {}
        item = template(
            "item",
            id=new_id("li_"),
            amount_subtotal=amount,
            amount_total=amount,
            currency=price["currency"],
            description=prod.get("name"),
            price=copy_json(price),
            quantity=qty,
        )
        items.append(item)
    if mode == "subscription" and not any(i["price"]["type"] == "recurring" for i in items):
        raise invalid(
            "You must provide at least one recurring price in `subscription` mode when using "
            "prices.",
            param="line_items",
        )
    return items


def _quantity(raw: Params, price: Obj, i: int) -> int:
    """``line_items[i][quantity]``: an integer of at least 1, required for licensed prices.

    Stripe's errors: "Quantity is required. Add `quantity` to `line_items[0]`" (``param``
    ``line_items[0]``) and "This value must be greater than or equal to 1."
    (``parameter_invalid_integer``, ``param`` ``line_items[0][quantity]``).
    """
    qty = positive_int(raw, "quantity", f"line_items[{i}][quantity]")
    if qty is not None:
        return qty
    if (price.get("recurring") or {}).get("usage_type") == "metered":
        return 1
    raise invalid(
        f"Quantity is required. Add `quantity` to `line_items[{i}]`", param=f"line_items[{i}]"
    )


def create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/checkout/sessions."""
    mode = one_of(params, "mode", ("payment", "setup", "subscription"), None)
    if mode is None:
        raise required("mode")
    customer = get_str(params, "customer") or None
    if customer:
        resources.get(state, "customer", customer, param="customer", status=400)
    email = get_str(params, "customer_email") or None
    if customer and email:
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    items = _line_items(state, mode, params)
    sub_data = get_dict(params, "subscription_data")
    if sub_data and mode != "subscription":
        raise invalid(
            "You can only specify `subscription_data` in `subscription` mode.",
            param="subscription_data",
        )
    trial_days = get_int(sub_data, "trial_period_days")
    if trial_days is not None and trial_days < 1:
        raise invalid(
            "The trial period must be at least 1 day.",
            param="subscription_data[trial_period_days]",
        )
    success_url = get_str(params, "success_url") or None
    now = state.now()
    expires_at = get_int(params, "expires_at") or now + 24 * 3600
    if expires_at < now + 1800 or expires_at > now + 24 * 3600:
        raise invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            param="expires_at",
        )
    cs_id = resources.new_id("checkout.session")
    total = sum(i["amount_total"] for i in items)
    cs = template(
        "checkout.session",
        id=cs_id,
        allow_promotion_codes=get_bool(params, "allow_promotion_codes"),
        amount_subtotal=total,
        amount_total=0 if trial_days else total,
        billing_address_collection=get_str(params, "billing_address_collection"),
        cancel_url=get_str(params, "cancel_url") or None,
        client_reference_id=get_str(params, "client_reference_id") or None,
        created=now,
        currency=items[0]["currency"] if items else get_str(params, "currency"),
        customer=customer,
        customer_creation=None if customer or mode == "subscription" else "if_required",
        customer_email=email,
        expires_at=expires_at,
        locale=get_str(params, "locale") or None,
        mode=mode,
        payment_status="no_payment_required" if mode == "setup" else "unpaid",
        success_url=success_url,
        url=f"{state.ctx.base_url}/c/pay/{cs_id}",
    )
    apply_metadata(cs, params)
    state.db.checkout_sessions[cs_id] = cs
    state.line_items[cs_id] = items
    state.checkout_internal[cs_id] = {
        "trial_days": trial_days,
        "sub_metadata": {str(k): str(v) for k, v in get_dict(sub_data, "metadata").items()},
        "sub_description": get_str(sub_data, "description"),
    }
    return respond(state, cs, params)


def update(state: EmulatorState, params: Params, cs_id: str) -> Obj:
    """POST /v1/checkout/sessions/{id}: metadata."""
    cs = resources.get(state, "checkout.session", cs_id)
    apply_metadata(cs, params)
    return respond(state, cs, params)


def expire(state: EmulatorState, params: Params, cs_id: str) -> Obj:
    """POST /v1/checkout/sessions/{id}/expire."""
    cs = resources.get(state, "checkout.session", cs_id)
    if cs["status"] != "open":
        raise invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. '
            f'This session has a status of "{cs["status"]}".',
        )
    engine.expire_checkout(state, cs)
    return respond(state, cs, params)


def line_items(state: EmulatorState, params: Params, cs_id: str) -> Obj:
    """GET /v1/checkout/sessions/{id}/line_items."""
    resources.get(state, "checkout.session", cs_id)
    items = list(reversed(state.line_items.get(cs_id, [])))
    url = f"/v1/checkout/sessions/{cs_id}/line_items"
    return paginate(state, items, params, url, "line_item")


def check_open(state: EmulatorState, cs: Obj) -> None:
    """Raise unless the session can still be paid (expires sessions past expires_at)."""
    if cs["status"] == "open" and cs["expires_at"] <= state.now():
        engine.expire_checkout(state, cs)
    if cs["status"] != "open":
        raise StripeError(f"This Checkout Session is {cs['status']}.", status=410)


def pay(state: EmulatorState, cs: Obj, email: str | None, card: str | None) -> str | None:
    """Complete a session as the hosted page's Pay button does; returns the redirect URL.

    Fires customer.created (when needed), customer.subscription.created, invoice events and
    checkout.session.completed, in Stripe's order.
    """
    check_open(state, cs)
    number = "".join(ch for ch in (card or "") if ch.isdigit())
    if number in DECLINED:
        raise StripeError(
            "Your card was declined.", status=402, type="card_error", code="card_declined"
        )
    cus_id = cs["customer"]
    if cus_id is None:
        cus = new_customer(state, {"email": email or cs.get("customer_email") or ""})
        cus_id = cus["id"]
        cs["customer"] = cus_id
    cus = state.db.customers[cus_id]
    if email and not cus.get("email"):
        cus["email"] = email
        state.emit("customer.updated", cus, {"email": None})
    if number and number != FAILS_LATER:
        state.failing_cards.discard(cus_id)
    internal = state.checkout_internal.get(cs["id"], {})
    due_now = cs["mode"] == "payment" or (
        cs["mode"] == "subscription" and not internal.get("trial_days")
    )
    if due_now and cs["amount_subtotal"] and cus_id in state.failing_cards:
        raise StripeError(
            "Your card was declined.", status=402, type="card_error", code="card_declined"
        )
    cs["customer_details"] = {
        "address": cus.get("address"),
        "business_name": None,
        "email": cus.get("email") or email,
        "individual_name": None,
        "name": cus.get("name"),
        "phone": cus.get("phone"),
        "tax_exempt": cus.get("tax_exempt") or "none",
        "tax_ids": [],
    }
    items = state.line_items.get(cs["id"], [])
    if cs["mode"] == "subscription":
        trial_days = internal.get("trial_days")
        trial_end = state.now() + trial_days * engine.DAY if trial_days else None
        prices: list[tuple[Obj, int, Obj]] = [(i["price"], int(i["quantity"]), {}) for i in items]
        sub = engine.create_subscription(
            state,
            cus_id,
            prices,
            trial_end=trial_end,
            metadata=internal.get("sub_metadata"),
            description=internal.get("sub_description"),
        )
        cs["subscription"] = sub["id"]
        cs["invoice"] = sub["latest_invoice"]
        inv = state.db.invoices[sub["latest_invoice"]]
        cs["payment_status"] = "paid" if inv["amount_paid"] > 0 else "no_payment_required"
        cs["amount_total"] = inv["amount_paid"]
    elif cs["mode"] == "payment":
        cs["payment_status"] = "paid"
        cs["payment_intent"] = new_id("pi_")
    else:
        cs["setup_intent"] = new_id("seti_")
    if number == FAILS_LATER:
        state.failing_cards.add(cus_id)
    cs["status"] = "complete"
    cs["url"] = None
    state.emit("checkout.session.completed", cs)
    success: str | None = cs["success_url"]
    if success:
        success = success.replace("{CHECKOUT_SESSION_ID}", cs["id"])
    return success


def cancel(state: EmulatorState, cs: Obj) -> str | None:
    """The hosted page's Cancel (back) link target."""
    url: str | None = cs["cancel_url"]
    return url
