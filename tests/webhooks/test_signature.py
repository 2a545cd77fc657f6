"""The webhook's front door: only Stripe-signed, fresh, well-formed events get in."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from harness.api import app_client
from harness.db import stored_event
from harness.signing import WEBHOOK_PATH, WEBHOOK_SECRET, event_body, sign, signed_headers
from harness.stack import Stack


async def post(client: httpx.AsyncClient, body: bytes, signature: str | None) -> httpx.Response:
    """Deliver a body as Stripe would."""
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return await client.post(WEBHOOK_PATH, content=body, headers=headers)


def _event_id(body: bytes) -> str:
    return str(json.loads(body)["id"])


def _flip_one_byte(body: bytes) -> bytes:
    index = body.index(b"ping")
    return body[:index] + b"Ping" + body[index + 4 :]


CASES = {
    "missing": lambda b: (b, None),
    "malformed": lambda b: (b, "v1=abc,t=notanumber"),
    "empty": lambda b: (b, ""),
    "wrong secret": lambda b: (b, sign(b, "whsec_someone_else")),
    "one changed byte": lambda b: (_flip_one_byte(b), sign(b, WEBHOOK_SECRET)),
    "re-serialized json": lambda b: (
        json.dumps(json.loads(b), indent=2).encode(),
        sign(b, WEBHOOK_SECRET),
    ),
    "301 s old": lambda b: (b, sign(b, WEBHOOK_SECRET, int(time.time()) - 301)),
    "far future": lambda b: (b, sign(b, WEBHOOK_SECRET, int(time.time()) + 3600)),
    "v0 only": lambda b: (b, sign(b, WEBHOOK_SECRET).replace("v1=", "v0=")),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_signatures_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, stack: Stack, case: str
) -> None:
    original = event_body()
    body, signature = CASES[case](original)
    response = await post(client, body, signature)
    assert response.status_code == 400, response.text
    assert await stored_event(stack.settings.database_url, _event_id(original)) is None


async def test_signed_event_is_stored_once_and_duplicates_change_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    body = event_body()
    first = await post(client, body, sign(body, WEBHOOK_SECRET))
    assert first.status_code == 200 and first.json() == {"received": True, "duplicate": False}
    row = await stored_event(stack.settings.database_url, _event_id(body))
    # A type without handler has nothing to apply: stored as ignored at once.
    assert row is not None and row["status"] == "ignored" and row["attempts"] == 1
    again = await post(client, body, sign(body, WEBHOOK_SECRET))
    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}
    row = await stored_event(stack.settings.database_url, _event_id(body))
    assert row is not None and row["attempts"] == 1


async def test_signed_but_not_an_event(client: httpx.AsyncClient, stack: Stack) -> None:
    for body in (b"not json", b"[1,2]", b'{"id":"evt_x"}', b'{"id": "nope", "type": "x"}'):
        response = await post(client, body, sign(body, WEBHOOK_SECRET))
        assert response.status_code == 400, body


async def test_oversized_and_non_json_bodies(client: httpx.AsyncClient, stack: Stack) -> None:
    big = b'{"pad":"' + b"x" * (1024 * 1024) + b'"}'
    assert (await post(client, big, sign(big, WEBHOOK_SECRET))).status_code == 413
    body = event_body()
    response = await client.post(
        WEBHOOK_PATH, content=body, headers={**signed_headers(body), "content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert await stored_event(stack.settings.database_url, _event_id(body)) is None


async def test_rotation_accepts_old_and_new_secret(stack: Stack) -> None:
    settings = stack.settings_with(stripe_webhook_secret="whsec_new_one,whsec_old_one")
    async with app_client(settings) as client:
        for secret in ("whsec_old_one", "whsec_new_one"):
            body = event_body()
            response = await post(client, body, sign(body, secret))
            assert response.status_code == 200, (secret, response.text)
            assert await stored_event(settings.database_url, _event_id(body)) is not None
        body = event_body()
        assert (await post(client, body, sign(body, WEBHOOK_SECRET))).status_code == 400
