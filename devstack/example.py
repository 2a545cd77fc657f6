"""The example React client under `make run`: built with the machine's Node.js, served at APP_URL.

Only `python main.py dev` (what `make run` runs) imports this module. Its one-click sign-in,
`POST /dev/sign-in`, mints a development token for the demo org's owner; it lives on the
example's own little server, never on the API, so no setting of a deployment can turn it on.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from billing.kit.auth import dev_token
from billing.kit.settings import Settings
from devstack import require_free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "examples" / "react"
NODE_MIN = (20, 19)  # Vite's own minimum on the 20 line
LOCAL_HOSTS = {"localhost", "127.0.0.1"}
DEMO_ORG = "org_demo"
DEMO_USER = "demo-owner"
SIGN_IN_TTL = 3600
HOW_TO_GET_IT = (
    "example client: install Node.js {need}+ and npm (https://nodejs.org/) and run `make run` "
    "again to get the billing page at {app_url}; serving the API only"
)


@dataclass(frozen=True)
class Prepared:
    """The example's built folder, or None with the one line saying why it is not served."""

    dist: Path | None
    message: str


def node_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of `node --version`'s output, e.g. 'v20.19.2' -> (20, 19)."""
    found = re.fullmatch(r"v?(\d+)\.(\d+)\.\d+\S*", text.strip())
    return (int(found[1]), int(found[2])) if found else None


def missing_tools() -> str | None:
    """Why this machine cannot build the example (no Node.js 20.19+ or npm), else None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "no node" if node is None else "no npm"
    try:
        out = subprocess.run(  # noqa: S603  (the machine's own node, no input)
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "node does not run"
    version = node_version(out)
    if version is None or version < NODE_MIN:
        return f"node {out.strip()} is too old"
    return None


def _inputs(folder: Path) -> Iterator[Path]:
    """Every file a build reads: sources, configuration, the lockfile and the API's schema."""
    for name in ("index.html", "package.json", "package-lock.json", "tsconfig.json"):
        yield folder / name
    yield from folder.glob("*.config.ts")
    yield folder / "codegen.ts"
    yield ROOT / "schema.graphql"
    generated = folder / "src" / "gql"  # the build writes it
    for sub in ("src", "public"):
        for path in (folder / sub).rglob("*"):
            if path.is_file() and not path.is_relative_to(generated):
                yield path


def _newest(paths: Iterator[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def _older(target: Path, than: float) -> bool:
    return not target.exists() or target.stat().st_mtime < than


def _npm(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm") or "npm"
    return subprocess.run(  # noqa: S603  (fixed arguments)
        [npm, *args], cwd=folder, capture_output=True, text=True, check=False
    )


def _failure(step: str, done: subprocess.CompletedProcess[str]) -> Prepared:
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    return Prepared(
        None,
        f"example client: `npm {step}` failed (exit {done.returncode}); serving the API only\n"
        f"{tail}",
    )


def prepare(
    app_url: str, folder: Path = EXAMPLE_DIR, say: Callable[[str], None] = print
) -> Prepared:
    """Install (`npm ci`, from the committed lockfile) and build the example when out of date."""
    problem = missing_tools()
    if problem is not None:
        need = ".".join(map(str, NODE_MIN))
        return Prepared(None, HOW_TO_GET_IT.format(need=need, app_url=app_url) + f" ({problem})")
    installed = folder / "node_modules" / ".package-lock.json"
    if _older(installed, (folder / "package-lock.json").stat().st_mtime):
        say("example client: installing its packages (npm ci, once)...")
        done = _npm(folder, "ci", "--no-audit", "--no-fund")
        if done.returncode != 0:
            return _failure("ci", done)
    index = folder / "dist" / "index.html"
    if _older(index, _newest(_inputs(folder))):
        say("example client: type-checking against schema.graphql and building...")
        done = _npm(folder, "run", "build")
        if done.returncode != 0:
            return _failure("run build", done)
    return Prepared(folder / "dist", "")


def local_port(app_url: str) -> int | None:
    """The port to serve the example on when APP_URL is a local http address, else None."""
    parts = urlsplit(app_url)
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
        return None
    return parts.port or 80


def origin(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PageFiles(StaticFiles):
    """The built files; any other path is the single page app's index.html (client routes)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """A file when there is one; index.html for a page path; 404 for a missing asset."""
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or Path(path).suffix:
                raise
            assert self.directory is not None
            return FileResponse(Path(self.directory) / "index.html")


def site(dist: Path, app_url: str, api_url: str, mint: Callable[[], str] | None) -> Starlette:
    """The example's files, its runtime config and, with `mint`, the one-click sign-in."""
    config = {"apiUrl": api_url, "devSignIn": mint is not None}
    config_body = f"window.BILLING_CONFIG = {json.dumps(config)};\n"
    own_origin = origin(app_url)
    own_host = urlsplit(app_url).netloc

    async def config_js(request: Request) -> Response:
        """window.BILLING_CONFIG for this `make run`."""
        return Response(
            config_body, media_type="text/javascript", headers={"cache-control": "no-store"}
        )

    async def sign_in(request: Request) -> Response:
        """A fresh token for the demo org's owner, to this page only (not another site's)."""
        if mint is None:
            return JSONResponse({"error": "sign-in is not available"}, status_code=404)
        # The Host check stops a DNS-rebound page; the Origin check, another site's form.
        if request.headers.get("host") != own_host or request.headers.get("origin") != own_origin:
            return JSONResponse({"error": "sign-in only from this page"}, status_code=403)
        return JSONResponse({"token": mint()}, headers={"cache-control": "no-store"})

    return Starlette(
        routes=[
            Route("/config.js", config_js),
            Route("/dev/sign-in", sign_in, methods=["POST"]),
            Mount("/", PageFiles(directory=dist)),
        ]
    )


class SiteServer:
    """Uvicorn serving the example from a daemon thread (the API keeps the main thread)."""

    def __init__(self, app: Starlette, port: int, host: str = "127.0.0.1") -> None:
        """Bind now, so a taken port fails here with OSError; serve on start()."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: self._server.run(sockets=[self._sock]), name="example", daemon=True
        )

    def start(self) -> SiteServer:
        """Start serving; returns once connections are accepted."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the example client's server failed to start")
            time.sleep(0.01)
        return self


def start(settings: Settings, api_port: int, say: Callable[[str], None] = print) -> str:
    """Build and serve the example at APP_URL; returns the line saying where, or why not."""
    port = local_port(settings.app_url)
    if port is None:
        return f"example client: not served (APP_URL {settings.app_url} is not a local http URL)"
    try:
        require_free_port("127.0.0.1", port, "APP_URL")
    except ValueError:
        return f"example client: not served (port {port} of APP_URL is in use); the API is"
    prepared = prepare(settings.app_url, say=say)
    if prepared.dist is None:
        return prepared.message
    role = "owner" if "owner" in settings.billing_roles else settings.billing_roles[0]
    mint: Callable[[], str] | None = None
    if settings.auth_jwt_secret is not None:
        mint = functools.partial(dev_token, settings, DEMO_ORG, role, DEMO_USER, SIGN_IN_TTL)

    api_url = f"http://127.0.0.1:{api_port}/graphql"
    SiteServer(site(prepared.dist, settings.app_url, api_url, mint), port).start()
    sign_in = "" if mint is None else f", one-click sign-in as {DEMO_ORG}'s {role}"
    return f"Example app on {settings.app_url}/settings/billing{sign_in}"
