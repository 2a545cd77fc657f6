"""Sign webhook bodies the way Stripe does (t=..., v1=HMAC-SHA256 of "t.body"), and deliver
them to the API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx

WEBHOOK_SECRET = "whsec_test_suite_secret"
"""The signing secret of the suite's webhook endpoint (and of the API's settings)."""
WEBHOOK_PATH = "/webhooks/stripe"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for a body."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def signed_headers(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """The headers Stripe sends with a body: its signature and the JSON content type."""
    return {"stripe-signature": sign(body, secret), "content-type": "application/json"}


async def post_signed(http: httpx.AsyncClient, body: bytes) -> httpx.Response:
    """Deliver one body to the API's webhook endpoint, signed with WEBHOOK_SECRET."""
    return await http.post(WEBHOOK_PATH, content=body, headers=signed_headers(body))


def event_body(
    event_type: str = "ping.unhandled",
    obj: dict[str, Any] | None = None,
    event_id: str | None = None,
    created: int | None = None,
) -> bytes:
    """A minimal event in Stripe's shape."""
    event = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-05-27.dahlia",
        "created": created or int(time.time()),
        "data": {"object": obj or {"id": "obj_1", "object": "thing"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(event, separators=(",", ":")).encode()
