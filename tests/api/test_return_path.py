"""The open-redirect corpus for `openPortal(returnPath)`: every unsafe path is refused before
Stripe is asked for anything; safe paths reach Stripe exactly as APP_URL + path."""

from __future__ import annotations

import httpx
import pytest

from harness.api import APP_URL, Api
from harness.db import customer_id
from harness.stack import Stack
from harness.stripe_side import portal_sessions

HOST = "evil.example"

UNSAFE: list[str] = [
    # absolute URLs and schemes
    f"https://{HOST}",
    f"http://{HOST}/settings",
    f"HTTPS://{HOST}",
    f"{APP_URL}/settings",  # even our own origin: a path is expected, not a URL
    f"https:{HOST}",
    f"ftp://{HOST}/x",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    # not starting with exactly one slash
    "",
    "settings/billing",
    f"{HOST}/x",
    ".",
    "?next=/x",
    "#/x",
    "~/x",
    # protocol-relative and backslash tricks
    f"//{HOST}",
    f"//{HOST}/path",
    f"///{HOST}",
    f"////{HOST}",
    f"/\\{HOST}",
    f"\\\\{HOST}",
    f"\\/{HOST}",
    f"/\\/{HOST}",
    f"/settings\\..\\..\\{HOST}",
    # percent-encoded slashes and backslashes (decoded once, twice, three times)
    f"/%2F{HOST}",
    f"/%2f{HOST}",
    f"%2F%2F{HOST}",
    f"/%5C{HOST}",
    f"/%5c{HOST}",
    f"%5C%5C{HOST}",
    f"/%252F{HOST}",
    f"/%255C{HOST}",
    f"/%25252F{HOST}",
    f"/%2525252F{HOST}",  # four layers
    f"/%252525252F{HOST}",  # five layers: more layers than we decode
    f"/%2F%2F{HOST}",
    # encoded schemes
    "%6A%61%76%61%73%63%72%69%70%74:alert(1)",
    f"%2F%2F{HOST}%2F",
    f"%68ttps://{HOST}",
    # tabs, newlines and other control characters, raw and encoded
    f"/\t/{HOST}",
    f"/\n/{HOST}",
    f"/\r/{HOST}",
    "/settings\r\nSet-Cookie: a=b",
    "/settings\x00",
    "/settings\x07",
    "/settings\x1b[31m",
    "/settings\x7f",
    f"\t//{HOST}",
    f" //{HOST}",
    f"/ /{HOST}",
    "/settings%0d%0aSet-Cookie:%20a=b",
    "/settings%00",
    f"/%09/{HOST}",
    f"/%0A/{HOST}",
    "/settings%7F",
    "/settings%250d%250a",
    # Unicode controls, separators and look-alikes, raw and encoded
    "/settings\u0085",
    "/settings\u00a0",
    "/settings\u200b",
    "/settings\u200e",
    "/settings\u202e",
    "/settings\u2028",
    "/settings\u2029",
    "/settings\ufeff",
    "/settings\u3000",
    f"/\uff0f{HOST}",  # fullwidth solidus
    f"/\u2215{HOST}",  # division slash
    "/caf\u00e9",  # raw non-ASCII: must be percent-encoded by the client
    "/settings%C2%85",
    "/settings%E2%80%8B",
    "/settings%E2%80%AE",
    "/settings%E2%80%A8",
    "/settings%EF%BB%BF",
    "/settings%ED%A0%80",  # an encoded lone surrogate
    "/settings%FF",  # not UTF-8
    "/settings%C0%AF",  # overlong encoding of '/'
    # paths that normalise to //host: `.` and `..` segments, raw and encoded, and `//` anywhere
    f"/..//{HOST}",
    f"/.//{HOST}",
    f"/x/../..//{HOST}",
    f"/%2e%2e/%2e%2e//{HOST}",
    f"/%2E%2E/%2E%2E/%2F{HOST}",
    f"/%2e%2e%2f%2e%2e%2f%2f{HOST}",
    f"/.%2e/.%2e//{HOST}",
    f"/%252e%252e/%252e%252e//{HOST}",
    f"/settings//{HOST}",
    f"/settings/%2F{HOST}",
    "/a/b/../c",
    "/a/./b",
    "/a/%2e/b",
    "/.",
    "/..",
    "/settings/..",
    "/settings/.",
    "/%2e",
    "/%2e%2e",
    # `?` and `#` do not smuggle: no `//`, and the path before them is checked on its own
    f"/?//{HOST}",
    f"/settings?next=//{HOST}",
    f"/settings?next=%2F%2F{HOST}",
    f"/settings#//{HOST}",
    f"/settings?next=https://{HOST}",
    "/..?x=1",
    "/%2e%2e#top",
    "/a%3F/%2e%2e/x",  # an encoded `?` does not end the path part
    # decoded separators, format, private-use and unassigned characters
    "/settings%E2%80%87",  # FIGURE SPACE (Zs)
    "/settings%E3%80%80",  # IDEOGRAPHIC SPACE (Zs)
    "/settings%EE%80%80",  # private use (Co)
    "/settings%CD%B8",  # unassigned (Cn)
    "/settings%E2%81%A0",  # WORD JOINER (Cf)
    # very long
    "/" + "a" * 2048,
    "/" + "a" * 5000,
    "/" + "%2e" * 1000,
]

SAFE: list[str] = [
    "/",
    "/settings/billing",
    "/settings/billing?tab=invoices&from=portal",
    "/settings/billing#plans",
    "/settings/billing?tab=plan#top",
    "/a/b-c_d.e/",
    "/a/.well-known/b",
    "/a/..b/c.",
    "/a?x=..&y=.",  # dots in the query or fragment are not path segments
    "/a#/../..",
    "/?/x",
    "/@evil.example",  # a path segment on our host, not a userinfo
    "/settings:billing",
    "/caf%C3%A9",
    "/search?q=a+b%2Fc",
    "/search?q=a%20b",  # an encoded plain space is ordinary
    "/projects/My%20Project",
    "/" + "a" * 2047,  # exactly 2,048 characters
]


@pytest.fixture
async def org_with_customer(client: httpx.AsyncClient, stack: Stack) -> tuple[Api, str]:
    """An owner whose org has a Stripe customer, so a safe path would mint a session."""
    api = Api(client)
    assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"
    customer = await customer_id(stack.settings.database_url, api.org)
    assert customer is not None
    return api, customer


def test_the_corpus_is_what_it_claims() -> None:
    assert len(set(UNSAFE)) == len(UNSAFE)
    assert max(len(p) for p in UNSAFE) > 2048
    assert any(ord(c) < 0x20 for p in UNSAFE for c in p)
    assert len(SAFE[-1]) == 2048


async def test_every_unsafe_return_path_is_refused_before_stripe(
    org_with_customer: tuple[Api, str], stack: Stack
) -> None:
    api, customer = org_with_customer
    before = len(portal_sessions(stack, customer))
    for flow in (None, "PAYMENT_METHOD_UPDATE", "SUBSCRIPTION_CANCEL"):
        accepted = []
        for path in UNSAFE:
            result = await api.open_portal(path, flow=flow)
            if result.get("code") != "INVALID_RETURN_PATH":
                accepted.append((path, result))
        assert accepted == [], accepted
    assert len(portal_sessions(stack, customer)) == before


async def test_unsafe_paths_as_inline_literals(
    org_with_customer: tuple[Api, str], stack: Stack
) -> None:
    """The same refusal when the path is written into the document rather than a variable."""
    api, customer = org_with_customer
    before = len(portal_sessions(stack, customer))
    # GraphQL string literals as written in the document (with GraphQL's own escapes).
    literals = [
        rf'"//{HOST}"',
        rf'"/\\{HOST}"',  # the value /\evil.example
        rf'"/%2F{HOST}"',
        r'"/x\u2028y"',  # an escaped LINE SEPARATOR
        r'"/x\ty"',  # an escaped tab
        r'"javascript:alert(1)"',
        rf'"""//{HOST}"""',  # a block string
    ]
    for literal in literals:
        document = (
            f"mutation {{ openPortal(returnPath: {literal}) "
            "{ __typename ... on BillingError { code } } }"
        )
        body = (await api.raw(document)).json()
        assert body["data"]["openPortal"] == {
            "__typename": "BillingError",
            "code": "INVALID_RETURN_PATH",
        }, (literal, body)
    assert len(portal_sessions(stack, customer)) == before


async def test_safe_paths_reach_stripe_exactly(
    org_with_customer: tuple[Api, str], stack: Stack
) -> None:
    api, customer = org_with_customer
    for path in SAFE:
        result = await api.open_portal(path)
        assert result["__typename"] == "PortalSession", (path, result)
        call = portal_sessions(stack, customer)[-1]
        assert call["params"]["return_url"] == APP_URL + path
    assert len(portal_sessions(stack, customer)) >= len(SAFE)


async def test_flow_return_url_is_the_checked_one(
    org_with_customer: tuple[Api, str], stack: Stack
) -> None:
    """The after-completion redirect of a flow uses the same checked URL."""
    api, customer = org_with_customer
    result = await api.open_portal("/billing/done?x=1", flow="PAYMENT_METHOD_UPDATE")
    assert result["__typename"] == "PortalSession"
    call = portal_sessions(stack, customer)[-1]
    assert call["params"]["return_url"] == f"{APP_URL}/billing/done?x=1"
