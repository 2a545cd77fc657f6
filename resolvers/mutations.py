"""Mutation resolvers: expected failures come back as BillingError data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry import UNSET

from billing.auth import Principal
from billing.context import Billing
from billing.errors import BillingErrorCode, BillingFailure, StripeUnavailable
from billing.plans import Interval
from billing.portal import PortalFlow, PortalLink, open_portal
from billing.upgrade import CheckoutLink, start_upgrade
from resolvers.context import GraphQLInfo
from schema.types import BillingError, BillingInterval, CheckoutSession, PortalSession

T = TypeVar("T")
log = logging.getLogger(__name__)


def interval_of(interval: BillingInterval) -> Interval:
    """The catalog's interval name for the GraphQL enum."""
    return "year" if interval is BillingInterval.YEAR else "month"


def _portal(link: PortalLink) -> PortalSession:
    """A PortalSession from a minted link."""
    return PortalSession(url=link.url, flow=link.flow)


def _failure(exc: BillingFailure | StripeUnavailable) -> BillingError:
    """The BillingError for an expected failure."""
    if isinstance(exc, StripeUnavailable):
        exc = BillingFailure(BillingErrorCode.STRIPE_UNAVAILABLE)
    return BillingError(code=exc.code, message=exc.message)


async def _run(
    info: GraphQLInfo, service: Callable[[Billing, Principal], Awaitable[T]]
) -> T | BillingError:
    """Call a billing service for the caller within one deadline; expected failures as data."""
    principal = await info.context.principal()
    billing = info.context.billing
    try:
        async with asyncio.timeout(billing.deadline):
            return await service(billing, principal)
    except TimeoutError:
        log.warning(
            "billing call for org %s passed its %.1fs deadline", principal.org_id, billing.deadline
        )
        return _failure(StripeUnavailable("deadline"))
    except (BillingFailure, StripeUnavailable) as exc:
        return _failure(exc)


async def open_portal_resolver(
    info: GraphQLInfo,
    return_path: str = "/settings/billing",
    flow: PortalFlow | None = UNSET,  # no default in the SDL, as SPEC.md has it
) -> PortalSession | BillingError:
    """A fresh Customer Portal URL for the caller's org."""
    chosen = flow or None
    link = await _run(info, lambda b, p: open_portal(b, p, return_path, chosen))
    return _portal(link) if isinstance(link, PortalLink) else link


async def upgrade_resolver(
    info: GraphQLInfo, plan: str, interval: BillingInterval = BillingInterval.MONTH
) -> CheckoutSession | PortalSession | BillingError:
    """Checkout for new subscribers, a confirmed plan switch for subscribers."""
    link = await _run(info, lambda b, p: start_upgrade(b, p, plan, interval_of(interval)))
    if isinstance(link, PortalLink):
        return _portal(link)
    if isinstance(link, CheckoutLink):
        return CheckoutSession(id=link.id, url=link.url)
    return link
