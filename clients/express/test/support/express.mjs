// Test support: an Express app on a free loopback port with routes guarded by `auth`.
import express from 'express';

export async function serve(app) {
  return new Promise((ok) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      ok({ url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => server.close(done)) });
    });
  });
}

export function appFor(auth) {
  const app = express();
  app.get('/open', (req, res) => res.json({ ok: true }));
  app.get('/me', auth.required(), (req, res) => res.json({ sub: req.auth.sub, roles: req.auth.roles }));
  app.get('/maybe', auth.optional(), (req, res) => res.json({ sub: req.auth?.sub ?? null }));
  app.get('/admin', auth.requireRole('admin'), (req, res) => res.json({ sub: req.auth.sub }));
  app.get('/staff', auth.requireRole('admin', 'editor'), (req, res) => res.json({ sub: req.auth.sub }));
  return app;
}

/** GET `path` with an optional Bearer token: `{status, headers, body, text}`. */
export async function get(url, token, headers = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  const r = await fetch(url, { headers: h });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, headers: r.headers, body, text };
}
