"""The JSON shapes every module of the emulator passes around."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
"""A Stripe object, as the API answers it."""
Params = dict[str, Any]
"""A request's decoded parameters."""
