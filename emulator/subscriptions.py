"""Subscriptions API: create, update, cancel (retrieve and list: the resource table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import coupons, engine, resources, schedules
from emulator.errors import invalid, missing, required
from emulator.params import (
    apply_metadata,
    as_text,
    assign,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    need_str,
    one_of,
)
from emulator.resources import respond
from emulator.shapes import Obj, Params

if TYPE_CHECKING:
    from emulator.state import EmulatorState

PRORATIONS = ("always_invoice", "create_prorations", "none")


def recurring_price(state: EmulatorState, price_id: str, param: str) -> Obj:
    """An active recurring price usable in a subscription."""
    price = resources.get(state, "price", price_id, param=param, status=400)
    if price["type"] != "recurring":
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts "
            "prices with `type=recurring`.",
            param=param,
        )
    if not price["active"]:
        raise invalid("The price specified is inactive.", param=param)
    return price


def create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/subscriptions."""
    cus_id = resources.referenced(state, "customer", params, "customer")["id"]
    items = get_list(params, "items")
    if not items:
        raise required("items")
    prices: list[tuple[Obj, int, Obj]] = []
    for i, raw in enumerate(items):
        param = f"items[{i}][price]"
        price = recurring_price(state, need_str(raw, "price", param), param)
        prices.append((price, get_int(raw, "quantity", 1) or 1, get_dict(raw, "metadata")))
    now = state.now()
    trial_end: int | None = None
    days = get_int(params, "trial_period_days")
    if days:
        trial_end = now + days * engine.DAY
    raw_end = params.get("trial_end")
    if raw_end and raw_end != "now":
        trial_end = get_int(params, "trial_end")
        if trial_end is not None and trial_end <= now:
            raise invalid("trial_end must be in the future.", param="trial_end")
    meta: Obj = {}
    apply_metadata(meta, params)
    sub = engine.create_subscription(
        state,
        cus_id,
        prices,
        trial_end=trial_end,
        metadata=meta.get("metadata"),
        description=get_str(params, "description"),
        cancel_at_period_end=bool(get_bool(params, "cancel_at_period_end", False)),
        cancel_at=get_int(params, "cancel_at"),
        fields=_payment_fields(state, params, cus_id),
    )
    return respond(state, sub, params)


def _payment_fields(state: EmulatorState, params: Params, cus_id: str) -> Obj:
    """``default_payment_method`` (a card of the customer's) and ``trial_settings``."""
    fields: Obj = {}
    pm_id = get_str(params, "default_payment_method")
    if pm_id:
        pm = resources.get(state, "payment_method", pm_id, "default_payment_method", 400)
        if pm["customer"] != cus_id:
            raise invalid(
                f"The customer does not have a payment method with the ID {pm_id}. The payment "
                "method must be attached to the customer.",
                param="default_payment_method",
            )
        fields["default_payment_method"] = pm_id
    end = get_dict(get_dict(params, "trial_settings"), "end_behavior")
    missing_pm = get_str(end, "missing_payment_method")
    if missing_pm:
        fields["trial_settings"] = {"end_behavior": {"missing_payment_method": missing_pm}}
    return fields


def update(state: EmulatorState, params: Params, sub_id: str) -> Obj:
    """POST /v1/subscriptions/{id}: cancel_at_period_end, cancel_at, items, metadata..."""
    sub = resources.get(state, "subscription", sub_id)
    if sub["status"] in resources.ENDED:
        allowed = {"cancellation_details", "metadata", "expand"}
        if set(params) - allowed:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
    before = engine.snapshot(sub)
    _check_schedule(state, sub, params)
    if "discounts" in params:
        coupons.set_subscription_discounts(state, sub, params["discounts"])
    proration = one_of(params, "proration_behavior", PRORATIONS, "create_prorations")
    changes: list[Obj] = []
    for i, raw in enumerate(get_list(params, "items")):
        change: Obj = {"id": get_str(raw, "id"), "deleted": get_bool(raw, "deleted", False)}
        price_id = get_str(raw, "price")
        if price_id:
            change["price"] = recurring_price(state, price_id, f"items[{i}][price]")
        if "quantity" in raw:
            change["quantity"] = get_int(raw, "quantity")
        change["metadata"] = get_dict(raw, "metadata")
        changes.append(change)
    invoice = engine.change_items(state, sub, changes, proration or "create_prorations")
    if "cancel_at_period_end" in params:
        engine.schedule_cancel(state, sub, bool(get_bool(params, "cancel_at_period_end")))
    if "cancel_at" in params:
        engine.set_cancel_at(state, sub, get_int(params, "cancel_at"))
    if params.get("trial_end") == "now" and sub["status"] == "trialing":
        sub["trial_end"] = state.now()
        engine.set_period(sub, engine.period(sub)[0], state.now())
    apply_metadata(sub, params)
    assign(sub, params, description=as_text, default_payment_method=as_text)
    details = get_dict(params, "cancellation_details")
    assign(sub["cancellation_details"], details, comment=as_text, feedback=as_text)
    engine.emit_updated(state, sub, before)
    if invoice is not None:
        engine.settle(state, sub, invoice)
    if params.get("trial_end") == "now":
        engine.advance(state, 0)
    return respond(state, sub, params)


def _check_schedule(state: EmulatorState, sub: Obj, params: Params) -> None:
    """Stripe's 400 for a cancellation change on a subscription its schedule manages."""
    sched = schedules.of_subscription(state, sub)
    name = next((n for n in ("cancel_at_period_end", "cancel_at") if n in params), None)
    if sched is not None and name is not None:
        raise invalid(
            f"The subscription is managed by the subscription schedule `{sched['id']}`, and "
            "updating any cancelation behavior directly is not allowed. Please update the "
            "schedule instead.",
            param=name,
        )


def cancel(state: EmulatorState, params: Params, sub_id: str) -> Obj:
    """DELETE /v1/subscriptions/{id}: cancel now, fire customer.subscription.deleted."""
    sub = resources.get(state, "subscription", sub_id)
    if sub["status"] in resources.ENDED:
        raise missing("subscription", sub_id)
    details = get_dict(params, "cancellation_details")
    engine.cancel_now(
        state,
        sub,
        comment=details.get("comment"),
        feedback=details.get("feedback"),
    )
    return respond(state, sub, params)
