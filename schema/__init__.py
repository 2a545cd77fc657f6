"""The GraphQL schema: types only; resolvers live in `resolvers/`."""
