// Copies GraphiQL, React and the graphql-ws client (GraphiQL's subscriptions over WebSocket)
// from node_modules into assets/graphiql/, which the server embeds (so GraphiQL works with no
// internet). Run after changing their versions in package.json:
//   cd e2e && npm ci && npm run vendor-graphiql
import { copyFileSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const e2e = join(dirname(fileURLToPath(import.meta.url)), '..');
const modules = join(e2e, 'node_modules');
const target = join(e2e, '..', 'assets', 'graphiql');
mkdirSync(target, { recursive: true });

const files = [
  ['graphiql/graphiql.min.js', 'graphiql.min.js'],
  ['graphiql/graphiql.min.css', 'graphiql.min.css'],
  ['react/umd/react.production.min.js', 'react.production.min.js'],
  ['react-dom/umd/react-dom.production.min.js', 'react-dom.production.min.js'],
  ['graphql-ws/umd/graphql-ws.min.js', 'graphql-ws.min.js'],
];
for (const [from, to] of files) {
  // Source-map comments would make browsers ask for maps the server does not have.
  const text = readFileSync(join(modules, from), 'utf8').replace(/\n\/\/# sourceMappingURL=.*$/m, '\n');
  writeFileSync(join(target, to), text);
}
const packages = ['graphiql', 'react', 'react-dom', 'graphql-ws'];
for (const name of packages) {
  // graphql-ws names its licence LICENSE.md.
  const licence = ['LICENSE', 'LICENSE.md'].map((file) => join(modules, name, file)).find(existsSync);
  copyFileSync(licence, join(target, `LICENSE-${name}`));
}
const versions = Object.fromEntries(
  packages.map((n) => [n, JSON.parse(readFileSync(join(modules, n, 'package.json'), 'utf8')).version]),
);
writeFileSync(join(target, 'VERSIONS.json'), JSON.stringify(versions, null, 2) + '\n');
console.log('vendored', versions, 'into', target);
