// Part of bench/express.sh: what @latchkey/express spends per call, on one core, independent
// of the load on the machine: a cached token (SHA-256 + LRU lookup) and an uncached one (jose's
// signature check; a cache of one entry and two alternating tokens, so every call misses).
import { latchkey } from '@latchkey/express';

const issuer = process.env.BENCH_ISSUER;
const [a, b] = [process.env.BENCH_TOKEN, process.env.BENCH_TOKEN2];
async function perCall(auth, tokens, n) {
  for (let i = 0; i < 1000; i++) await auth.verify(tokens[i % tokens.length]);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await auth.verify(tokens[i % tokens.length]);
  return Number(process.hrtime.bigint() - start) / n / 1000;
}
const cached = await perCall(latchkey({ issuer, audience: issuer }), [a], 200_000);
const uncached = await perCall(latchkey({ issuer, audience: issuer, cacheSize: 1 }), [a, b], 20_000);
console.log(`verify per call: cached ${cached.toFixed(2)} µs, uncached ${uncached.toFixed(1)} µs`);
