// A tiny static server for the demo app (no dependencies): serves public/, the built app and
// the @latchkey/browser module at /latchkey.js, with a strict Content-Security-Policy.
//   SPA_LISTEN (127.0.0.1:5173), SPA_ISSUER (http://localhost:8080), SPA_FILES_API (http://localhost:8081)
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [host, port] = (process.env.SPA_LISTEN ?? "127.0.0.1:5173").split(/:(?=\d+$)/);
const issuer = (process.env.SPA_ISSUER ?? "http://localhost:8080").replace(/\/+$/, "");
const filesApi = (process.env.SPA_FILES_API ?? "http://localhost:8081").replace(/\/+$/, "");
const client = join(here, "../../clients/browser/dist");

const routes = {
  "/": [join(here, "public/index.html"), "text/html; charset=utf-8"],
  "/index.html": [join(here, "public/index.html"), "text/html; charset=utf-8"],
  "/style.css": [join(here, "public/style.css"), "text/css; charset=utf-8"],
  "/app.js": [join(here, "dist/app.js"), "text/javascript; charset=utf-8"],
  "/app.js.map": [join(here, "dist/app.js.map"), "application/json"],
  "/latchkey.js": [join(client, "latchkey.js"), "text/javascript; charset=utf-8"],
  "/latchkey.js.map": [join(client, "latchkey.js.map"), "application/json"],
};

const headers = {
  "content-security-policy": `default-src 'self'; connect-src 'self' ${issuer} ${filesApi}; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'`,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

const escape = (s) => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const route = routes[path];
  if (!route || (req.method !== "GET" && req.method !== "HEAD")) {
    res.writeHead(404, { ...headers, "content-type": "text/plain" }).end("not found\n");
    return;
  }
  try {
    let body = await readFile(route[0]);
    if (route[1].startsWith("text/html")) {
      body = body.toString().replace("%ISSUER%", escape(issuer)).replace("%FILES_API%", escape(filesApi));
    }
    res.writeHead(200, { ...headers, "content-type": route[1] }).end(req.method === "HEAD" ? undefined : body);
  } catch {
    res.writeHead(500, { ...headers, "content-type": "text/plain" }).end("not built: run npm run build in clients/browser\n");
  }
});
server.listen(Number(port), host, () => {
  console.log(`demo app on http://${host}:${server.address().port} (issuer ${issuer}, files ${filesApi})`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
