"""A production-like deployment on one database: `python main.py serve --workers N`
processes with JSON logs kept in a file, read back as a person (or a log pipeline) would."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.support.servers import ApiProcess, wait_healthy

APPLIED = re.compile(r"^applied customer (\S+) org=(\S+) events=(\d+) (\S+)$")
"""The applier's message per apply (webhooks.applier._log_applied)."""


class Server(ApiProcess):
    """`python main.py serve --workers N`, its stderr (JSON lines) kept in a file."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1) -> None:
        super().__init__({**env, "LOG_FORMAT": "json"})
        self._cmd += ["--workers", str(workers)]
        self.log = log

    def start(self) -> Server:
        """Start and wait until /healthz answers (every worker has started by then or soon)."""
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self._cmd, cwd=self._cwd, env=self._env, stdout=subprocess.DEVNULL, stderr=sink
            )
        wait_healthy(self.url, self.process, timeout=60)
        return self

    def records(self) -> list[dict[str, Any]]:
        """Every line it logged, parsed (each must be one JSON object)."""
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    def applies(self) -> list[tuple[str, list[str]]]:
        """(customer, event ids) of each apply its processes logged."""
        found = []
        for record in self.records():
            if match := APPLIED.match(record["message"]):
                ids = match.group(4).split(",")
                assert len(ids) == int(match.group(3)), record
                found.append((match.group(1), ids))
        return found


def worker_pids(parent: int) -> list[int]:
    """The server processes `serve --workers N` started (its spawned children, not
    multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return sorted(found)
