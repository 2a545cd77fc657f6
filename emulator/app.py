"""The Starlette application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator import controls, dashboard, invoice_pages, pages
from emulator.api import api_endpoint
from emulator.delivery import Deliverer
from emulator.state import EmulatorState

# Controls whose changes the state file does not keep (configuration, faults, logs).
_UNSAVED_CONTROLS = (
    "/_emulator/config",
    "/_emulator/faults",
    "/_emulator/requests",
    "/_emulator/deliveries",
    "/_emulator/events",
)


async def index(request: Request) -> Response:
    """A landing page."""
    return HTMLResponse(
        "<!doctype html><title>Stripe emulator</title><h1>Stripe emulator</h1>"
        "<p>API at /v1, controls at /_emulator.</p>"
        f"<p><a id='dashboard' href='{dashboard.PAGE}'>Products and features</a> "
        "(attach entitlement features to products, as in Stripe's Dashboard)</p>"
    )


def changes_state(method: str, path: str) -> bool:
    """Whether a request may change what the state file keeps."""
    if path.startswith("/_emulator/"):
        return method == "POST" and not path.startswith(_UNSAVED_CONTROLS)
    if path.startswith("/v1/"):
        return method != "GET"
    return path.startswith(("/c/", "/p/", "/i/"))  # hosted pages: forms, expiry, sessions


class SaveAfterChanges:
    """ASGI middleware: after a request that may change state, schedule a state-file save."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        """Wrap an app."""
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve, then schedule the save (coalesced per event-loop turn)."""
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and changes_state(scope["method"], scope["path"]):
                self.state.changed()


def create_app(state: EmulatorState | None = None) -> Starlette:
    """Build the emulator app around a state (a fresh one by default)."""
    emulator = state or EmulatorState()
    known = emulator.deliverer
    deliverer = known if isinstance(known, Deliverer) else Deliverer(emulator)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        emulator.loop = asyncio.get_running_loop()
        deliverer.resume()  # deliveries pending in a loaded state file
        yield
        await deliverer.aclose()
        emulator.save()  # the final save (nothing without a state file)

    saving = [Middleware(SaveAfterChanges, state=emulator)] if emulator.state_file else []
    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/v1/{path:path}", api_endpoint, methods=["GET", "POST", "DELETE"]),
            Mount("/_emulator/dashboard", routes=dashboard.ROUTES),
            Mount("/_emulator", routes=controls.ROUTES),
            *pages.ROUTES,
            *invoice_pages.ROUTES,
        ],
        middleware=saving,
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    app.state.deliverer = deliverer
    return app
