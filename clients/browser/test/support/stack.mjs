// Starts the real stack for browser tests, the screenshot and the benchmark: Latchkey and
// files-api (the debug binaries in target/debug, or LATCHKEY_BIN / FILES_API_BIN), and the demo
// app's static server, each on a free loopback port; and Debian's Chromium via playwright-core.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
export const SHOTS = join(ROOT, "test-results/browser");
export const PASSWORD = "quartz lantern ferry mosaic 71";

export { start };

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

async function waitFor(url, child, name, output) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${output()}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not answer ${url} within 20 s:\n${output()}`);
}

function start(name, command, args, env, cwd) {
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const keep = (chunk) => {
    log = (log + chunk).slice(-8_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  return { child, output: () => log };
}

/**
 * Latchkey on http://localhost:L, files-api on http://localhost:F and the demo app on
 * http://localhost:A (one site: the refresh cookie flows with `credentials: "include"`; three
 * origins: CORS and Latchkey's Origin check are exercised). `latchkey` adds LATCHKEY_* settings:
 * an object, or an async function of `{ issuer, app, dir, track }` returning one (`track(child)`
 * stops another process with the stack).
 */
export async function startStack({ latchkey = {} } = {}) {
  const bin = (variable, name) => {
    const path = process.env[variable] ?? join(ROOT, "target/debug", name);
    if (!existsSync(path)) throw new Error(`${path} is missing: run cargo build -p latchkey -p files-api (or set ${variable})`);
    return path;
  };
  const latchkeyBin = bin("LATCHKEY_BIN", "latchkey");
  const filesBin = bin("FILES_API_BIN", "files-api");
  const [l, f, a] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "latchkey-browser-"));
  const issuer = `http://localhost:${l}`;
  const files = `http://localhost:${f}`;
  const app = `http://localhost:${a}`;
  const processes = [];
  const stop = async () => {
    await Promise.all(
      processes.map(
        ({ child }) =>
          new Promise((ok) => {
            if (child.exitCode !== null) return ok();
            child.once("exit", ok);
            child.kill("SIGTERM");
            setTimeout(() => child.kill("SIGKILL"), 3_000).unref();
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const extra =
      typeof latchkey === "function"
        ? await latchkey({ issuer, app, dir, track: (child, output = () => "") => processes.push({ child, output }) })
        : latchkey;
    const server = start(
      "latchkey",
      latchkeyBin,
      ["serve"],
      {
        LATCHKEY_LISTEN: `127.0.0.1:${l}`,
        LATCHKEY_ISSUER: issuer,
        LATCHKEY_DATABASE_URL: `sqlite://${join(dir, "latchkey.db")}`,
        LATCHKEY_COOKIE_SECURE: "false",
        LATCHKEY_ALLOWED_ORIGINS: app,
        LATCHKEY_ARGON2_MEMORY_KIB: "8192",
        LATCHKEY_ARGON2_ITERATIONS: "1",
        LATCHKEY_LOG: "warn",
        ...extra,
      },
      dir,
    );
    processes.push(server);
    await waitFor(`http://127.0.0.1:${l}/readyz`, server.child, "latchkey", server.output);
    const filesApi = start(
      "files-api",
      filesBin,
      [],
      {
        FILES_LISTEN: `127.0.0.1:${f}`,
        FILES_ISSUER: issuer,
        FILES_DATABASE_URL: `sqlite://${join(dir, "files.db")}`,
        FILES_ALLOWED_ORIGINS: app,
        FILES_LOG: "warn",
      },
      dir,
    );
    processes.push(filesApi);
    await waitFor(`http://127.0.0.1:${f}/healthz`, filesApi.child, "files-api", filesApi.output);
    const spa = start(
      "spa",
      process.execPath,
      [join(ROOT, "examples/spa/server.mjs")],
      { SPA_LISTEN: `127.0.0.1:${a}`, SPA_ISSUER: issuer, SPA_FILES_API: files },
      dir,
    );
    processes.push(spa);
    await waitFor(`http://127.0.0.1:${a}/latchkey.js`, spa.child, "spa", spa.output);
  } catch (e) {
    await stop();
    throw e;
  }
  return { issuer, files, app, stop, logs: () => processes.map((p) => p.output()).join("\n") };
}

/** Debian's Chromium, headless, kept off the network; `evil.test` resolves to loopback. */
export function launch() {
  const executablePath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
  return chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      "--host-resolver-rules=MAP evil.test 127.0.0.1",
    ],
  });
}

/** Runs `body`; when it fails, leaves a screenshot of every page of `browser` in test-results/browser. */
export async function screenshotsOnFailure(name, browser, body) {
  try {
    return await body();
  } catch (e) {
    mkdirSync(SHOTS, { recursive: true });
    const pages = browser.contexts().flatMap((c) => c.pages());
    await Promise.all(
      pages.map((page, i) =>
        page.screenshot({ path: join(SHOTS, `${name.replace(/\W+/g, "-")}-${i}.png`), fullPage: true }).catch(() => {}),
      ),
    );
    throw e;
  }
}

/** A page that records uncaught errors and unhandled rejections (must stay empty). */
export async function openPage(context, errors) {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  return page;
}

/** Registers and logs in through the app's forms; resolves when the app shows the user. */
export async function register(page, username) {
  const form = page.locator("#register-form");
  await form.locator("[name=username]").fill(username);
  await form.locator("[name=password]").fill(PASSWORD);
  await form.locator("button").click();
  await page.locator("body[data-state=signed-in]").waitFor();
}

export async function login(page, username, password = PASSWORD) {
  const form = page.locator("#login-form");
  await form.locator("[name=username]").fill(username);
  await form.locator("[name=password]").fill(password);
  await form.locator("button").click();
}
