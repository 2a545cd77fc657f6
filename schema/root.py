"""The root Query, Mutation and Subscription types, bound to their resolvers."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import live, mutations, queries
from schema.types import ChangeSeatsResult, Entitlement, OpenPortalResult, Plan, UpgradeResult


@strawberry.type
class Query:
    """Reads."""

    entitlement: Entitlement = strawberry.field(
        resolver=queries.entitlement, description="The caller's org entitlement (needs a token)."
    )
    plans: list[Plan] = strawberry.field(
        resolver=queries.plans, description="The public plan catalog (no token needed)."
    )


@strawberry.type
class Mutation:
    """Billing actions; each returns a result union."""

    open_portal: OpenPortalResult = strawberry.mutation(
        resolver=mutations.open_portal_resolver,
        description="A new Customer Portal URL, optionally deep-linked to a flow.",
    )
    upgrade: UpgradeResult = strawberry.mutation(
        resolver=mutations.upgrade_resolver,
        description="Checkout for a new subscriber; a confirmed plan switch for a subscriber.",
    )
    change_seats: ChangeSeatsResult = strawberry.mutation(
        resolver=mutations.change_seats_resolver,
        description="Stripe's confirmation page for a new seat count on the current plan.",
    )


@strawberry.type
class Subscription:
    """Pushes, over the graphql-transport-ws WebSocket on /graphql."""

    entitlement_changed: AsyncGenerator[Entitlement, None] = strawberry.subscription(
        resolver=live.entitlement_changed,
        description=(
            "The caller's org entitlement: the current value first, then one message per change."
        ),
    )
