"""Subscriptions API: create, retrieve, update, cancel, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import engine
from emulator.catalog import get_price
from emulator.customers import get_customer
from emulator.errors import invalid, missing, required
from emulator.listing import created_filter, expand, paginate
from emulator.params import (
    apply_metadata,
    expand_list,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    need_str,
    one_of,
)

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Obj = dict[str, Any]
Params = dict[str, Any]
PRORATIONS = ("always_invoice", "create_prorations", "none")


def _out(state: EmulatorState, sub: Obj, params: Params) -> Obj:
    """Response with expansion."""
    return expand(state, sub, expand_list(params)) if "expand" in params else sub


def recurring_price(state: EmulatorState, price_id: str, param: str) -> Obj:
    """An active recurring price usable in a subscription."""
    price = get_price(state, price_id, param=param, status=400)
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
    cus_id = need_str(params, "customer")
    get_customer(state, cus_id, param="customer", status=400)
    items = get_list(params, "items")
    if not items:
        raise required("items")
    prices: list[tuple[Obj, int, Obj]] = []
    for i, raw in enumerate(items):
        price_id = get_str(raw, "price")
        if not price_id:
            raise required(f"items[{i}][price]")
        price = recurring_price(state, price_id, f"items[{i}][price]")
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
    )
    return _out(state, sub, params)


def retrieve(state: EmulatorState, params: Params, sub_id: str) -> Obj:
    """GET /v1/subscriptions/{id} (canceled ones too)."""
    return _out(state, engine.get_subscription(state, sub_id), params)


def update(state: EmulatorState, params: Params, sub_id: str) -> Obj:
    """POST /v1/subscriptions/{id}: cancel_at_period_end, cancel_at, items, metadata..."""
    sub = engine.get_subscription(state, sub_id)
    if sub["status"] in ("canceled", "incomplete_expired"):
        allowed = {"cancellation_details", "metadata", "expand"}
        if set(params) - allowed:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
    before = engine.snapshot(sub)
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
    if "description" in params:
        sub["description"] = get_str(params, "description") or None
    details = get_dict(params, "cancellation_details")
    for key in ("comment", "feedback"):
        if key in details:
            sub["cancellation_details"][key] = details[key] or None
    if "default_payment_method" in params:
        sub["default_payment_method"] = get_str(params, "default_payment_method") or None
    if invoice is not None:
        engine.emit_updated(state, sub, before)
        engine.settle(state, sub, invoice)
    else:
        engine.emit_updated(state, sub, before)
    if params.get("trial_end") == "now":
        engine.advance(state, 0)
    return _out(state, sub, params)


def cancel(state: EmulatorState, params: Params, sub_id: str) -> Obj:
    """DELETE /v1/subscriptions/{id}: cancel now, fire customer.subscription.deleted."""
    sub = engine.get_subscription(state, sub_id)
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise missing("subscription", sub_id)
    details = get_dict(params, "cancellation_details")
    engine.cancel_now(
        state,
        sub,
        comment=details.get("comment"),
        feedback=details.get("feedback"),
    )
    return _out(state, sub, params)


def list_(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/subscriptions with customer, status (incl. all), price, created."""
    items = list(state.db.subscriptions.values())
    customer = get_str(params, "customer")
    if customer:
        items = [s for s in items if s["customer"] == customer]
    status = get_str(params, "status")
    if status is None or status == "":
        items = [s for s in items if s["status"] not in ("canceled", "incomplete_expired")]
    elif status == "ended":
        items = [s for s in items if s["status"] in ("canceled", "incomplete_expired")]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    price = get_str(params, "price")
    if price:
        items = [s for s in items if any(i["price"]["id"] == price for i in s["items"]["data"])]
    pred = created_filter(params)
    if pred:
        items = [s for s in items if pred(s)]
    return paginate(state, items, params, "/v1/subscriptions", "subscription")
