"""The billing domain: settings, storage, the Stripe adapter and the services."""
