"""The state file: the emulator's state as JSON, saved atomically and loaded back."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.state import IdempotentEntry, Stores

if TYPE_CHECKING:
    from emulator.state import EmulatorState

VERSION = 1
# Internal maps and sets saved as they are (sets as sorted lists).
MAPS = ("lookup_keys", "secrets", "line_items", "checkout_internal", "portal_state", "sub_internal")
SETS = ("failing_cards", "deleted_customers", "deleted_products")


def dump(state: EmulatorState) -> dict[str, Any]:
    """Everything that survives a restart, as JSON-ready data."""
    return {
        "version": VERSION,
        "clock_offset": state.clock_offset,
        "db": {f.name: getattr(state.db, f.name) for f in fields(Stores)},
        **{name: getattr(state, name) for name in MAPS},
        **{name: sorted(getattr(state, name)) for name in SETS},
        "idempotency": [
            [key, idem, e.method, e.path, e.params, e.status, e.body.decode()]
            for (key, idem), e in state.idempotency.items()
        ],
        "outbox": [[ep, evt, attempt] for (ep, evt), attempt in state.outbox.items()],
    }


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object, or TypeError."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    """A JSON array, or TypeError."""
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def restore(state: EmulatorState, data: Any) -> None:
    """Replace the state's contents with dumped data (KeyError, TypeError, ValueError if bad)."""
    if _dict(data).get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} emulator state")
    db = _dict(data["db"])
    state.db = Stores(**{f.name: _dict(db[f.name]) for f in fields(Stores)})
    for name in MAPS:
        setattr(state, name, _dict(data[name]))
    for name in SETS:
        setattr(state, name, set(_list(data[name])))
    state.clock_offset = float(data["clock_offset"])
    state.idempotency = {
        (key, idem): IdempotentEntry(method, path, _dict(params), int(status), body.encode())
        for key, idem, method, path, params, status, body in _list(data["idempotency"])
    }
    state.outbox = {(ep, evt): int(attempt) for ep, evt, attempt in _list(data["outbox"])}


def load(state: EmulatorState, path: Path) -> None:
    """Load a state file into ``state``; a one-line ValueError when it cannot be used."""
    try:
        restore(state, json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ValueError(
            f"cannot load the Stripe emulator state file {path} ({reason}); "
            "delete it or run `make reset`"
        ) from None


def save(state: EmulatorState, path: Path) -> None:
    """Write the state file atomically: a temp file in the same folder, fsync, os.replace."""
    data = json.dumps(dump(state), separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
