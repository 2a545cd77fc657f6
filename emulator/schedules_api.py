"""Subscription schedules API: create (``from_subscription``), update, release, cancel.

Retrieve and list go through the resource table. The objects and their life on the clock are
``emulator.schedules`` (below the engine); these endpoints sit above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import engine, resources, schedules
from emulator.errors import invalid, required
from emulator.params import (
    apply_metadata,
    get_dict,
    get_int,
    get_list,
    need_str,
    one_of,
    positive_int,
)
from emulator.periods import add_interval
from emulator.resources import respond
from emulator.schedules import SCHEDULE
from emulator.shapes import Obj, Params
from emulator.spec import copy_json
from emulator.subscriptions import PRORATIONS, recurring_price

if TYPE_CHECKING:
    from emulator.state import EmulatorState

END_BEHAVIORS = ("cancel", "release")


def create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/subscription_schedules with ``from_subscription`` (the only way emulated)."""
    sub_id = params.get("from_subscription")
    if not sub_id:
        raise invalid(
            "The emulator creates subscription schedules only from an existing subscription: "
            "pass `from_subscription`.",
            param="from_subscription",
        )
    for name in params:
        if name not in ("from_subscription", "metadata", "expand"):
            raise invalid(f"You cannot set `{name}` if `from_subscription` is set.", param=name)
    sub = resources.get(state, "subscription", str(sub_id), "from_subscription", 400)
    sched = schedules.from_subscription(state, sub)
    apply_metadata(sched, params)
    return respond(state, sched, params)


def _open(sched: Obj, verb: str) -> None:
    """Stripe's 400 for a schedule that is no longer open."""
    if sched["status"] not in schedules.OPEN:
        raise invalid(
            f"You cannot {verb} a subscription schedule that is currently in the "
            f"`{sched['status']}` status. It must be in one of the following statuses: "
            "`not_started`, `active`."
        )


def update(state: EmulatorState, params: Params, sched_id: str) -> Obj:
    """POST /v1/subscription_schedules/{id}: ``phases``, ``end_behavior``, ``metadata``.

    The phases replace the schedule's; the first is the current one (its start cannot move).
    When it bills other items than the subscription, they change now with
    ``proration_behavior`` (customer.subscription.updated). Fires subscription_schedule.updated.
    """
    sched = resources.get(state, SCHEDULE, sched_id)
    _open(sched, "update")
    sub = state.db.subscriptions[sched["subscription"]]
    before = copy_json(sched)
    proration = one_of(params, "proration_behavior", PRORATIONS, "create_prorations")
    if "phases" in params:
        sched["phases"] = _phases(state, sched, sub, get_list(params, "phases"))
        schedules.set_current(sched, 0)
    end_behavior = one_of(params, "end_behavior", END_BEHAVIORS, None)
    if end_behavior is not None:
        sched["end_behavior"] = end_behavior
    apply_metadata(sched, params)
    _apply_current(state, sched, sub, proration or "create_prorations")
    schedules.emit_updated(state, sched, before)
    return respond(state, sched, params)


def _apply_current(state: EmulatorState, sched: Obj, sub: Obj, proration: str) -> None:
    """Bring the subscription to the current phase's items (now, prorated) if they differ."""
    phase = sched["phases"][schedules.current_index(sched)]
    wanted = [(str(i["price"]), int(i.get("quantity") or 1)) for i in phase["items"]]
    have = [(i["price"]["id"], int(i.get("quantity") or 1)) for i in sub["items"]["data"]]
    if wanted == have:
        return
    before = engine.snapshot(sub)
    changes = schedules.item_changes(state, sub, phase["items"])
    invoice = engine.change_items(state, sub, changes, proration)
    engine.emit_updated(state, sub, before)
    if invoice is not None:
        engine.settle(state, sub, invoice)


def _phases(state: EmulatorState, sched: Obj, sub: Obj, raw: list[Any]) -> list[Obj]:
    """Validate ``phases``: items, contiguous dates from the current phase's start."""
    if not raw:
        raise required("phases")
    start = int(sched["current_phase"]["start_date"])
    out: list[Obj] = []
    for n, entry in enumerate(raw):
        phase = _phase(state, sub, get_dict({"p": entry}, "p"), f"phases[{n}]", start, n == 0)
        out.append(phase)
        start = int(phase["end_date"])
    return out


def _phase(state: EmulatorState, sub: Obj, raw: Params, param: str, start: int, first: bool) -> Obj:
    """One phase: its items (price, quantity), start (fixed) and end (one period by default)."""
    items_raw = get_list(raw, "items")
    if not items_raw:
        raise required(f"{param}[items]")
    items: list[Obj] = []
    prices: list[Obj] = []
    for n, item in enumerate(items_raw):
        where = f"{param}[items][{n}]"
        price = recurring_price(
            state, need_str(item, "price", f"{where}[price]"), f"{where}[price]"
        )
        qty = positive_int(item, "quantity", f"{where}[quantity]") or 1
        prices.append(price)
        items.append(schedules.phase_item(price["id"], qty))
    now = raw.get("start_date") == "now"  # the current phase's start, kept
    given = None if now else get_int(raw, "start_date", None, f"{param}[start_date]")
    if given is not None and given != start:
        message = (
            "You can not modify the start date of the current phase."
            if first
            else "The phases of a subscription schedule must be contiguous: each starts when "
            "the previous one ends."
        )
        raise invalid(message, param=f"{param}[start_date]")
    end = get_int(raw, "end_date", None, f"{param}[end_date]") or _one_period(prices[0], start)
    if end <= start:
        raise invalid("The end_date must be after the start_date.", param=f"{param}[end_date]")
    proration = one_of(raw, "proration_behavior", PRORATIONS, "create_prorations", param)
    phase = schedules.new_phase(items, start, end, sub["currency"], proration or "")
    apply_metadata(phase, raw)
    return phase


def _one_period(price: Obj, start: int) -> int:
    """The end of one period of a price from ``start``."""
    rec = price.get("recurring") or {"interval": "month", "interval_count": 1}
    return add_interval(start, str(rec["interval"]), int(rec.get("interval_count") or 1))


def release(state: EmulatorState, params: Params, sched_id: str) -> Obj:
    """POST /v1/subscription_schedules/{id}/release: the subscription goes on without it."""
    sched = resources.get(state, SCHEDULE, sched_id)
    _open(sched, "release")
    schedules.release(state, sched)
    return respond(state, sched, params)


def cancel(state: EmulatorState, params: Params, sched_id: str) -> Obj:
    """POST /v1/subscription_schedules/{id}/cancel: cancels the subscription now too
    (customer.subscription.deleted, then subscription_schedule.canceled)."""
    sched = resources.get(state, SCHEDULE, sched_id)
    _open(sched, "cancel")
    sub = state.db.subscriptions.get(sched["subscription"] or "")
    if sub is not None and sub["status"] not in resources.ENDED:
        engine.cancel_now(state, sub)
    if sched["status"] in schedules.OPEN:
        schedules.cancel(state, sched)
    return respond(state, sched, params)


# -- request parameters (the spec subset lacks these endpoints) ------------------------------

_EXPAND: Obj = {"t": ["array"], "i": {"t": ["string"], "m": 5000}}
_METADATA: Obj = {"t": ["object", "string"], "a": {"t": ["string"]}, "e": [""]}
_STRING: Obj = {"t": ["string"], "m": 5000}
_INT: Obj = {"t": ["integer"]}
_PRORATION: Obj = {"t": ["string"], "e": list(PRORATIONS)}
_PHASE: Obj = {
    "t": ["object"],
    "p": {
        "end_date": _INT,
        "items": {
            "t": ["array"],
            "i": {
                "t": ["object"],
                "p": {"metadata": _METADATA, "price": _STRING, "quantity": _INT},
            },
        },
        "metadata": _METADATA,
        "proration_behavior": _PRORATION,
        "start_date": {"t": ["integer", "string"], "e": ["now"]},
    },
    "r": ["items"],
}
_NO_PARAMS: Obj = {"t": ["object"], "p": {"expand": _EXPAND}}
_BOUNDS: Obj = {"t": ["object", "integer"], "p": dict.fromkeys(("gt", "gte", "lt", "lte"), _INT)}
PARAMS: dict[tuple[str, str], Obj] = {
    ("POST", "/v1/subscription_schedules"): {
        "t": ["object"],
        "p": {
            "customer": _STRING,
            "end_behavior": {"t": ["string"], "e": list(END_BEHAVIORS)},
            "expand": _EXPAND,
            "from_subscription": _STRING,
            "metadata": _METADATA,
            "phases": {"t": ["array"], "i": _PHASE},
            "start_date": {"t": ["integer", "string"], "e": ["now"]},
        },
    },
    ("GET", "/v1/subscription_schedules"): {
        "t": ["object"],
        "p": {
            "created": _BOUNDS,
            "customer": _STRING,
            "ending_before": _STRING,
            "expand": _EXPAND,
            "limit": _INT,
            "starting_after": _STRING,
        },
    },
    ("GET", "/v1/subscription_schedules/{schedule}"): _NO_PARAMS,
    ("POST", "/v1/subscription_schedules/{schedule}"): {
        "t": ["object"],
        "p": {
            "end_behavior": {"t": ["string"], "e": list(END_BEHAVIORS)},
            "expand": _EXPAND,
            "metadata": _METADATA,
            "phases": {"t": ["array"], "i": _PHASE},
            "proration_behavior": _PRORATION,
        },
    },
    ("POST", "/v1/subscription_schedules/{schedule}/release"): {
        "t": ["object"],
        "p": {"expand": _EXPAND, "preserve_cancel_date": {"t": ["boolean"]}},
    },
    ("POST", "/v1/subscription_schedules/{schedule}/cancel"): {
        "t": ["object"],
        "p": {"expand": _EXPAND, "invoice_now": {"t": ["boolean"]}, "prorate": {"t": ["boolean"]}},
    },
}
