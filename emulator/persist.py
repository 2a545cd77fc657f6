"""The state file on disk: read back with a one-line error, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def load(path: Path, restore: Callable[[Any], None]) -> None:
    """Parse a state file and hand it to ``restore``; a one-line ValueError when unusable."""
    try:
        restore(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ValueError(
            f"cannot load the Stripe emulator state file {path} ({reason}); "
            "delete it or run `make reset`"
        ) from None


def save(path: Path, data: Any) -> None:
    """Write JSON atomically: a temp file in the same folder, fsync, os.replace."""
    content = json.dumps(data, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
