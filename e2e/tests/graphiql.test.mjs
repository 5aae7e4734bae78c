// GraphiQL in a real browser (Debian's Chromium, headless) with every request to anything
// but 127.0.0.1 blocked: the page must load from the binary alone, run its default query and
// show contacts, open the schema's documentation, and run a subscription over WebSocket.
// Leaves screenshots in artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page in a new context where every request to anything but 127.0.0.1 fails. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const seen = { blocked: [], failed: [], pageErrors: [] };
  await context.route('**/*', (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === '127.0.0.1') return route.continue();
    seen.blocked.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  page.on('requestfailed', (request) => seen.failed.push(request.url()));
  page.on('pageerror', (err) => seen.pageErrors.push(String(err)));
  return { context, page, seen };
}

/** Runs `steps(page)`, keeps a screenshot (pass or fail: it shows what a person sees), checks. */
async function inBrowser(screenshot, steps) {
  const { context, page, seen } = await openPage();
  try {
    await steps(page);
  } finally {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, screenshot), fullPage: true });
  }
  assert.deepEqual(seen.pageErrors, []);
  assert.deepEqual(seen.blocked, [], 'the page asked for something outside 127.0.0.1');
  assert.deepEqual(seen.failed, []);
  await context.close();
}

test('GraphiQL works offline: default query shows contacts, docs explorer opens', async () => {
  await inBrowser('graphiql.png', exercise);
});

test('GraphiQL runs a subscription over WebSocket: contactChanged shows CREATED', async () => {
  await inBrowser('graphiql-subscription.png', subscribe);
});

async function exercise(page) {
  const response = await page.goto(server.endpoint, { waitUntil: 'networkidle' });
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'], /text\/html/);
  await page.waitForSelector('.graphiql-container', { timeout: 30_000 });

  // The headers editor opens with the demo key; the query editor with the default query.
  const editorText = (selector) =>
    page.$eval(`${selector} .CodeMirror`, (element) => element.CodeMirror.getValue());
  // The tools pane holds the variables and the headers editors.
  const tools = await page.$$eval('.graphiql-editor-tool .CodeMirror', (elements) =>
    elements.map((element) => element.CodeMirror.getValue()),
  );
  assert.ok(tools.some((text) => text.includes(`"Bearer ${server.key}"`)), tools.join('\n'));
  assert.match(await editorText('.graphiql-query-editor'), /contacts\(first: 10\)/);

  await page.click('.graphiql-execute-button');
  // The result pane shows the contacts (with their accounts and tags) once the query ran.
  await page.locator('.result-window').getByText('"contacts"').waitFor({ timeout: 30_000 });
  const result = JSON.parse(await editorText('.result-window'));
  assert.equal(result.errors, undefined);
  const contacts = result.data.contacts.nodes;
  assert.equal(contacts.length, 10);
  assert.ok(result.data.contacts.totalCount >= 10);
  assert.ok(contacts.every((c) => typeof c.id === 'string' && Array.isArray(c.tags)));
  assert.ok(contacts.some((c) => c.email?.includes('@') && c.account?.name));

  // The documentation explorer lists the root query type and its fields.
  await page.getByRole('button', { name: /documentation explorer/i }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).first().waitFor({ timeout: 15_000 });
  await docs.getByText('Query', { exact: true }).first().click();
  await docs.getByText('contacts', { exact: true }).first().waitFor({ timeout: 15_000 });
}

const editorValue = (page, selector) =>
  page.$eval(`${selector} .CodeMirror`, (element) => element.CodeMirror.getValue());

async function createContact(lastName) {
  const response = await fetch(server.endpoint, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation ($input: CreateContactInput!) { createContact(input: $input) { contact { id } } }',
      variables: { input: { contact: { lastName } } },
    }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data.createContact.contact.id;
}

async function subscribe(page) {
  // The graphql-transport-ws messages, as the browser sent and received them.
  const frames = { sent: [], received: [] };
  const parse = (frame) => JSON.parse(String(frame.payload));
  page.on('websocket', (socket) => {
    frames.url = socket.url();
    socket.on('framesent', (frame) => frames.sent.push(parse(frame)));
    socket.on('framereceived', (frame) => frames.received.push(parse(frame)));
  });

  const response = await page.goto(server.endpoint, { waitUntil: 'networkidle' });
  assert.equal(response.status(), 200);
  await page.waitForSelector('.graphiql-container', { timeout: 30_000 });
  const subscription = 'subscription { contactChanged { kind contact { lastName } } }';
  await page.$eval(
    '.graphiql-query-editor .CodeMirror',
    (element, text) => element.CodeMirror.setValue(text),
    subscription,
  );
  // GraphiQL parses the editor's text 100 ms after a change (debounced); until then a run
  // would send the previous operation.
  await page.waitForFunction(
    () =>
      document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror.documentAST?.definitions?.[0]
        ?.operation === 'subscription',
    null,
    { timeout: 5_000, polling: 50 },
  );
  await page.click('.graphiql-execute-button');

  // The page opens a socket to ws://127.0.0.1:PORT/graphql, gives the headers editor's key in
  // connection_init, is acknowledged, and subscribes.
  const waitFor = async (what, check) => {
    for (const deadline = Date.now() + 15_000; !check(); ) {
      if (Date.now() > deadline) {
        const pane = await editorValue(page, '.result-window').catch((err) => String(err));
        throw new Error(`no ${what}; frames: ${JSON.stringify(frames)}; result pane:\n${pane}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await waitFor('subscribe message', () => frames.sent.some((m) => m.type === 'subscribe'));
  await waitFor('connection_ack', () => frames.received.some((m) => m.type === 'connection_ack'));
  assert.equal(frames.url, server.endpoint.replace(/^http/, 'ws'));
  const init = frames.sent.find((m) => m.type === 'connection_init');
  assert.deepEqual(init?.payload, { authorization: `Bearer ${server.key}` });
  const subscribeMessage = frames.sent.find((m) => m.type === 'subscribe');
  assert.equal(subscribeMessage.payload.query, subscription);

  // The protocol does not acknowledge `subscribe`: create contacts until one shows up in the
  // result pane (the first one normally does).
  const showsContact = (lastName) =>
    page
      .waitForFunction(
        (name) => document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue().includes(name),
        lastName,
        { timeout: 2_000, polling: 50 },
      )
      .then(
        () => true,
        () => false,
      );
  let lastName;
  for (let attempt = 0; attempt < 10 && !lastName; attempt++) {
    const name = `Subscribed ${attempt}`;
    await createContact(name);
    if (await showsContact(name)) lastName = name;
  }
  assert.ok(lastName, `the result pane never showed a created contact:\n${await editorValue(page, '.result-window')}`);
  const result = JSON.parse(await editorValue(page, '.result-window'));
  assert.deepEqual(result, { data: { contactChanged: { kind: 'CREATED', contact: { lastName } } } });
  await page.locator('.result-window').getByText('"CREATED"').waitFor({ timeout: 5_000 });
  assert.ok(frames.received.some((m) => m.type === 'next'), 'no next message over the socket');
  assert.ok(!frames.received.some((m) => m.type === 'error'), JSON.stringify(frames.received));

  // The execute button stops a running subscription: the page sends `complete`.
  await page.click('.graphiql-execute-button');
  await waitFor('complete message', () => frames.sent.some((m) => m.type === 'complete'));
}
