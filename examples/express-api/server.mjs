// Runs the Express files API: FILES_ISSUER (required), FILES_AUDIENCE (default: the issuer),
// FILES_LISTEN (default 127.0.0.1:8081), FILES_ALLOWED_ORIGINS (comma-separated, for the demo
// SPA), FILES_DATA (a JSON file to keep files in; default: memory only).
import { latchkey } from '@latchkey/express';

import { createApp } from './app.mjs';

const issuer = process.env.FILES_ISSUER;
if (!issuer) {
  console.error('FILES_ISSUER is required (the Latchkey URL, exactly as in the tokens\' iss)');
  process.exit(2);
}
const auth = latchkey({ issuer, audience: process.env.FILES_AUDIENCE || issuer });
const origins = (process.env.FILES_ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
const [host, port] = (process.env.FILES_LISTEN ?? '127.0.0.1:8081').split(/:(?=\d+$)/);
await auth.ready().catch((e) => console.warn(`keys not loaded yet (${e.message}); retrying at the first request`));
createApp({ auth, origins, file: process.env.FILES_DATA }).listen(Number(port), host, () => {
  console.log(`express files API on http://${host}:${port}, trusting ${issuer}`);
});
