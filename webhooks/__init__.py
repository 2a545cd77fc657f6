"""Stripe webhooks: verify, record, dispatch to one small handler per event type."""

WEBHOOK_PATH = "/webhooks/stripe"
"""Where Stripe posts events."""
RAW_BODY = "raw_body"
"""The key under `scope["state"]` where the request guard leaves a limited POST's raw body."""
