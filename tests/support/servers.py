"""Run an ASGI app on a real port in a background thread, for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

KEEP_ALIVE = 30
"""Idle seconds before a test server closes a connection: well above httpx's 5 s pool expiry.

With uvicorn's default (also 5 s) a pooled connection can be reused just as the server closes
it, and the request dies with a connection reset (seen once in CI on a busy PostgreSQL run).
"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """uvicorn in a daemon thread with its own event loop."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=KEEP_ALIVE,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ThreadedServer:
        """Start and wait until it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask it to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def kill(self) -> None:
        """Stop at once, dropping in-flight requests (a crash, as far as clients can tell)."""
        self._server.force_exit = True
        self._server.should_exit = True
        self._thread.join(timeout=15)


class ApiProcess:
    """`python main.py serve` in a child process: a real server we can SIGKILL."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        import os
        import sys
        from pathlib import Path

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._cmd = [
            sys.executable,
            "main.py",
            "serve",
            "--port",
            str(self.port),
            "--timeout-keep-alive",
            str(KEEP_ALIVE),
        ]
        self._env = {**os.environ, **env}
        self._cwd = Path(__file__).resolve().parents[2]
        self.process: Any = None

    def start(self) -> ApiProcess:
        """Start and wait for /healthz."""
        import subprocess

        import httpx

        self.process = subprocess.Popen(
            self._cmd,
            cwd=self._cwd,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("API process did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate politely."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def settings_env(settings: Any) -> dict[str, str]:
    """Environment variables that reproduce a Settings object in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(
                v.get_secret_value() if hasattr(v, "get_secret_value") else str(v) for v in value
            )
        elif hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    return env
