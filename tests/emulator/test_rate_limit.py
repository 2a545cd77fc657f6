"""The rate-limit mode (Stripe's token bucket and 429) and expanding deleted customers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

import emulator.__main__ as cli
from emulator.client import AsyncEmulatorControl, EmulatorControl
from emulator.server import EmulatorServer
from emulator.state import TokenBucket
from tests.emulator.conftest import make_client
from tests.emulator.helpers import seed

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = (
    "Request rate limit exceeded. Learn more about rate limits here "
    "https://stripe.com/docs/rate-limits."
)


@pytest.fixture(autouse=True)
def limit_off(control: EmulatorControl) -> Iterator[None]:
    """The session's emulator is shared: every test leaves the rate limit off."""
    yield
    control.rate_limit(0)


def burst(client: Any, count: int) -> tuple[int, list[stripe.RateLimitError], float]:
    """``count`` quick SDK calls: how many passed, the 429s, and the seconds it took."""
    passed, limited = 0, []
    start = time.monotonic()
    for _ in range(count):
        try:
            client.v1.customers.list(params={"limit": 1})
            passed += 1
        except stripe.RateLimitError as err:
            limited.append(err)
    return passed, limited, time.monotonic() - start


def test_bucket_refills_continuously_up_to_its_capacity() -> None:
    bucket = TokenBucket(5, updated=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.2) and not bucket.take(0.2)  # 0.2 s at 5/s: one token
    assert sum(bucket.take(100.0) for _ in range(10)) == 5  # never more than the capacity
    slow = TokenBucket(0.5, updated=0.0)
    assert slow.capacity == 1 and slow.take(0.0) and not slow.take(1.0) and slow.take(2.0)


def test_burst_over_the_limit_gets_stripe_429s(client: Any, control: EmulatorControl) -> None:
    control.rate_limit(5)
    passed, limited, elapsed = burst(client, 20)
    assert limited, "a burst of 20 at 5/s must be limited"
    assert 5 <= passed <= 5 + 5 * elapsed + 1
    err = limited[0]
    assert err.http_status == 429 and err.error is not None and err.error.code == "rate_limit"
    assert err.user_message == MESSAGE
    body = err.json_body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["doc_url"] == "https://docs.stripe.com/error-codes/rate-limit"
    assert body["error"]["request_log_url"].endswith(f"/logs/{err.request_id}")
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert err.headers is not None and err.headers["stripe-rate-limited-reason"] == "global-rate"
    time.sleep(0.5)  # 2.5 tokens back
    assert client.v1.customers.list().object == "list"


def test_requests_log_shows_the_429s(client: Any, control: EmulatorControl) -> None:
    control.rate_limit(2)
    passed, limited, _ = burst(client, 8)
    log = control.requests(path="/v1/customers")
    assert len(log) == 8
    assert [r["status"] for r in log].count(200) == passed
    rejected = [r for r in log if r["status"] == 429]
    assert [r["request_id"] for r in rejected] == [e.request_id for e in limited]


def test_a_429_post_changes_nothing_and_is_not_replayed(
    client: Any, control: EmulatorControl
) -> None:
    control.rate_limit(1)  # a bucket of one request, one more a second
    client.v1.customers.list()
    params, options = {"email": "burst@example.com"}, {"idempotency_key": "rl-key-1"}
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.create(params=params, options=options)
    assert control.events("customer.created") == []
    time.sleep(1.05)
    created = client.v1.customers.create(params=params, options=options)
    assert "idempotent-replayed" not in created.last_response.headers
    time.sleep(1.05)
    again = client.v1.customers.create(params=params, options=options)
    assert again.id == created.id and again.last_response.headers["idempotent-replayed"] == "true"
    assert [e["data"]["object"]["id"] for e in control.events("customer.created")] == [created.id]
    statuses = [r["status"] for r in control.requests(method="POST")]
    assert statuses == [429, 200, 200]


def test_zero_turns_the_limit_off(client: Any, control: EmulatorControl) -> None:
    control.rate_limit(2)
    assert burst(client, 6)[1]
    control.rate_limit(0)
    passed, limited, _ = burst(client, 30)
    assert passed == 30 and not limited
    assert control.configure()["rate_limit"] == 0


def test_config_takes_floats_and_refuses_bad_values(control: EmulatorControl) -> None:
    assert control.configure(rate_limit=2.5)["rate_limit"] == 2.5
    assert control.configure(rate_limit=25)["rate_limit"] == 25.0
    for bad in (-1, -0.5, "fast", None, True, "inf", "nan", [1]):
        resp = control.http.post("/config", json={"rate_limit": bad})
        assert resp.status_code == 400, bad
        assert "rate_limit must be a number >= 0" in resp.json()["error"]["message"]
    mixed = control.http.post("/config", json={"max_attempts": 7, "rate_limit": -3})
    assert mixed.status_code == 400
    assert control.configure()["max_attempts"] == 4  # a refused request changes nothing
    assert control.configure()["rate_limit"] == 25.0


async def test_async_helper(server: EmulatorServer) -> None:
    async with AsyncEmulatorControl(server.url) as ctl:
        await ctl.rate_limit(3.5)
        assert (await ctl.configure())["rate_limit"] == 3.5
        await ctl.rate_limit(0)
        assert (await ctl.configure())["rate_limit"] == 0


def test_server_rate_limit_at_start() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        EmulatorServer(rate_limit=-1)
    with EmulatorServer(rate_limit=3) as srv:
        assert srv.state.config.rate_limit == 3
        passed, limited, _ = burst(make_client(srv.url), 10)
        assert passed >= 3 and limited


def test_cli_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "serve", lambda *args, **kw: seen.update(kw))
    cli.main(["--rate-limit", "25"])
    assert seen["rate_limit"] == 25.0
    cli.main([])
    assert seen["rate_limit"] == 0.0
    refused = subprocess.run(
        [sys.executable, "-m", "emulator", "--rate-limit", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert refused.returncode == 2 and "rate_limit must be a number >= 0" in refused.stderr


def test_expanding_a_deleted_customer(client: Any) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "gone@example.com"})
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog["month"].id}]}
    )
    live = client.v1.subscriptions.list(
        params={"customer": customer.id, "expand": ["data.customer"]}
    )
    assert live.data[0].customer.email == "gone@example.com"
    client.v1.customers.delete(customer.id)
    listed = client.v1.subscriptions.list(
        params={"customer": customer.id, "status": "all", "expand": ["data.customer"]}
    )
    assert [s.id for s in listed.data] == [sub.id]
    expanded = listed.data[0].customer
    assert expanded.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    one = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["customer"]})
    assert one.customer.deleted is True and one.customer.id == customer.id
