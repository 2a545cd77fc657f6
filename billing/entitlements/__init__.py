"""Entitlements: what an org may use (read), the only writer (projection), live updates and drift
against Stripe."""
