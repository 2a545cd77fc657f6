"""An org linked to a customer Stripe does not know gets a one-line fix, not an internal error."""

from __future__ import annotations

import asyncio

import httpx

from harness.api import OPEN_PORTAL, UPGRADE, Api
from harness.cli import invoke_cli
from harness.servers import settings_env
from harness.stack import Stack
from tests.support.private_stack import link_unknown_customer


async def out_of_sync_error(api: Api, query: str, variables: dict[str, str]) -> dict[str, object]:
    """The single GraphQL error of a mutation that met an unknown customer."""
    response = await api.raw(query, variables)
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    return dict(error)


async def test_unknown_customer_says_how_to_repair(api: Api, stack: Stack) -> None:
    customer_id = await link_unknown_customer(stack.settings.database_url, api.org)
    fix = f"python main.py resync --org {api.org}"
    for query, variables in ((OPEN_PORTAL, {}), (UPGRADE, {"plan": "pro"})):
        error = await out_of_sync_error(api, query, variables)
        extensions = error["extensions"]
        assert isinstance(extensions, dict) and extensions["code"] == "BILLING_OUT_OF_SYNC"
        message = str(error["message"])
        assert "\n" not in message and fix in message and extensions["requestId"] in message
        assert customer_id not in message

    # The fix the message names, run as told.
    env = settings_env(stack.settings)
    fixed = await asyncio.to_thread(invoke_cli, "resync", "--org", api.org, env=env)
    assert fixed.returncode == 0, fixed.stderr

    assert (await api.open_portal())["code"] == "NO_CUSTOMER"
    checkout = await api.upgrade("pro")
    assert checkout["__typename"] == "CheckoutSession"
    assert (await api.entitlement())["hasBillingAccount"] is True


async def test_other_stripe_refusals_stay_masked(client: httpx.AsyncClient, stack: Stack) -> None:
    api = Api(client)
    await api.upgrade("pro")
    missing = {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "configuration",
            "message": "No such configuration: 'bpc_gone'",
        }
    }
    stack.control.fail("/v1/billing_portal/sessions", status=404, body=missing)
    try:
        response = await api.raw(OPEN_PORTAL, {})
    finally:
        stack.control.clear_faults()
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "bpc_gone" not in error["message"]
