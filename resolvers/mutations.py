"""Mutation resolvers: expected failures come back as BillingError data."""

from __future__ import annotations

from billing.errors import BillingErrorCode, BillingFailure, StripeUnavailable
from billing.plans import Interval
from billing.portal import PortalFlow, PortalLink, open_portal
from billing.upgrade import start_upgrade
from resolvers.context import GraphQLInfo
from schema.types import BillingError, BillingInterval, CheckoutSession, PortalSession


def interval_of(interval: BillingInterval) -> Interval:
    """The catalog's interval name for the GraphQL enum."""
    return "year" if interval is BillingInterval.YEAR else "month"


def _portal(link: PortalLink) -> PortalSession:
    """A PortalSession from a minted link."""
    return PortalSession(url=link.url, flow=link.flow)


def _failure(exc: Exception) -> BillingError:
    """The BillingError for an expected failure."""
    if isinstance(exc, StripeUnavailable):
        exc = BillingFailure(BillingErrorCode.STRIPE_UNAVAILABLE)
    assert isinstance(exc, BillingFailure)
    return BillingError(code=exc.code, message=exc.message)


async def open_portal_resolver(
    info: GraphQLInfo, return_path: str = "/settings/billing", flow: PortalFlow | None = None
) -> PortalSession | BillingError:
    """A fresh Customer Portal URL for the caller's org."""
    principal = await info.context.principal()
    try:
        link = await open_portal(info.context.billing, principal, return_path, flow)
    except (BillingFailure, StripeUnavailable) as exc:
        return _failure(exc)
    return _portal(link)


async def upgrade_resolver(
    info: GraphQLInfo, plan: str, interval: BillingInterval = BillingInterval.MONTH
) -> CheckoutSession | PortalSession | BillingError:
    """Checkout for new subscribers, a confirmed plan switch for subscribers."""
    principal = await info.context.principal()
    try:
        link = await start_upgrade(info.context.billing, principal, plan, interval_of(interval))
    except (BillingFailure, StripeUnavailable) as exc:
        return _failure(exc)
    if isinstance(link, PortalLink):
        return _portal(link)
    return CheckoutSession(id=link.id, url=link.url)
