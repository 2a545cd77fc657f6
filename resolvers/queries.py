"""Query resolvers: `entitlement` (local rows only) and `plans` (the catalog)."""

from __future__ import annotations

from typing import cast

from strawberry.scalars import JSON

from billing.entitlements.billing_state import PendingChangeView, RequiredActionView
from billing.entitlements.read import EntitlementView
from billing.gateway.views import DiscountView
from billing.portal.sessions import PortalFlow
from resolvers.context import GraphQLInfo
from schema.types import (
    Discount,
    DiscountDuration,
    Entitlement,
    PendingChange,
    Plan,
    PlanPrice,
    RequiredAction,
    SeatRange,
)


async def entitlement(info: GraphQLInfo) -> Entitlement:
    """The caller's org entitlement."""
    principal = await info.context.principal()
    services = info.context.services
    return entitlement_of(await services.entitlement_reads.read(principal.org_id))


def entitlement_of(view: EntitlementView) -> Entitlement:
    """The GraphQL type of an entitlement view."""
    return Entitlement(
        org_id=view.org_id,
        plan=view.plan,
        status=view.status,
        cancel_at_period_end=view.cancel_at_period_end,
        current_period_end=view.current_period_end,
        trial_end=view.trial_end,
        has_billing_account=view.has_billing_account,
        limits=cast(JSON, view.limits),
        updated_at=view.updated_at,
        interval=view.interval,
        seats=view.seats,
        features=view.features,
        required_action=_action_of(view.required_action),
        pending_change=_change_of(view.pending_change),
        discount=_discount_of(view.discount),
    )


def _discount_of(view: DiscountView | None) -> Discount | None:
    """The GraphQL type of a discount."""
    if view is None:
        return None
    return Discount(
        coupon=str(view.coupon_id),
        name=view.name,
        percent_off=view.percent_off,
        amount_off=view.amount_off,
        currency=view.currency,
        duration=DiscountDuration(view.duration or "once"),
        duration_in_months=view.duration_in_months,
        end=view.end,
    )


def _action_of(view: RequiredActionView | None) -> RequiredAction | None:
    """The GraphQL type of a required action."""
    if view is None:
        return None
    return RequiredAction(
        code=view.code,
        flow=PortalFlow(view.flow) if view.flow else None,
        invoice_url=view.invoice_url,
        since=view.since,
        deadline=view.deadline,
    )


def _change_of(view: PendingChangeView | None) -> PendingChange | None:
    """The GraphQL type of a pending change."""
    if view is None:
        return None
    return PendingChange(
        plan=view.plan, interval=view.interval, seats=view.seats, effective_at=view.effective_at
    )


def plans(info: GraphQLInfo) -> list[Plan]:
    """The public catalog; needs no token."""
    catalog = info.context.services.catalog
    return [
        Plan(
            slug=slug,
            name=plan.name,
            limits=cast(JSON, dict(plan.limits)),
            features=sorted(plan.features),
            seats=SeatRange(min=plan.seats.min, max=plan.seats.max) if plan.seats else None,
            trial_days=plan.trial_days,
            prices=[
                PlanPrice(
                    interval=interval,
                    lookup_key=price.lookup_key,
                    amount=price.amount,
                    currency=price.currency,
                )
                for interval, price in plan.prices.items()
            ],
        )
        for slug, plan in catalog.plans.items()
    ]
