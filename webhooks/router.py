"""POST /webhooks/stripe: verify over the raw bytes, record, apply; 5xx only when it must retry."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from billing.stripe_api import InvalidSignature, verify_webhook
from server.deps import ServicesDep
from server.guard import WEBHOOK_PATH
from webhooks.store import Outcome, apply, record

log = logging.getLogger(__name__)
router = APIRouter()


def _well_formed(event: Any) -> bool:
    """True for an object shaped like a Stripe event."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"].startswith("evt_")
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= 255
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    )


@router.post(WEBHOOK_PATH)
async def stripe_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    """Receive one Stripe event."""
    body = await request.body()
    settings = services.settings
    try:
        event = verify_webhook(
            body,
            request.headers.get("stripe-signature"),
            settings.webhook_secrets,
            settings.webhook_tolerance,
        )
    except InvalidSignature as exc:
        log.warning("webhook refused: %s", exc)
        return JSONResponse({"error": f"invalid signature: {exc}"}, status_code=400)
    if not _well_formed(event):
        return JSONResponse({"error": "not a Stripe event"}, status_code=400)
    await record(services, event, body)
    async with services.webhook_slots:
        outcome = await apply(services, event["id"])
    status = 500 if outcome is Outcome.FAILED else 200
    return JSONResponse({"received": True, "outcome": outcome.value}, status_code=status)
