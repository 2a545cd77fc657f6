"""One small handler per event type, in a string-keyed registry: which customer it is about.

Handlers never trust the payload's state: the applier re-reads the customer from Stripe, so
delivery order does not matter. A handler only names the customer to re-read and, when the
event knows it, the org to link an unknown customer to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing.entitlements.billing_state import COLLECTING, invoice_key, trial_key
from billing.gateway.views import from_timestamp
from billing.retention.facts import (
    CancellationAsked,
    CancellationUndone,
    DiscountGained,
    RetentionFact,
    SubscriptionStarted,
)


@dataclass(frozen=True)
class Target:
    """The customer an event is about, and the org it names (if any)."""

    customer_id: str
    org_hint: str | None = None
    report: str | None = None
    """The required action the payload reports (`billing_state` key), for its `since`: never
    its state, which the applier re-reads."""
    facts: tuple[RetentionFact, ...] = ()
    """What the payload says the customer did, for the retention records (history, never
    state)."""


@dataclass(frozen=True)
class EventData:
    """What a handler reads of an event: its type, its object, and the fields that object
    changed (`data.previous_attributes`, empty when Stripe sent none)."""

    type: str
    obj: dict[str, Any]
    previous: dict[str, Any]
    created: datetime
    """When Stripe created the event."""


Handler = Callable[[EventData], Target | None]
HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Register a handler for event types."""

    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS[event_type] = handler
        return handler

    return register


def _id(value: Any) -> str | None:
    """An id from an expandable field."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def _hint(value: Any) -> str | None:
    """An org id named by the event, if it is a plausible one."""
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata (empty when missing or malformed)."""
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _subscription_report(event: EventData) -> str | None:
    """The action a subscription event reports: a card-less trial ending or paused, or a
    payment Stripe is still collecting."""
    obj = event.obj
    sub_id, status, trial_end = _id(obj.get("id")), obj.get("status"), obj.get("trial_end")
    if sub_id is None:
        return None
    trial_warning = event.type == "customer.subscription.trial_will_end" or status == "paused"
    if trial_warning and isinstance(trial_end, int) and not obj.get("default_payment_method"):
        return trial_key(sub_id, trial_end)
    invoice = _id(obj.get("latest_invoice"))
    return invoice_key(invoice) if status in COLLECTING and invoice else None


@handles(
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
)
def subscription_changed(event: EventData) -> Target | None:
    """Any subscription change: re-sync its customer."""
    customer = _id(event.obj.get("customer"))
    if customer is None:
        return None
    return Target(
        customer,
        _hint(_metadata(event.obj).get("org_id")),
        _subscription_report(event),
        _retention_facts(event),
    )


def _cancelling(obj: dict[str, Any]) -> bool:
    """Whether a subscription is canceled or set to cancel."""
    return bool(
        obj.get("status") == "canceled" or obj.get("cancel_at_period_end") or obj.get("cancel_at")
    )


def _period_end(obj: dict[str, Any]) -> int | None:
    """The end of the subscription's current period, from its first item."""
    items = (obj.get("items") or {}).get("data") if isinstance(obj.get("items"), dict) else None
    end = items[0].get("current_period_end") if items and isinstance(items[0], dict) else None
    return end if isinstance(end, int) else None


def _text(value: Any, limit: int) -> str | None:
    """A string field, cut to `limit` characters (None when absent or not a string)."""
    return value[:limit] if isinstance(value, str) and value else None


def _retention_facts(event: EventData) -> tuple[RetentionFact, ...]:
    """A subscription started, a cancellation asked for (with Stripe's
    `cancellation_details`), or one taken back."""
    obj = event.obj
    sub_id, period_end = _id(obj.get("id")), _period_end(obj)
    if sub_id is None:
        return ()
    started = (
        (SubscriptionStarted(sub_id),) if event.type == "customer.subscription.created" else ()
    )
    if period_end is None:
        return started
    if _cancelling(obj):
        details = obj.get("cancellation_details")
        details = details if isinstance(details, dict) else {}
        canceled_at = obj.get("canceled_at")
        at = _time(canceled_at) or event.created
        return (
            *started,
            CancellationAsked(
                sub_id,
                period_end,
                at,
                _text(details.get("reason"), 64),
                _text(details.get("feedback"), 64),
                _text(details.get("comment"), 5000),
            ),
        )
    before = event.previous
    if before.get("cancel_at_period_end") is True or before.get("cancel_at"):
        return (CancellationUndone(sub_id, period_end, event.created),)
    return started


@handles("customer.discount.created")
def discount_created(event: EventData) -> Target | None:
    """A subscription gained a discount (a retention offer accepted, when its coupon was
    offered): record it, and re-read the customer for `entitlement.discount`."""
    obj = event.obj
    customer = _id(obj.get("customer"))
    if customer is None:
        return None
    sub_id, discount_id = _id(obj.get("subscription")), _id(obj.get("id"))
    source = obj.get("source")
    coupon = _id(source.get("coupon")) if isinstance(source, dict) else None
    start = obj.get("start")
    if sub_id is None or discount_id is None or coupon is None:
        return Target(customer)
    at = _time(start) or event.created
    return Target(customer, facts=(DiscountGained(sub_id, discount_id, coupon, at),))


@handles(
    "subscription_schedule.created",
    "subscription_schedule.updated",
    "subscription_schedule.released",
    "subscription_schedule.canceled",
    "subscription_schedule.completed",
    "subscription_schedule.aborted",
    "customer.discount.updated",
    "customer.discount.deleted",
    "entitlements.active_entitlement_summary.updated",
)
def customer_object_changed(event: EventData) -> Target | None:
    """Something of the customer's changed (a schedule: a downgrade at period end; a discount;
    its active entitlements): re-read the customer. The object itself is never read: the
    entitlement summary, for one, is a single page and may be older than another delivered
    first."""
    customer = _id(event.obj.get("customer"))
    return Target(customer) if customer else None


@handles("checkout.session.completed")
def checkout_completed(event: EventData) -> Target | None:
    """Link the customer to the org named by the session, then sync it."""
    obj = event.obj
    customer = _id(obj.get("customer"))
    if obj.get("mode") != "subscription" or customer is None:
        return None
    org = obj.get("client_reference_id") or _metadata(obj).get("org_id")
    return Target(customer, _hint(org))


_PAYMENT_PROBLEMS = ("invoice.payment_failed", "invoice.payment_action_required")


@handles(
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.payment_action_required",
)
def invoice_settled(event: EventData) -> Target | None:
    """A payment moved the subscription's status or asks the customer to act: re-sync."""
    customer, invoice = _id(event.obj.get("customer")), _id(event.obj.get("id"))
    if customer is None:
        return None
    reported = invoice_key(invoice) if invoice and event.type in _PAYMENT_PROBLEMS else None
    return Target(customer, report=reported)


_PAYMENT_METHOD_FIELDS = frozenset({"invoice_settings", "default_source"})


@handles("customer.updated")
def payment_method_changed(event: EventData) -> Target | None:
    """The customer's default payment method may have changed (a card on file clears a
    card-less trial's action); an update that names other fields only changes nothing we
    project."""
    customer = _id(event.obj.get("id"))
    if customer is None or (event.previous and not _PAYMENT_METHOD_FIELDS & event.previous.keys()):
        return None
    return Target(customer)


@handles("customer.deleted")
def customer_deleted(event: EventData) -> Target | None:
    """The customer is gone: the org falls back to the default plan, no billing account."""
    customer = _id(event.obj.get("id"))
    return Target(customer) if customer else None


def target_of(event_type: str, payload: dict[str, Any]) -> Target | None:
    """The target of a stored event's payload; None for types and objects with nothing to do."""
    handler = HANDLERS.get(event_type)
    data = payload.get("data")
    if handler is None or not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return None
    previous = data.get("previous_attributes")
    previous = previous if isinstance(previous, dict) else {}
    when = _time(payload.get("created")) or datetime.now(UTC)
    return handler(EventData(event_type, data["object"], previous, when))


def _time(value: Any) -> datetime | None:
    """A Stripe timestamp of the payload as an aware datetime (None when it is not one)."""
    return from_timestamp(value) if isinstance(value, int) else None
