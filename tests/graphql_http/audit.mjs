// graphql-http's server audit against one GraphQL-over-HTTP URL: `node audit.mjs URL`.
// Prints the results as one JSON array: {id, name, status, reason, httpStatus} per audit
// (status: ok, notice, warn or error). The audit's own queries ({ __typename }, __type)
// need no token.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = await auditServer({ url });
const summary = results.map(({ id, name, status, reason, response }) => ({
  id,
  name,
  status,
  reason: reason ?? null,
  httpStatus: response?.status ?? null,
}));
console.log(JSON.stringify(summary));
