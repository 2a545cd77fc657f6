"""Coupons, promotion codes and the discounts they give subscriptions and their invoices.

Coupons and promotion codes are retrieved and listed through the resource table
(``emulator.resources``). A discount (``di_...``) is one application of a coupon to a
subscription: its id sits in ``subscription.discounts`` (dahlia), the object in
``state.db.discounts`` (``expand[]=discounts``). ``engine.new_invoice`` calls
``discount_invoice``, which reduces each invoice of a discounted subscription for the coupon's
duration. Deleting a coupon keeps the discounts already given (``state.coupon_archive``).
"""

from __future__ import annotations

import re
import secrets
import string
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from emulator import ids, resources
from emulator.errors import StripeError, invalid, missing, one_of_error, required
from emulator.params import (
    Reader,
    apply_metadata,
    as_flag,
    as_text,
    assign,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    need_str,
)
from emulator.periods import add_months
from emulator.resources import respond
from emulator.shapes import Obj, Params
from emulator.spec import template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

COUPON = "coupon"
PROMOTION_CODE = "promotion_code"
DURATIONS = ("forever", "once", "repeating")
_CODE = re.compile(r"[A-Za-z0-9-]+")
_ID_ALPHABET = string.ascii_uppercase + string.digits


# -- the public helpers (Checkout and the engine call these) ------------------------------


def find_promotion_code(state: EmulatorState, code: str) -> Obj | None:
    """The active, redeemable promotion code spelled ``code`` (any case), or None."""
    wanted = code.strip().lower()
    for promo in state.db.promotion_codes.values():
        if promo["code"].lower() == wanted and _redeemable_code(state, promo):
            return promo
    return None


def apply_to_subscription(state: EmulatorState, sub: Obj, promotion_code: Obj) -> None:
    """Give ``sub`` a discount from a promotion code (its coupon); both count the redemption.

    The discount's id joins ``sub["discounts"]``; fires ``customer.discount.created`` (the
    caller's subscription event carries the subscription's change). A coupon whose currency
    is not the subscription's is Stripe's 400.
    """
    coupon = coupon_of(state, promotion_code)
    disc = _new_discount(state, sub, coupon, promotion_code["id"], "discounts")
    promotion_code["times_redeemed"] += 1
    sub["discounts"] = [*sub["discounts"], disc["id"]]


def discount_amount(coupon: Obj, amount: int) -> int:
    """What a coupon takes off an amount in cents (percent rounded half up; never above it)."""
    percent = coupon.get("percent_off")
    if percent is not None:
        off = Decimal(amount) * Decimal(str(percent)) / Decimal(100)
        return int(off.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return min(int(coupon.get("amount_off") or 0), max(amount, 0))


def coupon_of(state: EmulatorState, promotion_code: Obj) -> Obj:
    """The coupon of a promotion code (a deleted one from the archive)."""
    return _coupon(state, str(promotion_code["promotion"]["coupon"]))


def offer_coupon(state: EmulatorState, coupon_id: str, currency: str, param: str) -> Obj:
    """The coupon a retention offer names: stored (else Stripe's 400 "No such coupon: 'ID'")
    and redeemable on something billed in ``currency`` (expired, used up or in another
    currency: 400), ``param`` naming the parameter in the error."""
    coupon = resources.get(state, COUPON, coupon_id, param=param, status=400)
    _check_redeemable(state, coupon, currency, param)
    return coupon


def redeemable(state: EmulatorState, coupon: Obj, currency: str) -> bool:
    """Whether a coupon can still be redeemed on something billed in ``currency``."""
    try:
        _check_redeemable(state, coupon, currency, COUPON)
    except StripeError:
        return False
    return True


def add_coupon(state: EmulatorState, sub: Obj, coupon: Obj, param: str = COUPON) -> Obj:
    """Give ``sub`` one more discount, of a coupon (it counts the redemption), as the portal's
    accepted retention offer does: its id joins ``sub["discounts"]``; fires
    ``customer.discount.created`` (the caller fires the subscription's update)."""
    disc = _new_discount(state, sub, coupon, None, param)
    sub["discounts"] = [*sub["discounts"], disc["id"]]
    return disc


_ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
_SYMBOLS = {"usd": "$", "eur": "\u20ac", "gbp": "\u00a3"}


def terms(coupon: Obj) -> str:
    """A coupon's terms in words: ``20% off for 3 months``, ``$5.00 off once``,
    ``10% off forever``."""
    percent = coupon.get("percent_off")
    if percent is not None:
        off = f"{float(percent):g}% off"
    else:
        currency = str(coupon.get("currency") or "usd").lower()
        amount = int(coupon.get("amount_off") or 0)
        value = f"{amount:,}" if currency in _ZERO_DECIMAL else f"{amount / 100:,.2f}"
        symbol = _SYMBOLS.get(currency)
        off = f"{symbol}{value} off" if symbol else f"{value} {currency.upper()} off"
    duration = coupon.get("duration")
    if duration == "forever":
        return f"{off} forever"
    if duration == "repeating":
        months = int(coupon.get("duration_in_months") or 1)
        return f"{off} for {months} month{'' if months == 1 else 's'}"
    return f"{off} once"


# -- invoices ----------------------------------------------------------------------------


def discount_invoice(state: EmulatorState, sub: Obj, inv: Obj) -> None:
    """Reduce a draft invoice by the subscription's current discounts (``discounts``,
    ``total_discount_amounts``, ``total_pretax_credit_amounts``, per-line amounts).

    ``once``: the first invoice with a positive subtotal, then the discount leaves the
    subscription; ``repeating``: invoices created before the discount's ``end``, after which it
    leaves; ``forever``: every invoice. Fires ``customer.discount.deleted`` when one leaves.
    """
    if not sub.get("discounts"):
        return
    remaining = {line["id"]: int(line["amount"]) for line in inv["lines"]["data"]}
    for disc_id in list(sub["discounts"]):
        disc = state.db.discounts.get(disc_id)
        if disc is None:
            continue
        if disc["end"] is not None and state.now() >= disc["end"]:
            _end_discount(state, sub, disc)
            continue
        if sum(remaining.values()) <= 0 and _duration(state, disc) == "once":
            continue
        _apply_discount(state, inv, disc, remaining)
        if _duration(state, disc) == "once":
            _end_discount(state, sub, disc)
    _set_totals(inv)


def _apply_discount(state: EmulatorState, inv: Obj, disc: Obj, remaining: dict[str, int]) -> None:
    """Take one discount off the invoice's lines (what earlier discounts left of them)."""
    coupon = _coupon(state, disc["source"]["coupon"])
    total = 0
    budget = discount_amount(coupon, sum(remaining.values()))
    for line in inv["lines"]["data"]:
        left = remaining[line["id"]]
        if coupon.get("percent_off") is not None:
            off = discount_amount(coupon, left)
        else:
            off = min(budget, max(left, 0))
            budget -= off
        if not off:
            continue
        remaining[line["id"]] = left - off
        total += off
        line["discounts"].append(disc["id"])
        line["discount_amounts"].append({"amount": off, "discount": disc["id"]})
        line["pretax_credit_amounts"].append(_credit(off, disc["id"]))
    inv["discounts"].append(disc["id"])
    inv["total_discount_amounts"].append({"amount": total, "discount": disc["id"]})
    inv["total_pretax_credit_amounts"].append(_credit(total, disc["id"]))


def _credit(amount: int, disc_id: str) -> Obj:
    """A ``pretax_credit_amounts`` entry for a discount."""
    return {
        "amount": amount,
        "credit_balance_transaction": None,
        "discount": disc_id,
        "type": "discount",
    }


def _set_totals(inv: Obj) -> None:
    """The invoice's total and amounts due after its discounts."""
    off = sum(entry["amount"] for entry in inv["total_discount_amounts"])
    total = int(inv["subtotal"]) - off
    due = max(0, total)
    inv.update(total=total, total_excluding_tax=total, amount_due=due, amount_remaining=due)


def _duration(state: EmulatorState, disc: Obj) -> str:
    """The duration of a discount's coupon."""
    return str(_coupon(state, disc["source"]["coupon"])["duration"])


def _end_discount(state: EmulatorState, sub: Obj, disc: Obj) -> None:
    """A discount leaves its subscription: customer.discount.deleted."""
    sub["discounts"] = [d for d in sub["discounts"] if d != disc["id"]]
    state.emit("customer.discount.deleted", disc)


# -- subscriptions -------------------------------------------------------------------------


def set_subscription_discounts(state: EmulatorState, sub: Obj, raw: Any) -> None:
    """``discounts`` of ``POST /v1/subscriptions/{id}``: the whole new list ("" clears it).

    Each entry names a ``coupon``, a ``promotion_code`` or an existing ``discount`` of the
    subscription. New discounts fire ``customer.discount.created``, dropped ones
    ``customer.discount.deleted``.
    """
    entries = [] if raw == "" else get_list({"discounts": raw}, "discounts")
    kept: list[str] = []
    for i, entry in enumerate(entries):
        kept.append(_discount_entry(state, sub, entry, f"discounts[{i}]"))
    for disc_id in sub["discounts"]:
        if disc_id not in kept and disc_id in state.db.discounts:
            state.emit("customer.discount.deleted", state.db.discounts[disc_id])
    sub["discounts"] = kept


def _discount_entry(state: EmulatorState, sub: Obj, entry: Any, param: str) -> str:
    """The discount id of one ``discounts[i]`` entry (a new discount for a coupon or code)."""
    entry = entry if isinstance(entry, dict) else {}
    given = [k for k in ("coupon", "discount", "promotion_code") if entry.get(k)]
    if len(given) != 1:
        raise invalid(
            "You must specify exactly one of `coupon`, `discount` or `promotion_code`.",
            param=param,
        )
    kind = given[0]
    value = str(entry[kind])
    if kind == "discount":
        if value not in sub["discounts"]:
            raise missing("discount", value, param=f"{param}[discount]", status=400)
        return value
    if kind == "coupon":
        coupon = resources.get(state, COUPON, value, param=f"{param}[coupon]", status=400)
        return str(_new_discount(state, sub, coupon, None, f"{param}[coupon]")["id"])
    promo = resources.get(
        state, PROMOTION_CODE, value, param=f"{param}[promotion_code]", status=400
    )
    if not _redeemable_code(state, promo):
        raise invalid(
            f"This promotion code is not active: '{promo['code']}'.",
            param=f"{param}[promotion_code]",
        )
    disc = _new_discount(state, sub, coupon_of(state, promo), promo["id"], param)
    promo["times_redeemed"] += 1
    return str(disc["id"])


def _new_discount(
    state: EmulatorState, sub: Obj, coupon: Obj, promo: str | None, param: str
) -> Obj:
    """A discount of a coupon on a subscription (the coupon counts a redemption):
    customer.discount.created."""
    _check_redeemable(state, coupon, sub["currency"], param)
    now = state.now()
    months = coupon.get("duration_in_months")
    end = add_months(now, int(months)) if coupon["duration"] == "repeating" and months else None
    disc = template(
        "discount",
        id=ids.new_id("di_", 24),
        customer=sub["customer"],
        end=end,
        promotion_code=promo,
        source={"coupon": coupon["id"], "type": "coupon"},
        start=now,
        subscription=sub["id"],
    )
    state.db.discounts[disc["id"]] = disc
    coupon["times_redeemed"] += 1
    coupon["valid"] = _still_valid(state, coupon)
    state.emit("customer.discount.created", disc)
    return disc


def _check_redeemable(state: EmulatorState, coupon: Obj, currency: str, param: str) -> None:
    """Stripe's 400s for a coupon that cannot be redeemed on something billed in currency."""
    if not _still_valid(state, coupon):
        raise invalid(f"Coupon expired: {coupon['id']}", param=param)
    if coupon.get("amount_off") is not None and coupon.get("currency") != currency:
        raise invalid(
            f"The coupon `{coupon['id']}` is for amounts in {coupon.get('currency')}, but this "
            f"subscription is billed in {currency}.",
            param=param,
        )


def _still_valid(state: EmulatorState, coupon: Obj) -> bool:
    """Whether a coupon can still be redeemed (max_redemptions, redeem_by, not deleted)."""
    limit = coupon.get("max_redemptions")
    if limit is not None and coupon["times_redeemed"] >= int(limit):
        return False
    redeem_by = coupon.get("redeem_by")
    return (redeem_by is None or state.now() < int(redeem_by)) and coupon["id"] in (
        state.db.coupons
    )


def _redeemable_code(state: EmulatorState, promo: Obj) -> bool:
    """Whether a promotion code is active, unexpired, under its limit, with a valid coupon."""
    if not promo["active"]:
        return False
    if promo.get("expires_at") is not None and state.now() >= int(promo["expires_at"]):
        return False
    limit = promo.get("max_redemptions")
    if limit is not None and promo["times_redeemed"] >= int(limit):
        return False
    coupon = state.db.coupons.get(str(promo["promotion"]["coupon"]))
    return coupon is not None and _still_valid(state, coupon)


def _coupon(state: EmulatorState, coupon_id: str) -> Obj:
    """A coupon, current or deleted (the discounts it gave keep working)."""
    found = state.db.coupons.get(coupon_id) or state.coupon_archive.get(coupon_id)
    if found is None:
        raise missing(COUPON, coupon_id)
    return found


# -- coupons -------------------------------------------------------------------------------


def coupon_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/coupons (a taken ``id``: 400 ``resource_already_exists``)."""
    coupon_id = get_str(params, "id") or "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    if coupon_id in state.db.coupons:
        raise StripeError("Coupon already exists.", param="id", code="resource_already_exists")
    coupon = template(
        COUPON,
        id=coupon_id,
        created=state.now(),
        metadata={},
        name=get_str(params, "name") or None,
        max_redemptions=_positive(params, "max_redemptions"),
        redeem_by=_redeem_by(state, params),
        times_redeemed=0,
        valid=True,
        **_amount_fields(params),
        **_duration_fields(params),
    )
    apply_metadata(coupon, params)
    state.coupon_archive.pop(coupon_id, None)
    return respond(state, resources.add(state, COUPON, coupon), params)


def _amount_fields(params: Params) -> Obj:
    """``percent_off`` or ``amount_off`` + ``currency``, as Stripe checks them."""
    percent, amount = params.get("percent_off"), get_int(params, "amount_off")
    if percent is None and amount is None:
        raise invalid("You must pass either `percent_off` or `amount_off`.")
    if percent is not None and amount is not None:
        raise invalid(
            "You may only specify one of these parameters: amount_off, percent_off.",
            param="percent_off",
        )
    if amount is not None:
        if amount < 1:
            raise invalid("The amount_off must be at least 1.", param="amount_off")
        currency = get_str(params, "currency")
        if not currency:
            raise required("currency")
        return {"amount_off": amount, "currency": currency.lower(), "percent_off": None}
    value = float(str(percent))
    if not 0 < value <= 100:
        raise invalid(
            "Invalid percent_off: must be greater than 0 and at most 100.", param="percent_off"
        )
    return {"amount_off": None, "currency": None, "percent_off": value}


def _duration_fields(params: Params) -> Obj:
    """``duration`` (``once`` by default) and ``duration_in_months`` (only ``repeating``)."""
    duration = get_str(params, "duration") or "once"
    if duration not in DURATIONS:
        raise one_of_error("duration", DURATIONS)
    months = _positive(params, "duration_in_months")
    if duration == "repeating" and months is None:
        raise required("duration_in_months")
    if duration != "repeating" and months is not None:
        raise invalid(
            "You may only specify duration_in_months when duration is `repeating`.",
            param="duration_in_months",
        )
    return {"duration": duration, "duration_in_months": months}


def _positive(params: Params, name: str) -> int | None:
    """An optional integer of at least 1."""
    value = get_int(params, name)
    if value is not None and value < 1:
        raise invalid(f"Invalid {name}: must be at least 1.", param=name)
    return value


def _redeem_by(state: EmulatorState, params: Params) -> int | None:
    """``redeem_by``: a future timestamp."""
    value = get_int(params, "redeem_by")
    if value is not None and value <= state.now():
        raise invalid("The redeem_by date must be in the future.", param="redeem_by")
    return value


def coupon_update(state: EmulatorState, params: Params, coupon_id: str) -> Obj:
    """POST /v1/coupons/{id}: ``name`` and ``metadata`` (coupon.updated)."""
    return _update(state, params, COUPON, coupon_id, name=as_text)


def _update(state: EmulatorState, params: Params, kind: str, ident: str, **fields: Reader) -> Obj:
    """Set ``fields`` and ``metadata`` on a stored object; fires ``{kind}.updated`` on a change."""
    obj = resources.get(state, kind, ident)
    before = dict(obj)
    assign(obj, params, **fields)
    apply_metadata(obj, params)
    state.emit_changes(f"{kind}.updated", obj, before)
    return respond(state, obj, params)


def coupon_delete(state: EmulatorState, params: Params, coupon_id: str) -> Obj:
    """DELETE /v1/coupons/{id}: coupon.deleted; discounts already given keep working."""
    coupon = resources.get(state, COUPON, coupon_id)
    del state.db.coupons[coupon_id]
    coupon["valid"] = False
    state.coupon_archive[coupon_id] = coupon
    state.emit("coupon.deleted", coupon)
    return {"id": coupon_id, "object": COUPON, "deleted": True}


# -- promotion codes ------------------------------------------------------------------------


def promotion_code_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/promotion_codes (dahlia: ``promotion[type]=coupon``, ``promotion[coupon]``)."""
    promotion = get_dict(params, "promotion")
    if not promotion:
        raise required("promotion")
    if get_str(promotion, "type") != "coupon":
        raise one_of_error("promotion[type]", ("coupon",))
    coupon_id = need_str(promotion, "coupon", "promotion[coupon]")
    coupon = resources.get(state, COUPON, coupon_id, param="promotion[coupon]", status=400)
    customer = get_str(params, "customer") or None
    if customer is not None:
        resources.get(state, "customer", customer, param="customer", status=400)
    code = _code(state, params, customer)
    promo = template(
        PROMOTION_CODE,
        id=resources.new_id(PROMOTION_CODE),
        active=bool(get_bool(params, "active", True)),
        code=code,
        created=state.now(),
        customer=customer,
        expires_at=get_int(params, "expires_at"),
        max_redemptions=_positive(params, "max_redemptions"),
        metadata={},
        promotion={"coupon": coupon["id"], "type": "coupon"},
        restrictions=_restrictions(get_dict(params, "restrictions")),
        times_redeemed=0,
    )
    apply_metadata(promo, params)
    return respond(state, resources.add(state, PROMOTION_CODE, promo), params)


def _code(state: EmulatorState, params: Params, customer: str | None) -> str:
    """The customer-facing code: given (letters, digits, dashes) or generated; unique among
    the active codes a customer could use, whatever the case."""
    code = get_str(params, "code")
    if code is None:
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    if not _CODE.fullmatch(code):
        raise invalid(
            "Promotion codes can only contain alphanumeric characters and dashes.", param="code"
        )
    for other in state.db.promotion_codes.values():
        same_customer = None in (customer, other["customer"]) or other["customer"] == customer
        if other["active"] and same_customer and other["code"].lower() == code.lower():
            raise invalid(
                f"An active promotion code with `code: {code}` already exists.", param="code"
            )
    return code


def _restrictions(raw: Params) -> Obj:
    """``restrictions`` as Stripe returns them (kept, not enforced)."""
    currency = get_str(raw, "minimum_amount_currency")
    return {
        "first_time_transaction": bool(get_bool(raw, "first_time_transaction", False)),
        "minimum_amount": get_int(raw, "minimum_amount"),
        "minimum_amount_currency": currency.lower() if currency else None,
    }


def promotion_code_update(state: EmulatorState, params: Params, promo_id: str) -> Obj:
    """POST /v1/promotion_codes/{id}: ``active``, ``metadata`` (promotion_code.updated)."""
    return _update(state, params, PROMOTION_CODE, promo_id, active=as_flag)


# -- request parameters (the spec subset lacks these endpoints) ------------------------------

_EXPAND: Obj = {"t": ["array"], "i": {"t": ["string"], "m": 5000}}
_METADATA: Obj = {"t": ["object", "string"], "a": {"t": ["string"]}, "e": [""]}
_STRING: Obj = {"t": ["string"], "m": 5000}
_INT: Obj = {"t": ["integer"]}
_LIST: Obj = {
    "t": ["object"],
    "p": {
        "created": {
            "t": ["object", "integer"],
            "p": dict.fromkeys(("gt", "gte", "lt", "lte"), _INT),
        },
        "ending_before": _STRING,
        "expand": _EXPAND,
        "limit": _INT,
        "starting_after": _STRING,
    },
}
_NO_PARAMS: Obj = {"t": ["object"], "p": {"expand": _EXPAND}}
PARAMS: dict[tuple[str, str], Obj] = {
    ("POST", "/v1/coupons"): {
        "t": ["object"],
        "p": {
            "amount_off": _INT,
            "currency": _STRING,
            "duration": {"t": ["string"], "e": list(DURATIONS)},
            "duration_in_months": _INT,
            "expand": _EXPAND,
            "id": _STRING,
            "max_redemptions": _INT,
            "metadata": _METADATA,
            "name": {"t": ["string"], "m": 40},
            "percent_off": {"t": ["number"]},
            "redeem_by": _INT,
        },
    },
    ("GET", "/v1/coupons"): _LIST,
    ("GET", "/v1/coupons/{coupon}"): _NO_PARAMS,
    ("POST", "/v1/coupons/{coupon}"): {
        "t": ["object"],
        "p": {"expand": _EXPAND, "metadata": _METADATA, "name": {"t": ["string"], "m": 40}},
    },
    ("DELETE", "/v1/coupons/{coupon}"): {"t": ["object"], "p": {}},
    ("POST", "/v1/promotion_codes"): {
        "t": ["object"],
        "p": {
            "active": {"t": ["boolean"]},
            "code": {"t": ["string"], "m": 500},
            "customer": _STRING,
            "expand": _EXPAND,
            "expires_at": _INT,
            "max_redemptions": _INT,
            "metadata": _METADATA,
            "promotion": {
                "t": ["object"],
                "p": {"coupon": _STRING, "type": {"t": ["string"], "e": ["coupon"]}},
                "r": ["type"],
            },
            "restrictions": {
                "t": ["object"],
                "p": {
                    "first_time_transaction": {"t": ["boolean"]},
                    "minimum_amount": _INT,
                    "minimum_amount_currency": _STRING,
                },
            },
        },
        "r": ["promotion"],
    },
    ("GET", "/v1/promotion_codes"): {
        "t": ["object"],
        "p": {
            **_LIST["p"],
            "active": {"t": ["boolean"]},
            "code": _STRING,
            "coupon": _STRING,
            "customer": _STRING,
        },
    },
    ("GET", "/v1/promotion_codes/{promotion_code}"): _NO_PARAMS,
    ("POST", "/v1/promotion_codes/{promotion_code}"): {
        "t": ["object"],
        "p": {"active": {"t": ["boolean"]}, "expand": _EXPAND, "metadata": _METADATA},
    },
}
