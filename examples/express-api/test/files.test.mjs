// The Express files API against a real Latchkey: the access matrix of examples/files-api, the
// 401/403/404 answers and CORS for configured origins, through real HTTP.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { latchkey } from '@latchkey/express';

import { createApp } from '../app.mjs';
import { startLatchkey } from '../../../clients/express/test/support/latchkey.mjs';

let server, api, olive, rita, sam, ada;
const SPA = 'http://127.0.0.1:5173';

async function call(method, path, token, body, headers = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const r = await fetch(`${api.url}${path}`, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

before(async () => {
  server = await startLatchkey();
  for (const u of ['olive', 'rita', 'sam']) await server.register(u);
  const made = server.cli(['user', 'create', '--username', 'ada', '--role', 'admin', '--password-stdin'], 'Gl4cier-Marmot-Tandem-Quill-77');
  assert.equal(made.status, 0, made.stderr);
  [olive, rita, sam, ada] = await Promise.all(['olive', 'rita', 'sam', 'ada'].map((u) => server.login(u)));
  const auth = latchkey({ issuer: server.issuer, audience: server.issuer });
  const app = createApp({ auth, origins: [SPA] });
  await new Promise((ok) => {
    const s = app.listen(0, '127.0.0.1', () => {
      api = { url: `http://127.0.0.1:${s.address().port}`, close: () => new Promise((d) => s.close(d)) };
      ok();
    });
  });
});
after(async () => {
  await api?.close();
  await server?.stop();
});

test('the access matrix: owner, read share, write share, admin, anyone else', async () => {
  const created = await call('POST', '/files', olive.access_token, { name: 'plan.txt', content: 'step one' });
  assert.equal(created.status, 201);
  const id = created.body.file.id;
  assert.equal(created.headers.get('location'), `/files/${id}`);
  assert.equal(created.body.file.owner, olive.user.id);

  assert.equal((await call('GET', `/files/${id}`, rita.access_token)).status, 404, 'hidden from strangers');
  assert.equal((await call('PUT', `/files/${id}`, rita.access_token, { content: 'x' })).status, 404);
  assert.equal((await call('GET', `/files/${id}`, ada.access_token)).body.file.access, 'admin');

  const share = await call('POST', `/files/${id}/shares`, olive.access_token, { user_id: rita.user.id, permission: 'read' });
  assert.deepEqual(share.body, { share: { file_id: id, user_id: rita.user.id, permission: 'read' } });
  assert.equal((await call('GET', `/files/${id}`, rita.access_token)).body.file.content, 'step one');
  const put = await call('PUT', `/files/${id}`, rita.access_token, { content: 'mine now' });
  assert.equal(put.status, 403);
  assert.equal(put.body.code, 'insufficient_permission');
  assert.equal((await call('POST', `/files/${id}/shares`, rita.access_token, { user_id: sam.user.id, permission: 'read' })).status, 403);
  assert.equal((await call('POST', `/files/${id}/shares`, ada.access_token, { user_id: sam.user.id, permission: 'read' })).status, 403, 'sharing is the owner\'s alone');

  await call('POST', `/files/${id}/shares`, olive.access_token, { user_id: rita.user.id, permission: 'write' });
  assert.equal((await call('PUT', `/files/${id}`, rita.access_token, { content: 'edited' })).body.file.content, 'edited');
  assert.equal((await call('DELETE', `/files/${id}`, rita.access_token)).status, 403);
  const listed = await call('GET', '/files', rita.access_token);
  assert.deepEqual(listed.body.files.map((f) => [f.id, f.access]), [[id, 'write']]);
  assert.equal((await call('GET', '/files', sam.access_token)).body.files.length, 0);

  assert.equal((await call('DELETE', `/files/${id}`, ada.access_token)).status, 204);
  assert.equal((await call('GET', `/files/${id}`, olive.access_token)).status, 404);
});

test('401 without or with a bad token, 400/415 for bad bodies, 404 for unknown paths', async () => {
  const none = await call('GET', '/files');
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="latchkey"');
  const bad = await call('GET', '/files', 'x.y.z');
  assert.equal(bad.headers.get('www-authenticate'), 'Bearer realm="latchkey", error="invalid_token"');
  assert.equal(bad.body.code, 'invalid_token');
  assert.equal((await call('POST', '/files', olive.access_token, '{"name":')).body.code, 'invalid_input');
  assert.equal((await call('POST', '/files', olive.access_token, { name: 3 })).status, 400);
  assert.equal((await call('POST', '/files', olive.access_token, 'name=x', { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await call('POST', '/files', olive.access_token, { name: 'big', content: 'x'.repeat(2 * 1024 * 1024) })).status, 413);
  assert.equal((await call('GET', '/files/not-a-uuid', olive.access_token)).status, 404);
  assert.equal((await call('GET', '/nothing', olive.access_token)).body.code, 'not_found');
});

test('CORS answers configured origins only', async () => {
  const pre = await fetch(`${api.url}/files`, { method: 'OPTIONS', headers: { origin: SPA, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), SPA);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
  const ok = await call('GET', '/files', olive.access_token, undefined, { origin: SPA });
  assert.equal(ok.headers.get('access-control-allow-origin'), SPA);
  const evil = await call('GET', '/files', olive.access_token, undefined, { origin: 'https://evil.example' });
  assert.equal(evil.headers.get('access-control-allow-origin'), null);
});
