// `latchkey user import` with hashes made right now by the Node libraries an Express app uses
// (bcryptjs, passport-local-mongoose's setPassword), then logins over HTTP.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { PASSWORDS, importLines } from './fixtures/import-users.mjs';
import { startLatchkey } from './support/latchkey.mjs';

let server;
before(async () => {
  server = await startLatchkey();
});
after(async () => server?.stop());

async function login(username, password) {
  const r = await fetch(`${server.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  return { status: r.status, body: await r.json() };
}

test('users exported from an Express + passport app log in with their old passwords', async () => {
  const lines = (await importLines()).map((l) => JSON.stringify(l)).join('\n');
  const out = server.cli(['user', 'import', '-'], `${lines}\n{"username":"broken"\n`);
  assert.equal(out.status, 1, out.stderr);
  assert.match(out.stdout, /^4 created, 0 updated, 0 skipped \(existing\), 1 failed/);
  assert.match(out.stderr, /^line 5: invalid JSON/m);
  const unknown = await login('no-such-user', 'some-password-here');
  for (const [user, password] of Object.entries(PASSWORDS)) {
    const wrong = await login(user, `${password}x`);
    assert.equal(wrong.status, 401, user);
    assert.deepEqual(wrong.body, unknown.body, `${user}: a wrong password is answered like any other`);
    const ok = await login(user, password);
    assert.equal(ok.status, 200, `${user}: ${JSON.stringify(ok.body)}`);
    assert.equal(ok.body.user.username, user);
    assert.equal((await login(user, password)).status, 200, `${user} after the upgrade to Argon2id`);
  }
  const again = server.cli(['user', 'import', '-'], lines);
  assert.equal(again.status, 2, 'all existed: exit code 2');
  assert.match(again.stdout, /^0 created, 0 updated, 4 skipped/);
});
