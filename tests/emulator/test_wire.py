"""Wire format: auth, errors, unknown parameters, idempotency, request ids, faults, logs."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from tests.emulator.conftest import API_KEY, make_client
from tests.support import stripe_spec


def _raw(server: EmulatorServer, key: str | None = API_KEY) -> httpx.Client:
    """A raw HTTP client with (or without) the API key."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers)


def test_missing_and_bad_api_key(server: EmulatorServer) -> None:
    with _raw(server, None) as http:
        resp = http.get("/v1/customers")
    assert resp.status_code == 401
    body = resp.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert not stripe_spec.validate_response("GET", "/v1/customers", 401, body)
    bad = make_client(server.url, key="pk_test_nope")
    with pytest.raises(stripe.AuthenticationError) as info:
        bad.v1.customers.list()
    assert info.value.http_status == 401


def test_basic_auth(server: EmulatorServer) -> None:
    """``curl -u sk_test_...:`` works; other schemes and keys are 401."""
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v1/customers", auth=(API_KEY, "")).status_code == 200
        assert http.get("/v1/customers", auth=("pk_test_nope", "")).status_code == 401
        for header in ("Basic !!!", f"Token {API_KEY}", API_KEY):
            resp = http.get("/v1/customers", headers={"Authorization": header})
            assert resp.status_code == 401, header
            assert resp.json()["error"]["type"] == "invalid_request_error"


def test_unknown_parameters(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.create(params={"emali": "typo@example.com"})
    assert info.value.code == "parameter_unknown"
    assert info.value.param == "emali"
    assert "Received unknown parameter: emali" in str(info.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as nested:
        client.v1.customers.create(params={"address": {"city": "Paris", "planet": "Earth"}})
    assert nested.value.param == "address[planet]"
    with pytest.raises(stripe.InvalidRequestError) as query:
        client.v1.customers.list(params={"emial": "x"})
    assert query.value.param == "emial"


def test_resource_missing(client: Any) -> None:
    for call, kind in [
        (lambda: client.v1.customers.retrieve("cus_nope"), "customer"),
        (lambda: client.v1.prices.retrieve("price_nope"), "price"),
        (lambda: client.v1.products.retrieve("prod_nope"), "product"),
        (lambda: client.v1.subscriptions.retrieve("sub_nope"), "subscription"),
        (lambda: client.v1.checkout.sessions.retrieve("cs_test_nope"), "checkout.session"),
        (lambda: client.v1.events.retrieve("evt_nope"), "event"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as info:
            call()
        assert info.value.http_status == 404
        assert info.value.code == "resource_missing"
        assert f"No such {kind}: '" in str(info.value.user_message)


def test_unrecognized_url(server: EmulatorServer) -> None:
    with _raw(server) as http:
        resp = http.get("/v1/nothing_here")
    assert resp.status_code == 404
    assert "Unrecognized request URL" in resp.json()["error"]["message"]


def _unrecognized(method: str, path: str) -> str:
    """Stripe's message for a URL it does not serve."""
    return (
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we "
        "can help at https://support.stripe.com/."
    )


def test_search_urls_are_unrecognized(client: Any, server: EmulatorServer) -> None:
    client.v1.customers.create(params={"email": "s@example.com"})
    query = {"query": "email:'s@example.com'"}
    for resource in ("customers", "subscriptions", "prices", "products", "invoices"):
        with pytest.raises(stripe.InvalidRequestError) as info:
            getattr(client.v1, resource).search(params=query)
        assert info.value.http_status == 404, resource
        assert info.value.error is not None and info.value.error.type == "invalid_request_error"
        assert info.value.code is None and info.value.param is None
        assert str(info.value.user_message) == _unrecognized("GET", f"/v1/{resource}/search")
    with _raw(server) as http:
        body = http.get("/v1/checkout/sessions/search", params=query).json()["error"]
    assert body["message"] == _unrecognized("GET", "/v1/checkout/sessions/search")


def test_request_id_header_and_log(server: EmulatorServer, control: EmulatorControl) -> None:
    with _raw(server) as http:
        resp = http.post(
            "/v1/customers",
            data={"email": "a@example.com", "metadata[org_id]": "org_9", "expand[]": "test_clock"},
        )
    assert resp.headers["request-id"].startswith("req_")
    logged = control.requests(path="/v1/customers", method="POST")
    assert logged[-1]["params"] == {
        "email": "a@example.com",
        "metadata": {"org_id": "org_9"},
        "expand": ["test_clock"],
    }
    assert logged[-1]["status"] == 200


def test_idempotent_replay(server: EmulatorServer, control: EmulatorControl) -> None:
    with _raw(server) as http:
        headers = {"Idempotency-Key": "key-1"}
        first = http.post("/v1/customers", data={"email": "a@example.com"}, headers=headers)
        second = http.post("/v1/customers", data={"email": "a@example.com"}, headers=headers)
        assert first.json()["id"] == second.json()["id"]
        assert second.headers["idempotent-replayed"] == "true"
        other = http.post("/v1/customers", data={"email": "b@example.com"}, headers=headers)
        assert other.status_code == 400
        error = other.json()["error"]
        assert error["type"] == "idempotency_error" and "code" not in error
        assert error["message"] == (
            "Keys for idempotent requests can only be used with the same parameters they were "
            "first used with. Try using a key other than 'key-1' if you meant to execute a "
            "different request."
        )
        listed = http.get("/v1/customers").json()
    assert len(listed["data"]) == 1
    # Another API key is another scope.
    with _raw(server, "sk_test_other") as http:
        third = http.post(
            "/v1/customers", data={"email": "a@example.com"}, headers={"Idempotency-Key": "key-1"}
        )
    assert third.json()["id"] != first.json()["id"]


def test_idempotency_skips_requests_that_failed_validation(server: EmulatorServer) -> None:
    """Stripe saves a result only once the endpoint started executing."""
    with _raw(server) as http:
        headers = {"Idempotency-Key": "key-2"}
        bad = http.post("/v1/customers", data={"tax_exempt": "maybe"}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "tax_exempt"
        unknown = http.post("/v1/customers", data={"emial": "x"}, headers=headers)
        assert unknown.json()["error"]["code"] == "parameter_unknown"
        fixed = http.post("/v1/customers", data={"tax_exempt": "none"}, headers=headers)
        assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers
        again = http.post("/v1/customers", data={"tax_exempt": "none"}, headers=headers)
        assert again.json()["id"] == fixed.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        # An error raised while executing (here: no such customer) is saved and replayed.
        headers = {"Idempotency-Key": "key-3"}
        missing = http.post("/v1/customers/cus_nope", data={"name": "N"}, headers=headers)
        replayed = http.post("/v1/customers/cus_nope", data={"name": "N"}, headers=headers)
        assert missing.status_code == replayed.status_code == 404
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json() == missing.json()


def test_idempotency_with_sdk(client: Any) -> None:
    opts = {"idempotency_key": "sdk-key"}
    a = client.v1.customers.create(params={"email": "s@example.com"}, options=opts)
    b = client.v1.customers.create(params={"email": "s@example.com"}, options=opts)
    assert a.id == b.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"email": "t@example.com"}, options=opts)


async def test_concurrent_same_key_creates_one(server: EmulatorServer) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/customers",
                    data={"email": "c@example.com"},
                    headers={"Idempotency-Key": "race"},
                )
                for _ in range(20)
            )
        )
        ids = {r.json()["id"] for r in responses}
        listed = (await http.get("/v1/customers", params={"limit": 100})).json()
    assert len(ids) == 1 and len(listed["data"]) == 1


def test_fault_status_and_sdk_retry(server: EmulatorServer, control: EmulatorControl) -> None:
    plain = make_client(server.url)
    control.fail("/v1/customers", status=500, count=1, method="POST")
    with pytest.raises(stripe.APIError) as info:
        plain.v1.customers.create(params={"email": "f@example.com"})
    assert info.value.http_status == 500
    # The SDK retries 500s with one idempotency key: the retry creates the customer once.
    retrying = make_client(server.url, retries=2)
    control.fail("/v1/customers", status=500, count=1, method="POST")
    created = retrying.v1.customers.create(params={"email": "f@example.com"})
    posts = control.requests(path="/v1/customers", method="POST")
    assert [p["status"] for p in posts[-2:]] == [500, 200]
    assert posts[-1]["idempotency_key"] == posts[-2]["idempotency_key"] is not None
    assert created.email == "f@example.com"


def test_fault_rate_limit(client: Any, control: EmulatorControl) -> None:
    control.fail("/v1/customers", status=429, count=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as info:
            client.v1.customers.list()
        assert info.value.http_status == 429
    client.v1.customers.list()


def test_fault_glob_and_method(client: Any, control: EmulatorControl) -> None:
    cus = client.v1.customers.create(params={"email": "g@example.com"})
    control.fail("/v1/customers/*", status=503, count=1, method="GET")
    client.v1.customers.update(cus.id, params={"name": "G"})  # POST is not affected
    with pytest.raises(stripe.APIError):
        client.v1.customers.retrieve(cus.id)
    assert client.v1.customers.retrieve(cus.id).name == "G"


def test_fault_hang_times_out(server: EmulatorServer, control: EmulatorControl) -> None:
    impatient = make_client(server.url, timeout=0.3)
    control.fail("/v1/customers", mode="hang", hang_seconds=5, count=1)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.customers.list()
    assert time.monotonic() - started < 3
    control.clear_faults()  # releases the hanging request
    impatient.v1.customers.list()


def test_fault_hang_then_answers(client: Any, control: EmulatorControl) -> None:
    control.fail("/v1/customers", mode="hang", hang_seconds=0.3, count=1)
    started = time.monotonic()
    assert client.v1.customers.list().data == []
    assert time.monotonic() - started >= 0.25


def test_fault_connection_reset(server: EmulatorServer, control: EmulatorControl) -> None:
    plain = make_client(server.url)
    control.fail("/v1/customers", mode="reset", count=1)
    with pytest.raises(stripe.APIConnectionError):
        plain.v1.customers.list()
    assert plain.v1.customers.list().data == []
    retrying = make_client(server.url, retries=1)
    control.fail("/v1/customers", mode="reset", count=1)
    assert retrying.v1.customers.list().data == []


def test_custom_fault_body(server: EmulatorServer, control: EmulatorControl) -> None:
    body = {"error": {"type": "card_error", "code": "card_declined", "message": "Nope"}}
    control.fail("/v1/customers", status=402, body=body)
    with _raw(server) as http:
        resp = http.get("/v1/customers")
    assert resp.status_code == 402 and resp.json() == body


async def test_async_sdk(server: EmulatorServer) -> None:
    client = make_client(server.url)
    created = await client.v1.customers.create_async(params={"email": "async@example.com"})
    fetched = await client.v1.customers.retrieve_async(created.id)
    assert fetched.email == "async@example.com"
    listed = await client.v1.customers.list_async(params={"email": "async@example.com"})
    assert [c.id for c in listed.data] == [created.id]


def _free_port() -> int:
    """A TCP port nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_serving(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll until the process answers HTTP at url."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[1].decode()
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.1)


def test_main_py_emulator_command() -> None:
    """`python main.py emulator --port P` serves the API."""
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "main.py", "emulator", "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_serving(base + "/", proc)
        resp = httpx.get(base + "/v1/customers", headers={"Authorization": "Bearer sk_test_cli"})
        assert resp.status_code == 200 and resp.json()["object"] == "list"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode is not None
