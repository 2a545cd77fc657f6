"""The layer in front of the app that answers `entitlement` from memory
(server/response_cache.py): what it answers must be what the whole stack answers, byte for
byte, to the right org only, with the request id, CORS headers and bounds of the whole way."""

from __future__ import annotations

import asyncio
import gc
import re
from datetime import UTC, datetime

import httpx

from billing.kit.auth import Authenticator
from harness.api import ENTITLEMENT, JWT_SECRET, Api, app_client, new_org, token
from harness.stack import Stack
from harness.timing import eventually
from server.app import BillingApp, create_app
from server.response_cache import ResponseCache
from tests.support.freshness import put_entitlement

ORIGIN = "https://app.example.test"


async def test_a_new_org_s_first_answer_equals_the_whole_stack_s(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    teacher, learner = Api(client), Api(client)
    end = datetime(2031, 5, 17, 12, 30, tzinfo=UTC)
    await put_entitlement(stack.settings.database_url, learner.org, "pro", "active", period_end=end)
    await teacher.raw(ENTITLEMENT)  # the form is known from here on

    first = await learner.raw(ENTITLEMENT)  # a known form, an org never answered: computed
    whole = await learner.raw(ENTITLEMENT + " ")  # another body: the whole stack answers
    kept = await learner.raw(ENTITLEMENT)  # from memory

    assert first.json()["data"]["entitlement"]["plan"] == "pro"
    assert first.content == whole.content == kept.content
    for name in ("content-type", "content-length"):
        assert first.headers[name] == whole.headers[name] == kept.headers[name]


async def test_orgs_read_side_by_side_get_their_own_answers(client: httpx.AsyncClient) -> None:
    users = [Api(client, org) for org in (new_org(), new_org(), new_org()) for _ in range(3)]

    async def read(api: Api) -> str:
        return str((await api.entitlement())["orgId"])

    for _ in range(3):
        answers = await asyncio.gather(*(read(api) for api in users))
        assert answers == [api.org for api in users]


async def test_a_repeated_authorization_header_counts_as_its_first_on_every_path(
    client: httpx.AsyncClient,
) -> None:
    first, second = new_org(), new_org()
    headers = [
        ("authorization", f"Bearer {token(first)}"),
        ("authorization", f"Bearer {token(second)}"),
    ]
    for _ in range(3):
        response = await client.post("/graphql", json={"query": ENTITLEMENT}, headers=headers)
        assert response.json()["data"]["entitlement"]["orgId"] == first


async def test_answers_from_memory_carry_their_own_request_ids(api: Api) -> None:
    await api.entitlement()
    given = "client-chosen-id-0001"
    echoed = await api.raw(ENTITLEMENT, headers={**api.headers(), "x-request-id": given})
    assert echoed.headers["x-request-id"] == given
    made = [(await api.raw(ENTITLEMENT)).headers["x-request-id"] for _ in range(5)]
    assert len(set(made)) == 5
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", rid) for rid in made), made


async def test_cors_headers_from_memory_equal_the_whole_way_s(stack: Stack) -> None:
    settings = stack.settings.model_copy(update={"cors_origins": [ORIGIN]})
    async with app_client(settings) as http:
        api = Api(http)

        async def read(origin: str | None, query: str = ENTITLEMENT) -> httpx.Response:
            extra = {"origin": origin} if origin else {}
            return await api.raw(query, headers={**api.headers(), **extra})

        listed = [await read(ORIGIN) for _ in range(3)]  # whole way, then from memory
        whole = await read(ORIGIN, ENTITLEMENT + " ")
        for response in listed:
            assert _cors(response) == _cors(whole)
        assert _cors(whole)["access-control-allow-origin"] == ORIGIN
        for response in [await read("https://evil.example.test") for _ in range(3)]:
            assert response.status_code == 200 and not _cors(response)


def _cors(response: httpx.Response) -> dict[str, str]:
    """The response's CORS headers."""
    return {
        k: v for k, v in response.headers.items() if k.startswith("access-control-") or k == "vary"
    }


async def test_kept_answers_and_remembered_tokens_are_not_walked_by_the_collector(
    stack: Stack,
) -> None:
    app = create_app(stack.settings)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        await eventually(
            lambda: asyncio.sleep(0, app.state.services.db.change_feed.watching),
            bool,
            timeout=10,
            what="the change feed watching",
        )
        for api in [Api(http) for _ in range(5)]:
            for _ in range(2):
                await api.entitlement()
        assert isinstance(app._front, ResponseCache)
        cache = app._front
        for _ in range(6):  # a collection untracks a tuple whose items it untracked before
            gc.collect()
        kept = [answer for pairs in cache._answers.values() for _, answer in pairs]
        remembered = list(cache.auth._verified.values())
        assert len(kept) == 5 and len(remembered) == 5
        assert not [item for item in [*kept, *remembered] if gc.is_tracked(item)]
        assert not [pairs for pairs in cache._answers.values() if gc.is_tracked(pairs)]


async def test_the_least_recently_used_token_is_forgotten_first(stack: Stack) -> None:
    auth = Authenticator(stack.settings.model_copy(update={"auth_jwks_url": None}), max_tokens=3)
    headers = [f"Bearer {token(new_org(), sub=f'user_{n}')}" for n in range(4)]
    orgs = [(await auth.authenticate(header)).org_id for header in headers[:3]]
    assert auth.remembered(headers[0].encode()) == orgs[0]  # used again: now the most recent
    await auth.authenticate(headers[3])
    assert auth.remembered(headers[1].encode()) is None  # the least recently used went
    assert [auth.remembered(h.encode()) for h in (headers[0], headers[2])] == [orgs[0], orgs[2]]
    forged = f"Bearer {token(new_org(), secret=JWT_SECRET + 'x')}"
    assert auth.remembered(forged.encode()) is None


async def test_a_burst_of_first_reads_gets_every_org_its_own_answer(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    plans = ["free", "pro", "team"]
    readers = [Api(client) for _ in range(24)]
    for n, api in enumerate(readers):
        plan = plans[n % 3]
        await put_entitlement(stack.settings.database_url, api.org, plan, "active")
    await readers[0].entitlement()  # the form is known: the rest are read in batches

    async def read(api: Api) -> tuple[str, str]:
        answer = await api.entitlement()
        return answer["orgId"], answer["plan"]

    for _ in range(2):  # first reads, then from memory
        answers = await asyncio.gather(*(read(api) for api in readers))
        assert answers == [(api.org, plans[n % 3]) for n, api in enumerate(readers)]


async def test_a_padded_body_is_answered_but_never_kept(stack: Stack) -> None:
    padded = ('{"query": "' + ENTITLEMENT.replace("\n", " ") + '"' + " " * 100_000 + "}").encode()
    async with app_client(stack.settings) as http:
        api = Api(http)
        for _ in range(2):
            response = await http.post(
                "/graphql",
                content=padded,
                headers={**api.headers(), "content-type": "application/json"},
            )
            assert response.json()["data"]["entitlement"]["orgId"] == api.org
        cache = _front(http)
        assert not [form for form in cache._known if len(form[0]) > 100_000]


def _front(http: httpx.AsyncClient) -> ResponseCache:
    """The response cache in front of an in-process app."""
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, BillingApp) and isinstance(app._front, ResponseCache)
    return app._front
