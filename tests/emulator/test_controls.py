"""Test controls, the in-process app, the CLI entry point and the server object."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.app import create_app
from emulator.client import AsyncEmulatorControl, EmulatorControl
from emulator.server import EmulatorServer
from emulator.state import EmulatorState
from tests.emulator.conftest import API_KEY, Receiver

ROOT = Path(__file__).resolve().parents[2]


def test_reset_keeps_preregistered_endpoints(
    client: Any, control: EmulatorControl, receiver: Receiver
) -> None:
    client.v1.customers.create(params={"email": "a@example.com"})
    client.v1.webhook_endpoints.create(params={"url": "https://x.test", "enabled_events": ["*"]})
    control.reset()
    assert client.v1.customers.list().data == []
    assert [e.url for e in client.v1.webhook_endpoints.list().data] == [receiver.url]
    assert [r["path"] for r in control.requests()] == ["/v1/customers", "/v1/webhook_endpoints"]


def test_clock(control: EmulatorControl) -> None:
    before = control.now()
    assert abs(before - time.time()) < 5
    after = control.advance(3600)
    assert after - before >= 3600 and control.now() >= after
    resp = control.http.post("/clock/advance", json={"seconds": -5})
    assert resp.status_code == 400


def test_request_log_filters(client: Any, control: EmulatorControl) -> None:
    cus = client.v1.customers.create(params={"email": "l@example.com"})
    client.v1.customers.retrieve(cus.id)
    client.v1.customers.update(cus.id, params={"metadata": {"k": "v"}})
    posts = control.requests(method="POST")
    assert [p["path"] for p in posts] == ["/v1/customers", f"/v1/customers/{cus.id}"]
    assert posts[1]["params"] == {"metadata": {"k": "v"}}
    assert len(control.requests(path=f"/v1/customers/{cus.id}")) == 2
    control.clear_requests()
    assert control.requests() == []


def test_config_roundtrip(control: EmulatorControl) -> None:
    cfg = control.configure(retry_base_seconds=0.01, max_attempts=3)
    assert cfg["retry_base_seconds"] == 0.01 and cfg["max_attempts"] == 3
    assert control.http.post("/config", json={"nope": 1}).status_code == 400
    assert control.http.post("/faults", json={"path": "/x", "mode": "boom"}).status_code == 400


def test_card_control_unknown_customer(control: EmulatorControl) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        control.set_card("cus_nope", fails=True)


async def test_async_control(server: EmulatorServer) -> None:
    async with AsyncEmulatorControl(server.url) as ctl:
        now = await ctl.now()
        assert await ctl.advance(10) >= now + 10
        await ctl.fail("/v1/customers", status=500)
        await ctl.clear_faults()
        assert await ctl.requests() == []
        assert await ctl.deliveries() == []


async def test_in_process_app() -> None:
    state = EmulatorState()
    app = create_app(state)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emu.test") as http:
        resp = await http.post(
            "/v1/customers",
            data={"email": "in@example.com"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert resp.status_code == 200
    assert next(iter(state.db.customers.values()))["email"] == "in@example.com"


def test_server_start_stop_and_webhooks() -> None:
    with EmulatorServer(webhooks=[("http://127.0.0.1:9/h", "whsec_k")]) as srv:
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        eps = httpx.get(
            f"{srv.url}/v1/webhook_endpoints", headers={"Authorization": f"Bearer {API_KEY}"}
        ).json()
        assert [e["url"] for e in eps["data"]] == ["http://127.0.0.1:9/h"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{srv.url}/")


def test_cli_serves() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--webhook-url",
            "http://127.0.0.1:9/h",
            "--webhook-secret",
            "whsec_cli",
        ],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/_emulator/clock")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "CLI emulator did not start"
                time.sleep(0.05)
        assert resp.status_code == 200
        eps = httpx.get(
            f"http://127.0.0.1:{port}/v1/webhook_endpoints",
            headers={"Authorization": f"Bearer {API_KEY}"},
        ).json()
        assert eps["data"][0]["url"] == "http://127.0.0.1:9/h"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


COMMANDS = {
    "python -m emulator": (["-m", "emulator", "--log-level", "warning"], 2),
    "python main.py emulator": (["main.py", "emulator"], 1),
}
"""Both ways to run the emulator from a shell, and their exit code on a bad state file."""


def _cli(command: str, port: int, state_file: Path) -> subprocess.Popen[bytes]:
    """The emulator's command line with a state file."""
    args = [*COMMANDS[command][0], "--port", str(port), "--state-file", str(state_file)]
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stderr=subprocess.PIPE)


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_state_file(command: str, tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = _cli(command, port, state_file)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                resp = httpx.post(
                    f"http://127.0.0.1:{port}/v1/customers",
                    data={"email": "cli@example.com"},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "CLI emulator did not start"
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert resp.json()["id"] in state_file.read_text()  # saved, at the latest on shutdown
    state_file.write_text("garbage")
    broken = _cli(command, port, state_file)
    _, err = broken.communicate(timeout=30)
    lines = err.decode().strip().splitlines()
    assert broken.returncode == COMMANDS[command][1] and len(lines) == 1, err
    assert str(state_file) in lines[0] and "make reset" in lines[0]
