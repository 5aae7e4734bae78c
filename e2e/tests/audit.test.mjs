// The GraphQL-over-HTTP audit of the `graphql-http` package, every MUST, SHOULD and MAY,
// against the running server.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';
import { startServer } from './server.mjs';

const server = await startServer();
after(() => server.stop());

// Every audit request carries the demo key, as a real client would.
const fetchWithKey = (input, init = {}) =>
  fetch(input, {
    ...init,
    headers: { ...(init.headers ?? {}), authorization: `Bearer ${server.key}` },
  });

for (const audit of serverAudits({ url: server.endpoint, fetchFn: fetchWithKey })) {
  test(`${audit.id} ${audit.name}`, async () => {
    const result = await audit.fn();
    if (result.status !== 'ok') {
      const body = result.response ? await result.response.text().catch(() => '') : '';
      assert.fail(`${result.reason}\n${body}`);
    }
  });
}
