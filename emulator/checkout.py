"""Checkout sessions (subscription, payment and setup mode) and their completion.

Retrieve and list go through the resource table (``emulator.resources``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emulator import cards, coupons, engine, resources
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

_EU = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


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
    options = _options(state, params, mode, customer)
    cs_id = resources.new_id("checkout.session")
    total = sum(i["amount_total"] for i in items)
    cs = template(
        "checkout.session",
        id=cs_id,
        allow_promotion_codes=get_bool(params, "allow_promotion_codes"),
        amount_subtotal=total,
        amount_total=0 if trial_days else total,
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
        **options,
    )
    apply_metadata(cs, params)
    state.db.checkout_sessions[cs_id] = cs
    state.line_items[cs_id] = items
    state.checkout_internal[cs_id] = {
        "trial_days": trial_days,
        "sub_metadata": {str(k): str(v) for k, v in get_dict(sub_data, "metadata").items()},
        "sub_description": get_str(sub_data, "description"),
        "trial_settings": _trial_settings(sub_data),
        "customer_update": {str(k): str(v) for k, v in get_dict(params, "customer_update").items()},
    }
    return respond(state, cs, params)


def _options(state: EmulatorState, params: Params, mode: str, customer: str | None) -> Obj:
    """The session's payment method, tax and address collection options (Stripe's checks)."""
    collection = one_of(params, "payment_method_collection", ("always", "if_required"), "always")
    if "payment_method_collection" in params and mode != "subscription":
        raise invalid(
            "`payment_method_collection` can only be set in `subscription` mode.",
            param="payment_method_collection",
        )
    update = get_dict(params, "customer_update")
    if update and not customer:
        raise invalid(
            "`customer_update` can only be used with `customer`.", param="customer_update"
        )
    tax_ids = get_dict(params, "tax_id_collection")
    tax_ids_on = bool(get_bool(tax_ids, "enabled", False))
    options: Obj = {
        "automatic_tax": _automatic_tax(state, params, customer, update),
        "billing_address_collection": one_of(
            params, "billing_address_collection", ("auto", "required"), None
        ),
        "payment_method_collection": collection,
    }
    if "tax_id_collection" in params:  # shown when asked for (the example object lacks it)
        required_ = get_str(tax_ids, "required") or "never"
        options["tax_id_collection"] = {"enabled": tax_ids_on, "required": required_}
    return options


def _automatic_tax(
    state: EmulatorState, params: Params, customer: str | None, update: Params
) -> Obj:
    """``automatic_tax``: Stripe needs an address, the customer's or one entered in Checkout."""
    enabled = bool(get_bool(get_dict(params, "automatic_tax"), "enabled", False))
    if not enabled:
        return {"enabled": False, "liability": None, "provider": None, "status": None}
    cus = state.db.customers.get(customer or "")
    has_address = bool(cus and cus.get("address"))
    saves = "auto" in (update.get("address"), update.get("shipping"))
    if cus is not None and not has_address and not saves:
        raise invalid(
            "Automatic tax calculation in Checkout requires a valid address on the Customer. "
            "Add a valid address to the Customer or set either `customer_update[address]` to "
            "'auto' or `customer_update[shipping]` to 'auto' to save the address entered in "
            "Checkout to the Customer.",
            param="automatic_tax[enabled]",
        )
    status = "complete" if has_address else "requires_location_inputs"
    return {"enabled": True, "liability": {"type": "self"}, "provider": "stripe", "status": status}


def _trial_settings(sub_data: Params) -> Obj | None:
    """``subscription_data[trial_settings]``, as the subscription will carry it."""
    end = get_dict(get_dict(sub_data, "trial_settings"), "end_behavior")
    missing = get_str(end, "missing_payment_method")
    return {"end_behavior": {"missing_payment_method": missing}} if missing else None


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


@dataclass(frozen=True)
class Submission:
    """What the customer entered on the hosted Checkout page."""

    email: str | None = None
    card: str | None = None
    line1: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""
    tax_id: str = ""
    promotion_code: str = ""

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> Submission:
        """From the page's form fields (``address_line1``, ``address_city``...)."""
        return cls(
            email=fields.get("email") or None,
            card=fields.get("card"),
            line1=fields.get("address_line1", "").strip(),
            city=fields.get("address_city", "").strip(),
            postal_code=fields.get("address_postal_code", "").strip(),
            country=fields.get("address_country", "").strip().upper(),
            tax_id=fields.get("tax_id", "").strip(),
            promotion_code=fields.get("promotion_code", "").strip(),
        )

    def address(self) -> Obj | None:
        """The billing address entered, None when none was."""
        if not (self.line1 or self.city or self.postal_code or self.country):
            return None
        return {
            "city": self.city or None,
            "country": self.country or None,
            "line1": self.line1 or None,
            "line2": None,
            "postal_code": self.postal_code or None,
            "state": None,
        }


def trial_days(state: EmulatorState, cs: Obj) -> int | None:
    """The session's ``subscription_data[trial_period_days]``."""
    days = state.checkout_internal.get(cs["id"], {}).get("trial_days")
    return int(days) if days else None


def card_required(state: EmulatorState, cs: Obj) -> bool:
    """Whether the page must collect a card: always, unless ``payment_method_collection`` is
    ``if_required`` and nothing is due today (a trial, or a free subscription)."""
    return cs["payment_method_collection"] != "if_required" or bool(cs["amount_total"])


def address_required(state: EmulatorState, cs: Obj) -> bool:
    """Whether the page must collect a billing address (``billing_address_collection=required``
    or automatic tax without the customer's address)."""
    tax = cs["automatic_tax"]
    return cs["billing_address_collection"] == "required" or bool(
        tax["enabled"] and tax["status"] == "requires_location_inputs"
    )


def _check_address(state: EmulatorState, cs: Obj, form: Submission) -> Obj | None:
    """The billing address entered (Stripe's page refuses an incomplete required one)."""
    address = form.address()
    if address_required(state, cs) and not (form.line1 and form.country):
        raise StripeError("Your billing address is incomplete.", status=400)
    return address


def _promotion(state: EmulatorState, cs: Obj, code: str) -> Obj | None:
    """The active promotion code entered, if any ("This code is invalid." otherwise)."""
    if not code or not cs["allow_promotion_codes"]:
        return None
    promo = coupons.find_promotion_code(state, code)
    if promo is None:
        raise StripeError("This code is invalid.", status=400, param="promotion_code")
    return promo


def _customer(state: EmulatorState, cs: Obj, form: Submission, address: Obj | None) -> Obj:
    """The paying customer: the session's, or a new one (with the email and address entered).

    An existing customer's empty email, and with ``customer_update[address]=auto`` their
    address, take what was entered (customer.updated).
    """
    if cs["customer"] is None:
        fields: Obj = {"email": form.email or cs.get("customer_email") or ""}
        if address is not None:
            fields["address"] = address
        cus = new_customer(state, fields)
        cs["customer"] = cus["id"]
        return cus
    cus = state.db.customers[cs["customer"]]
    before = {"email": cus.get("email"), "address": cus.get("address")}
    if form.email and not cus.get("email"):
        cus["email"] = form.email
    update = state.checkout_internal.get(cs["id"], {}).get("customer_update") or {}
    if address is not None and update.get("address") == "auto":
        cus["address"] = address
    state.emit_changes("customer.updated", cus, before)
    return cus


def _tax_ids(form: Submission) -> list[Obj]:
    """The tax id entered, typed as Stripe guesses it (EU VAT, GB VAT, else unknown)."""
    value = form.tax_id.replace(" ", "").upper()
    if not value:
        return []
    prefix = value[:2]
    kind = "eu_vat" if prefix in _EU else "gb_vat" if prefix == "GB" else "unknown"
    return [{"type": kind, "value": value}]


def _details(cus: Obj, form: Submission, address: Obj | None) -> Obj:
    """The session's ``customer_details``."""
    return {
        "address": address or cus.get("address"),
        "business_name": None,
        "email": cus.get("email") or form.email,
        "individual_name": None,
        "name": cus.get("name"),
        "phone": cus.get("phone"),
        "tax_exempt": cus.get("tax_exempt") or "none",
        "tax_ids": _tax_ids(form),
    }


def pay(state: EmulatorState, cs: Obj, form: Submission) -> str | None:
    """Complete a session as the hosted page's Pay button does; returns the redirect URL.

    Everything entered is checked first (card, address, promotion code): a refusal creates
    nothing. Fires customer.created (when needed), payment_method.attached and
    customer.updated (a card entered), customer.subscription.created, invoice and
    payment_intent events and checkout.session.completed, in Stripe's order.
    """
    check_open(state, cs)
    number = cards.digits(form.card)
    if number:
        cards.check_number(number)
    elif card_required(state, cs):
        raise cards.incomplete()
    address = _check_address(state, cs, form)
    promo = _promotion(state, cs, form.promotion_code)
    cus = _customer(state, cs, form, address)
    pm = cards.save_card(state, cus["id"], number) if number else None
    cs["customer_details"] = _details(cus, form, address)
    if cs["mode"] == "subscription":
        _subscribe(state, cs, pm, promo)
    elif cs["mode"] == "payment":
        cs["payment_status"] = "paid"
        cs["payment_intent"] = new_id("pi_")
    else:
        cs["setup_intent"] = new_id("seti_")
    if cs["automatic_tax"]["enabled"]:
        cs["automatic_tax"]["status"] = "complete"
    cs["status"] = "complete"
    cs["url"] = None
    state.emit("checkout.session.completed", cs)
    success: str | None = cs["success_url"]
    if success:
        success = success.replace("{CHECKOUT_SESSION_ID}", cs["id"])
    return success


def _subscribe(state: EmulatorState, cs: Obj, pm: str | None, promo: Obj | None) -> None:
    """Create the session's subscription (its card its default payment method, the trial's
    settings, the promotion code's discount) and record it on the session."""
    internal = state.checkout_internal.get(cs["id"], {})
    days = trial_days(state, cs)
    trial_end = state.now() + days * engine.DAY if days else None
    items = state.line_items.get(cs["id"], [])
    prices: list[tuple[Obj, int, Obj]] = [(i["price"], int(i["quantity"]), {}) for i in items]
    fields: Obj = {"default_payment_method": pm}
    if internal.get("trial_settings"):
        fields["trial_settings"] = copy_json(internal["trial_settings"])
    sub = engine.create_subscription(
        state,
        str(cs["customer"]),
        prices,
        trial_end=trial_end,
        metadata=internal.get("sub_metadata"),
        description=internal.get("sub_description"),
        fields=fields,
        prepare=None if promo is None else lambda s: coupons.apply_to_subscription(state, s, promo),
        on_session=True,
    )
    cs["subscription"] = sub["id"]
    cs["invoice"] = sub["latest_invoice"]
    inv = state.db.invoices[sub["latest_invoice"]]
    cs["payment_status"] = "paid" if inv["amount_paid"] > 0 else "no_payment_required"
    cs["amount_total"] = inv["amount_paid"]
    if promo is not None:
        _record_discount(state, cs, promo, 0 if days else int(cs["amount_subtotal"]))


def _record_discount(state: EmulatorState, cs: Obj, promo: Obj, amount: int) -> None:
    """The session's ``discounts`` and ``total_details.amount_discount`` for a redeemed code."""
    coupon = coupons.coupon_of(state, promo)
    cs["discounts"] = [{"coupon": coupon["id"], "promotion_code": promo["id"]}]
    cs["total_details"]["amount_discount"] = coupons.discount_amount(coupon, amount)


def cancel(state: EmulatorState, cs: Obj) -> str | None:
    """The hosted page's Cancel (back) link target."""
    url: str | None = cs["cancel_url"]
    return url
