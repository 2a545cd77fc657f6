"""One small handler per event type, in a string-keyed registry: which customer it is about.

Handlers never trust the payload's state: the applier re-reads the customer from Stripe, so
delivery order does not matter. A handler only names the customer to re-read and, when the
event knows it, the org to link an unknown customer to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """The customer an event is about, and the org it names (if any)."""

    customer_id: str
    org_hint: str | None = None


Handler = Callable[[dict[str, Any]], Target | None]
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


@handles(
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
)
def subscription_changed(obj: dict[str, Any]) -> Target | None:
    """Any subscription change: re-sync its customer."""
    customer = _id(obj.get("customer"))
    return Target(customer, _hint(_metadata(obj).get("org_id"))) if customer else None


@handles("checkout.session.completed")
def checkout_completed(obj: dict[str, Any]) -> Target | None:
    """Link the customer to the org named by the session, then sync it."""
    customer = _id(obj.get("customer"))
    if obj.get("mode") != "subscription" or customer is None:
        return None
    org = obj.get("client_reference_id") or _metadata(obj).get("org_id")
    return Target(customer, _hint(org))


@handles("invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded")
def invoice_settled(obj: dict[str, Any]) -> Target | None:
    """A payment moved the subscription's status: re-sync the customer."""
    customer = _id(obj.get("customer"))
    return Target(customer) if customer else None


@handles("entitlements.active_entitlement_summary.updated")
def entitlements_changed(obj: dict[str, Any]) -> Target | None:
    """The customer's active entitlements changed: re-read them (never the summary's list,
    which is one page and may be older than another summary delivered first)."""
    customer = _id(obj.get("customer"))
    return Target(customer) if customer else None


@handles("customer.deleted")
def customer_deleted(obj: dict[str, Any]) -> Target | None:
    """The customer is gone: the org falls back to the default plan, no billing account."""
    customer = _id(obj.get("id"))
    return Target(customer) if customer else None


def target_of(event_type: str, payload: dict[str, Any]) -> Target | None:
    """The target of a stored event's payload; None for types and objects with nothing to do."""
    handler = HANDLERS.get(event_type)
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return handler(obj) if handler and isinstance(obj, dict) else None
