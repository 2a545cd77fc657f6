"""Fixtures: the `make run` stack with the example client built, and Debian's Chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from devstack.example import ROOT, missing_tools
from tests.support.browser import CHROMIUM_ARGS, browser_tools, missing
from tests.support.dev import Dev
from tests.support.example import Shots
from tests.support.servers import free_port


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """`python main.py dev` with the example: API, emulator and the page at APP_URL."""
    problem = missing_tools()
    if problem is not None:
        missing(f"the example client needs Node.js 20.19+ and npm ({problem})")
    dev = Dev(
        tmp_path_factory.mktemp("make-run"),
        app_url=f"http://localhost:{free_port()}",
        plans=ROOT / "plans.toml",
        example=True,
    )
    printed = dev.start(timeout=600)  # a clean clone runs `npm ci` and the build first
    assert f"Example app on {dev.app_url}/settings/billing" in printed, printed
    yield dev
    dev.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless."""
    _, chromium = browser_tools()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


SHOTS = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def shots_root(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Where the screenshots go (SCREENSHOTS_DIR, else a temporary folder), printed at the end."""
    given = os.environ.get("SCREENSHOTS_DIR")
    root = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    request.config.stash[SHOTS] = root
    return root


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Name the screenshots' folder in the run's summary."""
    if SHOTS in config.stash:
        terminalreporter.write_line(f"browser screenshots: {config.stash[SHOTS]}")


@pytest.fixture
def shots(shots_root: Path, request: pytest.FixtureRequest) -> Shots:
    """This test's screenshots, in a folder named for it."""
    return Shots(shots_root / request.node.name)
