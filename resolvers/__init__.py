"""Thin async resolvers: read the context, call a billing service, shape the answer."""
