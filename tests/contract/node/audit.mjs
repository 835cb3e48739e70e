// graphql-http's GraphQL-over-HTTP server audit against a live server (run by
// tests/contract/test_graphql_http_audit.py). Prints one JSON line per audit: id, name, status
// ('ok', or 'error' for a failed MUST, 'warn' for a failed SHOULD, 'notice' for a failed MAY)
// and, for failures, the reason.
//
//   node tests/contract/node/audit.mjs http://127.0.0.1:8000/graphql
import { auditServer } from 'graphql-http';

const [url = 'http://127.0.0.1:8000/graphql'] = process.argv.slice(2);

for (const result of await auditServer({ url })) {
  const { id, name, status } = result;
  const reason = status === 'ok' ? undefined : result.reason;
  console.log(JSON.stringify({ id, name, status, reason }));
}
