// Starts the real contact-gateway binary on 127.0.0.1:0 with a fresh SQLite database (and
// its demo tenant), for the end-to-end tests. The binary is CONTACT_GATEWAY_BIN, or the
// workspace's debug build (`cargo build` first).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const binary = process.env.CONTACT_GATEWAY_BIN ?? join(root, 'target', 'debug', 'contact-gateway');
export const schemaFile = join(root, 'schema.graphql');

/**
 * A running server: its base URL, the GraphQL endpoint, the demo key and `stop()`.
 * `options.env` adds (or overrides) environment variables of the server, e.g.
 * `{ WEBHOOK_POLL_MS: '50' }`.
 */
export async function startServer({ env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cg-e2e-'));
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0'], {
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${join(dir, 'e2e.db')}?mode=rwc`,
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const found = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const address = out.match(/listening on (http:\/\/[\d.:]+)/);
      const key = out.match(/demo API key: (\S+)/);
      if (address && key) {
        clearTimeout(timer);
        resolve({ base: address[1], key: key[1] });
      }
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    ...found,
    endpoint: `${found.base}/graphql`,
    /** Sends SIGTERM and resolves with how the process ended. */
    async stop() {
      child.kill('SIGTERM');
      const result = await exited;
      rmSync(dir, { recursive: true, force: true });
      return result;
    },
  };
}
