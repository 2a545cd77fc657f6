"""`entitlementChanged` over a real WebSocket (graphql-transport-ws), on both backends: the
first message is the entitlement, every committed change of it is pushed once, nothing of
another org, and tokens are checked as strictly as over HTTP."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.exceptions import InvalidStatus

from harness.api import Api, new_org, token
from harness.db import customer_id, rows
from harness.servers import ThreadedServer
from harness.signing import post_signed
from harness.stack import Stack
from harness.timing import eventually
from server.app import create_app
from tests.support.freshness import put_entitlement
from tests.support.identity import JwksServer, claims, ec_key, idp_settings, rsa_key
from tests.support.journeys import cancel_in_portal, click, subscribe
from tests.support.live import (
    SUBSCRIPTION,
    Closed,
    connected,
    pushed_until,
    subscribed,
)
from tests.support.private_stack import settled
from tests.support.tokens import BAD_TOKENS, rsa_of

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

DAY = 86400


async def test_the_first_message_is_the_entitlement(stack: Stack, api: Api) -> None:
    async with subscribed(stack.api.url, api.org) as live:
        first = await live.next()
    assert first == await api.entitlement()
    assert (first["orgId"], first["plan"], first["status"]) == (api.org, "free", "NONE")


async def test_a_paid_checkout_then_a_cancellation_are_pushed(
    stack: Stack, api: Api, stripe_client: Any
) -> None:
    other = new_org()
    async with (
        subscribed(stack.api.url, api.org) as live,
        subscribed(stack.api.url, other) as bystander,
    ):
        first = await live.next()
        theirs = await bystander.next()

        session = await api.upgrade("pro")
        await click(session["url"], "pay")
        paid = await pushed_until(live, first, lambda e: e["plan"] == "pro")
        assert paid[-1]["status"] == "ACTIVE" and paid[-1]["hasBillingAccount"] is True
        assert paid[-1]["limits"] == {"projects": 50, "seats": 10}
        assert paid[-1] == await api.entitlement()

        flow = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        await cancel_in_portal(flow["url"])
        canceling = await pushed_until(live, paid[-1], lambda e: e["cancelAtPeriodEnd"])
        assert canceling[-1]["plan"] == "pro" and canceling[-1]["status"] == "ACTIVE"
        assert canceling[-1] == await api.entitlement()

        stack.control.advance(32 * DAY)
        ended = await pushed_until(live, canceling[-1], lambda e: e["status"] == "CANCELED")
        assert ended[-1]["plan"] == "free" and ended[-1]["cancelAtPeriodEnd"] is False

        await settled(stack.settings.database_url)
        await bystander.nothing_within(0.5)
    assert theirs["orgId"] == other and theirs["plan"] == "free"


async def test_a_seat_change_is_pushed(stack: Stack, api: Api) -> None:
    await subscribe(api, "business", seats=2)
    async with subscribed(stack.api.url, api.org) as live:
        first = await live.next()
        assert (first["plan"], first["seats"], first["interval"]) == ("business", 2, "MONTH")
        link = await api.change_seats(3)
        await click(link["url"], "confirm")
        pushed = await pushed_until(live, first, lambda e: e["seats"] == 3)
    assert pushed[-1]["limits"] == {"projects": 1000, "seats": 3}
    assert pushed[-1] == await api.entitlement()


async def test_a_duplicate_or_an_event_that_changes_nothing_sends_nothing(
    stack: Stack, api: Api, stripe_client: Any
) -> None:
    await subscribe(api, "pro")
    url = stack.settings.database_url
    await settled(url)
    customer = await customer_id(url, api.org)
    applied = (
        "SELECT count(*) AS n FROM webhook_events WHERE customer_id = :c AND status = 'processed'"
    )
    before = (await rows(url, applied, c=customer))[0]["n"]
    [sub] = stripe_client.v1.subscriptions.list(params={"customer": customer}).data
    async with subscribed(stack.api.url, api.org) as live:
        first = await live.next()
        # customer.subscription.updated about metadata only: re-read, applied, nothing new.
        stripe_client.v1.subscriptions.update(sub.id, params={"metadata": {"crm_id": "c-1"}})
        await eventually(
            lambda: rows(url, applied, c=customer),
            lambda found: found[0]["n"] > before,
            timeout=30,
            what="the subscription update applied",
        )
        # Every event of the customer delivered again: acknowledged, nothing changes.
        stored = await rows(
            url, "SELECT payload FROM webhook_events WHERE customer_id = :c", c=customer
        )
        async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as http:
            for row in stored:
                assert (await post_signed(http, row["payload"].encode())).status_code == 200
        await settled(url)
        await live.nothing_within(1.0)
    assert first == await api.entitlement()


async def test_a_row_written_behind_the_service_is_pushed(stack: Stack, api: Api) -> None:
    """Another writer (a hand-made fix, another process) reaches subscribers too."""
    async with subscribed(stack.api.url, api.org) as live:
        first = await live.next()
        await put_entitlement(stack.settings.database_url, api.org, "team", "active")
        since = time.monotonic()
        [changed] = await pushed_until(live, first, lambda e: e["plan"] == "team")
        print(
            f"{stack.backend}: a row written behind the service pushed after "
            f"{(time.monotonic() - since) * 1000:.0f} ms"
        )
    assert changed["status"] == "ACTIVE"


async def test_after_a_reconnect_the_first_message_is_the_current_value(
    stack: Stack, api: Api
) -> None:
    async with subscribed(stack.api.url, api.org) as live:
        assert (await live.next())["plan"] == "free"
    await subscribe(api, "pro")  # while nobody listens
    async with subscribed(stack.api.url, api.org) as live:
        assert (await live.next())["plan"] == "pro"


async def test_one_connection_may_carry_several_subscriptions(stack: Stack, api: Api) -> None:
    async with subscribed(stack.api.url, api.org) as live:
        await live.subscribe("2")
        first = await live.next("1")
        assert await live.next("2") == first
        await live.send({"id": "2", "type": "complete"})
        await put_entitlement(stack.settings.database_url, api.org, "team", "active")
        assert (await live.next("1"))["plan"] == "team"
        await live.nothing_within(0.3)  # nothing for the completed one


async def test_only_subscriptions_travel_over_the_websocket(stack: Stack, api: Api) -> None:
    async with subscribed(stack.api.url, api.org) as live:
        await live.next()
        for number, document in enumerate(
            [
                "{ entitlement { plan } }",
                "{ plans { slug } }",
                "mutation { openPortal { __typename } }",
            ]
        ):
            await live.subscribe(f"q{number}", document)
            message = await live.message()
            assert message["type"] == "error" and message["id"] == f"q{number}", message
            assert "POST /graphql" in message["payload"][0]["message"]
    response = await api.raw(SUBSCRIPTION)
    body = response.json()
    assert body["data"] is None and "WebSocket" in body["errors"][0]["message"], body


async def test_a_subscription_needs_connection_init_first(stack: Stack) -> None:
    async with connected(stack.api.url) as live:
        await live.subscribe()
        assert (await live.closed()).code == 4401


# Tokens: every way a token can be wrong is refused with 4403, before anything is read.


@pytest.fixture(scope="module")
def idp_server(stack: Stack) -> Iterator[tuple[JwksServer, ThreadedServer]]:
    """An identity provider and an API that trusts it (issuer and audience configured)."""
    jwks = JwksServer([rsa_key("rsa-1"), ec_key("ec-1")]).start()
    server = ThreadedServer(create_app(idp_settings(stack, jwks))).start()
    yield jwks, server
    server.stop()
    jwks.stop()


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_refused_with_4403(
    idp_server: tuple[JwksServer, ThreadedServer], case: str
) -> None:
    jwks, server = idp_server
    bad = BAD_TOKENS[case](new_org(), jwks)
    payload = {"authorization": f"Bearer {bad}"} if bad is not None else {}
    async with connected(server.url) as live:
        with pytest.raises(Closed) as refused:
            await live.init(payload)
    assert refused.value.code == 4403, (case, refused.value)


@pytest.mark.parametrize(
    "payload",
    [None, {"Authorization": 42}, {"authorization": "Basic dXNlcjpwYXNz"}, {"token": "x"}],
    ids=["no payload", "not a string", "not a bearer", "another key"],
)
async def test_a_payload_without_a_bearer_token_is_refused(
    idp_server: tuple[JwksServer, ThreadedServer], payload: dict[str, Any] | None
) -> None:
    async with connected(idp_server[1].url) as live:
        await live.send({"type": "connection_init", **({"payload": payload} if payload else {})})
        assert (await live.closed()).code == 4403


async def test_an_identity_provider_token_is_accepted(
    idp_server: tuple[JwksServer, ThreadedServer],
) -> None:
    jwks, server = idp_server
    org = new_org()
    async with connected(server.url) as live:
        ack = await live.init({"Authorization": f"Bearer {rsa_of(jwks).sign(claims(org))}"})
        assert ack["type"] == "connection_ack"
        await live.subscribe()
        assert (await live.next())["orgId"] == org


async def test_the_connection_closes_when_its_token_expires(stack: Stack, api: Api) -> None:
    started = time.monotonic()
    async with subscribed(stack.api.url, api.org, ttl=3) as live:
        assert (await live.next())["orgId"] == api.org
        closed = await live.closed(timeout=10)
    after = time.monotonic() - started
    assert (closed.code, closed.reason) == (4403, "Token expired")
    assert 1.5 <= after <= 6, f"closed {after:.1f} s after a 3 s token was issued"


async def test_the_org_comes_from_the_token_only(stack: Stack, api: Api) -> None:
    """Variables or extra payload naming another org change nothing."""
    other = new_org()
    await subscribe(Api(api.client, other), "pro")
    async with connected(stack.api.url) as live:
        await live.init({"authorization": f"Bearer {token(api.org)}", "org_id": other})
        await live.send(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": {"orgId": other}},
            }
        )
        first = await live.next()
    assert (first["orgId"], first["plan"]) == (api.org, "free")


# Bounds: connections, subscriptions, message size, keepalive, origins.


KEEPALIVE = 1.5
"""Seconds between the bounded API's pings: a client that answers must never miss one, even
when four test workers on two cores keep its pong waiting."""


@pytest.fixture
def bounded(stack: Stack) -> Iterator[ThreadedServer]:
    """An API with small WebSocket bounds."""
    settings = stack.settings_with(
        ws_max_connections=2,
        ws_max_subscriptions=2,
        ws_max_message_bytes=2048,
        ws_keepalive=KEEPALIVE,
    )
    server = ThreadedServer(create_app(settings)).start()
    yield server
    server.stop()


async def test_connections_beyond_the_bound_are_refused_until_one_closes(
    bounded: ThreadedServer,
) -> None:
    org = new_org()
    async with subscribed(bounded.url, org) as one:
        await one.next()
        async with subscribed(bounded.url, org) as two:
            await two.next()
            with pytest.raises(InvalidStatus) as refused:
                async with connected(bounded.url):
                    pass
            assert refused.value.response.status_code == 503

        async def third() -> dict[str, Any]:
            async with subscribed(bounded.url, org) as three:
                return await three.next()

        assert (await eventually(third, timeout=5, what="a freed slot"))["orgId"] == org


async def test_subscriptions_per_connection_are_bounded(bounded: ThreadedServer) -> None:
    async with subscribed(bounded.url, new_org()) as live:
        await live.subscribe("2")
        await live.subscribe("3")
        seen = [await live.message() for _ in range(3)]
    errors = [m for m in seen if m["type"] == "error"]
    assert [m["id"] for m in errors] == ["3"], seen
    assert "limit" in errors[0]["payload"][0]["message"].lower()


async def test_a_message_over_the_size_limit_closes_the_connection(
    bounded: ThreadedServer,
) -> None:
    async with subscribed(bounded.url, new_org()) as live:
        await live.next()
        await live.subscribe("2", SUBSCRIPTION + "#" * 4096)
        assert (await live.closed()).code == 1009


async def test_keepalive_pings_and_a_client_that_answers_none_is_dropped(
    stack: Stack, bounded: ThreadedServer
) -> None:
    """A client that stopped reading (or vanished) answers no ping: dropped, its slot freed."""
    org = new_org()
    async with subscribed(bounded.url, org) as answering:
        await answering.next()
        async with subscribed(bounded.url, org, keepalive=False) as stalled:
            await stalled.next()
            await answering.nothing_within(KEEPALIVE * 2 + 0.5)
            assert answering.pings >= 2

            async def another() -> dict[str, Any]:
                async with subscribed(bounded.url, org) as fresh:
                    return await fresh.next()

            # Both slots were taken: a third connection gets in once `stalled` is dropped.
            found = await eventually(another, timeout=KEEPALIVE * 4, what="the stalled slot")
            assert found["orgId"] == org
            closed = await stalled.closed(timeout=KEEPALIVE * 4)
            assert closed.code != 1000, closed  # dropped, not closed politely
        await put_entitlement(stack.settings.database_url, org, "team", "active")
        assert (await answering.next())["plan"] == "team"  # the answering client is still there


@pytest.fixture
def production(stack: Stack) -> Iterator[ThreadedServer]:
    """A production API whose browser origin is https://app.example.test."""
    settings = stack.settings_with(
        environment="production", cors_origins="https://app.example.test"
    )
    server = ThreadedServer(create_app(settings)).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.test", True),
        (None, True),  # no browser: no ambient credentials to abuse
        ("https://evil.example", False),
        ("http://app.example.test", False),
        ("https://app.example.test.evil.example", False),
        ("null", False),
    ],
)
async def test_in_production_the_origin_must_be_listed(
    production: ThreadedServer, origin: str | None, allowed: bool
) -> None:
    org = new_org()
    if allowed:
        async with subscribed(production.url, org, origin=origin) as live:
            assert (await live.next())["orgId"] == org
        return
    with pytest.raises(InvalidStatus) as refused:
        async with connected(production.url, origin=origin):
            pass
    assert refused.value.response.status_code == 403


async def test_in_development_any_origin_may_connect(stack: Stack, api: Api) -> None:
    async with subscribed(stack.api.url, api.org, origin="http://localhost:3000") as live:
        assert (await live.next())["orgId"] == api.org


async def test_a_client_that_stops_reading_while_changes_flow_is_dropped(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Thousands of changes while one subscriber reads nothing: it is dropped within two
    keepalive intervals, and a subscriber of the same org that reads keeps up meanwhile."""
    if stack.backend != "postgresql":
        pytest.skip("needs changes faster than SQLite's look at other processes' commits")
    keepalive = 2.0
    server = ThreadedServer(create_app(stack.settings_with(ws_keepalive=keepalive))).start()
    url, org = stack.settings.database_url, new_org()
    await put_entitlement(url, org, "team", "active")
    tight = socket.socket()
    tight.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a small window
    engine = create_async_engine(url)
    flip = text("UPDATE entitlements SET plan = :plan, updated_at = :now WHERE org_id = :org")
    try:
        with caplog.at_level(logging.INFO, logger="server.websocket"):
            async with (
                subscribed(server.url, org) as reader,
                subscribed(server.url, org, keepalive=False, sock=tight) as stalled,
            ):
                assert (await reader.next())["plan"] == "team"
                assert (await stalled.next())["plan"] == "team"
                started, flips = time.monotonic(), 0
                while "dropping" not in caplog.text and time.monotonic() - started < 10:
                    async with engine.begin() as conn:  # changes flow; `stalled` reads none
                        now = datetime.now(UTC)
                        plan = ("pro", "team")[flips % 2]
                        await conn.execute(flip, {"plan": plan, "now": now, "org": org})
                    flips += 1
                dropped_after = time.monotonic() - started
                print(f"dropped after {flips} changes, {dropped_after:.1f} s")
                assert "dropping a WebSocket client" in caplog.text, caplog.text
                assert dropped_after <= 2 * keepalive + 1.5
                last = None  # the reader took every message it was sent, and the latest
                while (got := await reader.next(timeout=2))["updatedAt"] != now.isoformat():
                    assert got != last
                    last = got
                assert got["plan"] == plan
    finally:
        await engine.dispose()
        server.stop()
