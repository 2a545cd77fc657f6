"""The Stripe gateway: the one module that imports `stripe` (client.py), its throttle, its errors
and the plain views of Stripe objects."""
