"""Routes served just inside the request guard, ahead of CORS, the response cache and FastAPI.

The Stripe webhook is called server to server (no CORS), never cached, and a renewal burst
is thousands of deliveries a second: each layer it skips is CPU the burst does not spend."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


class DirectRoutes:
    """Hands a request for one of these routes straight to it (a 405 for another method);
    everything else goes on to the app."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one request."""
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is not Match.NONE:
                    scope.update(child)
                    await route.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)
