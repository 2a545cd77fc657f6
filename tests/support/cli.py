"""The command line, run as a user would: `python main.py ...` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository: where `main.py` is."""
MAIN = ROOT / "main.py"


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python main.py ARGS` with a clean, explicit environment."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "AUTH_", "DATABASE_"))
    }
    return subprocess.run(
        [sys.executable, str(MAIN), *args],
        env={**base, **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
