// LatchkeyStrategy through passport.authenticate, against a real Latchkey.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import express from 'express';
import passport from 'passport';

import { LatchkeyStrategy, latchkeyErrorHandler } from '@latchkey/express/passport';
import { get, serve } from './support/express.mjs';
import { startLatchkey } from './support/latchkey.mjs';

let server, api, user;

before(async () => {
  server = await startLatchkey();
  await server.register('pat');
  user = await server.login('pat');
  passport.use(new LatchkeyStrategy({ issuer: server.issuer, audience: server.issuer }));
  passport.use(
    'latchkey-user',
    new LatchkeyStrategy({ issuer: server.issuer, audience: server.issuer }, (claims, done) => done(null, { id: claims.sub, admin: claims.roles.includes('admin') })),
  );
  const app = express();
  app.use(passport.initialize());
  app.get('/me', passport.authenticate('latchkey', { session: false }), (req, res) => res.json({ sub: req.user.sub }));
  app.get('/mapped', passport.authenticate('latchkey-user', { session: false }), (req, res) => res.json(req.user));
  app.get('/problem', passport.authenticate('latchkey', { session: false, failWithError: true }), (req, res) => res.json({ sub: req.user.sub }));
  app.use(latchkeyErrorHandler());
  api = await serve(app);
});
after(async () => {
  await api?.close();
  await server?.stop();
});

test('a valid token authenticates; req.user is the claims or what verify() made of them', async () => {
  assert.deepEqual((await get(`${api.url}/me`, user.access_token)).body, { sub: user.user.id });
  assert.deepEqual((await get(`${api.url}/mapped`, user.access_token)).body, { id: user.user.id, admin: false });
});

test('refusals carry the RFC 6750 challenge; with failWithError the body is Latchkey problem+json', async () => {
  const none = await get(`${api.url}/me`);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="latchkey"');
  const bad = await get(`${api.url}/me`, 'a.b.c');
  assert.equal(bad.status, 401);
  assert.equal(bad.headers.get('www-authenticate'), 'Bearer realm="latchkey", error="invalid_token"');
  const problem = await get(`${api.url}/problem`, 'a.b.c');
  const theirs = await get(`${server.url}/auth/me`, 'a.b.c');
  assert.equal(problem.status, 401);
  assert.deepEqual(problem.body, theirs.body);
  assert.equal(problem.headers.get('content-type'), 'application/problem+json');
  assert.equal(problem.headers.get('www-authenticate'), theirs.headers.get('www-authenticate'));
});

test('the CommonJS build loads with require()', () => {
  const require = createRequire(import.meta.url);
  const cjs = require('@latchkey/express');
  assert.equal(typeof cjs.latchkey, 'function');
  assert.equal(typeof require('@latchkey/express/passport').LatchkeyStrategy, 'function');
});
