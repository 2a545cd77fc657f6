"""Read what an org may use now, from the local projection only (never Stripe)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing.models import BillingAccount, Entitlement, SubscriptionStatus, as_utc
from billing.services import Services


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


async def read_entitlement(services: Services, org_id: str) -> EntitlementView:
    """The org's entitlement; the default plan and NONE when it never subscribed."""
    async with services.db.read() as session:
        row = await session.get(Entitlement, org_id)
        account = await session.get(BillingAccount, org_id)
    catalog = services.catalog
    plan = row.plan if row is not None and row.plan in catalog.plans else catalog.default
    return EntitlementView(
        org_id=org_id,
        plan=plan,
        status=SubscriptionStatus(row.status) if row else SubscriptionStatus.NONE,
        cancel_at_period_end=bool(row and row.cancel_at_period_end),
        current_period_end=as_utc(row.current_period_end) if row else None,
        trial_end=as_utc(row.trial_end) if row else None,
        has_billing_account=account is not None and account.deleted_at is None,
        limits=dict(catalog.plans[plan].limits),
        updated_at=as_utc(row.updated_at) if row else None,
    )
