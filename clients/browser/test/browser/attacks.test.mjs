// Attacks from a real browser: a page on another site (http://evil.test, mapped to loopback)
// cannot refresh, log out or read anything; a script injected into the app's own page cannot
// obtain the refresh token.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";

import { freePort, launch, openPage, register, screenshotsOnFailure, startStack } from "../support/stack.mjs";

const refreshCookie = async (context, issuer) =>
  (await context.cookies(`${issuer}/auth/refresh`)).find((c) => c.name === "refresh_token")?.value;

describe("attacks", () => {
  let stack;
  let browser;
  let evil;
  let evilOrigin;
  before(async () => {
    stack = await startStack();
    browser = await launch();
    const port = await freePort();
    evilOrigin = `http://evil.test:${port}`;
    evil = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>Win a prize</title><h1>Win a prize</h1>");
    });
    await new Promise((ok) => evil.listen(port, "127.0.0.1", ok));
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
    await new Promise((ok) => (evil ? evil.close(ok) : ok()));
  });

  it("a page on another site cannot refresh, log out or read any answer", async () =>
    screenshotsOnFailure("attack-cross-site", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const app = await openPage(context, errors);
      await app.goto(stack.app);
      await register(app, "victim");
      const cookie = await refreshCookie(context, stack.issuer);
      assert.ok(cookie);

      const seen = [];
      let attacker = null;
      const pending = [];
      const statuses = [];
      const fromAttacker = (r) => attacker && r.url().startsWith(`${stack.issuer}/auth/`) && r.frame().page() === attacker;
      context.on("request", (r) => {
        if (!fromAttacker(r) || r.method() !== "POST") return;
        pending.push(
          r.allHeaders().then((headers) => {
            seen.push({ path: new URL(r.url()).pathname, cookie: /refresh_token=/.test(headers.cookie ?? "") });
          }),
        );
      });
      context.on("response", (r) => {
        if (fromAttacker(r.request()) && r.request().method() === "POST") statuses.push(r.status());
      });
      attacker = await context.newPage();
      await attacker.goto(evilOrigin);

      // The attacker's script: every way fetch offers. Nothing readable comes back.
      const outcomes = await attacker.evaluate(
        async ({ issuer, files }) => {
          const attempt = async (url, init) => {
            try {
              const response = await fetch(url, init);
              return { type: response.type, status: response.status, body: await response.text() };
            } catch (e) {
              return { error: e.name };
            }
          };
          return {
            refresh: await attempt(`${issuer}/auth/refresh`, { method: "POST", credentials: "include" }),
            refreshOpaque: await attempt(`${issuer}/auth/refresh`, { method: "POST", credentials: "include", mode: "no-cors" }),
            logoutOpaque: await attempt(`${issuer}/auth/logout`, { method: "POST", credentials: "include", mode: "no-cors" }),
            login: await attempt(`${issuer}/auth/login`, {
              method: "POST",
              credentials: "include",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ username: "victim", password: "guess" }),
            }),
            jwks: await attempt(`${issuer}/.well-known/jwks.json`, {}),
            files: await attempt(`${files}/files`, { headers: { authorization: "Bearer x" } }),
          };
        },
        { issuer: stack.issuer, files: stack.files },
      );
      assert.deepEqual(outcomes.refresh, { error: "TypeError" }, "CORS refuses the attacker's origin");
      // no-cors: at best an opaque, empty answer; Chromium even refuses it outright, because
      // Latchkey sends Cross-Origin-Resource-Policy: same-origin.
      for (const o of [outcomes.refreshOpaque, outcomes.logoutOpaque]) {
        assert.ok(o.error === "TypeError" || (o.type === "opaque" && o.status === 0 && o.body === ""), JSON.stringify(o));
      }
      assert.deepEqual(outcomes.login, { error: "TypeError" });
      assert.deepEqual(outcomes.files, { error: "TypeError" });
      assert.deepEqual(outcomes.jwks, { error: "TypeError" });

      // A form posted cross-site (a top-level navigation): refused by the Origin check.
      for (const path of ["/auth/refresh", "/auth/logout"]) {
        await attacker.goto(evilOrigin);
        const answered = attacker.waitForResponse((r) => r.url() === `${stack.issuer}${path}`);
        await attacker.evaluate((action) => {
          const form = document.createElement("form");
          form.method = "POST";
          form.action = action;
          document.body.append(form);
          form.submit();
        }, `${stack.issuer}${path}`);
        const response = await answered;
        assert.equal(response.status(), 403, path);
        assert.equal((await response.json()).code, "csrf_rejected", path);
      }

      // What the server saw: no refresh cookie sent cross-site (SameSite=Strict), and each
      // refresh or logout refused 403 by the Origin check anyway.
      await Promise.all(pending);
      const stateChanging = seen.filter((s) => s.path === "/auth/refresh" || s.path === "/auth/logout");
      assert.ok(stateChanging.length >= 5, JSON.stringify(seen));
      assert.deepEqual(stateChanging.filter((s) => s.cookie), [], "no refresh cookie went cross-site");
      assert.ok(statuses.length >= 2, `${statuses}`);
      assert.deepEqual(statuses.filter((s) => s !== 403), [], `${statuses}`);

      // The victim's login is untouched: same cookie, and the app still restores.
      assert.equal(await refreshCookie(context, stack.issuer), cookie);
      await app.reload();
      await app.locator("body[data-state=signed-in]").waitFor();
      assert.deepEqual(errors, []);
      await context.close();
    }));

  it("a script injected into the app's page cannot obtain the refresh token", async () =>
    screenshotsOnFailure("attack-injected-script", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const app = await openPage(context, errors);
      await app.goto(stack.app);
      await register(app, "mallory-target");
      const before = await refreshCookie(context, stack.issuer);

      // Everything an injected script can reach, including a refresh of its own.
      const loot = await app.evaluate(async (issuer) => {
        const text = [document.cookie, document.documentElement.outerHTML];
        for (const store of [localStorage, sessionStorage]) {
          for (let i = 0; i < store.length; i++) text.push(store.key(i), store.getItem(store.key(i)));
        }
        const response = await fetch(`${issuer}/auth/refresh`, { method: "POST", credentials: "include" });
        text.push(String(response.status), JSON.stringify([...response.headers]), await response.text());
        text.push(JSON.stringify(performance.getEntries().map((e) => e.name)));
        return { setCookie: response.headers.get("set-cookie"), text: text.join("\n") };
      }, stack.issuer);
      const after = await refreshCookie(context, stack.issuer);
      assert.notEqual(after, before, "the injected refresh did rotate the cookie (it acts as the user)");
      assert.equal(loot.setCookie, null);
      assert.ok(!loot.text.includes(before), "the old refresh token never reached the script");
      assert.ok(!loot.text.includes(after), "nor the new one");
      assert.match(loot.text, /"access_token"/, "an injected script can get an access token: it expires (10 min)");
      assert.deepEqual(errors, []);
      await context.close();
    }));
});
