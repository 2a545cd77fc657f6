"""One small handler per event type, in a string-keyed registry; each re-reads from Stripe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.projection import project_customer
from billing.services import Services

Handler = Callable[[Services, AsyncSession, dict[str, Any]], Awaitable[str | None]]
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
    return value if isinstance(value, str) and value else None


@handles(
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
)
async def subscription_changed(
    services: Services, session: AsyncSession, obj: dict[str, Any]
) -> str | None:
    """Any subscription change: re-sync its customer."""
    customer = _id(obj.get("customer"))
    org_hint = (obj.get("metadata") or {}).get("org_id")
    return await project_customer(services, session, customer, org_hint) if customer else None


@handles("checkout.session.completed")
async def checkout_completed(
    services: Services, session: AsyncSession, obj: dict[str, Any]
) -> str | None:
    """Link the customer to the org named by the session, then sync it."""
    customer = _id(obj.get("customer"))
    if obj.get("mode") != "subscription" or customer is None:
        return None
    org_hint = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("org_id")
    return await project_customer(services, session, customer, org_hint)


@handles("invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded")
async def invoice_settled(
    services: Services, session: AsyncSession, obj: dict[str, Any]
) -> str | None:
    """A payment moved the subscription's status: re-sync the customer."""
    customer = _id(obj.get("customer"))
    return await project_customer(services, session, customer) if customer else None


@handles("customer.deleted")
async def customer_deleted(
    services: Services, session: AsyncSession, obj: dict[str, Any]
) -> str | None:
    """The customer is gone: the org falls back to the default plan, no billing account."""
    customer = _id(obj.get("id"))
    return await project_customer(services, session, customer) if customer else None
