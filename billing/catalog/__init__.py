"""The catalog: the plans file and its sync (products, prices, portal configuration) to Stripe."""
