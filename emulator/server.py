"""Running the emulator: in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from emulator.app import create_app
from emulator.state import EmulatorState, rate_limit_value


def _fast_options() -> dict[str, Any]:
    """Use httptools/uvloop when installed (uvicorn[standard])."""
    opts: dict[str, Any] = {}
    if importlib.util.find_spec("httptools") is not None:
        opts["http"] = "httptools"
    if importlib.util.find_spec("uvloop") is not None:
        opts["loop"] = "uvloop"
    return opts


class EmulatorServer:
    """Uvicorn serving the emulator from a daemon thread with its own event loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        webhooks: list[tuple[str, str]] | None = None,
        *,
        log_level: str = "warning",
        state: EmulatorState | None = None,
        state_file: Path | None = None,
        rate_limit: float = 0.0,
    ) -> None:
        """Configure; nothing runs until start() (``state_file``: see EmulatorState).

        ``rate_limit``: requests per second to ``/v1`` before Stripe's 429 (0: off, or the
        passed ``state``'s own ``config.rate_limit``).
        """
        if state is not None and state_file is not None:
            raise ValueError("give the state_file to the EmulatorState passed as state")
        self.host = host
        self.state = state or EmulatorState(webhooks=webhooks, state_file=state_file)
        rate = rate_limit_value(rate_limit)  # ValueError when negative
        if rate:
            self.state.config.rate_limit = rate
        self.app = create_app(self.state)
        # IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets of that proto
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
            **_fast_options(),
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        """Thread body."""
        self._server.run(sockets=[self._sock])

    def start(self) -> EmulatorServer:
        """Start serving; returns once connections are accepted."""
        self._thread = threading.Thread(target=self._run, name="stripe-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("emulator server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        loop = self.state.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.state.wake.set)  # release hanging requests
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> EmulatorServer:
        """Start."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 12111,
    webhooks: list[tuple[str, str]] | None = None,
    *,
    log_level: str = "info",
    state_file: Path | None = None,
    rate_limit: float = 0.0,
) -> None:
    """Serve in the foreground until interrupted (``main.py emulator``; see EmulatorServer)."""
    state = EmulatorState(webhooks=webhooks, state_file=state_file)
    state.config.rate_limit = rate_limit_value(rate_limit)
    app = create_app(state)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=1,
        **_fast_options(),
    )
    uvicorn.Server(config).run()
