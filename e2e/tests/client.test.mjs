// A real client end to end: Apollo Client 4 with a Relay-style pagination type policy pages
// through contacts with fetchMore, renames one with updateContact, and its normalised cache
// shows the change in the list it already holds. GraphQL Code Generator types the same
// operations from schema.graphql, and the TypeScript compiler checks code that uses them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { relayStylePagination } from '@apollo/client/utilities';
import { generate } from '@graphql-codegen/cli';
import { schemaFile, startServer } from './server.mjs';

const e2e = join(dirname(fileURLToPath(import.meta.url)), '..');
const operationsFile = join(e2e, 'operations', 'contacts.graphql');
const operations = readFileSync(operationsFile, 'utf8');
const CONTACTS_PAGE = gql(operations.slice(0, operations.indexOf('mutation RenameContact')));
const RENAME_CONTACT = gql(operations.slice(operations.indexOf('mutation RenameContact')));

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

function makeClient() {
  return new ApolloClient({
    link: new HttpLink({
      uri: server.endpoint,
      headers: { authorization: `Bearer ${server.key}` },
    }),
    cache: new InMemoryCache({
      typePolicies: {
        Query: { fields: { contacts: relayStylePagination(['filter', 'orderBy']) } },
      },
    }),
  });
}

test('Apollo Client pages with fetchMore and its cache sees updateContact', async () => {
  const client = makeClient();
  const watched = client.watchQuery({ query: CONTACTS_PAGE, variables: { first: 5 } });
  // Apollo Client 4's ObservableQuery is an Observable: the first complete result.
  let subscription;
  const first = await new Promise((resolve, reject) => {
    subscription = watched.subscribe({
      next: (result) => result.dataState === 'complete' && resolve(result),
      error: reject,
    });
  });
  const firstEdges = first.data.contacts.edges;
  assert.equal(firstEdges.length, 5);
  assert.ok(first.data.contacts.pageInfo.hasNextPage);

  await watched.fetchMore({ variables: { after: first.data.contacts.pageInfo.endCursor } });
  const merged = client.readQuery({ query: CONTACTS_PAGE, variables: { first: 5 } });
  const ids = merged.contacts.edges.map((edge) => edge.node.id);
  assert.equal(ids.length, 10, 'the second page is appended to the first');
  assert.equal(new Set(ids).size, 10, 'no contact appears twice');
  assert.deepEqual(ids.slice(0, 5), firstEdges.map((edge) => edge.node.id));

  // Rename the seventh contact (from the second page); the list in the cache follows.
  const target = merged.contacts.edges[6].node;
  const firstName = `Renamed${Date.now()}`;
  const { data } = await client.mutate({
    mutation: RENAME_CONTACT,
    variables: { id: target.id, firstName },
  });
  assert.equal(data.updateContact.contact.id, target.id);
  assert.equal(data.updateContact.contact.firstName, firstName);
  const after = client.readQuery({ query: CONTACTS_PAGE, variables: { first: 5 } });
  const cached = after.contacts.edges.find((edge) => edge.node.id === target.id).node;
  assert.equal(cached.firstName, firstName);
  assert.equal(cached.name, data.updateContact.contact.name);

  // And the server agrees, read by a client with an empty cache.
  const fresh = await makeClient().query({ query: CONTACTS_PAGE, variables: { first: 10 } });
  const stored = fresh.data.contacts.edges.find((edge) => edge.node.id === target.id).node;
  assert.equal(stored.firstName, firstName);
  subscription.unsubscribe();
});

test('GraphQL Code Generator types the operations from schema.graphql; tsc accepts code using them', async () => {
  const [output] = await generate(
    {
      schema: schemaFile,
      documents: operationsFile,
      generates: {
        [join(e2e, 'generated', 'graphql.ts')]: {
          plugins: ['typescript', 'typescript-operations'],
          config: { scalars: { DateTime: 'string', JSON: 'unknown' } },
        },
      },
      silent: true,
    },
    true,
  );
  assert.match(output.content, /export type Contact = Node & \{/);
  assert.match(output.content, /export type ContactsPageQuery = /);
  assert.match(output.content, /export type RenameContactMutationVariables = /);

  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const compiled = spawnSync(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'esnext',
      '--moduleResolution', 'bundler', join(e2e, 'typed', 'usage.ts')],
    { encoding: 'utf8' },
  );
  assert.equal(compiled.status, 0, `${compiled.stdout}${compiled.stderr}`);
});
