"""Billing state a client can act on: the action the customer must take, the change Stripe has
scheduled. Both are projected from the same re-read of the customer as the rest of the
entitlement (the latest invoice, its payment, the payment methods on file, the schedule), so
delivery order and duplicates do not matter.

Stored as JSON on the entitlement row, times as unix seconds:
`required_action` = {code, flow, invoice_url, since, deadline, key, reported} and
`pending_change` = {plan, interval, seats, effective_at}."""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from billing.catalog.plans import BillingInterval, Catalog
from billing.gateway.views import CustomerView, SubscriptionView
from billing.models import SubscriptionStatus, utcnow

TRIAL_WARNING = timedelta(days=3)
"""How long before a card-less trial ends the customer is asked for a payment method (when
Stripe sends `customer.subscription.trial_will_end`)."""

COLLECTING = frozenset(
    {SubscriptionStatus.PAST_DUE, SubscriptionStatus.INCOMPLETE, SubscriptionStatus.UNPAID}
)
"""Statuses in which Stripe is still trying to collect the latest invoice."""


class RequiredActionCode(enum.Enum):
    """What the customer must do to keep paying."""

    PAYMENT_FAILED = "payment_failed"
    PAYMENT_CONFIRMATION_REQUIRED = "payment_confirmation_required"
    TRIAL_ENDING_WITHOUT_PAYMENT_METHOD = "trial_ending_without_payment_method"


PAYMENT_METHOD_UPDATE = "payment_method_update"
"""The portal flow (`PortalFlow.PAYMENT_METHOD_UPDATE`) that fixes a card problem."""


@dataclass(frozen=True)
class RequiredActionView:
    """The stored required action as clients see it."""

    code: RequiredActionCode
    flow: str | None
    """A `PortalFlow` value."""
    invoice_url: str | None
    since: datetime
    deadline: datetime | None


@dataclass(frozen=True)
class PendingChangeView:
    """The stored pending change as clients see it."""

    plan: str
    interval: BillingInterval | None
    seats: int | None
    effective_at: datetime


def _when(value: Any) -> datetime | None:
    """Unix seconds as an aware datetime."""
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def action_view(stored: dict[str, Any] | None) -> RequiredActionView | None:
    """The view of a stored `required_action` (None when none, or unreadable)."""
    if not stored or stored.get("code") not in RequiredActionCode.__members__:
        return None
    return RequiredActionView(
        code=RequiredActionCode[stored["code"]],
        flow=stored.get("flow"),
        invoice_url=stored.get("invoice_url"),
        since=_when(stored.get("since")) or datetime.fromtimestamp(0, UTC),
        deadline=_when(stored.get("deadline")),
    )


def change_view(catalog: Catalog, stored: dict[str, Any] | None) -> PendingChangeView | None:
    """The view of a stored `pending_change` (None when none, or its plan left the file)."""
    effective_at = _when((stored or {}).get("effective_at"))
    if not stored or effective_at is None or stored.get("plan") not in catalog.plans:
        return None
    interval = stored.get("interval")
    return PendingChangeView(
        plan=stored["plan"],
        interval=BillingInterval(interval) if interval in ("month", "year") else None,
        seats=stored.get("seats"),
        effective_at=effective_at,
    )


@dataclass(frozen=True)
class Reported:
    """An event that reported an action (its `key`), and when Stripe created it."""

    key: str
    at: datetime


def invoice_key(invoice_id: str) -> str:
    """The key of an action about an invoice (a failed or unconfirmed payment)."""
    return f"invoice:{invoice_id}"


def trial_key(subscription_id: str, trial_end: datetime | int) -> str:
    """The key of a card-less trial's action: the subscription and the trial's end."""
    end = _ts(trial_end) if isinstance(trial_end, datetime) else trial_end
    return f"trial:{subscription_id}:{end}"


def _ts(value: datetime | None) -> int | None:
    """A datetime as unix seconds (a naive one, as SQLite returns them, is UTC)."""
    return calendar.timegm(value.utctimetuple()) if value is not None else None


def _has_payment_method(sub: SubscriptionView, customer: CustomerView) -> bool:
    """A payment method is on file for the subscription's invoices."""
    return sub.has_payment_method or customer.has_payment_method


def _payment_action(sub: SubscriptionView) -> dict[str, Any] | None:
    """PAYMENT_CONFIRMATION_REQUIRED or PAYMENT_FAILED from the latest invoice, else None."""
    invoice = sub.latest_invoice
    if invoice is None or not invoice.unpaid_attempt or sub.status not in COLLECTING:
        return None
    deadline = _ts(invoice.next_payment_attempt)
    if invoice.payment_status == "requires_action":
        return {
            "code": RequiredActionCode.PAYMENT_CONFIRMATION_REQUIRED.name,
            "flow": None,
            "invoice_url": invoice.hosted_invoice_url,
            "deadline": deadline,
            "key": invoice_key(invoice.id),
        }
    return {
        "code": RequiredActionCode.PAYMENT_FAILED.name,
        "flow": PAYMENT_METHOD_UPDATE,
        "invoice_url": None,
        "deadline": deadline,
        "key": invoice_key(invoice.id),
    }


def _trial_action(
    sub: SubscriptionView, customer: CustomerView, known: set[str], now: datetime
) -> dict[str, Any] | None:
    """TRIAL_ENDING_WITHOUT_PAYMENT_METHOD for a card-less trial Stripe warned about (or that
    ends within the warning time), and for one paused at its end for want of a card."""
    if sub.trial_end is None or _has_payment_method(sub, customer):
        return None
    key = trial_key(sub.id, sub.trial_end)
    trialing = sub.status == SubscriptionStatus.TRIALING
    warned = key in known or sub.trial_end - now <= TRIAL_WARNING
    if not (sub.status == SubscriptionStatus.PAUSED or (trialing and warned)):
        return None
    return {
        "code": RequiredActionCode.TRIAL_ENDING_WITHOUT_PAYMENT_METHOD.name,
        "flow": PAYMENT_METHOD_UPDATE,
        "invoice_url": None,
        "deadline": _ts(sub.trial_end),
        "key": key,
    }


def required_action(
    sub: SubscriptionView | None,
    customer: CustomerView,
    reported: Iterable[Reported],
    existing: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The action the customer must take now, None when nothing (or the subscription ended).

    `since` is the creation time of the earliest event that reported this same action, among
    the events of this apply and the one already stored; an action nothing reported yet (a
    resync after lost events) starts now."""
    if sub is None or sub.ended:
        return None
    reports = list(reported)
    known = {r.key for r in reports}
    if existing:
        known.add(str(existing.get("key")))
    action = _payment_action(sub) or _trial_action(sub, customer, known, utcnow())
    if action is None:
        return None
    action["since"], action["reported"] = _since(action, reports, existing)
    return action


def _since(
    action: dict[str, Any], reports: list[Reported], existing: dict[str, Any] | None
) -> tuple[int, bool]:
    """(`since`, whether an event reported it): the earliest report of this action among this
    apply's events and the stored one; an action no event reported yet (a resync after lost
    events, or a re-read that ran ahead of its event) is dated now until a report arrives."""
    here = [t for r in reports if r.key == action["key"] and (t := _ts(r.at)) is not None]
    same = existing is not None and (existing.get("code"), existing.get("key")) == (
        action["code"],
        action["key"],
    )
    kept = existing if same else None
    stored = kept.get("since") if kept else None
    if kept and kept.get("reported") and isinstance(stored, int):
        return min([stored, *here]), True
    if here:
        return min(here), True
    if isinstance(stored, int):
        return stored, False
    return int(utcnow().timestamp()), False


def pending_change(catalog: Catalog, sub: SubscriptionView | None) -> dict[str, Any] | None:
    """The change Stripe has scheduled: a cancellation (to the default plan) or the schedule's
    next phase (its plan by the price's lookup key, interval, seats, start)."""
    if sub is None or sub.ended:
        return None
    ends = sub.cancel_at or (sub.current_period_end if sub.cancel_at_period_end else None)
    if ends is not None:
        return {"plan": catalog.default, "interval": None, "seats": None, "effective_at": _ts(ends)}
    phase = sub.schedule.next_phase() if sub.schedule else None
    if phase is None:
        return None
    found = catalog.by_lookup_key(phase.price_lookup_key)
    plan = found[0] if found else catalog.default
    return {
        "plan": plan,
        "interval": found[1].value if found else phase.interval,
        "seats": phase.quantity if catalog.plans[plan].seats is not None else None,
        "effective_at": _ts(phase.start),
    }
