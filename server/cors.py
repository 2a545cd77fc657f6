"""CORS for the listed browser origins only."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send


class ListedOriginsCORS(CORSMiddleware):
    """Starlette's CORS for the listed origins only; any other origin gets no CORS header
    at all (Starlette would still send Allow-Credentials to it, harmless but misleading)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass requests from unlisted origins straight through."""
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self.is_allowed_origin(origin):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
