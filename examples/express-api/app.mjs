// The files API of examples/files-api (same routes, codes and access rules) in Express on
// @latchkey/express. Files live in memory (or in a JSON file when `file` is given).
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

import express from 'express';

const problem = (res, status, code, title, detail) =>
  res
    .status(status)
    .type('application/problem+json')
    .set('cache-control', 'no-store')
    .send(JSON.stringify({ type: `https://latchkey.dev/problems/${code.replaceAll('_', '-')}`, title, status, detail, code }));
const notFound = (res) => problem(res, 404, 'not_found', 'Not found', 'there is nothing here');
const forbidden = (res) => problem(res, 403, 'insufficient_permission', 'Insufficient permission', 'you are not allowed to do this');
const invalid = (res, detail) => problem(res, 400, 'invalid_input', 'Invalid input', detail);

/** read / write / delete / share: 'allow', 'forbidden' (403) or 'hidden' (404), as files-api's access::decide. */
export function decide(caller, file, action) {
  const share = file.shares[caller.id];
  const owner = file.owner === caller.id;
  if (!owner && !share && !caller.admin) return 'hidden';
  if (owner) return 'allow';
  if (action === 'read') return 'allow';
  if (action === 'write') return caller.admin || share === 'write' ? 'allow' : 'forbidden';
  if (action === 'delete') return caller.admin ? 'allow' : 'forbidden';
  return 'forbidden'; // share: the owner only
}

export function createApp({ auth, origins = [], file } = {}) {
  const files = new Map(file ? Object.entries(JSON.parse(safeRead(file))) : []);
  const save = () => file && writeFileSync(file, JSON.stringify(Object.fromEntries(files)));
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const origin = req.get('origin');
    if (origin && origins.includes(origin)) {
      res.set({ 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' });
      if (req.method === 'OPTIONS') {
        res.set({ 'access-control-allow-methods': 'GET, POST, PUT, DELETE', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' });
        return res.status(204).end();
      }
    }
    res.set({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' });
    next();
  });
  app.get('/healthz', (req, res) => res.status(200).end());
  app.use('/files', auth.required(), (req, res, next) => {
    req.caller = { id: req.auth.sub, admin: req.auth.roles.includes('admin') };
    if (['POST', 'PUT'].includes(req.method) && !req.is('application/json')) {
      return problem(res, 415, 'unsupported_media_type', 'Unsupported media type', 'send application/json');
    }
    next();
  });
  app.use(express.json({ limit: '1mb', type: 'application/json' }));

  const view = (f, caller, full) => ({
    id: f.id, name: f.name, owner: f.owner, created_at: f.created_at,
    ...(full ? { content: f.content } : {}),
    updated_at: f.updated_at,
    access: f.owner === caller.id ? 'owner' : (f.shares[caller.id] ?? 'admin'),
  });
  const allowed = (req, res, action) => {
    const f = files.get(req.params.id);
    const verdict = f ? decide(req.caller, f, action) : 'hidden';
    if (verdict === 'hidden') return notFound(res), undefined;
    if (verdict === 'forbidden') return forbidden(res), undefined;
    return f;
  };
  const str = (v) => typeof v === 'string';

  app.post('/files', (req, res) => {
    const { name, content } = req.body ?? {};
    if (!str(name) || !str(content)) return invalid(res, 'the request body does not have the expected fields and types');
    const n = name.trim();
    if (n === '' || [...n].length > 255 || /[\u0000-\u001f\u007f]/.test(n)) return invalid(res, 'name must be 1 to 255 characters without control characters');
    const now = new Date().toISOString();
    const f = { id: randomUUID(), name: n, owner: req.caller.id, content, created_at: now, updated_at: now, shares: {} };
    files.set(f.id, f);
    save();
    res.status(201).location(`/files/${f.id}`).json({ file: { id: f.id, name: f.name, owner: f.owner, created_at: f.created_at } });
  });
  app.get('/files', (req, res) => {
    const mine = [...files.values()].filter((f) => f.owner === req.caller.id || f.shares[req.caller.id]);
    res.json({ files: mine.map((f) => view(f, req.caller, false)) });
  });
  app.get('/files/:id', (req, res) => {
    const f = allowed(req, res, 'read');
    if (f) res.json({ file: view(f, req.caller, true) });
  });
  app.put('/files/:id', (req, res) => {
    if (!str(req.body?.content)) return invalid(res, 'the request body does not have the expected fields and types');
    const f = allowed(req, res, 'write');
    if (!f) return;
    Object.assign(f, { content: req.body.content, updated_at: new Date().toISOString() });
    save();
    res.json({ file: view(f, req.caller, true) });
  });
  app.delete('/files/:id', (req, res) => {
    if (!allowed(req, res, 'delete')) return;
    files.delete(req.params.id);
    save();
    res.status(204).end();
  });
  app.post('/files/:id/shares', (req, res) => {
    const { user_id: user, permission } = req.body ?? {};
    if (!str(user) || !str(permission)) return invalid(res, 'the request body does not have the expected fields and types');
    const f = allowed(req, res, 'share');
    if (!f) return;
    if (permission !== 'read' && permission !== 'write') return invalid(res, 'permission must be "read" or "write"');
    if (user === '' || user.length > 128 || /\s|[\u0000-\u001f]/.test(user)) return invalid(res, 'user_id must be 1 to 128 characters without spaces');
    if (user === f.owner) return invalid(res, 'the owner already has every permission');
    f.shares[user] = permission;
    save();
    res.json({ share: { file_id: f.id, user_id: user, permission } });
  });
  app.use((req, res) => notFound(res));
  // Body parser failures: 400 / 413 problem+json, never a stack trace.
  app.use((err, req, res, next) => {
    if (err?.type === 'entity.too.large') return problem(res, 413, 'payload_too_large', 'Payload too large', 'the body is too large');
    if (err?.type === 'entity.parse.failed') return invalid(res, 'the request body is not valid JSON');
    console.error('files: internal error', err?.message);
    return problem(res, 500, 'internal_error', 'Internal error', 'something went wrong on our side');
  });
  return app;
}

function safeRead(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '{}';
  }
}
