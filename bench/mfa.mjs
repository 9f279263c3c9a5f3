// Logins/s with a second factor (TOTP) against password alone, and the server time of each
// step (issue 12 "Measures"). Driven by bench/mfa.sh, which starts the server; this script
// needs only Node 20 (fetch keeps connections alive).
//
// 1. Registers USERS password-only users and USERS users with TOTP (enrolled over the API; the
//    codes are computed here from RFC 6238).
// 2. Password logins/s: CONCURRENCY workers log the password-only users in for DURATION s.
// 3. TOTP logins/s: the same workers do the two-step login (POST /auth/login, then
//    POST /auth/login/mfa with the current code), each TOTP user once (a code is accepted once).
// 4. Server time per step: the server's CPU time (the sum of its threads' schedstat, ns) over
//    USERS first steps alone and then USERS second steps alone, sequentially, divided by USERS;
//    and the client-side latency of each step (p50/p99).
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

const BASE = process.env.BASE;
const PID = process.env.SERVER_PID;
const USERS = Number(process.env.MFA_USERS ?? 300);
const CONCURRENCY = Number(process.env.MFA_CONCURRENCY ?? 8);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const PASSWORD = 'correct horse battery staple 7';

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp(key, unix) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[19] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

async function post(path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${BASE}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const json = await r.json().catch(() => null);
  return { status: r.status, body: json };
}

/** CPU time of the server process so far, in ns (all threads). */
function serverCpuNs() {
  let total = 0n;
  for (const task of readdirSync(`/proc/${PID}/task`)) {
    try {
      total += BigInt(readFileSync(`/proc/${PID}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended in between
    }
  }
  return total;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
const ms = (ns) => (Number(ns) / 1e6).toFixed(3);

async function pool(n, work) {
  await Promise.all(Array.from({ length: n }, (_, i) => work(i)));
}

async function setup() {
  const plain = [];
  const mfa = [];
  await pool(CONCURRENCY, async (w) => {
    for (let i = w; i < USERS; i += CONCURRENCY) {
      const p = `plain-${i}`;
      const m = `mfa-${i}`;
      for (const name of [p, m]) {
        const r = await post('/auth/register', { username: name, password: PASSWORD });
        if (r.status !== 201) throw new Error(`register ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      }
      plain.push(p);
      const login = await post('/auth/login', { username: m, password: PASSWORD });
      const token = login.body.access_token;
      const enrol = await post('/auth/mfa/totp', {}, token);
      if (enrol.status !== 200) throw new Error(`enrol: ${enrol.status}`);
      const key = base32(enrol.body.secret);
      const confirm = await post('/auth/mfa/totp/confirm', { code: totp(key, Date.now() / 1000) }, token);
      if (confirm.status !== 200) throw new Error(`confirm: ${confirm.status}`);
      mfa.push({ name: m, key, lastStep: Math.floor(Date.now() / 1000 / 30) });
    }
  });
  return { plain, mfa };
}

/** A user whose last accepted step is behind the current one (each code is accepted once). */
function takeFresh(mfa, cursor) {
  const step = Math.floor(Date.now() / 1000 / 30);
  for (let tries = 0; tries < mfa.length; tries++) {
    const u = mfa[cursor.i++ % mfa.length];
    if (u.lastStep < step) {
      u.lastStep = step;
      return u;
    }
  }
  return undefined;
}

async function passwordPhase(plain) {
  let count = 0;
  let failed = 0;
  const end = Date.now() + DURATION * 1000;
  let next = 0;
  const start = Date.now();
  await pool(CONCURRENCY, async () => {
    while (Date.now() < end) {
      const name = plain[next++ % plain.length];
      const r = await post('/auth/login', { username: name, password: PASSWORD });
      if (r.status === 200 && r.body.access_token) count++;
      else failed++;
    }
  });
  return { rate: count / ((Date.now() - start) / 1000), count, failed };
}

/** Sleeps until the next 30 s TOTP step begins (every user's confirming code is then spent). */
async function nextStep() {
  const step = Math.floor(Date.now() / 1000 / 30);
  await new Promise((ok) => setTimeout(ok, ((step + 1) * 30 - Date.now() / 1000) * 1000 + 50));
}

async function totpPhase(mfa) {
  await nextStep();
  let count = 0;
  let failed = 0;
  let exhausted = false;
  const cursor = { i: 0 };
  const end = Date.now() + DURATION * 1000;
  const start = Date.now();
  await pool(CONCURRENCY, async () => {
    while (Date.now() < end) {
      const u = takeFresh(mfa, cursor);
      if (u === undefined) {
        exhausted = true;
        break;
      }
      const first = await post('/auth/login', { username: u.name, password: PASSWORD });
      if (first.status !== 200 || !first.body.mfa_required) {
        failed++;
        continue;
      }
      const second = await post('/auth/login/mfa', { mfa_token: first.body.mfa_token, totp: totp(u.key, Date.now() / 1000) });
      if (second.status === 200 && second.body.access_token) count++;
      else failed++;
    }
  });
  return { rate: count / ((Date.now() - start) / 1000), count, failed, exhausted };
}

/** Server CPU and client latency of each step alone, one request at a time. */
async function stepCosts(mfa) {
  await nextStep(); // a fresh step, so every user has a code to give
  const users = mfa.slice(0, USERS);
  const tokens = [];
  const firstLatency = [];
  const cpu0 = serverCpuNs();
  for (const u of users) {
    const t = process.hrtime.bigint();
    const r = await post('/auth/login', { username: u.name, password: PASSWORD });
    firstLatency.push(process.hrtime.bigint() - t);
    if (!r.body?.mfa_token) throw new Error(`step 1: ${r.status}`);
    tokens.push(r.body.mfa_token);
  }
  const cpu1 = serverCpuNs();
  const secondLatency = [];
  let failed = 0;
  const now = Date.now() / 1000;
  for (let i = 0; i < users.length; i++) {
    const t = process.hrtime.bigint();
    const r = await post('/auth/login/mfa', { mfa_token: tokens[i], totp: totp(users[i].key, now) });
    secondLatency.push(process.hrtime.bigint() - t);
    if (r.status !== 200) failed++;
  }
  const cpu2 = serverCpuNs();
  firstLatency.sort((a, b) => (a < b ? -1 : 1));
  secondLatency.sort((a, b) => (a < b ? -1 : 1));
  return {
    n: users.length,
    failed,
    firstCpu: (cpu1 - cpu0) / BigInt(users.length),
    secondCpu: (cpu2 - cpu1) / BigInt(users.length),
    first: [pct(firstLatency, 50), pct(firstLatency, 99)],
    second: [pct(secondLatency, 50), pct(secondLatency, 99)],
  };
}

const t0 = Date.now();
const { plain, mfa } = await setup();
console.log(`setup: ${USERS} password users and ${USERS} TOTP users in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
const pw = await passwordPhase(plain);
const tp = await totpPhase(mfa);
const costs = await stepCosts(mfa);
console.log('');
console.log('| measure | value |');
console.log('|---|---|');
console.log(`| password logins/s (${CONCURRENCY} concurrent, ${DURATION} s) | ${pw.rate.toFixed(1)} (${pw.count} ok, ${pw.failed} failed) |`);
console.log(`| TOTP logins/s, both steps (${CONCURRENCY} concurrent) | ${tp.rate.toFixed(1)} (${tp.count} ok, ${tp.failed} failed${tp.exhausted ? ', ran out of fresh TOTP users: raise MFA_USERS' : ''}) |`);
console.log(`| ratio TOTP / password | ${(tp.rate / pw.rate).toFixed(3)} |`);
console.log(`| server CPU per step 1 (password, answers mfa_token), ${costs.n} sequential | ${ms(costs.firstCpu)} ms |`);
console.log(`| server CPU per step 2 (POST /auth/login/mfa with TOTP), ${costs.n} sequential | ${ms(costs.secondCpu)} ms${costs.failed ? ` (${costs.failed} failed)` : ''} |`);
console.log(`| client latency step 1 p50 / p99 | ${ms(costs.first[0])} / ${ms(costs.first[1])} ms |`);
console.log(`| client latency step 2 p50 / p99 | ${ms(costs.second[0])} / ${ms(costs.second[1])} ms |`);
