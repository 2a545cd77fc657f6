"""Fixtures: the `make run` stack with the example client built, and Debian's Chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from devstack.example import ROOT, missing_tools
from harness.servers import free_port
from tests.browser.links import LinkDomain
from tests.support.browser import CHROMIUM_ARGS, SCREENSHOTS_ENV, browser_tools, missing
from tests.support.dev import DevStack
from tests.support.example import Shots


@pytest.fixture(scope="session")
def links() -> Iterator[LinkDomain]:
    """The mobile apps' link domain (their universal links / app links), on a second origin."""
    domain = LinkDomain().start()
    yield domain
    domain.stop()


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory, links: LinkDomain) -> Iterator[DevStack]:
    """`python main.py dev` with the example: API, emulator and the page at APP_URL; the
    mobile apps of APP_URLS (`ios`, `android`) on the `links` domain."""
    problem = missing_tools()
    if problem is not None:
        missing(f"the example client needs Node.js 20.19+ and npm ({problem})")
    dev = DevStack(
        tmp_path_factory.mktemp("make-run"),
        app_url=f"http://localhost:{free_port()}",
        plans=ROOT / "plans.toml",
        example=True,
        app_urls=links.app_urls,
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


@pytest.fixture(scope="session")
def shots_root() -> Path:
    """Where the screenshots go: SCREENSHOTS_DIR, which tests/conftest.py sets for every worker
    and names in the run's summary."""
    return Path(os.environ[SCREENSHOTS_ENV])


@pytest.fixture
def shots(shots_root: Path, request: pytest.FixtureRequest) -> Shots:
    """This test's screenshots, in a folder named for it."""
    return Shots(shots_root / request.node.name)
