"""Production turns off introspection, GraphiQL and schema hints; unexpected errors are masked
with a request id; CORS answers only the configured origins."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query
from pydantic import ValidationError

from billing.kit.logs import RequestIdFilter
from billing.kit.settings import Settings
from harness.api import ENTITLEMENT, UPGRADE, app_client, error_codes, token
from harness.signing import event_body, post_signed
from harness.stack import suite_settings

ALLOWED = "https://app.example.test"


def offline(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on a migrated-or-not SQLite file of this test; Stripe is never reached."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "stripe_api_base": "http://127.0.0.1:9",
    }
    values.update(overrides)
    return suite_settings(**values)


# Production versus development ---------------------------------------------------------

INTROSPECTIONS = [
    "{ __schema { queryType { name } } }",
    '{ __type(name: "Mutation") { fields { name } } }',
    get_introspection_query(),
]


@pytest.mark.parametrize("query", INTROSPECTIONS, ids=["schema", "type", "graphiql"])
async def test_production_refuses_introspection(tmp_path: Path, query: str) -> None:
    async with app_client(offline(tmp_path, environment="production")) as http:
        body = (await http.post("/graphql", json={"query": query})).json()
    assert body.get("data") is None
    assert "introspection" in body["errors"][0]["message"].lower()


@pytest.mark.parametrize("query", INTROSPECTIONS, ids=["schema", "type", "graphiql"])
async def test_development_allows_introspection(tmp_path: Path, query: str) -> None:
    async with app_client(offline(tmp_path)) as http:
        body = (await http.post("/graphql", json={"query": query})).json()
    assert "errors" not in body and body["data"]


async def test_production_still_answers_typename_and_plans(tmp_path: Path) -> None:
    async with app_client(offline(tmp_path, environment="production")) as http:
        body = (await http.post("/graphql", json={"query": "{ __typename plans { slug } }"})).json()
    assert body["data"]["__typename"] == "Query"
    assert [p["slug"] for p in body["data"]["plans"]] == ["free", "pro", "team", "business"]


@pytest.mark.parametrize("environment", ["development", "production"])
async def test_graphiql_and_docs_only_in_development(tmp_path: Path, environment: str) -> None:
    async with app_client(offline(tmp_path, environment=environment)) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        docs = await http.get("/docs")
        openapi = await http.get("/openapi.json")
    if environment == "development":
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert docs.status_code == 200 and openapi.status_code == 200
    else:
        assert page.status_code in (400, 404, 405), page.status_code
        assert "graphiql" not in page.text.lower()
        assert docs.status_code == 404 and openapi.status_code == 404


@pytest.mark.parametrize("environment", ["development", "production"])
async def test_field_suggestions_do_not_leak_the_schema_in_production(
    tmp_path: Path, environment: str
) -> None:
    probes = [
        "{ entitlemen { orgId } }",
        "{ entitlement { orgI } }",
        'mutation { upgrad(plan: "pro") { __typename } }',
        'mutation { upgrade(plan: "pro", interval: MONTHH) { __typename } }',
    ]
    async with app_client(offline(tmp_path, environment=environment)) as http:
        messages: list[str] = []
        for query in probes:
            body = (await http.post("/graphql", json={"query": query})).json()
            assert body.get("data") is None
            messages.extend(e["message"] for e in body["errors"])
        # Variables go through coercion, not validation: their hints are hidden too.
        body = (
            await http.post(
                "/graphql",
                json={"query": UPGRADE, "variables": {"plan": "pro", "interval": "MONTHH"}},
            )
        ).json()
        messages.extend(e["message"] for e in body["errors"])
    hinted = [m for m in messages if "Did you mean" in m]
    if environment == "development":
        assert len(hinted) >= 4, messages
    else:
        assert hinted == [], hinted
        assert all(m for m in messages)


# Masked unexpected errors --------------------------------------------------------------


class _Records(logging.Handler):
    """Collects records with the request id the service's filter attaches."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[_Records]:
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def broken_databases(tmp_path: Path) -> dict[str, str]:
    return {
        # The deploy forgot `migrate`: the file exists, the tables do not.
        "schema missing": f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.sqlite'}",
        # The volume holding the database is gone.
        "volume gone": f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'db.sqlite'}",
        # The database server is down (nothing listens on port 1).
        "server down": "postgresql+asyncpg://billing:secret-pw@127.0.0.1:1/billing",
    }


LEAKS = (
    "sqlite",
    "asyncpg",
    "no such table",
    "unable to open",
    "Traceback",
    'File "',
    "secret-pw",
    "127.0.0.1",
    "OperationalError",
    "Connect",
    "Errno",
)


@pytest.mark.parametrize("broken", ["schema missing", "volume gone", "server down"])
async def test_unexpected_errors_are_masked_with_a_request_id(
    tmp_path: Path, error_log: _Records, broken: str
) -> None:
    settings = offline(tmp_path, database_url=broken_databases(tmp_path)[broken])
    org = "org_masked"
    auth = {"authorization": f"Bearer {token(org)}"}
    async with app_client(settings) as http:
        for payload in (
            {"query": ENTITLEMENT},
            {"query": UPGRADE, "variables": {"plan": "pro"}},
        ):
            error_log.records.clear()
            response = await http.post("/graphql", json=payload, headers=auth)
            assert response.status_code == 200
            body = response.json()
            assert body["data"] is None
            [error] = body["errors"]
            rid = response.headers["x-request-id"]
            assert error["message"] == f"Internal server error (request id {rid})"
            assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": rid}
            for leak in LEAKS:
                assert leak not in response.text, leak
            # The logs keep what the client does not see, under the same request id.
            logged = [r for r in error_log.records if r.exc_info]
            assert logged, "the unexpected error was not logged"
            assert {getattr(r, "request_id", None) for r in logged} == {rid}

        # A client-chosen, well-formed request id is kept for correlation.
        response = await http.post(
            "/graphql",
            json={"query": ENTITLEMENT},
            headers={**auth, "x-request-id": "client-trace-0001"},
        )
        assert response.json()["errors"][0]["extensions"]["requestId"] == "client-trace-0001"

        # Outside GraphQL too: the webhook answers a masked 500 (Stripe will retry) ...
        event = event_body("customer.updated", {"id": "cus_x", "object": "customer"})
        response = await post_signed(http, event)
        assert response.status_code == 500
        assert response.json()["requestId"] == response.headers["x-request-id"]
        for leak in LEAKS:
            assert leak not in response.text, leak
        # ... and readiness says what is wrong without details (an unmigrated database too).
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "database unavailable"}


async def test_unauthenticated_is_not_masked(tmp_path: Path) -> None:
    """Expected errors keep their code and message: masking is for the unexpected only."""
    async with app_client(offline(tmp_path)) as http:
        body = (await http.post("/graphql", json={"query": ENTITLEMENT})).json()
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"].startswith("Not authenticated")


# CORS ------------------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://app.example.test",  # another scheme
        "https://app.example.test:8443",  # another port
        "https://app.example.test.evil.example",  # a suffix trick
        "https://evilapp.example.test",
    ],
)
async def test_cors_refuses_other_origins(tmp_path: Path, origin: str) -> None:
    async with app_client(offline(tmp_path, cors_origins=[ALLOWED])) as http:
        pre = await http.options("/graphql", headers=preflight(origin))
        actual = await http.post(
            "/graphql", json={"query": "{ plans { slug } }"}, headers={"origin": origin}
        )
    for response in (pre, actual):
        cors = [h for h in response.headers if h.lower().startswith("access-control-")]
        assert cors == [], cors
    assert pre.status_code != 200


async def test_cors_allows_the_configured_origin_with_credentials(tmp_path: Path) -> None:
    async with app_client(
        offline(tmp_path, cors_origins=[ALLOWED, "http://localhost:3000"])
    ) as http:
        pre = await http.options("/graphql", headers=preflight(ALLOWED))
        actual = await http.post(
            "/graphql", json={"query": "{ plans { slug } }"}, headers={"origin": ALLOWED}
        )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ALLOWED
    assert pre.headers["access-control-allow-credentials"] == "true"
    allowed_headers = pre.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert actual.headers["access-control-allow-origin"] == ALLOWED
    assert actual.headers["access-control-allow-credentials"] == "true"
    assert "origin" in actual.headers.get("vary", "").lower()


async def test_no_cors_headers_without_configuration(tmp_path: Path) -> None:
    async with app_client(offline(tmp_path)) as http:
        pre = await http.options("/graphql", headers=preflight(ALLOWED))
        actual = await http.post(
            "/graphql", json={"query": "{ plans { slug } }"}, headers={"origin": ALLOWED}
        )
    for response in (pre, actual):
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.example.test",
        "https://app.example.test/path",
        "app.example.test",
        "https://app.example.test?x=1",
        "https://user@app.example.test",
        f"{ALLOWED},*",
    ],
)
def test_cors_origins_must_be_explicit(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings(_env_file=None)


def test_cors_origins_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", " https://App.Example.test/ , http://localhost:3000")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://app.example.test", "http://localhost:3000"]


async def test_graphql_post_from_a_browser_form_is_refused(tmp_path: Path) -> None:
    """A cross-site form (no preflight) can only send form, multipart or text bodies."""
    async with app_client(offline(tmp_path, cors_origins=[ALLOWED])) as http:
        for content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
        ):
            response = await http.post(
                "/graphql",
                content='{"query": "mutation { upgrade(plan: \\"pro\\") { __typename } }"}',
                headers={"content-type": content_type, "origin": "https://evil.example"},
            )
            assert response.status_code == 415
            assert "access-control-allow-origin" not in response.headers
