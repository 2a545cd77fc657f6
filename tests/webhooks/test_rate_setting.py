"""STRIPE_RATE_LIMIT: safely under Stripe's own limit for the key's mode unless set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billing.kit.settings import Settings


@pytest.mark.parametrize(
    ("key", "configured", "rate"),
    [
        ("sk_test_x", None, 20.0),
        ("rk_test_x", "", 20.0),
        ("sk_live_x", None, 80.0),
        ("rk_live_x", None, 80.0),
        ("sk_live_x", "95.5", 95.5),
        (None, None, 20.0),
    ],
)
def test_the_rate_follows_the_key_mode(
    key: str | None, configured: str | None, rate: float
) -> None:
    settings = Settings(_env_file=None, stripe_secret_key=key, stripe_rate_limit=configured)
    assert settings.stripe_rate == rate


@pytest.mark.parametrize("bad", ["0", "-5", "fast", "20000"])
def test_a_bad_rate_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="stripe_rate_limit"):
        Settings(_env_file=None, stripe_rate_limit=bad)
