"""The system under test: the suite's settings, one backend's running stack (database,
Stripe emulator, API), and the catalog seeded into an emulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billing.catalog.sync import sync_catalog, sync_portal
from billing.container import Services, with_services
from billing.kit.settings import Settings
from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from harness.api import APP_URL, APP_URLS, JWT_SECRET
from harness.servers import ThreadedServer
from harness.signing import WEBHOOK_SECRET
from harness.threads import in_thread

PLANS = Path(__file__).resolve().parent / "plans.toml"
"""The suite's plans file."""
BILLING_STATE_PLANS = PLANS.with_name("plans_billing_state.toml")
"""The billing-state tests' plans file (card-less trials, Checkout options, scheduled
downgrades)."""


def suite_settings(**overrides: Any) -> Settings:
    """Settings for the suite; nothing read from .env."""
    values: dict[str, Any] = {
        "stripe_secret_key": "sk_test_suite",
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "auth_jwt_secret": JWT_SECRET,
        "app_url": APP_URL,
        "app_urls": APP_URLS,
        "plans_file": PLANS,
        # Stripe's own default is 80 s; ours is 10. Four test workers on two cores can keep an
        # emulator's answer waiting for seconds, and the tests about timeouts set their own.
        "stripe_timeout": 10.0,
        "stripe_max_retries": 1,
        "billing_rate_limit": 1000,
        # The suite drives hundreds of journeys against the emulator; the tests about Stripe's
        # rate limit set their own.
        "stripe_rate_limit": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Stack:
    """One backend's running system."""

    backend: str
    settings: Settings
    emulator: EmulatorServer
    control: EmulatorControl
    api: ThreadedServer

    def settings_with(self, **overrides: Any) -> Settings:
        """These settings with some values changed."""
        values = {**self.settings.model_dump(), **overrides}
        return Settings(_env_file=None, **values)


async def _sync(services: Services) -> None:
    """Sync the catalog, then the portal configuration that names its prices."""
    await sync_catalog(services.stripe, services.catalog, False)
    await sync_portal(services.stripe, services.catalog, services.settings, False)


def seed(settings: Settings) -> None:
    """Create the catalog and portal configuration in the emulator."""
    in_thread(lambda: with_services(settings, _sync))
