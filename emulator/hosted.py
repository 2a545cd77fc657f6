"""Driving the hosted pages from tests: find a form by id, fill it, submit it."""

from __future__ import annotations

from collections.abc import Generator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx


class FormNotFound(LookupError):
    """The page has no form with that id."""


class _FormParser(HTMLParser):
    """Collects forms: id -> (method, action, {name: value})."""

    def __init__(self) -> None:
        """Start empty."""
        super().__init__()
        self.forms: dict[str, tuple[str, str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Track forms and their inputs."""
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = a.get("id", "")
            self.forms[self._current] = (a.get("method", "get").upper(), a.get("action", ""), {})
        elif self._current is not None and tag in ("input", "select", "textarea"):
            name = a.get("name")
            if name and (a.get("type") not in ("checkbox", "radio") or "checked" in a):
                self.forms[self._current][2].setdefault(name, a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        """Close the current form."""
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Every form of a page: id -> (method, action, default fields)."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def _origin(url: str) -> tuple[str, str]:
    """(scheme, netloc) of a URL."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


Request = tuple[str, str, dict[str, Any]]  # (method, URL, httpx keyword arguments)
Walk = Generator[Request, httpx.Response, httpx.Response | str]


def _walk(page_url: str, form_id: str, fields: dict[str, Any]) -> Walk:
    """The requests of a form submission, each sent by the caller, who sends back the answer."""
    origin = _origin(page_url)
    page = yield "GET", page_url, {}
    if page.status_code >= 400:
        raise FormNotFound(f"{page_url} answered {page.status_code}: {page.text[:300]}")
    forms = parse_forms(page.text)
    if form_id not in forms:
        raise FormNotFound(f"no form#{form_id} on {page_url}; forms: {sorted(forms)}")
    method, action, data = forms[form_id]
    data = {**data, **{k: str(v) for k, v in fields.items()}}
    url = urljoin(str(page.url), action or str(page.url))
    resp = yield method, url, {"data": data} if method == "POST" else {"params": data}
    for _ in range(10):  # follow redirects while they stay on the emulator
        target = redirect_location(resp)
        if target is None:
            break
        if _origin(target) != origin:
            return target
        resp = yield "GET", target, {}
    return resp


def submit_form(
    client: httpx.Client, page_url: str, form_id: str, **fields: Any
) -> httpx.Response | str:
    """Load page_url, submit ``form#form_id`` with its inputs plus fields, follow redirects.

    Redirects are followed while they stay on the emulator; a redirect leaving it (e.g. to
    success_url) is returned as is: read the target from ``response.headers["location"]``.
    """
    walk = _walk(page_url, form_id, fields)
    try:
        method, url, kw = next(walk)
        while True:
            method, url, kw = walk.send(client.request(method, url, follow_redirects=False, **kw))
    except StopIteration as done:
        result: httpx.Response | str = done.value
        return result


async def submit_form_async(
    client: httpx.AsyncClient, page_url: str, form_id: str, **fields: Any
) -> httpx.Response | str:
    """Async variant of submit_form."""
    walk = _walk(page_url, form_id, fields)
    try:
        method, url, kw = next(walk)
        while True:
            resp = await client.request(method, url, follow_redirects=False, **kw)
            method, url, kw = walk.send(resp)
    except StopIteration as done:
        result: httpx.Response | str = done.value
        return result


def redirect_location(resp: httpx.Response) -> str | None:
    """The absolute redirect target of a response, if it is a redirect."""
    if not resp.is_redirect:
        return None
    return urljoin(str(resp.url), resp.headers["location"])
