// GraphiQL in a real browser (Debian's Chromium, headless) with every request to anything
// but 127.0.0.1 blocked: the page must load from the binary alone, run its default query and
// show contacts, and open the schema's documentation. Leaves a screenshot in artifacts/.
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

test('GraphiQL works offline: default query shows contacts, docs explorer opens', async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const blocked = [];
  const failed = [];
  await context.route('**/*', (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === '127.0.0.1') return route.continue();
    blocked.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  page.on('requestfailed', (request) => failed.push(request.url()));
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));

  try {
    await exercise(page);
  } finally {
    // The screenshot is kept whether the test passes or not: it shows what a person sees.
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'graphiql.png'), fullPage: true });
  }
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(blocked, [], 'the page asked for something outside 127.0.0.1');
  assert.deepEqual(failed, []);
  await context.close();
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
