"""GraphiQL for development that loads nothing from the internet.

Strawberry's own GraphiQL page loads React, GraphiQL and the explorer plugin from unpkg.com,
so offline it never gets past "Loading...". Here the same page loads the same files, vendored
in `server/static/graphiql/assets/` (see the README.md beside them), from the API itself.

Wiring, in development only (production serves no IDE and mounts no assets):

    graphql = OfflineGraphiQLRouter[Context, Any](schema, graphql_ide="graphiql", ...)
    app.include_router(graphql, prefix="/graphql")
    mount_graphiql_assets(app)
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from strawberry.fastapi import GraphQLRouter
from strawberry.fastapi.context import CustomContext
from typing_extensions import TypeVar

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
"""The page, the vendored assets and the README saying where they came from."""
ASSETS_DIR = STATIC_DIR / "assets"
PAGE = STATIC_DIR / "index.html"
GRAPHIQL_ASSETS = "/graphiql/assets"
"""The URL path the vendored assets are served at."""
ASSETS_ROUTE_NAME = "graphiql-assets"
PLACEHOLDER = "__GRAPHIQL_ASSETS__"
"""Where index.html names the asset path, replaced by GRAPHIQL_ASSETS when served."""
CACHE_CONTROL = "public, max-age=31536000, immutable"
"""Asset paths carry their package version, so a path's content never changes."""
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    "": "text/plain; charset=utf-8",
}
"""Content types by suffix, fixed here rather than read from the host's mime.types."""

ContextT = TypeVar("ContextT", default=CustomContext)
RootValueT = TypeVar("RootValueT", default=None)


@cache
def graphiql_html() -> str:
    """The GraphiQL page, its assets pointed at GRAPHIQL_ASSETS."""
    return PAGE.read_text(encoding="utf-8").replace(PLACEHOLDER, GRAPHIQL_ASSETS)


class OfflineGraphiQLRouter(GraphQLRouter[ContextT, RootValueT]):
    """Strawberry's GraphQLRouter, serving the vendored GraphiQL page instead of unpkg's."""

    @property
    def graphql_ide_html(self) -> str:
        """The vendored GraphiQL page; Strawberry's own page for any other IDE."""
        if self.graphql_ide == "graphiql":
            return graphiql_html()
        return super().graphql_ide_html


class _AssetFiles(StaticFiles):
    """StaticFiles with a long Cache-Control and fixed content types."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """The file (or a 304), cacheable for a year, with its content type."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = CACHE_CONTROL
        response.headers["x-content-type-options"] = "nosniff"
        media_type = MEDIA_TYPES.get(Path(full_path).suffix)
        if media_type is not None and response.status_code != 304:
            response.headers["content-type"] = media_type
        return response


def graphiql_assets() -> StaticFiles:
    """An ASGI app serving the vendored GraphiQL assets (mount it at GRAPHIQL_ASSETS)."""
    return _AssetFiles(directory=ASSETS_DIR)


def mount_graphiql_assets(app: FastAPI) -> None:
    """Serve the vendored GraphiQL assets at GRAPHIQL_ASSETS (development only)."""
    app.mount(GRAPHIQL_ASSETS, graphiql_assets(), name=ASSETS_ROUTE_NAME)


__all__ = [
    "GRAPHIQL_ASSETS",
    "OfflineGraphiQLRouter",
    "graphiql_assets",
    "graphiql_html",
    "mount_graphiql_assets",
]
