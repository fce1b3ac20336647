// The GraphQL over HTTP spec's server audits (the `graphql-http` package's), run against a
// running DevSignal endpoint:
//
//   node tests/audit/graphql-http-audit.mjs http://127.0.0.1:8080/api/v1/graphql
//
// Prints every result (MAY notices included) and exits non-zero when a MUST or a SHOULD audit
// fails. The API test `graphql_http::the_spec_audit_passes` runs it against a test server.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql-http-audit.mjs <GraphQL endpoint URL>');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { ok: 0, error: 0, warn: 0, notice: 0 };
const failures = [];
for (const r of results) {
  counts[r.status] += 1;
  if (r.status === 'ok') {
    console.log(`ok      ${r.id} ${r.name}`);
    continue;
  }
  let body = '';
  try {
    body = await r.response.text();
  } catch {
    body = '(body already read)';
  }
  const line = `${r.status.padEnd(7)} ${r.id} ${r.name}: ${r.reason} ` +
    `(status ${r.response.status}, ${r.response.headers.get('content-type')}) ${body.slice(0, 300)}`;
  console.log(line);
  // `error` is a failed MUST, `warn` a failed SHOULD, `notice` a failed MAY.
  if (r.status !== 'notice') failures.push(line);
}
console.log(
  `graphql-http audit: ${counts.ok} ok, ${counts.error} MUST failed, ${counts.warn} SHOULD failed, ` +
    `${counts.notice} MAY not done`,
);
process.exit(failures.length === 0 ? 0 : 1);
