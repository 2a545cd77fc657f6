"""Test controls under ``/_emulator/`` (JSON, no auth)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import cards, engine, entitlements, portal
from emulator.delivery import Deliverer
from emulator.errors import StripeError
from emulator.shapes import Obj
from emulator.state import EmulatorState, Fault, of_request, rate_limit_value


def _deliverer(request: Request) -> Deliverer:
    """The app's webhook deliverer."""
    deliverer: Deliverer = request.app.state.deliverer
    return deliverer


async def _json(request: Request) -> Obj:
    """The JSON body, {} when empty."""
    body = await request.body()
    if not body:
        return {}
    data = json.loads(body)
    return data if isinstance(data, dict) else {}


def _bad(message: str, status: int = 400) -> JSONResponse:
    """A control error."""
    return JSONResponse({"error": {"message": message}}, status_code=status)


async def reset(request: Request) -> Response:
    """POST /_emulator/reset."""
    state = of_request(request)
    state.wake.set()
    state.reset()
    return JSONResponse({"ok": True})


async def clock(request: Request) -> Response:
    """GET /_emulator/clock."""
    return JSONResponse({"now": of_request(request).now()})


async def advance(request: Request) -> Response:
    """POST /_emulator/clock/advance {"seconds": N} or {"to": ts}."""
    state = of_request(request)
    data = await _json(request)
    seconds = int(data["to"]) - state.now() if "to" in data else int(data.get("seconds", 0))
    try:
        now = engine.advance(state, seconds)
    except StripeError as err:
        return _bad(err.message)
    return JSONResponse({"now": now})


async def faults(request: Request) -> Response:
    """POST/GET/DELETE /_emulator/faults."""
    state = of_request(request)
    if request.method == "DELETE":
        state.faults.clear()
        state.wake.set()
        state.wake.clear()
        return JSONResponse({"ok": True})
    if request.method == "GET":
        return JSONResponse({"faults": [vars(f) for f in state.faults]})
    data = await _json(request)
    if not data.get("path"):
        return _bad("path is required")
    mode = data.get("mode", "status")
    if mode not in ("status", "hang", "delay", "reset"):
        return _bad("mode must be status, hang, delay or reset")
    fault = Fault(
        path=str(data["path"]),
        method=(data.get("method") or None),
        status=int(data.get("status", 500)),
        count=int(data.get("count", 1)),
        mode=mode,
        hang_seconds=float(data.get("hang_seconds", 30)),
        body=data.get("body"),
    )
    state.faults.append(fault)
    return JSONResponse({"ok": True, "fault": vars(fault)})


async def requests_log(request: Request) -> Response:
    """GET/DELETE /_emulator/requests?path=&method=."""
    state = of_request(request)
    if request.method == "DELETE":
        state.requests.clear()
        return JSONResponse({"ok": True})
    path = request.query_params.get("path")
    method = request.query_params.get("method")
    items = [
        r
        for r in state.requests
        if (not path or r["path"] == path) and (not method or r["method"] == method.upper())
    ]
    return JSONResponse(items)


async def deliveries(request: Request) -> Response:
    """GET/DELETE /_emulator/deliveries."""
    state = of_request(request)
    if request.method == "DELETE":
        state.deliveries.clear()
        return JSONResponse({"ok": True})
    return JSONResponse(state.deliveries)


async def pending(request: Request) -> Response:
    """GET /_emulator/deliveries/pending -> {"pending": n} (queued or awaiting a retry)."""
    return JSONResponse({"pending": _deliverer(request).pending})


def _config_value(state: EmulatorState, key: str, value: Any) -> Any:
    """A config value converted to its key's type (ValueError naming the problem)."""
    if not hasattr(state.config, key):
        raise ValueError(f"unknown config key {key}")
    if key == "rate_limit":
        return rate_limit_value(value)
    kind = type(getattr(state.config, key))
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a {kind.__name__}, not {value!r}") from None


async def config(request: Request) -> Response:
    """GET/POST /_emulator/config (a bad key or value changes nothing: a 400)."""
    state = of_request(request)
    if request.method == "POST":
        data = await _json(request)
        try:
            values = {key: _config_value(state, key, value) for key, value in data.items()}
        except ValueError as err:
            return _bad(str(err))
        for key, value in values.items():
            setattr(state.config, key, value)
    return JSONResponse(vars(state.config))


async def deliver_one(request: Request) -> Response:
    """POST /_emulator/events/{evt}/deliver {"duplicate": N}."""
    state = of_request(request)
    evt = request.path_params["evt"]
    if evt not in state.db.events:
        return _bad(f"No such event: {evt}", 404)
    data = await _json(request)
    results = await _deliverer(request).deliver_now([evt], copies=int(data.get("duplicate", 0)))
    return JSONResponse({"results": results})


async def deliver_many(request: Request) -> Response:
    """POST /_emulator/events/deliver {"ids", "shuffle", "duplicates", "concurrency", "seed"}."""
    state = of_request(request)
    data = await _json(request)
    ids = data.get("ids")
    if ids is None:
        ids = list(state.db.events)
    missing = [i for i in ids if i not in state.db.events]
    if missing:
        return _bad(f"No such events: {missing}", 404)
    results = await _deliverer(request).deliver_now(
        ids,
        duplicates=float(data.get("duplicates", 0) or 0),
        shuffle=bool(data.get("shuffle", False)),
        concurrency=int(data.get("concurrency", 16)),
        seed=data.get("seed"),
    )
    return JSONResponse({"results": results})


async def card(request: Request) -> Response:
    """POST /_emulator/customers/{cus}/card {"fails": bool} or {"card": "4000002760003184"}.

    Saves a test card as the customer's default payment method (``cards.save_card``):
    ``fails`` picks 4000 0000 0000 0341 (true, the default) or 4242 4242 4242 4242; a
    subscription paused for want of a payment method resumes (charged off session).
    """
    state = of_request(request)
    cus = request.path_params["cus"]
    if cus not in state.db.customers:
        return _bad(f"No such customer: {cus}", 404)
    data = await _json(request)
    number = data.get("card") or (cards.FAILS_LATER if data.get("fails", True) else cards.GOOD)
    try:
        pm = cards.save_card(state, cus, str(number))
    except StripeError as err:
        return _bad(err.message, err.status)
    if pm is None:
        return _bad("card must be a card number")
    engine.resume_paused(state, cus)
    entitlements.sync(state)  # a resumed subscription entitles again
    return JSONResponse(
        {
            "customer": cus,
            "payment_method": pm,
            "fails": cus in state.failing_cards,
            "requires_action": cus in state.auth_cards,
        }
    )


async def endpoints(request: Request) -> Response:
    """POST /_emulator/webhook_endpoints {"url", "secret", "events"?}."""
    state = of_request(request)
    data = await _json(request)
    if not data.get("url") or not data.get("secret"):
        return _bad("url and secret are required")
    ep = state.add_endpoint(str(data["url"]), str(data["secret"]), list(data.get("events", ["*"])))
    return JSONResponse(ep)


async def portal_default(request: Request) -> Response:
    """POST /_emulator/portal/default {"configuration": "bpc_..." | null}: the Dashboard's save."""
    state = of_request(request)
    data = await _json(request)
    try:
        chosen = portal.set_default(state, data.get("configuration") or None)
    except StripeError as err:
        return _bad(err.message, err.status)
    return JSONResponse({"default": chosen["id"] if chosen else None})


async def events_log(request: Request) -> Response:
    """GET /_emulator/events?type= : every event, oldest first."""
    state = of_request(request)
    type_ = request.query_params.get("type")
    items = [e for e in state.db.events.values() if not type_ or e["type"] == type_]
    return JSONResponse(items)


ROUTES = [
    Route("/reset", reset, methods=["POST"]),
    Route("/clock", clock, methods=["GET"]),
    Route("/clock/advance", advance, methods=["POST"]),
    Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/requests", requests_log, methods=["GET", "DELETE"]),
    Route("/deliveries", deliveries, methods=["GET", "DELETE"]),
    Route("/deliveries/pending", pending, methods=["GET"]),
    Route("/config", config, methods=["GET", "POST"]),
    Route("/events", events_log, methods=["GET"]),
    Route("/events/deliver", deliver_many, methods=["POST"]),
    Route("/events/{evt}/deliver", deliver_one, methods=["POST"]),
    Route("/customers/{cus}/card", card, methods=["POST"]),
    Route("/webhook_endpoints", endpoints, methods=["POST"]),
    Route("/portal/default", portal_default, methods=["POST"]),
]
