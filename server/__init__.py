"""The HTTP server: app wiring, the GraphQL endpoint, request hygiene, CORS and health."""
