"""Stripe-looking identifiers."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """Return ``prefix`` followed by random base62 characters, e.g. ``cus_...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_secret(prefix: str = "whsec_") -> str:
    """Return a webhook signing secret."""
    return prefix + secrets.token_urlsafe(24)
