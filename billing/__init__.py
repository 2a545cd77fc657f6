"""The billing domain, in rooms: `kit/` (infrastructure every room uses), `gateway/` (the only
code that talks to Stripe), `entitlements/`, `portal/` and `catalog/`; at the root the tables,
the expected failures, the org's customer, its current subscription, upgrades, the per-org
rate limit and `container.py`, which builds the collaborators the outer layers hand down."""
