// Live changes, with the clients users have: the `contactChanged` subscription through the
// `graphql-ws` client (graphql-transport-ws at ws://HOST/graphql, the key in connection_init),
// and webhooks received by a plain Node HTTP server and verified with the `standardwebhooks`
// package. Each test starts its own server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createClient } from 'graphql-ws';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
// Node 20 has no global WebSocket (22 has); `ws` works on both.
import WebSocket from 'ws';
import { startServer } from './server.mjs';

const SUBSCRIPTION = `subscription Live($filter: ContactFilter) {
  contactChanged(filter: $filter) {
    kind contactId changedFields survivorId at skipped
    contact { id lastName }
  }
}`;

/** POSTs a GraphQL operation with the server's key; returns `data` (fails on errors). */
async function graphql(server, query, variables = {}) {
  const response = await fetch(server.endpoint, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${server.key}`,
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  const body = JSON.parse(text);
  assert.equal(body.errors, undefined, text);
  return body.data;
}

async function createContact(server, lastName) {
  const data = await graphql(
    server,
    'mutation Create($input: CreateContactInput!) { createContact(input: $input) { contact { id lastName } } }',
    { input: { contact: { lastName } } },
  );
  assert.equal(data.createContact.contact.lastName, lastName);
  return data.createContact.contact.id;
}

async function updateLastName(server, id, lastName) {
  const data = await graphql(
    server,
    'mutation Update($input: UpdateContactInput!) { updateContact(input: $input) { contact { id lastName } } }',
    { input: { id, patch: { lastName } } },
  );
  assert.equal(data.updateContact.contact.lastName, lastName);
}

const wsUrl = (server) => server.endpoint.replace(/^http/, 'ws');

/** Polls `check` every 20 ms until it returns a truthy value; throws after `ms`. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Subscribes through `client`, collecting what the sink is given. */
function collect(client, payload) {
  const feed = { events: [], errors: [], completed: false };
  feed.unsubscribe = client.subscribe(payload, {
    next: (result) => {
      if (result.errors) feed.errors.push(result.errors);
      else feed.events.push(result.data.contactChanged);
    },
    error: (err) => feed.errors.push(err),
    complete: () => {
      feed.completed = true;
    },
  });
  return feed;
}

test('contactChanged over graphql-ws: CREATED then UPDATED (lastName), in order', async () => {
  const server = await startServer();
  const closes = [];
  const client = createClient({
    url: wsUrl(server),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${server.key}` },
    retryAttempts: 0,
    on: { closed: (event) => closes.push(event?.code) },
  });
  try {
    const feed = collect(client, { query: SUBSCRIPTION });

    // The protocol does not acknowledge a `subscribe`: create probe contacts until one's
    // CREATED comes through, so the subscription is known to be live.
    let live = false;
    for (let attempt = 0; attempt < 20 && !live; attempt++) {
      const probe = await createContact(server, `Probe ${attempt}`);
      live = await until(() => feed.events.some((e) => e.contactId === probe), 1_000, 'the probe').then(
        () => true,
        () => false,
      );
      assert.deepEqual(feed.errors, []);
    }
    assert.ok(live, 'the subscription never delivered a probe contact');

    const id = await createContact(server, 'Lindqvist');
    await updateLastName(server, id, 'Lindqvist-Berg');
    const mine = () => feed.events.filter((e) => e.contactId === id);
    await until(() => mine().length >= 2, 10_000, 'CREATED and UPDATED of the contact');
    // Anything else for this contact would arrive right behind: give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const [created, updated, ...rest] = mine();
    assert.deepEqual(rest, [], 'more changes than CREATED and UPDATED');
    assert.equal(created.kind, 'CREATED');
    assert.deepEqual(created.changedFields, []);
    assert.equal(created.contact.id, id);
    assert.equal(created.contact.lastName, 'Lindqvist');
    assert.equal(created.skipped, 0);
    assert.equal(created.survivorId, null);
    assert.ok(!Number.isNaN(Date.parse(created.at)), `at: ${created.at}`);

    assert.equal(updated.kind, 'UPDATED');
    assert.deepEqual(updated.changedFields, ['lastName']);
    assert.equal(updated.contact.id, id);
    assert.equal(updated.contact.lastName, 'Lindqvist-Berg');
    assert.ok(Date.parse(updated.at) >= Date.parse(created.at));

    assert.deepEqual(feed.errors, []);
    assert.equal(feed.completed, false);
    assert.deepEqual(closes, []);
    feed.unsubscribe();
  } finally {
    await client.dispose();
    await server.stop();
  }
});

test('graphql-ws with a bad key: the connection is closed with 4403', async () => {
  const server = await startServer();
  const closes = [];
  const client = createClient({
    url: wsUrl(server),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: 'Bearer sk-this-is-not-a-key' },
    // graphql-ws retries 4403 (Forbidden) by default: the test wants the first close.
    retryAttempts: 0,
    on: { closed: (event) => closes.push({ code: event?.code, reason: event?.reason }) },
  });
  try {
    const feed = collect(client, { query: SUBSCRIPTION });
    await until(() => feed.errors.length > 0 || feed.completed, 10_000, 'the connection to be refused');
    assert.equal(feed.completed, false);
    assert.deepEqual(feed.events, []);
    assert.equal(feed.errors.length, 1);
    // The sink's error is the socket's close event.
    assert.equal(feed.errors[0].code, 4403, `error: ${feed.errors[0]?.code} ${feed.errors[0]?.reason}`);
    assert.equal(closes.length, 1, JSON.stringify(closes));
    assert.equal(closes[0].code, 4403, JSON.stringify(closes));
  } finally {
    await client.dispose();
    await server.stop();
  }
});

test('webhook: contact.created is delivered, signed per Standard Webhooks', async () => {
  const server = await startServer({ env: { WEBHOOK_POLL_MS: '50' } });
  const received = [];
  const hook = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => hook.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${hook.address().port}/hook`;
    const data = await graphql(
      server,
      `mutation Hook($input: CreateWebhookInput!) {
        createWebhook(input: $input) { secret webhook { id } }
      }`,
      { input: { url, events: ['CREATED'], description: 'e2e: live.test.mjs' } },
    );
    const { secret, webhook } = data.createWebhook;
    assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
    assert.equal(typeof webhook.id, 'string');

    const id = await createContact(server, 'Hook');
    await until(() => received.length > 0, 10_000, 'the webhook delivery');
    // Only CREATED was asked for, and one contact was created: one delivery.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(received.length, 1, JSON.stringify(received, null, 2));
    const [delivery] = received;
    assert.equal(delivery.method, 'POST');
    assert.equal(delivery.url, '/hook');
    assert.match(delivery.headers['content-type'], /^application\/json/);
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      assert.ok(delivery.headers[name], `missing ${name}: ${JSON.stringify(delivery.headers)}`);
    }

    // The package takes the secret with or without `whsec_`; verify returns the parsed body.
    const payload = new Webhook(secret).verify(delivery.body, delivery.headers);
    assert.deepEqual(new Webhook(secret.slice('whsec_'.length)).verify(delivery.body, delivery.headers), payload);
    assert.deepEqual(payload, JSON.parse(delivery.body));
    assert.equal(payload.type, 'contact.created');
    assert.ok(!Number.isNaN(Date.parse(payload.timestamp)), `timestamp: ${payload.timestamp}`);
    assert.equal(payload.data.kind, 'CREATED');
    assert.equal(payload.data.contactId, id);

    // Another secret, or a changed body, does not verify.
    const other = `whsec_${randomBytes(32).toString('base64')}`;
    assert.throws(() => new Webhook(other).verify(delivery.body, delivery.headers), WebhookVerificationError);
    const tampered = delivery.body.replace(id, `${id}x`);
    assert.notEqual(tampered, delivery.body);
    assert.throws(() => new Webhook(secret).verify(tampered, delivery.headers), WebhookVerificationError);
  } finally {
    hook.closeAllConnections();
    await new Promise((resolve) => hook.close(resolve));
    await server.stop();
  }
});
