"""GraphiQL in development loads everything from the API itself: it works with no network."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from harness.api import new_org, token
from harness.stack import Stack
from server.graphiql import ASSETS_DIR
from tests.support.browser import CHROMIUM_ARGS, browser_tools

CSS_URL = re.compile(r"""url\(\s*(?P<q>['"]?)(?P<ref>.*?)(?P=q)\s*\)""", re.S)
CSS_IMPORT = re.compile(r"""@import\s+(?P<q>['"])(?P<ref>[^'"]+)(?P=q)""")
JS_IMPORT = re.compile(
    r"""\bimport\s*\(\s*['"](?P<a>[^'"]+)['"]|\bimport\s+['"](?P<b>[^'"]+)['"]"""
    r"""|\bfrom\s+['"](?P<c>[^'"]+)['"]|\bimportScripts\s*\(\s*['"](?P<d>[^'"]+)['"]"""
)
SOURCE_MAP = re.compile(r"[#@]\s*sourceMappingURL=")
PLANS = ["free", "pro", "team", "business"]


@dataclass
class Ref:
    """A URL the page makes the browser load, and what for."""

    kind: str
    url: str
    integrity: str | None = None


class PageRefs(HTMLParser):
    """Every script, stylesheet and icon URL of an HTML page, with inline code's imports."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[Ref] = []
        self.inline: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record src/href of scripts, links, images, iframes and sources."""
        values = dict(attrs)
        for name in ("src", "href"):
            url = values.get(name)
            if url is not None and tag in {"script", "link", "img", "iframe", "source", "embed"}:
                kind = (values.get("rel") or tag) if tag == "link" else tag
                self.refs.append(Ref(kind, url, values.get("integrity")))
        self._in_code = tag in {"script", "style"}
        style = values.get("style")
        if style:
            self.inline.append(style)

    def handle_endtag(self, tag: str) -> None:
        """Leave an inline script or style."""
        self._in_code = False

    def handle_data(self, data: str) -> None:
        """Keep the text of inline scripts and styles."""
        if self._in_code:
            self.inline.append(data)


def code_refs(code: str) -> list[str]:
    """URLs a stylesheet or script would fetch: url(...), @import, import/importScripts."""
    urls = [m["ref"] for m in CSS_URL.finditer(code)]
    urls += [m["ref"] for m in CSS_IMPORT.finditer(code)]
    urls += [next(g for g in m.groups() if g) for m in JS_IMPORT.finditer(code)]
    return urls


def page_refs(html: str) -> tuple[list[Ref], list[str]]:
    """The page's element URLs, and the URLs its inline code references."""
    parser = PageRefs()
    parser.feed(html)
    parser.close()
    return parser.refs, [url for code in parser.inline for url in code_refs(code)]


def is_inline(url: str) -> bool:
    """A data: or blob: URL: nothing to fetch from anywhere."""
    return urlsplit(url).scheme in {"data", "blob"}


def off_server(url: str, origin: str) -> bool:
    """True when a URL (absolute, relative or protocol-relative) leaves this origin."""
    if is_inline(url):
        return False
    parts, server = urlsplit(urljoin(origin + "/graphql", url)), urlsplit(origin)
    return (parts.scheme, parts.netloc) != (server.scheme, server.netloc)


def sri(body: bytes, integrity: str) -> str:
    """The integrity value for a body, in the algorithm the attribute uses."""
    algorithm = integrity.split("-", 1)[0]
    digest = hashlib.new(algorithm, body).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode()}"


def expected_type(ref: Ref) -> str:
    """The content type a reference must be served with."""
    return {"script": "text/javascript", "stylesheet": "text/css"}.get(ref.kind, "")


async def assert_served(client: httpx.AsyncClient, ref: Ref, page_url: str) -> None:
    """The asset answers 200 with its content type, caching and integrity; so do its url()s."""
    origin = str(client.base_url).rstrip("/")
    asset = await client.get(urljoin(page_url, ref.url))
    assert asset.status_code == 200, ref.url
    assert asset.headers["content-type"].startswith(expected_type(ref)), ref.url
    assert "immutable" in asset.headers["cache-control"]
    assert not SOURCE_MAP.search(asset.text), f"{ref.url} names a source map"
    if ref.integrity:
        assert sri(asset.content, ref.integrity) == ref.integrity, ref.url
    for url in code_refs(asset.text) if ref.kind == "stylesheet" else []:
        assert not off_server(url, origin), f"{ref.url} loads {url}"
        if not is_inline(url):
            assert (await client.get(urljoin(str(asset.url), url))).status_code == 200, url


async def test_graphiql_page_loads_only_assets_the_api_serves(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="graphiql"' in response.text
    refs, inline_refs = page_refs(response.text)
    assets = [r for r in refs if not is_inline(r.url)]
    assert sorted(r.kind for r in assets) == ["script"] * 5 + ["stylesheet"] * 2, refs
    origin = str(client.base_url).rstrip("/")
    assert [u for u in [r.url for r in refs] + inline_refs if off_server(u, origin)] == []
    for ref in assets:
        await assert_served(client, ref, str(response.url))


def test_every_vendored_package_has_its_license() -> None:
    packages = [p for p in ASSETS_DIR.rglob("*") if p.is_dir() and "@" in p.name[1:]]
    assert len(packages) == 5
    assert [p for p in packages if not (p / "LICENSE").is_file()] == []


EDITOR = ".graphiql-query-editor .CodeMirror"
HEADERS_EDITOR = (
    'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror'
)
RESULT = ".graphiql-response .CodeMirror"


@dataclass
class NetworkCut:
    """Lets the browser reach the API's own host and port only; records what it refused."""

    server: str
    cut_off: list[str]
    problems: list[str]

    async def route(self, route: Any) -> None:
        """Let requests to the API through; abort (and record) everything else."""
        parts = urlsplit(route.request.url)
        if parts.netloc == self.server and parts.scheme in {"http", "ws"}:
            await route.continue_()
        else:
            self.cut_off.append(route.request.url)
            await route.abort()

    def watch(self, page: Any) -> None:
        """Record script errors, websockets and failed responses of a page."""
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("websocket", lambda ws: self.problems.append(f"websocket: {ws.url}"))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        """Record a response that failed."""
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.url}")


async def set_editor(page: Any, selector: str, text: str) -> None:
    """Set a CodeMirror editor's text, as typing it would."""
    await page.locator(selector).evaluate("(el, text) => el.CodeMirror.setValue(text)", text)


async def run_query(page: Any, expect: Any, query: str, expected: str) -> Any:
    """Put a query in the editor, press the execute button, and return the result."""
    await set_editor(page, EDITOR, query)
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(RESULT)).to_contain_text(expected)
    return json.loads(await page.locator(RESULT).evaluate("el => el.CodeMirror.getValue()"))


async def use_graphiql(page: Any, expect: Any, url: str) -> None:
    """Open GraphiQL, run `plans`, then `entitlement` with a token from the headers editor."""
    await page.goto(f"{url}/graphql", wait_until="load")
    await expect(page.locator(EDITOR)).to_be_visible(timeout=20_000)
    plans = await run_query(page, expect, "{ plans { slug } }", '"slug"')
    assert [p["slug"] for p in plans["data"]["plans"]] == PLANS
    org = new_org()
    await page.get_by_role("button", name="Headers").click()
    await set_editor(page, HEADERS_EDITOR, json.dumps({"authorization": f"Bearer {token(org)}"}))
    result = await run_query(page, expect, "{ entitlement { orgId } }", org)
    assert result == {"data": {"entitlement": {"orgId": org}}}


async def test_graphiql_runs_a_query_in_a_browser_with_no_network(
    stack: Stack, tmp_path: Path
) -> None:
    playwright_api, chromium = browser_tools()
    cut = NetworkCut(urlsplit(stack.api.url).netloc, [], [])
    shot = Path(os.environ.get("GRAPHIQL_SCREENSHOT") or tmp_path / "graphiql.png")
    failure: Exception | None = None
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 800})
            await context.route("**/*", cut.route)
            page = await context.new_page()
            cut.watch(page)
            try:
                await use_graphiql(page, playwright_api.expect, stack.api.url)
            except Exception as exc:
                failure = exc
            await page.screenshot(path=str(shot))
        finally:
            await browser.close()
    assert cut.cut_off == [], f"the page tried to reach the network (screenshot: {shot})"
    assert cut.problems == [], f"screenshot: {shot}"
    if failure is not None:
        raise failure
