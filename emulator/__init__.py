"""Offline, stateful Stripe emulator for tests and local development."""

from emulator.state import EmulatorState

__all__ = ["EmulatorState"]
