"""The only writer of entitlements: re-read a customer from Stripe and project its state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session
from sqlmodel import col, select

from billing.accounts import link_account
from billing.catalog.plans import Catalog
from billing.entitlements.billing_state import Reported, pending_change, required_action
from billing.entitlements.discount import discount_column
from billing.gateway.client import StripeGateway
from billing.gateway.errors import StripeNotFound
from billing.gateway.views import CustomerState, CustomerView, SubscriptionView
from billing.kit.change_feed import mark_changed
from billing.kit.database import Database
from billing.models import BillingAccount, Entitlement, SubscriptionStatus, as_utc, utcnow
from billing.subscriptions import ENDED, is_paid, pick_current

log = logging.getLogger(__name__)


def entitlement_columns(catalog: Catalog, sub: SubscriptionView | None) -> dict[str, Any]:
    """The entitlement columns for a customer's current subscription (None: never subscribed)."""
    if sub is None:
        return {"plan": catalog.default, "status": SubscriptionStatus.NONE.value}
    found = catalog.by_lookup_key(sub.price_lookup_key)
    paid = is_paid(sub)
    if paid and found is None:
        log.warning("subscription %s has price %s, which no plan names", sub.id, sub.price_id)
    live = sub.status not in ENDED
    return {
        "subscription_id": sub.id,
        "subscription_item_id": sub.item_id,
        "price_lookup_key": sub.price_lookup_key,
        "plan": found[0] if paid and found else catalog.default,
        "interval": found[1] if found else None,
        "quantity": sub.quantity,
        "status": sub.status,
        "cancel_at_period_end": live and (sub.cancel_at_period_end or sub.cancel_at is not None),
        "current_period_end": sub.current_period_end,
        "trial_end": sub.trial_end,
        "discount": discount_column(sub) if live else None,
    }


def _locked_account(session: Session, customer_id: str) -> BillingAccount | None:
    """The account of a customer, row-locked until the transaction ends."""
    stmt = (
        select(BillingAccount)
        .where(col(BillingAccount.stripe_customer_id) == customer_id)
        .with_for_update()
    )
    return session.execute(stmt).scalar_one_or_none()


async def read_customer(stripe: StripeGateway, customer_id: str) -> CustomerState:
    """Stripe's state of a customer now; one Stripe no longer knows counts as deleted."""
    try:
        return await stripe.customer_state(customer_id)
    except StripeNotFound:
        return CustomerState(CustomerView(id=customer_id, deleted=True, metadata={}), [])


def _link(session: Session, state: CustomerState, org_hint: str | None) -> BillingAccount | None:
    """Link an unknown customer to its org (customer metadata first, then the hint)."""
    customer = state.customer
    org_id = customer.metadata.get("org_id") or org_hint
    if customer.deleted or not org_id:
        log.info("ignoring customer %s: %s", customer.id, "deleted" if org_id else "no org")
        return None
    link_account(session, org_id, customer.id)
    account = _locked_account(session, customer.id)
    if account is None:
        log.warning("org %s already has another live customer; ignoring %s", org_id, customer.id)
    return account


def _gone(catalog: Catalog, had_subscription: bool) -> dict[str, Any]:
    """The entitlement of an org whose customer was deleted (Stripe canceled its subscriptions)."""
    values = entitlement_columns(catalog, None)
    values.update(
        status=(SubscriptionStatus.CANCELED if had_subscription else SubscriptionStatus.NONE).value,
        subscription_id=None,
        subscription_item_id=None,
        price_lookup_key=None,
        interval=None,
        quantity=None,
        cancel_at_period_end=False,
        current_period_end=None,
        trial_end=None,
        required_action=None,
        pending_change=None,
        discount=None,
    )
    return values


def expected_columns(
    catalog: Catalog,
    state: CustomerState,
    existing: Entitlement | None,
    reported: Sequence[Reported] = (),
) -> dict[str, Any]:
    """The entitlement columns `project_customer` writes for this read over the `existing` row
    (`reported`: the actions the applied events reported, for `requiredAction.since`)."""
    if state.customer.deleted:
        had = bool(state.subscriptions) or (
            existing is not None and existing.status != SubscriptionStatus.NONE.value
        )
        values = _gone(catalog, had)
    else:
        current = pick_current(state.subscriptions)
        values = entitlement_columns(catalog, current)
        stored = existing.required_action if existing is not None else None
        values["required_action"] = required_action(current, state.customer, reported, stored)
        values["pending_change"] = pending_change(catalog, current)
    values["stripe_customer_id"] = state.customer.id
    values["stripe_features"] = sorted(state.features)
    return values


def marks_deleted(state: CustomerState, account: BillingAccount) -> bool:
    """True when this read makes `project_customer` mark the account deleted."""
    return state.customer.deleted and account.deleted_at is None


def project_customer(
    catalog: Catalog,
    session: Session,
    state: CustomerState,
    org_hint: str | None = None,
    reported: Sequence[Reported] = (),
) -> str | None:
    """Make the org's entitlement equal this read of Stripe; returns the org, None if unknown.

    The caller holds the customer's lock (`billing.kit.customer_locks`) from before the read
    until this transaction commits, so no older read is ever written over a newer one."""
    account = _locked_account(session, state.customer.id)
    if account is None:
        account = _link(session, state, org_hint)
        if account is None:
            return None
    existing = session.get(Entitlement, account.org_id)
    if marks_deleted(state, account):
        account.deleted_at = utcnow()
        session.add(account)
        mark_changed(session, account.org_id)
    values = expected_columns(catalog, state, existing, reported)
    if existing is None or _differs(existing, values):
        row = existing or Entitlement(org_id=account.org_id, plan=values["plan"])
        for column, value in values.items():
            setattr(row, column, value)
        row.updated_at = utcnow()
        session.add(row)
        mark_changed(session, account.org_id)
    session.flush()
    return account.org_id


def stored_value(row: Entitlement, column: str) -> Any:
    """A column of the row as `expected_columns` states it (SQLite's naive datetimes as UTC)."""
    value = getattr(row, column)
    return as_utc(value) if isinstance(value, datetime) else value


def _differs(row: Entitlement, values: dict[str, Any]) -> bool:
    """True when writing `values` would change the row (a re-read that changes nothing writes
    nothing: `updatedAt` stays, and no `entitlementChanged` message goes out)."""
    return any(stored_value(row, column) != value for column, value in values.items())


LOCK_WAIT = 60.0
"""Seconds `resync` waits for an applier that holds the customer."""


async def resync_customer(
    db: Database, stripe: StripeGateway, catalog: Catalog, customer_id: str
) -> str | None:
    """Re-read one customer and project it under its lock (recovery, `resync`)."""
    async with db.locks.hold(customer_id, wait=LOCK_WAIT) as lock:
        if lock is None:
            raise TimeoutError(f"customer {customer_id} stayed locked for {LOCK_WAIT:.0f}s")
        state = await read_customer(stripe, customer_id)
        return await lock.write(partial(project_customer, catalog, state=state))
