"""graphql-http's server audit (the GraphQL-over-HTTP reference suite) with the machine's
Node.js: `tests/graphql_http/audit.mjs`, its packages installed from the committed lockfile
the first time (and whenever the lockfile changes), one installer at a time."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from devstack.example import node_version

AUDIT_DIR = Path(__file__).resolve().parent.parent / "graphql_http"
"""package.json, package-lock.json and audit.mjs; node_modules once installed."""
NODE_MIN = (18, 0)
"""graphql-http's audit calls the global `fetch`."""
FAILING = ("warn", "error")
"""Audit statuses that fail the test (`notice` is a MAY the server need not do)."""


def node_tools() -> tuple[str, str]:
    """node's and npm's paths; skip without them, or fail when CI is set."""
    node, npm = shutil.which("node"), shutil.which("npm")
    problem = "Node.js and npm are not installed" if node is None or npm is None else None
    if node is not None and problem is None:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
        version = node_version(out.stdout)
        if version is None or version < NODE_MIN:
            problem = f"node {out.stdout.strip()} is older than {NODE_MIN[0]}"
    if problem is not None:
        reason = f"graphql-http's audit needs Node.js {NODE_MIN[0]}+ and npm: {problem}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install them")
        pytest.skip(reason)
    assert node is not None and npm is not None
    return node, npm


def _packages(lockfile: Path) -> dict[str, Any] | None:
    """The `packages` of an npm lockfile, without the root project's entry."""
    if not lockfile.is_file():
        return None
    packages: dict[str, Any] = json.loads(lockfile.read_text())["packages"]
    packages.pop("", None)
    return packages


def up_to_date(folder: Path = AUDIT_DIR) -> bool:
    """True when npm's record of node_modules matches package-lock.json's packages."""
    installed = _packages(folder / "node_modules" / ".package-lock.json")
    return installed is not None and installed == _packages(folder / "package-lock.json")


def install(npm: str, folder: Path = AUDIT_DIR) -> None:
    """`npm ci` unless node_modules is up to date, under a lock shared by concurrent runs."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"graphql-http-audit-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if up_to_date(folder):
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        assert done.returncode == 0, f"npm ci in {folder} failed:\n{tail}"


def audit(url: str) -> list[dict[str, Any]]:
    """graphql-http's `auditServer` against `url`: {id, name, status, reason, httpStatus}s."""
    node, npm = node_tools()
    install(npm)
    done = subprocess.run(
        [node, "audit.mjs", url],
        cwd=AUDIT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"audit.mjs failed (exit {done.returncode}):\n{done.stderr}"
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def summary(results: list[dict[str, Any]]) -> str:
    """One line: how many audits passed, and the notices, warnings and errors."""
    count = {status: sum(r["status"] == status for r in results) for status in ("ok", "notice")}
    failing = {status: sum(r["status"] == status for r in results) for status in FAILING}
    return (
        f"graphql-http audit: {count['ok']} of {len(results)} pass, {count['notice']} notices, "
        f"{failing['warn']} warnings, {failing['error']} errors"
    )


def failures(results: list[dict[str, Any]]) -> str:
    """The warnings and errors, one a line: id, status, name, reason and HTTP status."""
    return "\n".join(
        f"{r['id']} {r['status']}: {r['name']}: {r['reason']} (HTTP {r['httpStatus']})"
        for r in results
        if r["status"] in FAILING
    )
