"""The Starlette application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from emulator import controls, pages
from emulator.api import api_endpoint
from emulator.delivery import Deliverer
from emulator.state import EmulatorState


async def index(request: Request) -> Response:
    """A landing page."""
    return HTMLResponse(
        "<!doctype html><title>Stripe emulator</title><h1>Stripe emulator</h1>"
        "<p>API at /v1, controls at /_emulator.</p>"
    )


def create_app(state: EmulatorState | None = None) -> Starlette:
    """Build the emulator app around a state (a fresh one by default)."""
    emulator = state or EmulatorState()
    deliverer = emulator.deliverer or Deliverer(emulator)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        emulator.loop = asyncio.get_running_loop()
        yield
        await deliverer.aclose()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/v1/{path:path}", api_endpoint, methods=["GET", "POST", "DELETE"]),
            Mount("/_emulator", routes=controls.ROUTES),
            *pages.ROUTES,
        ],
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app
