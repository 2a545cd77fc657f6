"""LOG_FORMAT: the API and the command line as a deployment runs them, their stderr read back.

`json`: one JSON object per line with time, level, logger, message and request id, and the
org and webhook event ids where known; `text` (the default) stays human-readable; a bad value
is a one-line error."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.kit.logs import (
    JsonLineFormatter,
    RequestIdFilter,
    bind_event_id,
    bind_org_id,
    current_org_id,
    in_log_scope,
    log_scope,
    request_id,
    uvicorn_log_config,
)
from billing.kit.settings import Settings
from emulator.server import EmulatorServer
from harness.api import JWT_SECRET, OPEN_PORTAL, Api, new_org, token
from harness.cli import ROOT, run_cli
from harness.db import fresh_database
from harness.servers import ApiProcess, free_port, settings_env
from harness.signing import WEBHOOK_PATH, WEBHOOK_SECRET, event_body, signed_headers
from harness.stack import Stack, seed
from harness.stripe_side import SUITE_KEY
from harness.timing import eventually
from tests.support.journeys import subscribe
from tests.support.private_stack import link_unknown_customer

ISO_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECRETS = (JWT_SECRET, WEBHOOK_SECRET, SUITE_KEY)


@dataclass
class JsonApi:
    """An API process (private emulator and database) whose stderr goes to a file."""

    settings: Settings
    emulator: EmulatorServer
    process: ApiProcess
    log: Path

    @property
    def url(self) -> str:
        return self.process.url

    def lines(self) -> list[str]:
        """Every non-empty line written to stderr so far."""
        return [line for line in self.log.read_text().splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """Every line, parsed (each is one JSON object)."""
        found = []
        for line in self.lines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            found.append(record)
        return found

    async def logged(self, check: Any, what: str) -> list[dict[str, Any]]:
        """Wait until some records pass `check`; those records."""

        async def matching() -> list[dict[str, Any]]:
            return [r for r in self.records() if check(r)]

        return await eventually(matching, timeout=15, what=what)


def _start(
    stack: Stack, tmp: Path, env: dict[str, str]
) -> tuple[Settings, EmulatorServer, ApiProcess, Path, Any]:
    url, drop = fresh_database(stack.backend, tmp)
    port = free_port()
    hook = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    emulator = EmulatorServer(webhooks=[(hook, WEBHOOK_SECRET)]).start()
    settings = stack.settings_with(stripe_api_base=emulator.url, database_url=url)
    seed(settings)
    log = tmp / "api.stderr"
    process = ApiProcess({**settings_env(settings), **env}, port=port, stderr=log).start()
    return settings, emulator, process, log, drop


@pytest.fixture(scope="module")
def json_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonApi]:
    """The API with LOG_FORMAT=json; its emulator delivers webhooks to it."""
    settings, emulator, process, log, drop = _start(
        stack, tmp_path_factory.mktemp("json-log"), {"LOG_FORMAT": "json"}
    )
    yield JsonApi(settings, emulator, process, log)
    process.stop()
    emulator.stop()
    drop()


@pytest.fixture
async def http(json_api: JsonApi) -> Any:
    async with httpx.AsyncClient(base_url=json_api.url, timeout=30) as client:
        yield client


def fresh_request_id() -> str:
    return f"test-{uuid.uuid4().hex}"


async def out_of_sync_call(http: httpx.AsyncClient, database_url: str) -> tuple[str, str, str]:
    """openPortal for an org linked to an unknown customer, with an X-Request-ID; the org,
    the request id and the bearer token used."""
    org, rid = new_org(), fresh_request_id()
    await link_unknown_customer(database_url, org)
    bearer = token(org)
    response = await http.post(
        "/graphql",
        json={"query": OPEN_PORTAL},
        headers={"authorization": f"Bearer {bearer}", "x-request-id": rid},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == rid
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BILLING_OUT_OF_SYNC", error
    return org, rid, bearer


def assert_shape(record: dict[str, Any]) -> None:
    """The fields every JSON line has, and no others but `extra=` ones."""
    assert set(record) >= {"time", "level", "logger", "message", "request_id"}, record
    assert ISO_UTC_MS.match(record["time"]), record["time"]
    assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
    for optional in ("org_id", "event_id"):
        assert record.get(optional, "absent") is not None, f"{optional}: null, not left out"


# The API with LOG_FORMAT=json ----------------------------------------------------------


async def test_a_graphql_request_logs_its_request_id_and_org(
    json_api: JsonApi, http: httpx.AsyncClient
) -> None:
    org, rid, bearer = await out_of_sync_call(http, json_api.settings.database_url)

    [warning] = await json_api.logged(
        lambda r: r.get("request_id") == rid and r["logger"] == "resolvers.mutations",
        "the out-of-sync warning of the request",
    )
    assert_shape(warning)
    assert warning["level"] == "WARNING"
    assert warning["org_id"] == org
    assert "event_id" not in warning
    assert warning["message"].startswith(f"org {org} is linked to a Stripe customer")
    assert "%s" not in warning["message"]  # formatted, its arguments applied

    # The org stays with its request: no line outside it names the org as its org_id.
    others = [r for r in json_api.records() if r.get("org_id") == org]
    assert all(r.get("request_id") == rid for r in others), others
    text = json_api.log.read_text()
    assert bearer not in text and "Bearer" not in text
    assert not [s for s in SECRETS if s in text]


async def test_a_webhook_delivery_logs_its_event_id(
    json_api: JsonApi, http: httpx.AsyncClient
) -> None:
    body = event_body("ping.unhandled")
    event_id = json.loads(body)["id"]
    first, again = fresh_request_id(), fresh_request_id()
    for rid, duplicate in ((first, False), (again, True)):
        response = await http.post(
            WEBHOOK_PATH, content=body, headers={**signed_headers(body), "x-request-id": rid}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"received": True, "duplicate": duplicate}

    for rid in (first, again):
        [line] = await json_api.logged(
            lambda r, rid=rid: r.get("request_id") == rid and r["logger"] == "uvicorn.access",
            "the delivery's access line",
        )
        assert_shape(line)
        assert line["event_id"] == event_id and "org_id" not in line
        assert "POST /webhooks/stripe" in line["message"]
    # Lines of other deliveries or of no delivery never carry this event's id.
    carrying = [r for r in json_api.records() if event_id in (r.get("event_id") or "")]
    assert {r.get("request_id") for r in carrying} <= {first, again}, carrying


async def test_the_applier_names_the_org_and_the_events_it_applies(
    json_api: JsonApi, http: httpx.AsyncClient
) -> None:
    api = Api(http)
    await subscribe(api)  # Checkout paid on the emulator; its webhooks applied by the API

    applied = await json_api.logged(
        lambda r: r["message"].startswith("applied customer") and r.get("org_id") == api.org,
        "an 'applied customer' line for the org",
    )
    for line in applied:
        assert_shape(line)
        assert line["logger"] == "webhooks.applier" and line["level"] == "INFO"
        ids = line["message"].rsplit(" ", 1)[1]
        assert line["event_id"] == ids and ids.startswith("evt_"), line
        assert f" org={api.org} " in line["message"]
        assert line["request_id"] is None  # the applier works outside any request
    # Nothing the applier logged for another customer carries this org.
    stray = [
        r
        for r in json_api.records()
        if r["logger"] == "webhooks.applier" and r.get("org_id") == api.org
    ]
    assert all(api.org in r["message"] for r in stray), stray


async def test_every_line_is_json_uvicorn_s_included(
    json_api: JsonApi, http: httpx.AsyncClient
) -> None:
    def all_json() -> None:
        for line in json_api.lines():
            assert line.startswith("{"), line
            record = json.loads(line)
            assert isinstance(record, dict), line
            assert_shape(record)

    all_json()
    assert [r for r in json_api.records() if r["logger"] == "uvicorn.error"]  # start-up lines

    rid = fresh_request_id()
    response = await http.get("/healthz", headers={"x-request-id": rid})
    assert response.status_code == 200
    [health] = await json_api.logged(
        lambda r: r["logger"] == "uvicorn.access" and r.get("request_id") == rid,
        "the access line of the health check, with its request id",
    )
    assert "GET /healthz" in health["message"]
    assert "org_id" not in health and "event_id" not in health

    body = event_body("ping.unhandled")
    event_id = json.loads(body)["id"]
    response = await http.post(WEBHOOK_PATH, content=body, headers=signed_headers(body))
    assert response.status_code == 200
    [delivery] = await json_api.logged(
        lambda r: r["logger"] == "uvicorn.access" and r.get("event_id") == event_id,
        "the access line of the webhook delivery, naming its event",
    )
    assert "POST /webhooks/stripe" in delivery["message"]

    org, rid, _ = await out_of_sync_call(http, json_api.settings.database_url)
    [mutation] = await json_api.logged(
        lambda r: r["logger"] == "uvicorn.access" and r.get("request_id") == rid,
        "the access line of the mutation",
    )
    assert mutation["org_id"] == org  # a mutation runs in the request's own task
    all_json()


# Text, the default, and a bad value ------------------------------------------------------


async def test_without_log_format_lines_are_human_readable(
    json_api: JsonApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    env = settings_env(json_api.settings)
    del env["LOG_FORMAT"]
    env["WEBHOOK_APPLIER"] = "worker"  # the JSON API's applier owns the shared database's events
    log = tmp_path / "api.stderr"
    process = ApiProcess(env, stderr=log).start()
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
            org, rid, _ = await out_of_sync_call(http, json_api.settings.database_url)
        expected = re.compile(
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING resolvers\.mutations "
            rf"\[{re.escape(rid)}\] org {re.escape(org)} is linked to a Stripe customer"
        )

        async def lines() -> list[str]:
            return log.read_text().splitlines()

        found = await eventually(
            lines, lambda ls: any(expected.match(line) for line in ls), what="the text line"
        )
    finally:
        process.stop()
    assert not [line for line in found if line.lstrip().startswith("{")], found


def test_a_bad_log_format_is_a_one_line_error(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}"
    result = run_cli("migrate", env={"LOG_FORMAT": "xml", "DATABASE_URL": database})
    assert result.returncode == 1, result
    assert result.stderr.strip() == "error: LOG_FORMAT: Input should be 'text' or 'json'"
    assert not (tmp_path / "billing.db").exists()


def test_commands_log_json_too(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}"
    result = run_cli("migrate", env={"LOG_FORMAT": "json", "DATABASE_URL": database})
    assert result.returncode == 0, result
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line["logger"].startswith("alembic") for line in lines), lines
    for line in lines:
        assert_shape(line)
        assert line["request_id"] is None and "org_id" not in line


# The formatter and the ids, in process ---------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON lines to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger(f"test_logging.{uuid.uuid4().hex[:8]}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_formatter_writes_the_fields_in_order(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    token = request_id.set("req_formatter_test")
    try:
        logger.info("plain %s=%d", "n", 3)
        with log_scope():
            bind_org_id("org_x")
            bind_event_id("evt_1,evt_2")
            try:
                raise ValueError("bad\nthing")
            except ValueError:
                logger.exception("failed for %s", "org_x", extra={"customer": "cus_1"})
        logger.info("after")
    finally:
        request_id.reset(token)
    plain, failed, after = parsed(stream)
    assert list(plain) == ["time", "level", "logger", "message", "request_id"]
    assert plain["message"] == "plain n=3" and plain["request_id"] == "req_formatter_test"
    assert ISO_UTC_MS.match(plain["time"])
    assert list(failed)[:7] == [*list(plain), "org_id", "event_id"]
    assert failed["org_id"] == "org_x" and failed["event_id"] == "evt_1,evt_2"
    assert failed["customer"] == "cus_1" and failed["level"] == "ERROR"
    assert isinstance(failed["exc_info"], str)
    assert failed["exc_info"].startswith("Traceback") and "ValueError: bad" in failed["exc_info"]
    assert "org_id" not in after and "event_id" not in after  # the scope ended
    assert len(stream.getvalue().splitlines()) == 3  # the traceback's newlines are escaped


async def test_ids_stay_with_the_task_that_bound_them(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    async def background() -> None:
        await asyncio.sleep(0.01)
        logger.info("background")  # started while org_a was bound: not org_a's line

    @in_log_scope
    async def work(org: str) -> asyncio.Task[None]:
        bind_org_id(org)
        task = asyncio.create_task(background())
        logger.info("working")
        return task

    started = await work("org_a")
    assert current_org_id() is None  # the decorator's scope ended
    await work("org_b")
    await started
    by_message = {r["message"]: r for r in reversed(parsed(stream))}
    assert by_message["background"].get("org_id") is None
    assert [r.get("org_id") for r in parsed(stream) if r["message"] == "working"] == [
        "org_a",
        "org_b",
    ]


UVICORN_JSON = """
import logging, logging.config
from billing.kit.logs import request_id, uvicorn_log_config
logging.config.dictConfig(uvicorn_log_config("json"))
logging.getLogger("uvicorn.error").info(
    "Started server process [%d]", 1, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
)
token = request_id.set("req_uvicorn_config")
logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/healthz", "1.1", 200)
logging.getLogger("uvicorn.access").debug("not at INFO")
"""


def test_uvicorn_log_config() -> None:
    from uvicorn.config import LOGGING_CONFIG

    assert uvicorn_log_config("text") == LOGGING_CONFIG  # uvicorn's default, unchanged
    result = subprocess.run(
        [sys.executable, "-c", UVICORN_JSON], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    started, access = (json.loads(line) for line in result.stderr.splitlines())
    assert (
        started["logger"] == "uvicorn.error" and started["message"] == "Started server process [1]"
    )
    assert "color_message" not in started and started["request_id"] is None
    assert access["logger"] == "uvicorn.access"
    assert access["message"] == '127.0.0.1:1 - "GET /healthz HTTP/1.1" 200'
    assert access["request_id"] == "req_uvicorn_config"
