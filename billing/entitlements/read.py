"""Read what an org may use now, from the local projection only (never Stripe)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, select

from billing.catalog.plans import BillingInterval, Catalog
from billing.entitlements.billing_state import (
    PendingChangeView,
    RequiredActionCode,
    RequiredActionView,
    action_view,
    change_view,
)
from billing.entitlements.discount import discount_view
from billing.gateway.views import DiscountView
from billing.kit.database import Database
from billing.models import BillingAccount, Entitlement, SubscriptionStatus, as_utc


@dataclass(frozen=True)
class EntitlementView:
    """The entitlement as clients see it."""

    org_id: str
    plan: str
    status: SubscriptionStatus
    cancel_at_period_end: bool
    current_period_end: datetime | None
    trial_end: datetime | None
    has_billing_account: bool
    limits: dict[str, Any]
    updated_at: datetime | None
    interval: BillingInterval | None
    seats: int | None
    features: list[str]
    """The plan's features in the plans file and the customer's active entitlements in Stripe."""
    required_action: RequiredActionView | None = None
    pending_change: PendingChangeView | None = None
    discount: DiscountView | None = None


_ORG = select(bindparam("org_id", type_=String).label("org_id")).subquery("org")
_ROW = Entitlement.__table__.alias("row")  # type: ignore[attr-defined]
_ACCOUNT = BillingAccount.__table__.alias("account")  # type: ignore[attr-defined]
_ROW_COLUMNS = (
    _ROW.c.plan,
    _ROW.c.status,
    _ROW.c.cancel_at_period_end,
    _ROW.c.current_period_end,
    _ROW.c.trial_end,
    _ROW.c.updated_at,
    _ROW.c.interval,
    _ROW.c.quantity,
    _ROW.c.stripe_features,
    _ROW.c.required_action,
    _ROW.c.pending_change,
    _ROW.c.discount,
)
READ = select(*_ROW_COLUMNS, _ACCOUNT.c.org_id.label("account"), _ACCOUNT.c.deleted_at).select_from(
    _ORG.outerjoin(_ROW, _ROW.c.org_id == _ORG.c.org_id).outerjoin(
        _ACCOUNT, _ACCOUNT.c.org_id == _ORG.c.org_id
    )
)
"""The org's entitlement row and billing account in one query (either may be missing)."""

ROWS_MANY = select(_ROW.c.org_id, *_ROW_COLUMNS)
"""Entitlement rows of several orgs (add a WHERE on `_ROW.c.org_id`)."""

ACCOUNTS_MANY = select(_ACCOUNT.c.org_id, _ACCOUNT.c.deleted_at)
"""Billing accounts of several orgs (add a WHERE on `_ACCOUNT.c.org_id`)."""

BATCH = 500
"""Orgs read per query by `read_entitlements` (bound parameters stay well under the limits)."""


async def read_entitlement(db: Database, catalog: Catalog, org_id: str) -> EntitlementView:
    """The org's entitlement; the default plan and NONE when it never subscribed."""
    async with db.engine.connect() as conn:
        found = (await conn.execute(READ, {"org_id": org_id})).one()
    return _view(catalog, org_id, found, found.account is not None, found.deleted_at)


class BatchedReads:
    """Single orgs' entitlement reads gathered into few queries: the orgs asked for while a
    read is in flight are read together next (`read_entitlements`), and an org asked for
    twice meanwhile is read once. A burst of first reads (a cold start, or every org's
    answer dropped at once) costs a query per batch instead of a connection per org.

    Each read still starts after it was asked for, so a change-feed snapshot taken before
    asking stays a valid guard for keeping what is read."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog
        self._waiting: dict[str, asyncio.Future[EntitlementView]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def read(self, org_id: str) -> EntitlementView:
        """The org's entitlement, read with the others asked for meanwhile."""
        future = self._waiting.get(org_id)
        if future is None:
            future = self._waiting[org_id] = asyncio.get_running_loop().create_future()
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_all(), name="entitlement-reads")
        # A caller that goes away must not cancel the read the others wait for.
        return await asyncio.shield(future)

    async def _read_all(self) -> None:
        """Read batches until nobody waits."""
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                if len(batch) == 1:
                    [org_id] = batch
                    views = {org_id: await read_entitlement(self.db, self.catalog, org_id)}
                else:
                    views = await read_entitlements(self.db, self.catalog, list(batch))
            except Exception as exc:  # every waiter of this batch gets it
                for future in batch.values():
                    _settle(future, exc)
                continue
            for org_id, future in batch.items():
                _settle(future, views[org_id])


def _settle(future: asyncio.Future[EntitlementView], outcome: EntitlementView | Exception) -> None:
    """Hand a read's outcome to its waiters (none left when they all went away)."""
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
        future.exception()  # retrieved: nobody left waiting is no error to log
    else:
        future.set_result(outcome)


async def read_entitlements(
    db: Database, catalog: Catalog, org_ids: Sequence[str]
) -> dict[str, EntitlementView]:
    """Several orgs' entitlements, in two queries per BATCH orgs."""
    views: dict[str, EntitlementView] = {}
    async with db.engine.connect() as conn:
        for start in range(0, len(org_ids), BATCH):
            batch = list(org_ids[start : start + BATCH])
            found = await conn.execute(ROWS_MANY.where(_ROW.c.org_id.in_(batch)))
            rows = {row.org_id: row for row in found}
            accounts = await conn.execute(ACCOUNTS_MANY.where(_ACCOUNT.c.org_id.in_(batch)))
            deleted = {org: deleted_at for org, deleted_at in accounts}
            for org_id in batch:
                views[org_id] = _view(
                    catalog, org_id, rows.get(org_id), org_id in deleted, deleted.get(org_id)
                )
    return views


def _view(
    catalog: Catalog,
    org_id: str,
    found: Any,
    has_account: bool,
    deleted_at: datetime | None,
) -> EntitlementView:
    """The view of an org's entitlement row (None or a NULL status: never subscribed)."""
    row = found if found is not None and found.status is not None else None
    plan = row.plan if row is not None and row.plan in catalog.plans else catalog.default
    seats = row.quantity if row is not None and catalog.plans[plan].seats is not None else None
    in_stripe = row.stripe_features or () if row is not None else ()
    return EntitlementView(
        org_id=org_id,
        plan=plan,
        status=SubscriptionStatus(row.status) if row else SubscriptionStatus.NONE,
        cancel_at_period_end=bool(row and row.cancel_at_period_end),
        current_period_end=as_utc(row.current_period_end) if row else None,
        trial_end=as_utc(row.trial_end) if row else None,
        has_billing_account=has_account and deleted_at is None,
        limits=catalog.plans[plan].limits_for(seats),
        updated_at=as_utc(row.updated_at) if row else None,
        interval=BillingInterval(row.interval) if row and row.interval else None,
        seats=seats,
        features=sorted(catalog.plans[plan].features.union(in_stripe)),
        required_action=action_view(row.required_action) if row else None,
        pending_change=change_view(catalog, row.pending_change) if row else None,
        discount=discount_view(row.discount) if row else None,
    )


async def open_required_actions(db: Database) -> dict[str, int]:
    """How many orgs have an open required action, by code (every code, 0 when none)."""
    counts = dict.fromkeys(RequiredActionCode.__members__, 0)
    query = select(_ROW.c.required_action).where(_ROW.c.required_action.is_not(None))
    async with db.engine.connect() as conn:
        for (stored,) in await conn.execute(query):
            code = (stored or {}).get("code")
            if code in counts:
                counts[code] += 1
    return counts
