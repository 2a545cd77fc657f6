"""The running service's collaborators, built once per app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from billing.catalog.plans import Catalog, load_catalog
from billing.entitlements.live import LiveEntitlements
from billing.entitlements.read import BatchedReads
from billing.errors import configured
from billing.gateway.client import StripeGateway, deadline
from billing.kit.auth import Authenticator
from billing.kit.database import Database
from billing.kit.settings import Settings
from billing.ratelimit import OrgRateLimit

T = TypeVar("T")


@dataclass
class Services:
    """Settings, database, catalog, authenticator, (when configured) the Stripe gateway, the
    per-org rate limit and the live entitlements."""

    settings: Settings
    db: Database
    catalog: Catalog
    auth: Authenticator
    stripe_gateway: StripeGateway | None
    rate_limit: OrgRateLimit

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Build everything the settings describe; fails fast on a bad plans file."""
        db = Database(settings.database_url)
        return cls(
            settings=settings,
            db=db,
            catalog=load_catalog(settings.plans_file),
            auth=Authenticator(settings),
            stripe_gateway=StripeGateway(settings) if settings.stripe_secret_key else None,
            rate_limit=OrgRateLimit(db, settings.billing_rate_limit),
        )

    @cached_property
    def entitlement_reads(self) -> BatchedReads:
        """Single orgs' entitlement reads, batched while a burst of them waits."""
        return BatchedReads(self.db, self.catalog)

    @cached_property
    def live(self) -> LiveEntitlements:
        """The entitlements someone watches (`entitlementChanged`), as they change."""
        return LiveEntitlements(self.db, self.catalog)

    @property
    def deadline(self) -> float:
        """Seconds a billing mutation may spend in all its Stripe calls together."""
        return deadline(self.settings)

    @property
    def stripe(self) -> StripeGateway:
        """The Stripe gateway, or STRIPE_NOT_CONFIGURED."""
        return configured(self.stripe_gateway)


async def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Build the services, run `work` with them, close the database (CLI commands, tests)."""
    services = Services.from_settings(settings)
    try:
        return await work(services)
    finally:
        await services.db.dispose()
