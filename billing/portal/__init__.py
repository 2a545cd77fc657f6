"""The Customer Portal: sessions (optionally deep-linked) and the return-path rule."""
