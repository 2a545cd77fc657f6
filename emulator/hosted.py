"""Driving the hosted pages from tests: find a form by id, fill it, submit it."""

from __future__ import annotations

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


def _prepare(
    page: httpx.Response, page_url: str, form_id: str, fields: dict[str, Any]
) -> tuple[str, str, dict[str, str]]:
    """Method, absolute action URL and data of a form on a loaded page."""
    if page.status_code >= 400:
        raise FormNotFound(f"{page_url} answered {page.status_code}: {page.text[:300]}")
    forms = parse_forms(page.text)
    if form_id not in forms:
        raise FormNotFound(f"no form#{form_id} on {page_url}; forms: {sorted(forms)}")
    method, action, data = forms[form_id]
    merged = dict(data)
    merged.update({k: str(v) for k, v in fields.items()})
    return method, urljoin(str(page.url), action or str(page.url)), merged


def _next_url(resp: httpx.Response, origin: tuple[str, str]) -> tuple[str | None, str | None]:
    """(redirect target on the emulator, redirect target off the emulator)."""
    if not resp.is_redirect:
        return None, None
    target = urljoin(str(resp.url), resp.headers["location"])
    return (target, None) if _origin(target) == origin else (None, target)


def submit_form(
    client: httpx.Client, page_url: str, form_id: str, **fields: Any
) -> httpx.Response | str:
    """Load page_url, submit ``form#form_id`` with its inputs plus fields, follow redirects.

    Redirects are followed while they stay on the emulator; a redirect leaving it (e.g. to
    success_url) is returned as is: read the target from ``response.headers["location"]``.
    """
    origin = _origin(page_url)
    page = client.get(page_url, follow_redirects=False)
    method, action, data = _prepare(page, page_url, form_id, fields)
    if method == "POST":
        resp = client.post(action, data=data, follow_redirects=False)
    else:
        resp = client.get(action, params=data, follow_redirects=False)
    for _ in range(10):
        here, away = _next_url(resp, origin)
        if away is not None:
            return away
        if here is None:
            break
        resp = client.get(here, follow_redirects=False)
    return resp


async def submit_form_async(
    client: httpx.AsyncClient, page_url: str, form_id: str, **fields: Any
) -> httpx.Response | str:
    """Async variant of submit_form."""
    origin = _origin(page_url)
    page = await client.get(page_url, follow_redirects=False)
    method, action, data = _prepare(page, page_url, form_id, fields)
    if method == "POST":
        resp = await client.post(action, data=data, follow_redirects=False)
    else:
        resp = await client.get(action, params=data, follow_redirects=False)
    for _ in range(10):
        here, away = _next_url(resp, origin)
        if away is not None:
            return away
        if here is None:
            break
        resp = await client.get(here, follow_redirects=False)
    return resp


asubmit_form = submit_form_async


def redirect_location(resp: httpx.Response) -> str | None:
    """The absolute redirect target of a response, if it is a redirect."""
    if not resp.is_redirect:
        return None
    return urljoin(str(resp.url), resp.headers["location"])
