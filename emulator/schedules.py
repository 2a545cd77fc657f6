"""Subscription schedules: their objects, phases and lifecycle on the clock.

A schedule (``sub_sched_...``) manages one subscription through ``phases`` (items with a price
and quantity, ``start_date``..``end_date``). The engine asks ``due`` for the next phase
boundaries and calls ``run`` at each, passing the ``Billing`` operations a phase change needs
(this module sits below the engine: it imports nothing of it). Entering a phase that starts at
the subscription's period end renews the subscription on the phase's items, invoiced at their
prices, as a renewal would; a phase starting mid-period changes the items with the phase's
``proration_behavior``. After the last phase ends the schedule is ``released``
(``end_behavior=release``: the subscription keeps going, ``schedule`` back to null) or
``completed`` (``end_behavior=cancel``: the subscription is canceled). Canceling the
subscription cancels its schedule. The API endpoints are in ``emulator.schedules_api``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emulator import resources
from emulator.errors import invalid
from emulator.periods import add_interval
from emulator.shapes import Obj
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

SCHEDULE = "subscription_schedule"
OPEN = ("active", "not_started")
PRIORITY = 2  # on the clock: after a cancellation due then, before the renewal due then
PHASE, END = "schedule_phase", "schedule_end"
ACTIONS = (PHASE, END)
Due = tuple[int, int, Obj, str]
PhaseItem = tuple[Obj, int]  # (price, quantity)


@dataclass(frozen=True)
class Billing:
    """The engine's operations a phase change uses (passed in by the engine)."""

    apply: Callable[[EmulatorState, Obj, list[Obj]], None]  # item changes, nothing billed
    renew: Callable[[EmulatorState, Obj, Obj], None]  # start the next period (sub, before)
    change: Callable[[EmulatorState, Obj, list[Obj], str], Obj | None]  # now, prorated
    settle: Callable[[EmulatorState, Obj, Obj], None]  # finalize and charge an invoice
    cancel: Callable[[EmulatorState, Obj], None]  # cancel the subscription now


# -- objects -------------------------------------------------------------------------------


def phase_item(price_id: str, quantity: int) -> Obj:
    """A phase's item: a price id and a quantity."""
    return {
        "billing_thresholds": None,
        "discounts": [],
        "metadata": {},
        "price": price_id,
        "quantity": quantity,
        "tax_rates": [],
    }


def new_phase(
    items: list[Obj], start: int, end: int, currency: str, proration: str = "create_prorations"
) -> Obj:
    """A phase of ``items`` (``phase_item``s) from ``start`` to ``end``."""
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": currency,
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end,
        "invoice_settings": None,
        "items": items,
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": proration,
        "start_date": start,
        "transfer_data": None,
        "trial_end": None,
    }


def _subscription_items(sub: Obj) -> list[Obj]:
    """The phase items of a subscription's current items."""
    return [phase_item(i["price"]["id"], int(i.get("quantity") or 1)) for i in sub["items"]["data"]]


def _period(sub: Obj) -> tuple[int, int]:
    """The subscription's current period."""
    item = sub["items"]["data"][0]
    return int(item["current_period_start"]), int(item["current_period_end"])


def of_subscription(state: EmulatorState, sub: Obj) -> Obj | None:
    """The open schedule managing a subscription, if any."""
    sched = state.db.subscription_schedules.get(sub.get("schedule") or "")
    return sched if sched is not None and sched["status"] in OPEN else None


def from_subscription(state: EmulatorState, sub: Obj) -> Obj:
    """A schedule managing ``sub``: one phase, its items over its current period, released at
    the end. Fires subscription_schedule.created, then customer.subscription.updated
    (``schedule``)."""
    if sub["status"] in resources.ENDED:
        raise invalid(
            f"You cannot migrate a canceled subscription to a schedule: `{sub['id']}`.",
            param="from_subscription",
        )
    if sub.get("schedule"):
        raise invalid(
            "You cannot migrate a subscription that is already attached to a schedule: "
            f"`{sub['schedule']}`.",
            param="from_subscription",
        )
    start, end = _period(sub)
    now = state.now()
    sched = template(
        SCHEDULE,
        id=resources.new_id(SCHEDULE),
        canceled_at=None,
        completed_at=None,
        created=now,
        current_phase={"end_date": end, "start_date": start},
        customer=sub["customer"],
        default_settings=_default_settings(),
        end_behavior="release",
        metadata={},
        phases=[new_phase(_subscription_items(sub), start, end, sub["currency"])],
        released_at=None,
        released_subscription=None,
        status="active",
        subscription=sub["id"],
    )
    resources.add(state, SCHEDULE, sched)
    _set_schedule(state, sub, sched["id"])
    return sched


def _default_settings() -> Obj:
    """A schedule's ``default_settings`` as Stripe returns them when nothing is set."""
    settings: Obj = copy_json(template(SCHEDULE)["default_settings"])
    settings.update(
        application_fee_percent=None,
        automatic_tax={"disabled_reason": None, "enabled": False, "liability": None},
        billing_thresholds=None,
        default_payment_method=None,
        description=None,
        invoice_settings={
            "account_tax_ids": None,
            "days_until_due": None,
            "issuer": {"type": "self"},
        },
        on_behalf_of=None,
        transfer_data=None,
    )
    return settings


def _set_schedule(state: EmulatorState, sub: Obj, sched_id: str | None) -> None:
    """Point a subscription at its schedule (or none): customer.subscription.updated."""
    before = copy_json(sub)
    sub["schedule"] = sched_id
    state.emit_changes("customer.subscription.updated", sub, before)


def emit_updated(state: EmulatorState, sched: Obj, before: Obj) -> None:
    """subscription_schedule.updated when something changed."""
    state.emit_changes("subscription_schedule.updated", sched, before)


def current_index(sched: Obj) -> int:
    """The index of the current phase (the first whose start matches ``current_phase``)."""
    start = (sched.get("current_phase") or {}).get("start_date")
    return next((n for n, p in enumerate(sched["phases"]) if p["start_date"] == start), 0)


def set_current(sched: Obj, index: int) -> None:
    """Make phase ``index`` the current one."""
    phase = sched["phases"][index]
    sched["current_phase"] = {"end_date": phase["end_date"], "start_date": phase["start_date"]}


# -- the portal's scheduled changes ------------------------------------------------------


def change_at_period_end(state: EmulatorState, sub: Obj, items: list[PhaseItem]) -> Obj:
    """Schedule ``items`` for the subscription's next period, as the portal does for a
    downgrade: its schedule (created from it if needed) gets phase 1, the current items until
    the period end, and phase 2, the new items for one period of their price, then released.
    Fires subscription_schedule.created and customer.subscription.updated (a new schedule),
    then subscription_schedule.updated."""
    sched = of_subscription(state, sub) or from_subscription(state, sub)
    before = copy_json(sched)
    start, end = _period(sub)
    first = new_phase(_subscription_items(sub), start, end, sub["currency"])
    recurring = items[0][0].get("recurring") or {"interval": "month", "interval_count": 1}
    anchor = state.sub_internal.get(sub["id"], {}).get("anchor_day")
    count = int(recurring.get("interval_count") or 1)
    after = add_interval(end, str(recurring["interval"]), count, anchor)
    new_items = [phase_item(price["id"], qty) for price, qty in items]
    sched["phases"] = [first, new_phase(new_items, end, after, sub["currency"])]
    sched["end_behavior"] = "release"
    set_current(sched, 0)
    emit_updated(state, sched, before)
    return sched


def pending_items(state: EmulatorState, sub: Obj) -> tuple[int, list[Obj]] | None:
    """(start, items) of the schedule's next phase, when the subscription has one."""
    sched = of_subscription(state, sub)
    if sched is None:
        return None
    index = current_index(sched) + 1
    if index >= len(sched["phases"]):
        return None
    phase = sched["phases"][index]
    return int(phase["start_date"]), list(phase["items"])


# -- ends --------------------------------------------------------------------------------


def release(state: EmulatorState, sched: Obj) -> None:
    """Release: status released, the subscription keeps going without it.

    Fires subscription_schedule.released, then customer.subscription.updated (``schedule``).
    """
    sub_id = sched["subscription"]
    sched.update(
        current_phase=None,
        released_at=state.now(),
        released_subscription=sub_id,
        status="released",
        subscription=None,
    )
    state.emit("subscription_schedule.released", sched)
    sub = state.db.subscriptions.get(sub_id or "")
    if sub is not None and sub.get("schedule") == sched["id"]:
        _set_schedule(state, sub, None)


def on_subscription_canceled(state: EmulatorState, sub: Obj) -> None:
    """The subscription ended: its open schedule is canceled (subscription_schedule.canceled)."""
    sched = of_subscription(state, sub)
    if sched is not None:
        cancel(state, sched)


def cancel(state: EmulatorState, sched: Obj) -> None:
    """Status canceled: subscription_schedule.canceled."""
    sched.update(canceled_at=state.now(), current_phase=None, status="canceled")
    state.emit("subscription_schedule.canceled", sched)


# -- the clock -----------------------------------------------------------------------------


def due(state: EmulatorState) -> list[Due]:
    """The next boundary of every active schedule: (time, priority, schedule, action)."""
    out: list[Due] = []
    for sched in state.db.subscription_schedules.values():
        if sched["status"] != "active" or not sched["current_phase"]:
            continue
        index = current_index(sched)
        action = PHASE if index + 1 < len(sched["phases"]) else END
        out.append((int(sched["current_phase"]["end_date"]), PRIORITY, sched, action))
    return out


def run(state: EmulatorState, sched: Obj, action: str, billing: Billing) -> None:
    """A boundary on the clock: enter the next phase, or end the schedule."""
    sub = state.db.subscriptions.get(sched["subscription"] or "")
    if sub is None or sub["status"] in resources.ENDED:
        cancel(state, sched)
        return
    if action == PHASE:
        _enter(state, sched, sub, current_index(sched) + 1, billing)
    elif sched["end_behavior"] == "cancel":
        sched.update(completed_at=state.now(), current_phase=None, status="completed")
        billing.cancel(state, sub)
        state.emit("subscription_schedule.completed", sched)
    else:
        release(state, sched)


def _enter(state: EmulatorState, sched: Obj, sub: Obj, index: int, billing: Billing) -> None:
    """Enter phase ``index``: the subscription takes its items (a renewal at the period end,
    a prorated change otherwise); then subscription_schedule.updated."""
    before_sched = copy_json(sched)
    set_current(sched, index)
    phase = sched["phases"][index]
    changes = item_changes(state, sub, phase["items"])
    before = copy_json(sub)
    if int(phase["start_date"]) >= _period(sub)[1]:
        billing.apply(state, sub, changes)
        billing.renew(state, sub, before)
    else:
        invoice = billing.change(state, sub, changes, phase["proration_behavior"])
        state.emit_changes("customer.subscription.updated", sub, before)
        if invoice is not None:
            billing.settle(state, sub, invoice)
    emit_updated(state, sched, before_sched)


def item_changes(state: EmulatorState, sub: Obj, items: list[Obj]) -> list[Obj]:
    """The engine's item changes taking ``sub`` to a phase's items (by position: an item
    keeps its id when its price changes; extra items are added, missing ones deleted)."""
    current = sub["items"]["data"]
    changes: list[Obj] = []
    for n, item in enumerate(items):
        price = state.db.prices[str(item["price"])]
        change: Obj = {"price": price, "quantity": int(item.get("quantity") or 1)}
        if n < len(current):
            change["id"] = current[n]["id"]
        changes.append(change)
    changes += [{"id": i["id"], "deleted": True} for i in current[len(items) :]]
    return changes
