"""Subscription resolvers: `entitlementChanged` (local rows only, pushed on change)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from billing.kit.metrics import subscription_open
from resolvers.context import GraphQLInfo
from resolvers.queries import entitlement_of
from schema.types import Entitlement


async def entitlement_changed(info: GraphQLInfo) -> AsyncGenerator[Entitlement, None]:
    """The caller's org entitlement now, then again each time it changes."""
    principal = await info.context.principal()
    with subscription_open():
        async with aclosing(info.context.services.live.watch(principal.org_id)) as views:
            async for view in views:
                yield entitlement_of(view)
