"""The running service's collaborators, built once per app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from billing.auth import Authenticator
from billing.db import Database
from billing.errors import BillingErrorCode, BillingFailure
from billing.plans import Catalog, load_catalog
from billing.settings import Settings
from billing.stripe_api import StripeGateway, deadline

if TYPE_CHECKING:
    from billing.live import LiveEntitlements

T = TypeVar("T")


@dataclass
class Services:
    """Settings, database, catalog, authenticator, (when configured) the Stripe gateway, and
    the live entitlements."""

    settings: Settings
    db: Database
    catalog: Catalog
    auth: Authenticator
    stripe_gateway: StripeGateway | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Build everything the settings describe; fails fast on a bad plans file."""
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            catalog=load_catalog(settings.plans_file),
            auth=Authenticator(settings),
            stripe_gateway=StripeGateway(settings) if settings.stripe_secret_key else None,
        )

    @cached_property
    def live(self) -> LiveEntitlements:
        """The entitlements someone watches (`entitlementChanged`), as they change."""
        from billing.live import LiveEntitlements  # it reads through this module's Services

        return LiveEntitlements(self)

    @property
    def deadline(self) -> float:
        """Seconds a billing mutation may spend in all its Stripe calls together."""
        return deadline(self.settings)

    @property
    def stripe(self) -> StripeGateway:
        """The Stripe gateway, or STRIPE_NOT_CONFIGURED."""
        if self.stripe_gateway is None:
            raise BillingFailure(BillingErrorCode.STRIPE_NOT_CONFIGURED)
        return self.stripe_gateway


async def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Build the services, run `work` with them, close the database (CLI commands, tests)."""
    services = Services.from_settings(settings)
    try:
        return await work(services)
    finally:
        await services.db.dispose()
