"""What `make run` serves at APP_URL besides the page: its config, its one-click sign-in (for
that page only, and nowhere else), CORS for it on the API, and a build that type-checks."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from playwright.async_api import Browser, expect
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from billing.kit.settings import DEV_JWT_SECRET
from devstack.example import EXAMPLE_DIR, ROOT
from harness.servers import ThreadedServer
from tests.support.dev import DevStack
from tests.support.example import open_page

pytestmark = pytest.mark.xdist_group("example")  # one build of examples/react at a time


def sign_in(dev: DevStack, **headers: str) -> httpx.Response:
    """POST /dev/sign-in on the example's server with these headers."""
    return httpx.post(f"{dev.app_url}/dev/sign-in", headers=headers, timeout=10)


def test_one_click_sign_in_mints_a_demo_owner_token_for_this_page_only(example: DevStack) -> None:
    page_origin = example.app_url
    answer = sign_in(example, origin=page_origin)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    claims = jwt.decode(answer.json()["token"], DEV_JWT_SECRET, algorithms=["HS256"])
    assert (claims["org_id"], claims["org_role"]) == ("org_demo", "owner")
    assert 3500 < claims["exp"] - time.time() <= 3600

    port = urlsplit(example.app_url).port
    refused = [
        sign_in(example),  # no Origin: not a page's fetch
        sign_in(example, origin="https://evil.example"),
        sign_in(example, origin="null"),
        sign_in(example, origin=f"http://127.0.0.1:{port}"),  # another origin, same server
        sign_in(example, origin=page_origin, host=f"evil.example:{port}"),  # DNS rebinding
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all("token" not in r.text for r in refused)
    assert "token" not in httpx.get(f"{example.app_url}/dev/sign-in", timeout=10).text


def test_the_api_itself_has_no_sign_in(example: DevStack) -> None:
    for path in ("/dev/sign-in", "/config.js"):
        answer = httpx.post(f"{example.url}{path}", headers={"origin": example.app_url})
        assert answer.status_code in (404, 405), (path, answer.status_code)
        assert "token" not in answer.text


def test_the_page_gets_the_api_address_and_page_paths_get_the_app(example: DevStack) -> None:
    config = httpx.get(f"{example.app_url}/config.js", timeout=10)
    assert config.headers["content-type"].startswith("text/javascript")
    assert f'"apiUrl": "{example.url}/graphql"' in config.text
    assert '"devSignIn": true' in config.text
    for path in ("/settings/billing", "/pricing", "/"):
        page = httpx.get(f"{example.app_url}{path}", timeout=10)
        assert page.status_code == 200 and '<div id="root">' in page.text, path
    assert httpx.get(f"{example.app_url}/assets/missing.js", timeout=10).status_code == 404


def test_the_api_allows_the_example_origin_in_development(example: DevStack) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    allowed = httpx.options(
        f"{example.url}/graphql", headers={"origin": example.app_url, **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == example.app_url
    other = httpx.options(
        f"{example.url}/graphql", headers={"origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_a_deployed_build_has_no_one_click_sign_in(
    example: DevStack, browser: Browser
) -> None:
    dist = EXAMPLE_DIR / "dist"
    assert "devSignIn: false" in (dist / "config.js").read_text()  # public/config.js
    static = ThreadedServer(Starlette(routes=[Mount("/", StaticFiles(directory=dist, html=True))]))
    static.start()
    try:
        page = await open_page(browser)
        await page.goto(f"{static.url}/")
        await expect(page.get_by_test_id("token-input")).to_be_visible()
        await expect(page.get_by_test_id("dev-sign-in")).to_have_count(0)
    finally:
        static.stop()


def npm_typecheck(folder: Path) -> subprocess.CompletedProcess[str]:
    """`npm run typecheck`: graphql-codegen from schema.graphql, then tsc --noEmit."""
    npm = shutil.which("npm")
    assert npm is not None
    return subprocess.run(
        [npm, "run", "typecheck"], cwd=folder, capture_output=True, text=True, check=False
    )


@pytest.mark.usefixtures("example")  # its `npm ci` installed the packages
def test_the_example_type_checks_against_schema_graphql(tmp_path: Path) -> None:
    passed = npm_typecheck(EXAMPLE_DIR)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    # The same sources against a schema that renamed a field they use: the check names it.
    copy = tmp_path / "examples" / "react"
    shutil.copytree(EXAMPLE_DIR, copy, ignore=shutil.ignore_patterns("node_modules", "dist", "gql"))
    (copy / "node_modules").symlink_to(EXAMPLE_DIR / "node_modules")
    schema = (ROOT / "schema.graphql").read_text()
    changed = schema.replace("cancelAtPeriodEnd: Boolean!", "cancelsAtPeriodEnd: Boolean!")
    assert changed != schema
    (tmp_path / "schema.graphql").write_text(changed)
    failed = npm_typecheck(copy)
    assert failed.returncode != 0
    assert 'Cannot query field "cancelAtPeriodEnd"' in failed.stdout + failed.stderr
