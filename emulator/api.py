"""The ``/v1`` endpoint: rate limit, auth, faults, parameters, idempotency, dispatch, logging."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import time
import traceback
from fnmatch import fnmatchcase

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from emulator import entitlements
from emulator.errors import StripeError, fault_error, rate_limited
from emulator.forms import decode_body, decode_query
from emulator.ids import new_id
from emulator.resources import Endpoint
from emulator.routes import route
from emulator.shapes import Obj
from emulator.spec import API_VERSION
from emulator.state import EmulatorState, Fault, IdempotentEntry, base_url

log = logging.getLogger("emulator")


class ConnectionResetFault(Exception):
    """Raised after a partial response to make the server drop the connection."""


class _ResetResponse(Response):
    """Starts a response, sends part of it, then aborts the connection."""

    def __init__(self) -> None:
        """No body."""
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send headers promising a body that never fully arrives."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})
        raise ConnectionResetFault("emulated connection reset")


class _QuietResets(logging.Filter):
    """Hide the server's traceback for emulated connection resets."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop records caused by ConnectionResetFault."""
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ConnectionResetFault):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietResets())


def _json(status: int, body: Obj | bytes, headers: dict[str, str]) -> Response:
    """A JSON response."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def take_fault(state: EmulatorState, method: str, path: str) -> Fault | None:
    """Consume one matching fault, if any."""
    for fault in state.faults:
        if fault.count <= 0:
            continue
        if fault.method and fault.method.upper() != method:
            continue
        if fault.path != path and not ("*" in fault.path and fnmatchcase(path, fault.path)):
            continue
        fault.count -= 1
        if fault.count <= 0:
            state.faults.remove(fault)
        return fault
    return None


def _auth(request: Request) -> str:
    """The API key (Bearer, or Basic with the key as user name), or a 401 StripeError."""
    header = request.headers.get("authorization", "")
    if not header:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            status=401,
        )
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() == "basic":
        key = _basic_user(key)
    elif scheme.lower() != "bearer":
        key = ""
    if not key.startswith(("sk_test_", "sk_live_", "rk_test_")):
        shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
        raise StripeError(f"Invalid API Key provided: {shown}", status=401)
    return key


def _basic_user(credentials: str) -> str:
    """The user name of HTTP Basic credentials ("" when malformed)."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def _params(method: str, body: bytes, query: str) -> Obj:
    """Decoded request parameters (body for POST, query otherwise)."""
    if method == "POST" and body:
        return decode_body(body)
    params = decode_query(query)
    if body and method == "DELETE":
        params.update(decode_body(body))
    return params


async def api_endpoint(request: Request) -> Response:
    """Serve one Stripe API request."""
    state: EmulatorState = request.app.state.emulator
    method = request.method
    path = request.url.path
    request_id = new_id("req_", 14)
    idem_key = request.headers.get("idempotency-key") if method == "POST" else None
    headers = {
        "Request-Id": request_id,
        "Stripe-Version": request.headers.get("stripe-version", API_VERSION),
    }
    if idem_key:
        headers["Idempotency-Key"] = idem_key
    body = await request.body()
    params = _params(method, body, request.url.query)
    entry: Obj = {
        "method": method,
        "path": path,
        "params": params,
        "idempotency_key": idem_key,
        "status": None,
        "time": time.time(),
        "request_id": request_id,
    }
    state.requests.append(entry)
    if not state.allow_request():  # before any work, like Stripe: nothing runs or is saved
        entry["status"] = 429
        headers["Stripe-Rate-Limited-Reason"] = "global-rate"
        return _json(429, rate_limited().body(request_id), headers)
    fault = take_fault(state, method, path)
    mode = fault.mode if fault is not None else None
    if fault is not None and mode == "reset":
        entry["status"] = 0
        return _ResetResponse()
    if fault is not None and mode == "status":
        err = fault_error(fault.status)
        entry["status"] = fault.status
        payload = fault.body if fault.body is not None else err.body(request_id)
        return _json(fault.status, payload, headers)
    if fault is not None and mode == "hang":  # answered from the state after the wait
        await _wait(state, fault.hang_seconds)
    status, content, replayed = _dispatch(
        state, request, method, path, params, idem_key, request_id
    )
    if fault is not None and mode == "delay":  # answered from the state now, sent late
        await _wait(state, fault.hang_seconds)
    entry["status"] = status
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(status, content, headers)


async def _wait(state: EmulatorState, seconds: float) -> None:
    """Sleep up to `seconds`, or until `DELETE /_emulator/faults` wakes every waiter."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.wake.wait(), timeout=seconds)


def _error(err: StripeError, request_id: str) -> tuple[int, bytes]:
    """Status and JSON body of an error."""
    return err.status, json.dumps(err.body(request_id)).encode()


def _dispatch(
    state: EmulatorState,
    request: Request,
    method: str,
    path: str,
    params: Obj,
    idem_key: str | None,
    request_id: str,
) -> tuple[int, bytes, bool]:
    """Authenticate, replay, check, run; synchronous so state changes are atomic.

    Like Stripe, a response is remembered for its Idempotency-Key only once the endpoint
    started executing: requests failing auth, routing or parameter checks are not saved.
    """
    try:
        api_key = _auth(request)
        cache_key = (_key_digest(api_key), idem_key) if idem_key else None
        cached = _replay(state, cache_key, method, path, params)
        if cached is not None:
            return cached.status, cached.body, True
        endpoint, args = route(state, method, path, params)
    except StripeError as err:
        return (*_error(err, request_id), False)
    status, content = _run(state, request, endpoint, params, args, idem_key, request_id)
    if cache_key is not None and status < 500:
        state.idempotency[cache_key] = IdempotentEntry(method, path, params, status, content)
    return status, content, False


def _key_digest(api_key: str) -> str:
    """Idempotency keys are per API key; entries (and the state file) keep only a digest."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def _replay(
    state: EmulatorState, cache_key: tuple[str, str] | None, method: str, path: str, params: Obj
) -> IdempotentEntry | None:
    """The saved response for a key, or the idempotency_error when the request differs."""
    cached = state.idempotency.get(cache_key) if cache_key is not None else None
    if cached is None or (cached.method, cached.path, cached.params) == (method, path, params):
        return cached
    raise StripeError(
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{cache_key and cache_key[1]}' if you "
        "meant to execute a different request.",
        type="idempotency_error",
    )


def _run(
    state: EmulatorState,
    request: Request,
    endpoint: Endpoint,
    params: Obj,
    args: tuple[str, ...],
    idem_key: str | None,
    request_id: str,
) -> tuple[int, bytes]:
    """Call the endpoint, then fire the entitlement summaries its changes call for."""
    ctx = state.ctx
    ctx.request_id = request_id
    ctx.idempotency_key = idem_key
    ctx.base_url = base_url(request)
    try:
        return 200, json.dumps(endpoint(state, params, *args)).encode()
    except StripeError as err:
        return _error(err, request_id)
    except Exception as exc:
        log.error("emulator endpoint failed: %s\n%s", exc, traceback.format_exc())
        bug = StripeError(f"Emulator internal error: {exc}", status=500, type="api_error")
        return _error(bug, request_id)
    finally:
        entitlements.sync(state)
        ctx.request_id = None
        ctx.idempotency_key = None
