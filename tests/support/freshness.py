"""Reads of `entitlement` for the freshness tests: states as the API answers them, rows
written behind the service's back, and waits bounded by FRESH_WITHIN."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from harness.api import Api, error_codes
from harness.db import execute
from harness.stack import Stack
from harness.timing import eventually

FRESH_WITHIN = 1.0
"""Seconds a change by another writer may take to show on PostgreSQL."""

WARM = 10
"""Reads of an unchanged entitlement before a change: enough for any cache to hold it."""

LEEWAY = 5
"""Seconds past `exp` the server still accepts a token (billing.kit.auth)."""

DOCUMENTS = (
    "{ entitlement { orgId plan status cancelAtPeriodEnd currentPeriodEnd hasBillingAccount } }",
    """
    query Freshness {
      entitlement {
        hasBillingAccount   currentPeriodEnd
        cancelAtPeriodEnd status
            plan orgId
      }
    }
    """,
)
"""One selection in two texts (field order, whitespace, an operation name)."""

DOCUMENT = DOCUMENTS[0]

PERIOD_END = datetime(2033, 5, 18, 3, 33, 20, tzinfo=UTC)

Entitlement = dict[str, Any]


def state(
    org: str,
    plan: str = "free",
    status: str = "NONE",
    *,
    cancel: bool = False,
    period_end: datetime | None = None,
    account: bool = False,
) -> Entitlement:
    """The fields DOCUMENTS select, as the API answers them for this state."""
    return {
        "orgId": org,
        "plan": plan,
        "status": status,
        "cancelAtPeriodEnd": cancel,
        "currentPeriodEnd": period_end.isoformat() if period_end else None,
        "hasBillingAccount": account,
    }


async def read(api: Api, document: str = DOCUMENT) -> Entitlement:
    """The org's entitlement as `document` selects it."""
    return dict((await api.gql(document))["entitlement"])


async def warm(api: Api, want: Entitlement, times: int = WARM) -> None:
    """Read the entitlement `times` times, each answer `want` (a cache would now hold it)."""
    for _ in range(times):
        assert await read(api) == want


async def put_entitlement(
    url: str,
    org: str,
    plan: str,
    status: str,
    *,
    cancel: bool = False,
    period_end: datetime | None = None,
) -> None:
    """Insert the org's entitlement row behind the service's back."""
    await execute(
        url,
        "INSERT INTO entitlements"
        " (org_id, plan, status, cancel_at_period_end, current_period_end, updated_at)"
        " VALUES (:org, :plan, :status, :cancel, :end, :now)",
        org=org,
        plan=plan,
        status=status,
        cancel=cancel,
        end=period_end,
        now=datetime.now(UTC),
    )


async def change_entitlement(
    url: str, org: str, plan: str, status: str, *, cancel: bool, period_end: datetime | None
) -> None:
    """Update the org's entitlement row behind the service's back."""
    await execute(
        url,
        "UPDATE entitlements SET plan = :plan, status = :status,"
        " cancel_at_period_end = :cancel, current_period_end = :end WHERE org_id = :org",
        plan=plan,
        status=status,
        cancel=cancel,
        end=period_end,
        org=org,
    )


async def put_account(url: str, org: str) -> None:
    """Insert the org's billing account row behind the service's back."""
    await execute(
        url,
        "INSERT INTO billing_accounts (org_id, stripe_customer_id, created_at)"
        " VALUES (:org, :cus, :now)",
        org=org,
        cus=f"cus_fresh{org[-12:]}",
        now=datetime.now(UTC),
    )


async def stays(api: Api, until: Callable[[Entitlement], bool]) -> None:
    """A few more reads all still satisfy `until`: the answer never goes back."""
    for _ in range(3):
        got = await read(api)
        assert until(got), got


async def seen_within(
    api: Api, until: Callable[[Entitlement], bool], since: float, what: str
) -> float:
    """Poll until a read satisfies `until`; print and return the seconds since `since` (<= 1 s)."""
    await eventually(lambda: read(api), until, timeout=FRESH_WITHIN, interval=0.005, what=what)
    delay = time.monotonic() - since
    print(f"{what}: seen after {delay * 1000:.0f} ms")
    assert delay <= FRESH_WITHIN, f"{what} took {delay * 1000:.0f} ms"
    await stays(api, until)
    return delay


async def shows(stack: Stack, api: Api, want: Entitlement, what: str) -> None:
    """A change committed just now shows: on SQLite on the next read, else within 1 s; it stays."""
    since = time.monotonic()
    if stack.backend == "sqlite":
        assert await read(api) == want, what
        await stays(api, lambda got: got == want)
    else:
        await seen_within(api, lambda got: got == want, since, f"{stack.backend}: {what}")


def concerns(event: dict[str, Any], customer: str) -> bool:
    """True for an event about this customer or one of its objects."""
    obj = event["data"]["object"]
    return customer in (obj.get("customer"), obj.get("id"))


def refused(body: dict[str, Any]) -> bool:
    """True when the answer is the UNAUTHENTICATED error and no data."""
    return body.get("data") is None and error_codes(body) == ["UNAUTHENTICATED"]


def answered_for(body: dict[str, Any], org: str) -> bool:
    """True when the answer is this org's entitlement, without errors."""
    return "errors" not in body and body["data"]["entitlement"]["orgId"] == org
