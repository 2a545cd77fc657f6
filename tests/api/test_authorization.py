"""The authorization matrix: every operation, every way a token can be wrong, every role,
and no way for one org to reach another's billing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from billing.kit.auth import JWKS_REFRESH_COOLDOWN
from harness.api import (
    ENTITLEMENT,
    JWT_SECRET,
    OPEN_PORTAL,
    OPERATIONS,
    UPGRADE,
    Api,
    app_client,
    call,
    error_codes,
    new_org,
)
from harness.cli import run_cli
from harness.db import customer_id
from harness.stack import Stack
from harness.stripe_side import stripe_calls
from harness.timing import eventually
from tests.support.identity import (
    AUDIENCE,
    JwksServer,
    claims,
    ec_key,
    idp_settings,
    rsa_key,
)
from tests.support.journeys import subscribe
from tests.support.private_stack import settled
from tests.support.tokens import BAD_TOKENS, ec_of, hs256_with, public_pem, rsa_of

# HS512 with the (short for SHA-512) suite secret is one of the refused tokens: no warning.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    """An identity provider publishing one RSA and one EC key."""
    server = JwksServer([rsa_key("rsa-1"), ec_key("ec-1")]).start()
    yield server
    server.stop()


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_unauthenticated(
    stack: Stack, jwks: JwksServer, operation: str, case: str
) -> None:
    org = new_org()
    token = BAD_TOKENS[case](org, jwks)
    async with app_client(idp_settings(stack, jwks)) as http:
        body = await call(http, operation, token)
    assert body["data"] is None, (case, body)
    assert error_codes(body) == ["UNAUTHENTICATED"], (case, body)
    assert stripe_calls(stack, "/v1/customers", mentions=org) == []


async def test_hs_rs_confusion_with_jwks_only(stack: Stack, jwks: JwksServer) -> None:
    """With only a JWKS configured, HS256 is refused whatever it is signed with."""
    settings = idp_settings(stack, jwks, auth_jwt_secret=None)
    assert settings.auth_jwt_secret is None
    org = new_org()
    rsa = rsa_of(jwks)
    async with app_client(settings) as http:
        for secret in (public_pem(rsa), json.dumps(rsa.jwk()).encode(), JWT_SECRET.encode()):
            for operation in OPERATIONS:
                body = await call(http, operation, hs256_with(secret, claims(org), kid="rsa-1"))
                assert error_codes(body) == ["UNAUTHENTICATED"] and body["data"] is None
        # The same claims signed with the real key are accepted: the refusals were about alg.
        body = await call(http, "entitlement", rsa.sign(claims(org)))
        assert body["data"]["entitlement"]["orgId"] == org


GOOD_TOKENS: dict[str, Callable[[str, JwksServer], str]] = {
    "RS256 from the JWKS": lambda org, j: rsa_of(j).sign(claims(org)),
    "ES256 from the JWKS": lambda org, j: ec_of(j).sign(claims(org)),
    "HS256 with the shared secret": lambda org, j: jwt.encode(claims(org), JWT_SECRET, "HS256"),
    "nbf in the past": lambda org, j: rsa_of(j).sign(claims(org, nbf=int(time.time()) - 60)),
    "aud as a list including ours": lambda org, j: rsa_of(j).sign(
        claims(org, aud=["other", AUDIENCE])
    ),
    "admin role": lambda org, j: ec_of(j).sign(claims(org, role="admin")),
}


@pytest.mark.parametrize("case", list(GOOD_TOKENS))
async def test_valid_tokens_are_accepted(stack: Stack, jwks: JwksServer, case: str) -> None:
    org = new_org()
    token = GOOD_TOKENS[case](org, jwks)
    async with app_client(idp_settings(stack, jwks)) as http:
        entitlement = await call(http, "entitlement", token)
        assert "errors" not in entitlement, entitlement
        assert entitlement["data"]["entitlement"]["orgId"] == org
        portal = await call(http, "openPortal", token)
        assert portal["data"]["openPortal"]["code"] == "NO_CUSTOMER"  # authorized, no account
        upgrade = await call(http, "upgrade", token)
        assert upgrade["data"]["upgrade"]["__typename"] == "CheckoutSession", upgrade
    [created] = stripe_calls(stack, "/v1/customers", mentions=org)
    assert created["params"]["metadata"] == {"org_id": org}


async def test_rotated_jwks_key_is_picked_up_and_the_withdrawn_one_refused(
    stack: Stack,
) -> None:
    old, new = rsa_key("rotate-old"), rsa_key("rotate-new")
    idp = JwksServer([old]).start()
    org = new_org()
    try:
        async with app_client(idp_settings(stack, idp)) as http:
            body = await call(http, "entitlement", old.sign(claims(org)))
            assert body["data"]["entitlement"]["orgId"] == org
            assert idp.fetches == 1

            idp.keys = [new]  # the IdP rotates: publishes a new key, withdraws the old one

            async def with_the_new_key() -> dict[str, Any]:
                body = await call(http, "entitlement", new.sign(claims(org)))
                if body["data"] is None:
                    assert error_codes(body) == ["UNAUTHENTICATED"]
                return body

            body = await eventually(
                with_the_new_key,
                lambda body: body["data"] is not None,
                timeout=JWKS_REFRESH_COOLDOWN + 2,
                interval=0.25,
                what="the new key to be picked up within the refresh cooldown",
            )
            assert body["data"]["entitlement"]["orgId"] == org
            assert idp.fetches == 2  # one forced refresh, however many attempts it took

            # The key the IdP withdrew is no longer trusted (no per-kid cache keeps it alive).
            body = await call(http, "entitlement", old.sign(claims(org)))
            assert error_codes(body) == ["UNAUTHENTICATED"] and body["data"] is None
    finally:
        idp.stop()


async def test_unknown_kid_flood_does_not_hammer_the_identity_provider(stack: Stack) -> None:
    key = rsa_key("flood-known")
    idp = JwksServer([key]).start()
    org = new_org()
    try:
        async with app_client(idp_settings(stack, idp)) as http:
            started = time.monotonic()
            for _ in range(30):
                stranger = rsa_key(f"made-up-{uuid.uuid4().hex[:8]}")
                body = await call(http, "entitlement", stranger.sign(claims(org)))
                assert error_codes(body) == ["UNAUTHENTICATED"]
            elapsed = time.monotonic() - started
            # One fetch to fill the cache, then at most one forced refresh per cooldown.
            assert idp.fetches <= 1 + int(elapsed // JWKS_REFRESH_COOLDOWN) + 1, idp.fetches
            body = await call(http, "entitlement", key.sign(claims(org)))
            assert body["data"]["entitlement"]["orgId"] == org
    finally:
        idp.stop()


def test_dev_token_refuses_an_org_with_a_trailing_newline(tmp_path: Path) -> None:
    result = run_cli(
        "dev-token", "--org", "org_a\n", env={"AUTH_JWT_SECRET": JWT_SECRET}, cwd=tmp_path
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().startswith("error: org must be"), result.stderr


# Roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "viewer", "billing", "Owner", "owner "])
async def test_roles_outside_billing_roles_are_forbidden(
    client: httpx.AsyncClient, stack: Stack, role: str
) -> None:
    owner = Api(client)
    assert (await owner.upgrade("pro"))["__typename"] == "CheckoutSession"
    customer = await customer_id(stack.settings.database_url, owner.org)
    assert customer is not None
    portals_before = len(stripe_calls(stack, "/v1/billing_portal/sessions", mentions=customer))
    checkouts_before = len(stripe_calls(stack, "/v1/checkout/sessions", mentions=owner.org))

    member = Api(client, org=owner.org, role=role)
    assert (await member.upgrade("team"))["code"] == "FORBIDDEN"
    assert (await member.upgrade("pro", "YEAR"))["code"] == "FORBIDDEN"
    for flow in (None, "PAYMENT_METHOD_UPDATE", "SUBSCRIPTION_CANCEL"):
        assert (await member.open_portal(flow=flow))["code"] == "FORBIDDEN"
    # A member may still read the entitlement.
    assert (await member.entitlement())["orgId"] == owner.org

    assert len(stripe_calls(stack, "/v1/billing_portal/sessions", mentions=customer)) == (
        portals_before
    )
    assert len(stripe_calls(stack, "/v1/checkout/sessions", mentions=owner.org)) == (
        checkouts_before
    )
    # The owner of the same org is not affected.
    assert (await owner.open_portal())["__typename"] == "PortalSession"


# Org isolation --------------------------------------------------------------------------

INTROSPECT_ARGS = """
{ __schema {
    queryType { name fields { name args { name type { kind name ofType { name } } } } }
    mutationType { name fields { name args { name type { kind name ofType { name } } } } }
    types { name kind inputFields { name } }
} }
"""


async def test_schema_has_no_argument_that_could_name_an_org(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": INTROSPECT_ARGS})
    schema = response.json()["data"]["__schema"]
    args = {
        (field["name"], arg["name"])
        for root in (schema["queryType"], schema["mutationType"])
        for field in root["fields"]
        for arg in field["args"]
    }
    assert args == {
        ("openPortal", "returnPath"),
        ("openPortal", "flow"),
        ("upgrade", "plan"),
        ("upgrade", "interval"),
        ("upgrade", "seats"),
        ("changeSeats", "seats"),
        ("changeSeats", "returnPath"),
        ("openPortal", "app"),
        ("upgrade", "app"),
        ("changeSeats", "app"),
    }
    user_input_types = [
        t["name"] for t in schema["types"] if t["kind"] == "INPUT_OBJECT" and t["name"][:2] != "__"
    ]
    assert user_input_types == []  # nothing nested could carry an org either
    assert not any("org" in name.lower() for _, name in args)


async def test_org_a_can_never_read_open_or_change_org_b(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    a = Api(client)
    await subscribe(a, "pro")
    a_customer = await customer_id(stack.settings.database_url, a.org)
    assert a_customer is not None
    # Let the webhooks of A's checkout land and be applied: applying them reads A's customer
    # from Stripe in the background, and those reads must not be mistaken for B's.
    await asyncio.to_thread(stack.control.wait_idle, timeout=30)
    await settled(stack.settings.database_url, timeout=30)
    log_mark = len(stack.control.requests())

    b = Api(client)
    sneaky: dict[str, str] = {"x-org-id": a.org, "x-organization": a.org}
    b_headers = {**b.headers(), **sneaky}

    # Reading: B sees its own empty entitlement, whatever it adds to the request.
    for variables in (None, {"orgId": a.org, "org": a.org, "org_id": a.org}):
        response = await b.raw(ENTITLEMENT, variables, headers=b_headers)
        entitlement = response.json()["data"]["entitlement"]
        assert entitlement["orgId"] == b.org
        assert (entitlement["plan"], entitlement["status"]) == ("free", "NONE")
        assert entitlement["hasBillingAccount"] is False
        assert a.org not in response.text and a_customer not in response.text
    refused = await b.raw(f'{{ entitlement(orgId: "{a.org}") {{ orgId }} }}', headers=b_headers)
    assert refused.json()["data"] is None
    assert "Unknown argument" in refused.json()["errors"][0]["message"]

    # Opening: B has no customer; nothing is minted for A's customer on B's behalf.
    for flow in (None, "PAYMENT_METHOD_UPDATE", "SUBSCRIPTION_CANCEL", "SUBSCRIPTION_UPDATE"):
        variables = {"returnPath": "/settings/billing", "orgId": a.org}
        if flow:
            variables["flow"] = flow
        response = await b.raw(OPEN_PORTAL, variables, headers=b_headers)
        result = response.json()["data"]["openPortal"]
        assert result["code"] == "NO_CUSTOMER", result
        assert a.org not in response.text and a_customer not in response.text

    # Changing: B's upgrade starts B's own checkout with B's own new customer.
    response = await b.raw(
        UPGRADE, {"plan": "team", "interval": "MONTH", "orgId": a.org}, headers=b_headers
    )
    checkout = response.json()["data"]["upgrade"]
    assert checkout["__typename"] == "CheckoutSession"
    assert a.org not in response.text and a_customer not in response.text
    b_customer = await customer_id(stack.settings.database_url, b.org)
    assert b_customer is not None and b_customer != a_customer

    # Everything B's calls made the service ask Stripe concerns B only.
    during_b = stack.control.requests()[log_mark:]
    assert during_b, "B's calls should have reached the emulator"
    for request in during_b:
        assert a.org not in json.dumps(request), request
        assert a_customer not in json.dumps(request), request
    [b_checkout] = [r for r in during_b if r["path"] == "/v1/checkout/sessions"]
    assert b_checkout["params"]["customer"] == b_customer
    assert b_checkout["params"]["client_reference_id"] == b.org
    assert b_checkout["params"]["subscription_data"]["metadata"] == {"org_id": b.org}

    # And A is untouched.
    assert (await a.entitlement())["plan"] == "pro"
