"""A production-like deployment on one database: `python main.py serve --workers N`
processes with JSON logs kept in a file, read back as a person (or a log pipeline) would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.servers import LoggedApi, applies


class Server(LoggedApi):
    """`python main.py serve --workers N`, its stderr (JSON lines) kept in a file."""

    STARTUP_TIMEOUT = 60.0  # N processes importing the app at once on a busy machine

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1) -> None:
        super().__init__({**env, "LOG_FORMAT": "json"}, log)
        self._cmd += ["--workers", str(workers)]

    def records(self) -> list[dict[str, Any]]:
        """Every line it logged, parsed (each must be one JSON object)."""
        return [json.loads(line) for line in self.lines() if line.strip()]

    def applies(self) -> list[tuple[str, list[str]]]:
        """(customer, event ids) of each apply its processes logged."""
        return applies([record["message"] for record in self.records()])


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
