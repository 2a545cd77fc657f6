"""`plans` and `entitlement` over GraphQL."""

from __future__ import annotations

import httpx

from harness.api import ENTITLEMENT, Api


async def test_plans_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": "{ plans { slug name limits features "
            "prices { interval lookupKey amount currency } } }"
        },
    )
    assert response.status_code == 200
    plans = {p["slug"]: p for p in response.json()["data"]["plans"]}
    assert list(plans) == ["free", "pro", "team", "business"]
    assert plans["free"]["prices"] == []
    assert plans["pro"]["limits"] == {"projects": 50, "seats": 10}
    assert plans["pro"]["prices"] == [
        {"interval": "MONTH", "lookupKey": "pro_monthly", "amount": 2000, "currency": "usd"},
        {"interval": "YEAR", "lookupKey": "pro_yearly", "amount": 20000, "currency": "usd"},
    ]
    assert {slug: plan["features"] for slug, plan in plans.items()} == {
        "free": ["exports"],
        "pro": ["exports", "priority_support"],
        "team": ["exports", "priority_support", "sso"],
        "business": ["audit_log", "exports", "priority_support", "sso"],  # sorted
    }


async def test_entitlement_of_an_org_that_never_subscribed(api: Api) -> None:
    entitlement = await api.entitlement()
    assert entitlement == {
        "orgId": api.org,
        "plan": "free",
        "status": "NONE",
        "cancelAtPeriodEnd": False,
        "currentPeriodEnd": None,
        "trialEnd": None,
        "hasBillingAccount": False,
        "limits": {"projects": 3, "seats": 1},
        "updatedAt": None,
        "interval": None,
        "seats": None,
        "features": ["exports"],  # the default plan's
    }


async def test_entitlement_without_token_is_unauthenticated(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"authorization": "Bearer not-a-jwt"}, {"authorization": "Basic abc"}):
        response = await client.post("/graphql", json={"query": ENTITLEMENT}, headers=headers)
        body = response.json()
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}
    assert ready.headers["x-request-id"].startswith("req_")
