"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): the media type the
`Accept` header negotiates, and the status codes each type answers with; then graphql-http's
own server audit against the running API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from harness.api import ENTITLEMENT, UPGRADE, Api, new_org, token
from harness.stack import Stack
from harness.stripe_side import stripe_calls
from server.endpoint import request_error_status
from server.masking import INTERNAL_SERVER_ERROR
from server.media import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, response_media_type
from tests.support import graphql_http

GRAPHQL_RESPONSE = "application/graphql-response+json; charset=utf-8"
"""The Content-Type of an answer in the GraphQL response media type."""
PLANS = "{ plans { slug } }"
SYNTAX_ERROR = "{ plans { slug }"
INVALID = "{ plans { nope } }"
COERCION = "query Plans($n: Int!) { plans { slug } }"
"""A document whose variable `n` is required (send it null: coercion fails)."""


async def _post(
    client: httpx.AsyncClient, accept: str | None, payload: Any, **headers: str
) -> httpx.Response:
    """POST a JSON body to /graphql with this Accept header (None: no Accept at all)."""
    request = client.build_request("POST", "/graphql", json=payload, headers=headers)
    if accept is None:
        del request.headers["accept"]  # httpx sends `*/*` unless told otherwise
    else:
        request.headers["accept"] = accept
    return await client.send(request)


def _refused(response: httpx.Response, status: int, message: str) -> None:
    """A GraphQL request error in the GraphQL response type: the status, no `data`."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    body = response.json()
    assert "data" not in body, body
    assert message in " | ".join(error["message"] for error in body["errors"]), body


def _legacy_refusal(response: httpx.Response, message: str) -> None:
    """A GraphQL request error as application/json has always answered it: 200, data null."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == APPLICATION_JSON
    body = response.json()
    assert body["data"] is None, body
    assert message in " | ".join(error["message"] for error in body["errors"]), body


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("application/json", APPLICATION_JSON),
        ("application/json; charset=utf-8", APPLICATION_JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("Application/GraphQL-Response+JSON", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (
            "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8",
            GRAPHQL_RESPONSE_JSON,
        ),
        ("application/json, application/graphql-response+json", APPLICATION_JSON),
        ("application/json;q=0.5, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=0.5, */*", APPLICATION_JSON),
        ("*/*, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("*/*, application/json;q=0", GRAPHQL_RESPONSE_JSON),
        ("text/html, */*;q=0.1", APPLICATION_JSON),
        (  # urql's
            "application/graphql-response+json, application/graphql+json, application/json, "
            "text/event-stream, multipart/mixed",
            GRAPHQL_RESPONSE_JSON,
        ),
        ("text/html", None),
        ("application/xml, text/plain", None),
        ("application/json;q=0", None),
        ("application/json; charset=iso-8859-1", None),
    ],
)
def test_the_media_type_follows_the_accept_header(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected


async def test_a_good_query_is_answered_in_the_graphql_response_type(
    client: httpx.AsyncClient,
) -> None:
    response = await _post(client, GRAPHQL_RESPONSE_JSON, {"query": PLANS})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert "free" in [plan["slug"] for plan in response.json()["data"]["plans"]]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"query": SYNTAX_ERROR}, "Syntax Error"),
        ({"query": INVALID}, "Cannot query field 'nope'"),
        ({"query": COERCION, "variables": {"n": None}}, "Variable '$n'"),
        ({"query": "subscription { entitlementChanged { plan } }"}, "WebSocket"),
    ],
    ids=["syntax error", "validation error", "variable coercion", "subscription over HTTP"],
)
async def test_request_errors_are_400_without_data_in_the_graphql_response_type(
    client: httpx.AsyncClient, payload: dict[str, Any], message: str
) -> None:
    _refused(await _post(client, GRAPHQL_RESPONSE_JSON, payload), 400, message)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"query": SYNTAX_ERROR}, "Syntax Error"),
        ({"query": INVALID}, "Cannot query field 'nope'"),
        ({"query": COERCION, "variables": {"n": None}}, "Variable '$n'"),
    ],
    ids=["syntax error", "validation error", "variable coercion"],
)
@pytest.mark.parametrize("accept", [APPLICATION_JSON, "*/*", None], ids=["json", "any", "none"])
async def test_request_errors_stay_200_with_data_null_for_json_clients(
    client: httpx.AsyncClient, accept: str | None, payload: dict[str, Any], message: str
) -> None:
    _legacy_refusal(await _post(client, accept, payload), message)


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE_JSON, APPLICATION_JSON])
async def test_execution_errors_come_with_data_and_200_in_both_types(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await _post(client, accept, {"query": ENTITLEMENT})  # no token
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(accept)
    body = response.json()
    assert "data" in body and body["data"] is None, body
    [error] = body["errors"]
    assert error["path"] == ["entitlement"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_malformed_requests_are_graphql_errors_in_the_graphql_response_type(
    client: httpx.AsyncClient,
) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"qeury": PLANS}, 400, "No GraphQL query found"),
        ({"query": 42}, 400, "must be a string"),
        ({"query": PLANS, "variables": [7]}, 400, "must be an object"),
        ({"query": "query A { plans { slug } }", "operationName": "B"}, 400, 'named "B"'),
        ([{"query": PLANS}], 400, "batched requests are not accepted"),
    ]
    for payload, status, message in cases:
        _refused(await _post(client, GRAPHQL_RESPONSE_JSON, payload), status, message)


async def test_malformed_requests_keep_their_old_answers_for_json_clients(
    client: httpx.AsyncClient,
) -> None:
    missing = await _post(client, APPLICATION_JSON, {"qeury": PLANS})
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("text/plain")
    assert missing.text == "No GraphQL query found in the request"
    batch = await _post(client, APPLICATION_JSON, [{"query": PLANS}])
    assert batch.status_code == 400
    assert batch.headers["content-type"] == APPLICATION_JSON
    body = batch.json()
    assert body["error"] == "batched requests are not accepted"
    assert body["requestId"] == batch.headers["x-request-id"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b'{ "not a JSON', "application/json", 400, "not valid JSON"),
        (json.dumps({"query": PLANS}).encode(), "text/plain", 415, "only application/json"),
    ],
    ids=["bad JSON", "not JSON"],
)
async def test_the_guards_refusals_follow_the_media_type(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int, message: str
) -> None:
    headers = {"content-type": content_type}
    graphql = await client.post(
        "/graphql", content=content, headers={**headers, "accept": GRAPHQL_RESPONSE_JSON}
    )
    _refused(graphql, status, message)
    [error] = graphql.json()["errors"]
    assert error["extensions"] == {"requestId": graphql.headers["x-request-id"]}
    legacy = await client.post("/graphql", content=content, headers=headers)
    assert legacy.status_code == status
    assert legacy.headers["content-type"] == APPLICATION_JSON
    body = legacy.json()
    assert set(body) == {"error", "requestId"} and message in body["error"], body


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0"])
async def test_an_accept_nobody_can_satisfy_is_406_before_anything_runs(
    client: httpx.AsyncClient, stack: Stack, accept: str
) -> None:
    org = new_org()
    auth = {"authorization": f"Bearer {token(org)}"}
    payload = {"query": UPGRADE, "variables": {"plan": "pro"}}
    response = await _post(client, accept, payload, **auth)
    assert response.status_code == 406, (response.status_code, response.text)
    assert GRAPHQL_RESPONSE_JSON in response.text and APPLICATION_JSON in response.text
    assert stripe_calls(stack, "/v1/customers", mentions=org) == []
    # The same request with an Accept it can satisfy does run.
    response = await _post(client, APPLICATION_JSON, payload, **auth)
    assert response.json()["data"]["upgrade"]["__typename"] == "CheckoutSession"
    assert len(stripe_calls(stack, "/v1/customers", mentions=org)) == 1


async def test_graphiql_is_still_served_to_browsers(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_a_kept_answer_is_served_in_the_type_each_request_negotiates(api: Api) -> None:
    for accept in [APPLICATION_JSON, GRAPHQL_RESPONSE_JSON] * 2 + [None, GRAPHQL_RESPONSE_JSON]:
        for query in (ENTITLEMENT, PLANS):
            response = await _post(api.client, accept, {"query": query}, **api.headers())
            assert response.status_code == 200, response.text
            wanted = GRAPHQL_RESPONSE if accept == GRAPHQL_RESPONSE_JSON else APPLICATION_JSON
            assert response.headers["content-type"] == wanted, (accept, query)
            assert "errors" not in response.json()


def test_a_request_error_that_is_the_servers_fault_is_a_500() -> None:
    masked = GraphQLError("Internal server error", extensions={"code": INTERNAL_SERVER_ERROR})
    assert request_error_status(PreExecutionError(data=None, errors=[masked])) == 500
    assert request_error_status(PreExecutionError(data=None, errors=[GraphQLError("no")])) == 400
    field_error = GraphQLError("no", path=["entitlement"])
    assert request_error_status(ExecutionResult(data=None, errors=[field_error])) is None
    assert request_error_status(ExecutionResult(data={"plans": []}, errors=None)) is None


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)  # once: it is about HTTP only
def test_graphql_http_audit_finds_nothing_to_fix(stack: Stack) -> None:
    results = graphql_http.audit(f"{stack.api.url}/graphql")
    print(graphql_http.summary(results))
    assert len(results) >= 61, graphql_http.summary(results)
    assert not graphql_http.failures(results), (
        f"{graphql_http.summary(results)}\n{graphql_http.failures(results)}"
    )
