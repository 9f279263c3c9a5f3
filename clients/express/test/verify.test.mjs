// @latchkey/express against a real Latchkey, for every algorithm Latchkey signs with.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { SignJWT, generateKeyPair } from 'jose';

import { latchkey } from '@latchkey/express';
import { appFor, get, serve } from './support/express.mjs';
import { jwtHeader, jwtPayload, startLatchkey } from './support/latchkey.mjs';

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Latchkey's own answer to `token` on /auth/me: what latchkey-guard says about it. */
async function latchkeySays(server, token) {
  return get(`${server.url}/auth/me`, token);
}

function assertSameRefusal(ours, theirs) {
  assert.equal(ours.status, theirs.status);
  assert.deepEqual(ours.body, theirs.body);
  assert.equal(ours.headers.get('www-authenticate'), theirs.headers.get('www-authenticate'));
  assert.equal(ours.headers.get('content-type'), 'application/problem+json');
}

for (const alg of ['EdDSA', 'ES256', 'RS256']) {
  describe(`tokens signed with ${alg}`, () => {
    let server, auth, api, user, admin;

    before(async () => {
      server = await startLatchkey({ LATCHKEY_SIGNING_ALG: alg });
      await server.register('mallory');
      const created = server.cli(['user', 'create', '--username', 'ada', '--role', 'admin', '--password-stdin'], 'Gl4cier-Marmot-Tandem-Quill-77');
      assert.equal(created.status, 0, created.stderr);
      user = await server.login('mallory');
      admin = await server.login('ada');
      auth = latchkey({ issuer: server.issuer, audience: server.issuer, cooldown: 1000 });
      api = await serve(appFor(auth));
    });
    after(async () => {
      await api?.close();
      await server?.stop();
    });

    test('a valid token passes and its claims are on req.auth', async () => {
      assert.equal(jwtHeader(user.access_token).alg, alg);
      const r = await get(`${api.url}/me`, user.access_token);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { sub: user.user.id, roles: [] });
      const again = await get(`${api.url}/me`, user.access_token);
      assert.equal(again.status, 200);
      const maybe = await get(`${api.url}/maybe`, user.access_token);
      assert.deepEqual(maybe.body, { sub: user.user.id });
    });

    test('no token: 401 without an error code, exactly like Latchkey; optional() lets it through', async () => {
      const r = await get(`${api.url}/me`);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="latchkey"');
      assert.equal(r.body.detail, 'no bearer token');
      assertSameRefusal(r, await latchkeySays(server));
      const maybe = await get(`${api.url}/maybe`);
      assert.deepEqual(maybe.body, { sub: null });
      const bad = await get(`${api.url}/maybe`, 'not.a.token');
      assert.equal(bad.status, 401, 'optional() still refuses a bad token');
    });

    test('forged tokens are refused with the same body and challenge as Latchkey', async () => {
      const header = jwtHeader(user.access_token);
      const payload = jwtPayload(user.access_token);
      const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json();
      const jwk = jwks.keys.find((k) => k.kid === header.kid);
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const [, , sig] = user.access_token.split('.');
      const other = await generateKeyPair('EdDSA');
      const cases = {
        garbage: ['not-a-jwt', 'the token is malformed'],
        'alg none': [`${b64({ ...header, alg: 'none' })}.${b64(payload)}.`, 'the token is malformed'],
        'HS256 signed with the public key': [
          await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: header.kid }).sign(new TextEncoder().encode(pem)),
          'the token uses a refused algorithm',
        ],
        'unknown kid': [
          await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'no-such-key' }).sign(other.privateKey),
          'the token is signed by an unknown key',
        ],
        'changed claims': [`${b64(header)}.${b64({ ...payload, roles: ['admin'] })}.${sig}`, 'the token signature is invalid'],
        'not an access token': [`${b64({ ...header, typ: 'JWT' })}.${b64(payload)}.${sig}`, 'the token is not an access token'],
      };
      for (const [name, [token, detail]] of Object.entries(cases)) {
        const ours = await get(`${api.url}/me`, token);
        assert.equal(ours.status, 401, name);
        assert.equal(ours.body.detail, detail, name);
        assert.equal(ours.body.code, 'invalid_token', name);
        assert.equal(ours.headers.get('www-authenticate'), 'Bearer realm="latchkey", error="invalid_token"', name);
        assertSameRefusal(ours, await latchkeySays(server, token));
      }
    });

    test('an expired token is refused, also when it was cached while valid', async () => {
      let clock = Date.now();
      const timed = latchkey({ issuer: server.issuer, audience: server.issuer, now: () => clock });
      const fresh = await server.login('mallory');
      assert.equal((await timed.verify(fresh.access_token)).sub, user.user.id);
      const { exp } = jwtPayload(fresh.access_token);
      clock = (exp + 29) * 1000; // within the 30 s leeway
      assert.equal((await timed.verify(fresh.access_token)).sub, user.user.id);
      clock = (exp + 31) * 1000;
      await assert.rejects(timed.verify(fresh.access_token), { reason: 'expired', message: 'the token has expired' });
      const uncached = await server.login('mallory');
      await assert.rejects(timed.verify(uncached.access_token), { reason: 'expired' });
    });

    test('a token for another audience is refused', async () => {
      const sibling = await server.sibling({ LATCHKEY_AUDIENCE: 'https://other-api.example' });
      const token = (await sibling.login('mallory')).access_token;
      assert.equal(jwtPayload(token).aud, 'https://other-api.example');
      assert.equal(jwtHeader(token).kid, jwtHeader(user.access_token).kid, 'same key, only aud differs');
      const r = await get(`${api.url}/me`, token);
      assert.equal(r.status, 401);
      assert.equal(r.body.detail, 'the token was not issued for this service');
      const forOther = latchkey({ issuer: server.issuer, audience: 'https://other-api.example' });
      assert.equal((await forOther.verify(token)).sub, user.user.id, 'the audience is what is refused');
      await assert.rejects(forOther.verify(user.access_token), { reason: 'wrong_audience' });
    });

    test('a token of another issuer signed with a trusted key is refused', async () => {
      const sibling = await server.sibling({ LATCHKEY_ISSUER: 'http://evil.example', LATCHKEY_AUDIENCE: server.issuer });
      const token = (await sibling.login('mallory')).access_token;
      assert.equal(jwtPayload(token).iss, 'http://evil.example');
      assert.equal(jwtPayload(token).aud, server.issuer);
      const r = await get(`${api.url}/me`, token);
      assert.equal(r.status, 401);
      assert.equal(r.body.detail, 'the token was not issued for this service');
    });

    test('a discovery document naming another issuer is refused (503, nothing verifies)', async () => {
      const wrong = latchkey({ issuer: `${server.issuer}/`, audience: server.issuer });
      await assert.rejects(wrong.verify(user.access_token), { reason: 'issuer_unavailable', status: 503 });
      const app = await serve(appFor(wrong));
      try {
        const r = await get(`${app.url}/me`, user.access_token);
        assert.equal(r.status, 503);
        assert.equal(r.body.code, 'issuer_unavailable');
      } finally {
        await app.close();
      }
    });

    test('roles: 403 insufficient_permission without the role, 200 with it', async () => {
      const ok = await get(`${api.url}/admin`, admin.access_token);
      assert.equal(ok.status, 200);
      assert.equal((await get(`${api.url}/staff`, admin.access_token)).status, 200);
      const no = await get(`${api.url}/admin`, user.access_token);
      assert.equal(no.status, 403);
      assert.deepEqual(no.body, {
        type: 'https://latchkey.dev/problems/insufficient-permission',
        title: 'Insufficient permission',
        status: 403,
        detail: 'you are not allowed to do this',
        code: 'insufficient_permission',
      });
      assert.equal(no.headers.get('www-authenticate'), 'Bearer realm="latchkey", error="insufficient_scope"');
      // Latchkey's own admin API refuses the same way.
      const theirs = await get(`${server.url}/admin/users`, user.access_token);
      assertSameRefusal(no, theirs);
      assert.equal((await get(`${api.url}/admin`)).status, 401);
    });

    test('unknown kids make the JWKS refetch at most once per cooldown', async () => {
      let jwksFetches = 0;
      const counting = (url, init) => {
        if (String(url).endsWith('/jwks.json')) jwksFetches += 1;
        return fetch(url, init);
      };
      const a = latchkey({ issuer: server.issuer, audience: server.issuer, fetch: counting, cooldown: 60_000 });
      await a.verify(user.access_token);
      assert.equal(jwksFetches, 1);
      const other = await generateKeyPair('EdDSA');
      for (let i = 0; i < 20; i++) {
        const t = await new SignJWT(jwtPayload(user.access_token))
          .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: `made-up-${i}` })
          .sign(other.privateKey);
        await assert.rejects(a.verify(t), { reason: 'unknown_key' });
      }
      assert.equal(jwksFetches, 1, 'within the cooldown, no refetch');
    });

    test('a key rotation is picked up without a restart', async () => {
      // The normal rotation: the new key is published first and signs 2 s later; the old one
      // stays published (`--now`, the compromise path, would withdraw it).
      const args = ['keys', 'rotate'];
      const oldKid = jwtHeader(user.access_token).kid;
      const rotated = server.cli(args);
      assert.equal(rotated.status, 0, rotated.stderr);
      let token;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        token = (await server.login('mallory')).access_token;
        if (jwtHeader(token).kid !== oldKid) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.notEqual(jwtHeader(token).kid, oldKid, 'Latchkey signs with the new key');
      assert.equal(jwtHeader(token).alg, alg);
      await new Promise((r) => setTimeout(r, 1100)); // past this verifier's 1 s cooldown
      const r = await get(`${api.url}/me`, token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((await get(`${api.url}/me`, user.access_token)).status, 200, 'the old key stays published');
    });
  });
}

test('keys are refetched when the JWKS Cache-Control max-age runs out, even within the unknown-kid cooldown', async () => {
  const server = await startLatchkey();
  try {
    await server.register('kim');
    const first = (await server.login('kim')).access_token;
    let jwksFetches = 0;
    const maxAgeOne = async (url, init) => {
      const r = await fetch(url, init);
      if (!String(url).endsWith('/jwks.json')) return r;
      jwksFetches += 1;
      const headers = new Headers(r.headers);
      headers.set('cache-control', 'public, max-age=1');
      return new Response(await r.arrayBuffer(), { status: r.status, headers });
    };
    const auth = latchkey({ issuer: server.issuer, audience: server.issuer, fetch: maxAgeOne, cooldown: 600_000 });
    await auth.verify(first);
    await auth.verify((await server.login('kim')).access_token);
    assert.equal(jwksFetches, 1, 'adopting the max-age costs no extra fetch');
    assert.equal(server.cli(['keys', 'rotate']).status, 0);
    let token = first;
    const deadline = Date.now() + 30_000;
    while (jwtHeader(token).kid === jwtHeader(first).kid && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      token = (await server.login('kim')).access_token;
    }
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await auth.verify(token)).sub, jwtPayload(token).sub);
    assert.equal(jwksFetches, 2, 'one refetch, because max-age ran out (the cooldown forbids unknown-kid refetches)');
  } finally {
    await server.stop();
  }
});

test('while Latchkey is unreachable the cached keys stay in use', async () => {
  const server = await startLatchkey();
  let stopped = false;
  try {
    await server.register('lou');
    const [a, b] = [(await server.login('lou')).access_token, (await server.login('lou')).access_token];
    const auth = latchkey({ issuer: server.issuer, audience: server.issuer, maxAge: 1000 });
    await auth.verify(a);
    await server.stop();
    stopped = true;
    await new Promise((r) => setTimeout(r, 1100)); // the keys are now stale
    assert.equal((await auth.verify(b)).sub, jwtPayload(b).sub, 'a new token verifies with the cached keys');
    const other = await generateKeyPair('EdDSA');
    const forged = await new SignJWT(jwtPayload(b)).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'nope' }).sign(other.privateKey);
    await assert.rejects(auth.verify(forged), { reason: 'unknown_key' });
  } finally {
    if (!stopped) await server.stop();
  }
});
