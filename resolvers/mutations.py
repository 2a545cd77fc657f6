"""Mutation resolvers: expected failures come back as BillingError data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from graphql import GraphQLError
from strawberry import UNSET

from billing.catalog.plans import BillingInterval
from billing.container import Services
from billing.errors import BillingErrorCode, BillingFailure
from billing.gateway.errors import StripeNotFound, StripeUnavailable
from billing.kit import metrics
from billing.kit.auth import Principal
from billing.kit.logs import request_id
from billing.portal.sessions import PortalFlow, PortalLink, open_portal
from billing.seats import change_seats
from billing.upgrade import CheckoutLink, start_upgrade
from resolvers.context import GraphQLInfo
from schema.types import BillingError, CheckoutSession, PortalSession

T = TypeVar("T")
log = logging.getLogger(__name__)


def _app(app: str | None) -> str | None:
    """The `app` argument: None when omitted (or null), else the name as given."""
    return None if app is UNSET or app is None else app


def _portal(link: PortalLink) -> PortalSession:
    """A PortalSession from a minted link."""
    return PortalSession(url=link.url, flow=link.flow)


def _failure(info: GraphQLInfo, exc: BillingFailure | StripeUnavailable) -> BillingError:
    """The BillingError for an expected failure, counted (and noted for the operation's
    metrics outcome)."""
    if isinstance(exc, StripeUnavailable):
        exc = BillingFailure(BillingErrorCode.STRIPE_UNAVAILABLE)
    info.context.billing_error = True
    metrics.count(metrics.BILLING_ERRORS, exc.code.value)
    return BillingError(code=exc.code, message=exc.message)


def _out_of_sync(org_id: str) -> GraphQLError:
    """The org's customer is unknown to Stripe: say in one line how to repair it."""
    fix = f"python main.py resync --org {org_id}"
    log.warning(
        "org %s is linked to a Stripe customer that Stripe does not know (deleted, or the "
        "emulator lost its state): run `%s`, or `make reset` for a local emulator",
        org_id,
        fix,
    )
    rid = request_id.get()
    return GraphQLError(
        f"This organization's billing records do not match Stripe; an operator must run "
        f"`{fix}` (request id {rid}).",
        extensions={"code": "BILLING_OUT_OF_SYNC", "requestId": rid},
    )


async def _run(
    info: GraphQLInfo, service: Callable[[Services, Principal], Awaitable[T]]
) -> T | BillingError:
    """Call a billing service for the caller within one deadline; expected failures as data."""
    principal = await info.context.principal()
    services = info.context.services
    try:
        async with asyncio.timeout(services.deadline):
            return await service(services, principal)
    except TimeoutError:
        log.warning(
            "billing call for org %s passed its %.1fs deadline", principal.org_id, services.deadline
        )
        return _failure(info, StripeUnavailable("deadline"))
    except (BillingFailure, StripeUnavailable) as exc:
        return _failure(info, exc)
    except StripeNotFound as exc:
        if exc.param != "customer":
            raise
        raise _out_of_sync(principal.org_id) from None


async def open_portal_resolver(
    info: GraphQLInfo,
    return_path: str = "/settings/billing",
    flow: PortalFlow | None = UNSET,  # no default in schema.graphql: the portal home
    app: str | None = UNSET,  # no default in schema.graphql: APP_URL
) -> PortalSession | BillingError:
    """A fresh Customer Portal URL for the caller's org."""
    chosen = flow or None
    link = await _run(
        info,
        lambda services, principal: open_portal(
            services.db,
            services.stripe_gateway,
            services.catalog,
            services.settings,
            services.rate_limit,
            principal,
            return_path,
            chosen,
            _app(app),
        ),
    )
    return _portal(link) if isinstance(link, PortalLink) else link


async def upgrade_resolver(
    info: GraphQLInfo,
    plan: str,
    interval: BillingInterval = BillingInterval.MONTH,
    seats: int | None = UNSET,  # no default in schema.graphql: the plan's minimum or current
    app: str | None = UNSET,
) -> CheckoutSession | PortalSession | BillingError:
    """Checkout for new subscribers, a confirmed plan switch for subscribers."""
    asked = None if seats is UNSET else seats
    link = await _run(
        info,
        lambda services, principal: start_upgrade(
            services.db,
            services.stripe_gateway,
            services.catalog,
            services.settings,
            services.rate_limit,
            principal,
            plan,
            interval,
            asked,
            _app(app),
        ),
    )
    if isinstance(link, PortalLink):
        return _portal(link)
    if isinstance(link, CheckoutLink):
        return CheckoutSession(id=link.id, url=link.url)
    return link


async def change_seats_resolver(
    info: GraphQLInfo,
    seats: int,
    return_path: str = "/settings/billing",
    app: str | None = UNSET,
) -> PortalSession | BillingError:
    """Stripe's confirmation page for a new seat count on the current per-seat plan."""
    link = await _run(
        info,
        lambda services, principal: change_seats(
            services.db,
            services.stripe_gateway,
            services.catalog,
            services.settings,
            services.rate_limit,
            principal,
            seats,
            return_path,
            _app(app),
        ),
    )
    return _portal(link) if isinstance(link, PortalLink) else link
