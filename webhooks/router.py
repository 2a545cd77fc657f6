"""POST /webhooks/stripe: verify over the raw bytes, store, acknowledge; the applier applies.

A plain ASGI endpoint rather than a FastAPI route, served right inside the request guard
(`server.direct_routes`): a renewal burst is thousands of these a second, and routing, dependency
solving, response models and middleware cost more than the work."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from billing.container import Services
from billing.gateway.client import InvalidSignature, verify_webhook
from billing.kit import metrics
from billing.kit.logs import bind_event_id, log_scope
from webhooks import RAW_BODY, WEBHOOK_PATH
from webhooks.applier import Applier
from webhooks.intake import Intake

log = logging.getLogger(__name__)


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


class StripeWebhook:
    """Receive one Stripe event: 2xx once it is stored (a 5xx only if storing failed)."""

    def __init__(self, services: Services, intake: Intake, applier: Applier | None) -> None:
        self.services = services
        self.intake = intake
        self.applier = applier
        if applier is not None:
            applier.defer_to(intake.priority)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one delivery (its lines, the access log's too, name the event once known)."""
        with log_scope(), self.intake.priority.answering():
            response = await self._answer(scope, receive)
            await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> JSONResponse:
        """Verify, store, and say so."""
        body = scope.get("state", {}).get(RAW_BODY)
        request = Request(scope, receive)
        if body is None:
            body = await request.body()
        settings = self.services.settings
        try:
            event = verify_webhook(
                body,
                request.headers.get("stripe-signature"),
                settings.webhook_secrets,
                settings.webhook_tolerance,
            )
        except InvalidSignature as exc:
            log.warning("webhook refused: %s", exc)
            metrics.count(metrics.WEBHOOK_REJECTED, "signature")
            return JSONResponse({"error": f"invalid signature: {exc}"}, status_code=400)
        if not _well_formed(event):
            metrics.count(metrics.WEBHOOK_REJECTED, "not_an_event")
            return JSONResponse({"error": "not a Stripe event"}, status_code=400)
        bind_event_id(event["id"])
        stored = await self.intake.store(event, body)
        outcome = "duplicate" if not stored.new else "stored" if stored.pending else "ignored"
        metrics.count(metrics.WEBHOOK_EVENTS, event["type"], outcome)
        if stored.pending and self.applier is not None:
            self.applier.wake()
        return JSONResponse({"received": True, "duplicate": not stored.new})


def webhook_route(services: Services, intake: Intake, applier: Applier | None) -> Route:
    """The route of the webhook endpoint."""
    return Route(WEBHOOK_PATH, StripeWebhook(services, intake, applier), methods=["POST"])
