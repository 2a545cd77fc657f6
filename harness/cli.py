"""The command line, run as a user would: `python main.py ...` in a subprocess, or the same
command in this process where starting Python is not the point."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typer.testing import Result

ROOT = Path(__file__).resolve().parents[1]
"""The repository: where `main.py` is."""
MAIN = ROOT / "main.py"
_CLEARED = ("STRIPE_", "AUTH_", "DATABASE_")
"""Variables of the calling environment a command never sees: each test says what it sets."""


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python main.py ARGS` with a clean, explicit environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED)}
    return subprocess.run(
        [sys.executable, str(MAIN), *args],
        env={**base, **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def invoke_cli(
    *args: str, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`run_cli` in this process, through Typer's CliRunner: the same command, environment and
    folder, the same exit code, stdout and stderr, without starting Python (a tenth of a
    second instead of one). On a thread of its own, so that its `asyncio.run` never meets the
    caller's event loop; the environment and folder are the process's while it runs."""
    from typer.testing import CliRunner

    from cli import cli

    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith(_CLEARED)}
    outcome: list[Result] = []

    def run() -> None:
        with contextlib.chdir(cwd or ROOT):
            outcome.append(CliRunner().invoke(cli, list(args), env={**cleared, **(env or {})}))

    thread = threading.Thread(target=run, name="invoke-cli")
    thread.start()
    thread.join(timeout=120)
    if not outcome:
        raise TimeoutError(f"`python main.py {' '.join(args)}` did not finish in 120 s")
    [result] = outcome
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess([str(MAIN), *args], result.exit_code, result.stdout, stderr)
