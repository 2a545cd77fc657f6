"""A slow, failing or absent identity provider: tokens whose key we already hold keep working,
unknown keys fail fast, and the provider is never hammered. Real JWKS server, real HTTP.

The cache's timings are module constants that tests shrink, and its clock is a manual one
that a test moves on: a lifespan, grace period or cooldown passes when the test says so, however
busy the machine (fetches and their timeout still take real time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from billing.kit import auth
from harness.api import app_client, call, error_codes, new_org
from harness.stack import Stack
from harness.timing import ManualClock, eventually, timed
from tests.support.identity import (
    HANG_SECONDS,
    JwksServer,
    SigningKey,
    claims,
    ec_key,
    idp_settings,
    rsa_key,
)


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    """An identity provider publishing one RSA and one EC key."""
    server = JwksServer([rsa_key("avail-rsa"), ec_key("avail-ec")]).start()
    yield server
    server.stop()


def shrink(monkeypatch: pytest.MonkeyPatch, **timings: float) -> None:
    """Set the JWKS cache's timing constants (JWKS_LIFESPAN=..., ...) for this test."""
    for name, seconds in timings.items():
        monkeypatch.setattr(auth, name, seconds)


async def accepted(http: Any, key: SigningKey, org: str, **header: Any) -> bool:
    """True when the entitlement query with a token of this key is answered for the org."""
    body = await call(http, "entitlement", key.sign(claims(org), **header))
    if body["data"] is not None:
        assert body["data"]["entitlement"]["orgId"] == org
        return True
    assert error_codes(body) == ["UNAUTHENTICATED"], body
    return False


async def test_a_hanging_identity_provider_does_not_hold_up_known_keys(
    stack: Stack, idp: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shrink(monkeypatch, JWKS_REFRESH_COOLDOWN=0.2, JWKS_FETCH_TIMEOUT=1.0)
    known, stranger = idp.keys[0], rsa_key("unused")
    org = new_org()
    clock = ManualClock()
    async with app_client(idp_settings(stack, idp), jwks_clock=clock) as http:
        assert await accepted(http, known, org)
        assert idp.fetches == 1
        idp.set_mode("hang")
        clock.advance(0.3)  # past the cooldown: an unknown kid may force a fetch

        unknown = [
            asyncio.create_task(timed(accepted(http, stranger, org, kid=f"unknown-{n}")))
            for n in range(20)
        ]

        async def fetches() -> int:
            return idp.fetches

        # The forced fetch now hangs.
        await eventually(fetches, lambda n: n == 2, timeout=2, interval=0.02, what="a second fetch")
        for _ in range(5):
            ok, seconds = await timed(accepted(http, known, org))
            assert ok and seconds < 0.5, seconds  # verified from the cache, no waiting
        for ok, seconds in await asyncio.gather(*unknown):
            assert not ok
            assert seconds < auth.JWKS_FETCH_TIMEOUT + 1 < HANG_SECONDS, seconds
        assert idp.fetches == 2  # all twenty waited on the one fetch in flight
        ok, seconds = await timed(accepted(http, known, org))
        assert ok and seconds < 0.5, seconds


async def test_known_keys_outlive_an_identity_provider_outage_for_the_grace_period(
    stack: Stack, idp: JwksServer, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    shrink(monkeypatch, JWKS_LIFESPAN=0.5, JWKS_GRACE=4.0, JWKS_REFRESH_COOLDOWN=0.2)
    caplog.set_level(logging.WARNING, logger="billing.kit.auth")
    rsa, ec = idp.keys
    org = new_org()
    clock = ManualClock()
    fetched_at = clock.now
    async with app_client(idp_settings(stack, idp), jwks_clock=clock) as http:
        assert await accepted(http, rsa, org)
        idp.stop()  # the identity provider goes away after the first fetch
        clock.advance(0.6)  # past the lifespan: every refresh from now on fails
        for key in (rsa, ec, rsa, ec, rsa):
            ok, seconds = await timed(accepted(http, key, org))
            assert ok and seconds < 0.5, seconds
            clock.advance(0.25)

        async def warnings() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "billing.kit.auth"]

        await eventually(
            warnings,
            lambda found: any("JWKS fetch" in m and "keeping the key set" in m for m in found),
            what="the failed refresh's warning",
        )
        ok, seconds = await timed(accepted(http, rsa_key("unused"), org, kid="unknown"))
        assert not ok and seconds < 1.5, seconds

        # The grace period is bounded: after it, the stale keys are no longer trusted (a token
        # never seen before, so no verification remembered from earlier stands in).
        clock.now = fetched_at + auth.JWKS_LIFESPAN + auth.JWKS_GRACE + 0.3
        body = await call(http, "entitlement", rsa.sign(claims(org, jti="after-the-grace")))
        assert error_codes(body) == ["UNAUTHENTICATED"], body


async def test_a_withdrawn_key_stops_working_after_the_next_successful_refresh(
    stack: Stack, idp: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shrink(monkeypatch, JWKS_LIFESPAN=1.0, JWKS_REFRESH_COOLDOWN=0.2)
    kept, withdrawn = idp.keys
    org = new_org()
    clock = ManualClock()
    async with app_client(idp_settings(stack, idp), jwks_clock=clock) as http:
        assert await accepted(http, kept, org) and await accepted(http, withdrawn, org)
        idp.keys = [kept]
        clock.advance(1.1)  # the set is stale: the next token starts a refresh
        await eventually(
            lambda: accepted(http, withdrawn, org),
            lambda still_trusted: not still_trusted,
            timeout=1.0,
            interval=0.02,
            what="the withdrawn key to be refused",
        )
        assert await accepted(http, kept, org)
        assert idp.fetches == 2


async def test_unknown_kid_floods_fetch_at_most_once_per_cooldown_even_when_fetches_fail(
    stack: Stack, idp: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shrink(monkeypatch, JWKS_REFRESH_COOLDOWN=1.0)
    known, stranger = idp.keys[0], ec_key("unused")
    org = new_org()
    clock = ManualClock()
    async with app_client(idp_settings(stack, idp), jwks_clock=clock) as http:
        assert await accepted(http, known, org)
        clock.advance(1.1)
        # Concurrent: one forced fetch, however many tokens ask for it.
        flood = [accepted(http, stranger, org, kid=f"made-up-{n}") for n in range(30)]
        assert not any(await asyncio.gather(*flood))
        assert idp.fetches == 2

        # Failing: a failed fetch starts the cooldown too, so retries cannot hammer the IdP:
        # one fetch per cooldown, however many unknown kids ask within it.
        idp.set_mode("fail")
        for cooldown in range(3):
            clock.advance(1.1)
            for n in range(15):
                assert not await accepted(http, stranger, org, kid=f"made-up-{cooldown}-{n}")
            assert idp.fetches == 2 + cooldown + 1, (cooldown, idp.fetches)
        assert await accepted(http, known, org)
