// Step-up (RFC 9470) in @latchkey/express: requireMfa() and maxAge() against tokens of a real
// Latchkey, one signed in with the password only and one with a second factor (TOTP enrolled
// over the API, the code computed here from RFC 6238).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import express from 'express';

import { latchkey } from '@latchkey/express';
import { get, serve } from './support/express.mjs';
import { PASSWORD, jwtPayload, startLatchkey } from './support/latchkey.mjs';

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(c.toUpperCase());
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238: HMAC-SHA-1 of the 30 s step, dynamic truncation, 6 digits. */
function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[19] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}

async function call(url, method, token, body) {
  const r = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

test('the test TOTP matches RFC 6238 appendix B', () => {
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // "12345678901234567890"
  assert.equal(totp(secret, 59), '287082');
  assert.equal(totp(secret, 1111111109), '081804');
  assert.equal(totp(secret, 2000000000), '279037');
});

describe('requireMfa() and maxAge()', () => {
  let server, api, passwordOnly, withMfa;
  let offset = 0;

  before(async () => {
    server = await startLatchkey();
    await server.register('pia');
    await server.register('max');
    passwordOnly = (await server.login('pia')).access_token;

    const first = (await server.login('max')).access_token;
    const enrolment = await call(`${server.url}/auth/mfa/totp`, 'POST', first);
    assert.equal(enrolment.status, 200, JSON.stringify(enrolment.body));
    const confirm = await call(`${server.url}/auth/mfa/totp/confirm`, 'POST', first, {
      code: totp(enrolment.body.secret, Date.now() / 1000),
    });
    assert.equal(confirm.status, 200, JSON.stringify(confirm.body));
    const pending = await server.login('max', PASSWORD);
    assert.equal(pending.mfa_required, true);
    // A recovery code, so the test need not wait for the next 30 s step (a code is accepted once).
    const done = await fetch(`${server.url}/auth/login/mfa`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mfa_token: pending.mfa_token, recovery_code: confirm.body.recovery_codes[0] }),
    });
    assert.equal(done.status, 200);
    withMfa = (await done.json()).access_token;
    assert.deepEqual(jwtPayload(withMfa).amr, ['pwd', 'otp', 'mfa']);
    assert.deepEqual(jwtPayload(passwordOnly).amr, ['pwd']);

    const auth = latchkey({ issuer: server.issuer, audience: server.issuer, now: () => Date.now() + offset });
    const app = express();
    app.get('/payout', auth.requireMfa(), (req, res) => res.json({ sub: req.auth.sub, amr: req.auth.amr }));
    app.get('/fresh', auth.maxAge(60), (req, res) => res.json({ sub: req.auth.sub }));
    app.get('/both', auth.requireMfa({ maxAge: 60 }), (req, res) => res.json({ sub: req.auth.sub }));
    api = await serve(app);
  });
  after(async () => {
    await api?.close();
    await server?.stop();
  });

  test('a second-factor token passes requireMfa(); a password-only one gets RFC 9470 401', async () => {
    const ok = await get(`${api.url}/payout`, withMfa);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.amr, ['pwd', 'otp', 'mfa']);
    const refused = await get(`${api.url}/payout`, passwordOnly);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.code, 'insufficient_user_authentication');
    assert.equal(refused.headers.get('content-type'), 'application/problem+json');
    assert.equal(
      refused.headers.get('www-authenticate'),
      'Bearer realm="latchkey", error="insufficient_user_authentication", error_description="a sign-in with a second factor is required"',
    );
    const none = await get(`${api.url}/payout`);
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'invalid_token');
  });

  test('maxAge() counts from auth_time and names max_age in the challenge', async () => {
    offset = 0;
    assert.equal((await get(`${api.url}/fresh`, passwordOnly)).status, 200);
    assert.equal((await get(`${api.url}/both`, withMfa)).status, 200);
    offset = 120_000; // two minutes later
    const stale = await get(`${api.url}/fresh`, passwordOnly);
    assert.equal(stale.status, 401);
    assert.equal(stale.body.code, 'insufficient_user_authentication');
    assert.match(stale.headers.get('www-authenticate'), /error="insufficient_user_authentication", error_description="a more recent sign-in is required", max_age=60$/);
    const both = await get(`${api.url}/both`, withMfa);
    assert.equal(both.status, 401);
    assert.match(both.headers.get('www-authenticate'), /max_age=60/);
    offset = 0;
  });

  test('bad step-up options are refused at setup', () => {
    const auth = latchkey({ issuer: server.issuer, audience: server.issuer });
    assert.throws(() => auth.maxAge(-1), TypeError);
    assert.throws(() => auth.requireMfa({ maxAge: 1.5 }), TypeError);
  });
});
