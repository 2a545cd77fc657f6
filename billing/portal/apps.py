"""Client apps: APP_URL, or a named app of APP_URLS (a mobile app's universal link)."""

from __future__ import annotations

from billing.errors import BillingErrorCode, BillingFailure
from billing.kit.settings import Settings


def app_base_url(settings: Settings, app: str | None) -> str:
    """The URL every URL of a call is built on: APP_URL, or the named app's (UNKNOWN_APP when
    APP_URLS has no such name)."""
    if app is None:
        return settings.app_url
    found = settings.app_urls.get(app)
    if found is None:
        known = ", ".join(sorted(settings.app_urls)) or "none configured"
        raise BillingFailure(
            BillingErrorCode.UNKNOWN_APP, f"No app named {app[:64]!r} (APP_URLS: {known})."
        )
    return found
