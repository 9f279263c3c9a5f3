// The server of bench/express.sh (here so that express and @latchkey/express resolve): one Express app, the same handler twice, once behind
// auth.required() (@latchkey/express) and once without it.
import express from 'express';

import { latchkey } from '@latchkey/express';

const issuer = process.env.BENCH_ISSUER;
const auth = latchkey({ issuer, audience: issuer });
await auth.ready();
const app = express();
app.disable('x-powered-by');
const handler = (req, res) => res.json({ ok: true, sub: req.auth?.sub ?? null });
app.get('/unprotected', handler);
app.get('/protected', auth.required(), handler);
const server = app.listen(Number(process.env.BENCH_PORT), '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
