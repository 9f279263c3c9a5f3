// Test support: a real Latchkey server (target/debug/latchkey, or $LATCHKEY_BIN) on a free
// loopback port with a throw-away SQLite file, plus HTTP helpers.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
export const BIN = process.env.LATCHKEY_BIN ?? resolve(here, '../../../../target/debug/latchkey');
export const PASSWORD = 'Gl4cier-Marmot-Tandem-Quill-77';

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The environment of a server on `port` with database `db`, plus `extra`. */
function envFor(dir, port, extra) {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    LATCHKEY_LISTEN: `127.0.0.1:${port}`,
    LATCHKEY_DATABASE_URL: `sqlite://${join(dir, 'latchkey.db')}`,
    LATCHKEY_ISSUER: `http://127.0.0.1:${port}`,
    LATCHKEY_COOKIE_SECURE: 'false',
    LATCHKEY_ARGON2_MEMORY_KIB: '1024',
    LATCHKEY_ARGON2_ITERATIONS: '1',
    LATCHKEY_KEY_RELOAD_INTERVAL: '1s',
    // A rotated key is published this long before it signs (Latchkey's rollover); short here.
    LATCHKEY_KEY_PUBLISH_AHEAD: '2s',
    LATCHKEY_LOG: 'warn',
    ...extra,
  };
}

async function waitHealthy(url, child, logs) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`latchkey exited with ${child.exitCode}: ${logs.join('')}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`latchkey did not start: ${logs.join('')}`);
}

function launch(dir, env) {
  const logs = [];
  const child = spawn(BIN, ['serve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => logs.push(String(d)));
  child.stderr.on('data', (d) => logs.push(String(d)));
  return { child, logs };
}

/**
 * Starts Latchkey. `extra` overrides the environment (LATCHKEY_SIGNING_ALG, ...). The result has
 * `url` (also the issuer), `env`, `dir`, `stop()`, `sibling(extra)` (a second server on the same
 * database, so with the same keys), `cli(args, input)`, and HTTP helpers.
 */
export async function startLatchkey(extra = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-express-'));
  const port = await freePort();
  const env = envFor(dir, port, extra);
  const url = `http://127.0.0.1:${port}`;
  const servers = [];
  const start = async (environment, base) => {
    const s = launch(dir, environment);
    servers.push(s.child);
    await waitHealthy(base, s.child, s.logs);
    return s.child;
  };
  await start(env, url);
  const app = {
    url,
    issuer: env.LATCHKEY_ISSUER,
    env,
    dir,
    async sibling(overrides) {
      const p = await freePort();
      const e = { ...env, LATCHKEY_LISTEN: `127.0.0.1:${p}`, ...overrides };
      const base = `http://127.0.0.1:${p}`;
      await start(e, base);
      return { url: base, env: e, register: (u) => register(base, u), login: (u, pw) => login(base, u, pw) };
    },
    cli(args, input) {
      const r = spawnSync(BIN, args, { cwd: dir, env, input, encoding: 'utf8' });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    register: (u, pw) => register(url, u, pw),
    login: (u, pw) => login(url, u, pw),
    async stop() {
      await Promise.all(
        servers.map(
          (c) =>
            new Promise((ok) => {
              if (c.exitCode !== null) return ok();
              c.once('exit', ok);
              c.kill('SIGTERM');
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return app;
}

async function post(url, body) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export async function register(base, username, password = PASSWORD) {
  const r = await post(`${base}/auth/register`, { username, password });
  if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.user;
}

/** Logs in and returns `{access_token, user, ...}`. */
export async function login(base, username, password = PASSWORD) {
  const r = await post(`${base}/auth/login`, { username, password });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The decoded header of a compact JWT. */
export function jwtHeader(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
}

/** The decoded payload of a compact JWT. */
export function jwtPayload(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}
