"""A mobile app's link domain (the host of its universal links / app links), played by a tiny
local server on a second origin: it records every request it gets and answers each with a
page saying the app would open here."""

from __future__ import annotations

import asyncio
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from harness.servers import ThreadedServer
from harness.timing import eventually

APPS = ("ios", "android")
"""The apps it serves links for, each under its own path: /ios/..., /android/...."""


class LinkDomain:
    """The link domain on 127.0.0.1:<free port>; `app_urls` is the API's APP_URLS for it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        """Every request's path and query ("/ios/settings/billing?billing_flow=..."), in order."""
        self._server = ThreadedServer(self._app())
        self.url = self._server.url
        self.app_urls = {app: f"{self.url}/{app}" for app in APPS}

    def _app(self) -> Starlette:
        async def link(request: Request) -> Response:
            """A universal link a browser lands on when no app takes it."""
            self._record(request)
            where = escape(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            body = f"<h1>Back in the app</h1><p id='link'>{where}</p>"
            return HTMLResponse(f"<!doctype html><title>App link</title>{body}")

        return Starlette(routes=[Route("/{path:path}", link)])

    def _record(self, request: Request) -> None:
        query = request.url.query
        self.requests.append(request.url.path + (f"?{query}" if query else ""))

    def start(self) -> LinkDomain:
        """Serve from a daemon thread; returns once it accepts connections."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    async def received(self, path: str, timeout: float = 10) -> None:
        """Wait until a request for exactly `path` (with its query) has arrived."""

        async def seen() -> list[str]:
            await asyncio.sleep(0)
            return list(self.requests)

        await eventually(seen, lambda got: path in got, timeout=timeout, what=f"a GET {path}")
