"""Servers on real ports, for tests and benchmarks: an ASGI app in a background thread, the
API in a child process, and waiting until a server answers its health check."""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import psutil
import uvicorn

from harness.cli import ROOT
from harness.timing import eventually, eventually_sync

KEEP_ALIVE = 30
"""Idle seconds before a test server closes a connection: well above httpx's 5 s pool expiry.

With uvicorn's default (also 5 s) a pooled connection can be reused just as the server closes
it, and the request dies with a connection reset (seen once in CI on a busy PostgreSQL run).
"""


PORTS = range(20000, 32768)
"""Where `free_port` picks: below Linux's ephemeral range (32768-60999), so no outgoing
connection takes the port as its source between the pick and the server's bind (a port the OS
hands out for `bind(0)` is in that range, and a busy suite opens thousands of connections)."""
_SLICES = 16


def _candidates() -> Iterator[int]:
    """This process's ports, in turn: a slice of PORTS per xdist worker (none shared), from a
    random start, round and round."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = len(PORTS) // _SLICES
    first = PORTS.start + (worker % _SLICES) * size
    start = random.randrange(size)
    return (first + (start + i) % size for i in itertools.count())


_PORTS = _candidates()


def free_port() -> int:
    """A TCP port nobody listens on right now, never one this process picked lately."""
    for port in itertools.islice(_PORTS, len(PORTS) // _SLICES):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this process's slice of {PORTS}")


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

        def started() -> bool:
            if self._server.started:
                return True
            if not self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            return False

        eventually_sync(started, timeout=15, interval=0.01, what=f"the server on {self.url}")
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
    """`python main.py serve` in a child process: a real server we can SIGKILL.

    Its stderr (the log) is discarded, or appended to the file `stderr` names."""

    STARTUP_TIMEOUT = 30.0
    """Seconds it may take until /healthz answers."""

    def __init__(
        self, env: dict[str, str], port: int | None = None, stderr: Path | None = None
    ) -> None:
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
        self._cwd = ROOT
        self._stderr = stderr
        self.process: Any = None

    def start(self) -> Self:
        """Start and wait for /healthz."""
        log = self._stderr.open("ab") if self._stderr is not None else None
        try:
            self.process = subprocess.Popen(
                self._cmd,
                cwd=self._cwd,
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=log if log is not None else subprocess.DEVNULL,
            )
        finally:
            if log is not None:
                log.close()  # the child has its own copy
        wait_healthy(self.url, self.process, timeout=self.STARTUP_TIMEOUT)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate politely."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class LoggedApi(ApiProcess):
    """`python main.py serve` with its log (stderr) kept in a file, to read what it did."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        super().__init__(env, port=port, stderr=log)
        self.log = log

    def lines(self) -> list[str]:
        """What it logged so far."""
        return self.log.read_text().splitlines()


APPLIED = re.compile(r"applied customer (\S+) org=(\S+) events=(\d+) (\S+)$")
"""The applier's line per apply (webhooks.applier._log_applied)."""


def applies(lines: list[str]) -> Applies:
    """(customer, event ids) of each apply in these log lines (or messages)."""
    found = []
    for line in lines:
        if match := APPLIED.search(line):
            ids = match.group(4).split(",")
            assert len(ids) == int(match.group(3)), line
            found.append((match.group(1), ids))
    return found


Applies = list[tuple[str, list[str]]]
"""(customer, event ids) of each apply one process logged."""


async def logged_applies(*sources: Callable[[], Applies], events: int) -> list[Applies]:
    """Each source's applies, once together they name at least `events` events: an apply
    logs just after its commit, so a settled database can be a line ahead of the logs."""

    async def now() -> list[Applies]:
        return [source() for source in sources]

    def enough(found: list[Applies]) -> bool:
        return sum(len(ids) for applied in found for _, ids in applied) >= events

    return await eventually(now, enough, what=f"the applies of {events} events logged")


def wait_healthy(url: str, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Wait until `GET url/healthz` answers 200 from a socket `process` (or one of its
    children) listens on; fail at once, with what the process wrote to its stderr (when
    piped), if it exits first.

    A 200 alone is not enough: a port picked free can be taken by another test worker's server
    while this one starts, and then that server would answer (seen once in CI)."""
    port = httpx.URL(url).port

    def health() -> int | str:
        seen: int | str
        try:
            seen = httpx.get(f"{url}/healthz", timeout=1).status_code
        except httpx.HTTPError as exc:
            seen = f"{type(exc).__name__}: {exc}"
        if seen == 200 and not listens(process.pid, port):
            seen = f"200 from a server not started here, on port {port}"
        if seen != 200 and process.poll() is not None:
            stderr = process.communicate()[1]
            raise AssertionError(
                f"the server process exited with {process.returncode} before {url}/healthz"
                f" answered 200; stderr: {stderr!r}"
            )
        return seen

    eventually_sync(
        health, lambda seen: seen == 200, timeout=timeout, interval=0.1, what=f"{url}/healthz"
    )


def listens(pid: int, port: int | None) -> bool:
    """Whether the process `pid`, or one of its descendants, listens on TCP `port`."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    for member in family:
        try:
            sockets = member.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
            return True
    return False


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
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        elif hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    return env
