"""Debian's Chromium under Playwright (which cannot download its own browsers here)."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest

SCREENSHOTS_ENV = "SCREENSHOTS_DIR"
"""Where the browser tests leave their step-by-step screenshots (a temporary folder unless set)."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing(reason: str) -> NoReturn:
    """Skip for lack of a tool; under CI (which installs it) fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must install it")
    pytest.skip(reason)


def browser_tools() -> tuple[ModuleType, str]:
    """Playwright's async API and Chromium's path, or skip (fail under CI) without them."""
    try:
        playwright = importlib.import_module("playwright.async_api")
    except ImportError:
        missing("playwright is not installed (.venv/bin/pip install playwright)")
    chromium = shutil.which("chromium")
    if chromium is None:
        missing("chromium is not installed (apt-get install -y chromium)")
    return playwright, str(chromium)
