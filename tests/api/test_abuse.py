"""Abuse probes: every hostile request is refused and runs no resolver.

Each probe carries an `upgrade` mutation for a fresh org. Had any resolver run, the service
would have created that org's Stripe customer; the emulator's request log shows it did not.
The same mutation sent properly afterwards does create the customer, which shows the check
would have seen it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from harness.api import UPGRADE, new_org, token
from harness.signing import WEBHOOK_PATH, event_body, post_signed, signed_headers
from harness.stack import Stack
from harness.stripe_side import stripe_calls

MIB = 1024 * 1024
MUTATION = 'mutation { upgrade(plan: "pro") { __typename ... on CheckoutSession { id url } } }'
PAYLOAD = {"query": UPGRADE, "variables": {"plan": "pro", "interval": "MONTH"}}

Probe = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


def _graphql(query: str) -> Probe:
    async def probe(http: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
        return await http.post("/graphql", json={"query": query}, headers=auth)

    return probe


def _deep_mutation() -> str:
    inner = "e"
    for name in ("d", "c", "b", "a", "id"):
        inner = f"{name} {{ {inner} }}"
    return f'mutation {{ upgrade(plan: "pro") {{ ... on CheckoutSession {{ {inner} }} }} }}'


def _aliased_mutations(count: int) -> str:
    fields = " ".join(f'u{i}: upgrade(plan: "pro") {{ __typename }}' for i in range(count))
    return f"mutation {{ {fields} }}"


def _huge_mutation() -> str:
    padding = " ".join("__typename" for _ in range(1200))
    return f'mutation {{ upgrade(plan: "pro") {{ {padding} }} }}'


def _fragment_mutations() -> str:
    return (
        "mutation { ...Both } fragment Both on Mutation { "
        'a: upgrade(plan: "pro") { __typename } b: openPortal { __typename } }'
    )


# GraphQL-level refusals: 200 with errors and no data, like any invalid document.
GRAPHQL_PROBES: dict[str, tuple[Probe, str]] = {
    "deep selection": (_graphql(_deep_mutation()), "exceeds maximum operation depth"),
    "alias flood": (_graphql(_aliased_mutations(6)), "aliases found"),
    "two mutations through aliases": (_graphql(_aliased_mutations(2)), "only one field"),
    "two mutations through a fragment": (_graphql(_fragment_mutations()), "only one field"),
    "huge document": (_graphql(_huge_mutation()), "more than 1000 tokens"),
    "fragment cycle": (
        _graphql(
            'mutation { ...A } fragment A on Mutation { ...B upgrade(plan: "pro") '
            "{ __typename } } fragment B on Mutation { ...A }"
        ),
        "Cannot spread fragment",
    ),
}


async def _post(http: httpx.AsyncClient, auth: dict[str, str], **kwargs: Any) -> httpx.Response:
    return await http.post("/graphql", headers={**auth, **kwargs.pop("headers", {})}, **kwargs)


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    head = json.dumps(PAYLOAD)[:-1].encode() + b', "padding": "'
    yield head
    sent = len(head)
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}'


def _padded(extra: int) -> bytes:
    return json.dumps({**PAYLOAD, "padding": "a" * extra}).encode()


HTTP_PROBES: dict[str, tuple[Probe, int]] = {
    "batched JSON array": (lambda h, a: _post(h, a, json=[PAYLOAD, PAYLOAD]), 400),
    "batch of one": (lambda h, a: _post(h, a, json=[PAYLOAD]), 400),
    "GET mutation": (
        lambda h, a: h.get(
            "/graphql",
            params={"query": UPGRADE, "variables": json.dumps(PAYLOAD["variables"])},
            headers=a,
        ),
        400,
    ),
    "GET mutation asking for JSON": (
        lambda h, a: h.get(
            "/graphql",
            params={"query": MUTATION},
            headers={**a, "accept": "application/json"},
        ),
        400,
    ),
    "text/plain POST": (
        lambda h, a: _post(
            h, a, content=json.dumps(PAYLOAD), headers={"content-type": "text/plain"}
        ),
        415,
    ),
    "form-urlencoded POST": (
        lambda h, a: _post(h, a, data={"query": MUTATION}),
        415,
    ),
    "multipart POST": (
        lambda h, a: _post(
            h,
            a,
            data={"operations": json.dumps(PAYLOAD), "map": "{}"},
            files={"0": ("a.txt", b"x", "text/plain")},
        ),
        415,
    ),
    "application/graphql POST": (
        lambda h, a: _post(h, a, content=MUTATION, headers={"content-type": "application/graphql"}),
        415,
    ),
    "POST without content type": (lambda h, a: _post(h, a, content=json.dumps(PAYLOAD)), 415),
    "body over 1 MiB": (
        lambda h, a: _post(
            h, a, content=_padded(MIB), headers={"content-type": "application/json"}
        ),
        413,
    ),
    "body over 1 MiB, chunked without content-length": (
        lambda h, a: _post(
            h, a, content=_chunks(MIB + 4096), headers={"content-type": "application/json"}
        ),
        413,
    ),
    "PUT": (lambda h, a: h.put("/graphql", json=PAYLOAD, headers=a), 405),
}


@asynccontextmanager
async def _probed(
    http: httpx.AsyncClient, stack: Stack, probe: Probe
) -> AsyncIterator[httpx.Response]:
    """The probe's response for a fresh org, for the caller to check; then: no resolver ran
    for that org, and the same mutation sent properly does reach Stripe (so that check can
    fail)."""
    org = new_org()
    auth = {"authorization": f"Bearer {token(org)}"}
    yield await probe(http, auth)
    assert stripe_calls(stack, "/v1/customers", mentions=org) == []
    response = await http.post("/graphql", json=PAYLOAD, headers=auth)
    assert response.json()["data"]["upgrade"]["__typename"] == "CheckoutSession"
    assert len(stripe_calls(stack, "/v1/customers", mentions=org)) == 1


@pytest.mark.parametrize("name", list(GRAPHQL_PROBES))
async def test_graphql_level_abuse_is_refused(
    client: httpx.AsyncClient, stack: Stack, name: str
) -> None:
    probe, expected = GRAPHQL_PROBES[name]
    async with _probed(client, stack, probe) as response:
        assert response.status_code in (200, 400), response.text
        body = response.json()
        assert body.get("data") is None, body
        messages = " | ".join(e["message"] for e in body["errors"])
        assert expected in messages, messages


@pytest.mark.parametrize("name", list(HTTP_PROBES))
async def test_http_level_abuse_is_refused(
    client: httpx.AsyncClient, stack: Stack, name: str
) -> None:
    probe, status = HTTP_PROBES[name]
    async with _probed(client, stack, probe) as response:
        assert response.status_code == status, (response.status_code, response.text[:500])
        assert "CheckoutSession" not in response.text
        assert "Traceback" not in response.text


async def test_get_queries_are_refused(client: httpx.AsyncClient) -> None:
    org = new_org()
    response = await client.get(
        "/graphql",
        params={"query": "{ entitlement { orgId } }"},
        headers={"authorization": f"Bearer {token(org)}", "accept": "application/json"},
    )
    assert response.status_code == 400
    assert org not in response.text and '"data"' not in response.text


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("not JSON", b"{not json"),
        ("a JSON string", b'"{ plans { slug } }"'),
        ("a JSON number", b"42"),
        ("JSON null", b"null"),
        ("empty body", b""),
        (
            "nested 100,000 deep",
            b'{"query": "{ plans { slug } }", "variables": {"x": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}}",
        ),
        ("invalid UTF-8", b'{"query": "\xff\xfe"}'),
    ],
)
async def test_malformed_json_bodies_are_client_errors(
    client: httpx.AsyncClient, name: str, content: bytes
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, (name, response.status_code, response.text[:300])
    assert "Traceback" not in response.text


async def test_oversized_webhook_is_refused_before_reading(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    body = event_body("customer.created", {"id": "cus_big", "object": "customer", "pad": "a" * MIB})
    response = await post_signed(client, body)
    assert response.status_code == 413

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.post(WEBHOOK_PATH, content=chunked(), headers=signed_headers(body))
    assert response.status_code == 413
    # A normal-size event on the same endpoint is still accepted.
    small = event_body()
    response = await post_signed(client, small)
    assert response.status_code == 200


async def test_body_exactly_at_the_limit_is_accepted(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    base = len(_padded(0))
    body = _padded(stack.settings.max_body_bytes - base)
    assert len(body) == stack.settings.max_body_bytes
    org = new_org()
    response = await client.post(
        "/graphql",
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {token(org)}"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["upgrade"]["__typename"] == "CheckoutSession"


async def test_circular_introspection_is_refused_but_graphiql_introspection_works(
    client: httpx.AsyncClient,
) -> None:
    nested = "name"
    for _ in range(6):
        nested = f"fields {{ type {{ {nested} }} }}"
    response = await client.post(
        "/graphql", json={"query": f"{{ __schema {{ types {{ {nested} }} }} }}"}
    )
    body = response.json()
    assert body.get("data") is None
    assert "Maximum introspection depth exceeded" in body["errors"][0]["message"]

    full = await client.post("/graphql", json={"query": get_introspection_query()})
    assert "errors" not in full.json()
    assert full.json()["data"]["__schema"]["mutationType"]["name"] == "Mutation"
