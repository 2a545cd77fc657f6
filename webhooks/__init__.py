"""Stripe webhooks: verify, record, dispatch to one small handler per event type."""
