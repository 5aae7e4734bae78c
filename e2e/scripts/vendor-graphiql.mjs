// Copies GraphiQL and React from node_modules into assets/graphiql/, which the server embeds
// (so GraphiQL works with no internet). Run after changing their versions in package.json:
//   cd e2e && npm ci && npm run vendor-graphiql
import { copyFileSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
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
];
for (const [from, to] of files) {
  // Source-map comments would make browsers ask for maps the server does not have.
  const text = readFileSync(join(modules, from), 'utf8').replace(/\n\/\/# sourceMappingURL=.*$/m, '\n');
  writeFileSync(join(target, to), text);
}
for (const name of ['graphiql', 'react', 'react-dom']) {
  copyFileSync(join(modules, name, 'LICENSE'), join(target, `LICENSE-${name}`));
}
const versions = Object.fromEntries(
  ['graphiql', 'react', 'react-dom'].map((n) => [n, JSON.parse(readFileSync(join(modules, n, 'package.json'), 'utf8')).version]),
);
writeFileSync(join(target, 'VERSIONS.json'), JSON.stringify(versions, null, 2) + '\n');
console.log('vendored', versions, 'into', target);
