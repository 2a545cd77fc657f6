"""Fixtures: one emulator server per session, the real Stripe SDK, a webhook receiver.

Every SDK response is checked against Stripe's OpenAPI spec (tests/support/stripe_spec.py);
a 2xx answer also means the request itself must be valid for the spec.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from tests.support import stripe_spec

API_KEY = "sk_test_emulator_suite"
WEBHOOK_SECRET = "whsec_emulator_suite_secret"
SPEC_PROBLEMS: list[str] = []


def _check_exchange(method: str, url: str, post_data: Any, status: int, content: bytes) -> None:
    """Validate one SDK exchange against the spec, recording problems."""
    parts = urlsplit(url)
    path = parts.path
    try:
        stripe_spec.match_path(path)
        stripe_spec.schema_for_response(method, path, status)
    except KeyError:
        return  # endpoints the spec subset lacks (expire, line_items) are checked by tests
    try:
        body = json.loads(content)
    except ValueError:
        SPEC_PROBLEMS.append(f"{method} {path}: response is not JSON")
        return
    for problem in stripe_spec.validate_response(method, path, status, body):
        SPEC_PROBLEMS.append(f"{method} {path} -> {status}: {problem}")
    if 200 <= status < 300:
        raw = post_data if method.upper() == "POST" else parts.query
        if isinstance(raw, bytes):
            raw = raw.decode()
        params = stripe_spec.decode_form(parse_qsl(raw or "", keep_blank_values=True))
        for problem in stripe_spec.validate_request(method, path, params):
            SPEC_PROBLEMS.append(f"{method} {path} request accepted but invalid: {problem}")


class CheckingHTTPXClient(stripe.HTTPXClient):
    """Stripe's httpx client that validates every response against the spec."""

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:  # type: ignore[override]
        """Sync request + check."""
        content, status, resp_headers = super().request(method, url, headers, post_data)
        _check_exchange(method, url, post_data, status, content)
        return content, status, resp_headers

    async def request_async(
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> Any:
        """Async request + check."""
        content, status, resp_headers = await super().request_async(method, url, headers, post_data)
        _check_exchange(method, url, post_data, status, content)
        return content, status, resp_headers


def make_client(url: str, retries: int = 0, timeout: float = 30, key: str = API_KEY) -> Any:
    """A StripeClient for the emulator at url."""
    return stripe.StripeClient(
        key,
        base_addresses={"api": url, "files": url, "connect": url, "meter_events": url},
        http_client=CheckingHTTPXClient(timeout=timeout, allow_sync_methods=True),
        max_network_retries=retries,
    )


@dataclass
class Received:
    """One webhook request as the receiver saw it."""

    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        """The parsed JSON body."""
        result: dict[str, Any] = json.loads(self.body)
        return result


@dataclass
class Receiver:
    """A tiny webhook receiver on a free port; answers with queued statuses, then 200."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    statuses: queue.Queue[int] = field(default_factory=queue.Queue)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The endpoint URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def clear(self) -> None:
        """Forget received requests and queued statuses."""
        with self.lock:
            self.received.clear()
        while not self.statuses.empty():
            self.statuses.get_nowait()

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Received events (optionally of one type), in arrival order."""
        with self.lock:
            items = [r.event for r in self.received]
        return [e for e in items if type_ is None or e["type"] == type_]

    def verified(self, secret: str = WEBHOOK_SECRET) -> list[Any]:
        """Every received request verified with the SDK's construct_event."""
        with self.lock:
            items = list(self.received)
        return [
            stripe.Webhook.construct_event(r.body.decode(), r.headers["stripe-signature"], secret)
            for r in items
        ]


def _handler(receiver_box: dict[str, Receiver]) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to a receiver."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = receiver_box["r"]
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            if len(body) < length:  # a delivery cut short (e.g. by a reset): not received
                return
            try:
                status = receiver.statuses.get_nowait()
            except queue.Empty:
                status = 200
            with receiver.lock:
                receiver.received.append(
                    Received(body, {k.lower(): v for k, v in self.headers.items()})
                )
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """The session's webhook receiver."""
    box: dict[str, Receiver] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    box["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box["r"]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def server(receiver: Receiver) -> Iterator[EmulatorServer]:
    """One emulator for the session, with the receiver pre-registered."""
    with EmulatorServer(webhooks=[(receiver.url, WEBHOOK_SECRET)]) as srv:
        yield srv


@pytest.fixture(scope="session")
def control(server: EmulatorServer) -> Iterator[EmulatorControl]:
    """The emulator's test controls."""
    with EmulatorControl(server.url) as ctl:
        yield ctl


@pytest.fixture(autouse=True)
def fresh(control: EmulatorControl, receiver: Receiver) -> Iterator[None]:
    """Each test starts from an empty emulator and fails on any spec problem."""
    with contextlib.suppress(TimeoutError):
        control.wait_idle(timeout=2)  # let the previous test's deliveries land
    control.reset()
    control.configure(
        auto_deliver=True, retry_base_seconds=0.05, retry_max_seconds=60, max_attempts=4
    )
    receiver.clear()
    SPEC_PROBLEMS.clear()
    yield
    control.clear_faults()
    problems = list(SPEC_PROBLEMS)
    SPEC_PROBLEMS.clear()
    assert not problems, "spec problems:\n" + "\n".join(problems[:30])


@pytest.fixture(scope="session")
def client(server: EmulatorServer) -> Any:
    """A sync StripeClient without retries."""
    return make_client(server.url)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """A plain HTTP client for the hosted pages."""
    with httpx.Client(timeout=30) as http:
        yield http


def spec_errors(kind: str, obj: Any) -> list[str]:
    """Problems of an object (StripeObject or dict) against its schema."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    plain = json.loads(json.dumps(data, default=str))  # the SDK turns decimals into Decimal
    return stripe_spec.validate_object(kind, plain)
