// The demo app in a real Chromium against a real Latchkey and files-api: log in, files, reload,
// the HttpOnly cookie, no token in any storage, bad credentials, sessions, logout.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { launch, login, openPage, PASSWORD, register, screenshotsOnFailure, startStack } from "../support/stack.mjs";

describe("the demo app", () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startStack();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it("logs in, lists and uploads files, and stays signed in across a reload", async () =>
    screenshotsOnFailure("app-login-files-reload", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const page = await openPage(context, errors);
      const tokens = [];
      page.on("response", async (response) => {
        if (/\/auth\/(login|refresh)$/.test(response.url()) && response.ok()) {
          tokens.push((await response.json()).access_token);
        }
      });
      await page.goto(stack.app);
      await page.locator("body[data-state=signed-out]").waitFor();
      await register(page, "olive");
      assert.equal(await page.locator("#whoami").textContent(), "Signed in as olive");
      await page.locator("#files li", { hasText: "No files yet." }).waitFor();

      const upload = page.locator("#upload-form");
      await upload.locator("[name=name]").fill("plan.txt");
      await upload.locator("[name=content]").fill("step one");
      const created = page.waitForResponse((r) => r.url() === `${stack.files}/files` && r.request().method() === "POST");
      await upload.locator("button").click();
      assert.equal((await created).status(), 201);
      await page.locator("#files li", { hasText: "plan.txt (owner" }).waitFor();
      await page.locator("#sessions li", { hasText: "This device" }).waitFor();

      // The refresh cookie: HttpOnly, SameSite=Strict, Path=/auth, on Latchkey's host.
      const cookies = await context.cookies(stack.issuer + "/auth/refresh");
      const refresh = cookies.find((c) => c.name === "refresh_token");
      assert.ok(refresh, JSON.stringify(cookies));
      assert.equal(refresh.httpOnly, true);
      assert.equal(refresh.sameSite, "Strict");
      assert.equal(refresh.path, "/auth");

      // Reload: restored from the cookie, with one refresh.
      const refreshed = page.waitForResponse((r) => r.url() === `${stack.issuer}/auth/refresh`);
      await page.reload();
      assert.equal((await refreshed).status(), 200);
      await page.locator("body[data-state=signed-in]").waitFor();
      assert.equal(await page.locator("#whoami").textContent(), "Signed in as olive");
      await page.locator("#files li", { hasText: "plan.txt" }).waitFor();

      // No token anywhere a script could find it later.
      const newCookie = (await context.cookies(stack.issuer + "/auth")).find((c) => c.name === "refresh_token");
      assert.notEqual(newCookie.value, refresh.value, "the reload rotated the refresh token");
      const secrets = [...tokens, refresh.value, newCookie.value];
      assert.ok(tokens.length >= 2 && tokens.every((t) => t.split(".").length === 3));
      const found = await page.evaluate(async (secrets) => {
        const dump = [];
        dump.push(document.cookie);
        for (const store of [localStorage, sessionStorage]) {
          for (let i = 0; i < store.length; i++) dump.push(store.key(i), store.getItem(store.key(i)));
        }
        const dbs = indexedDB.databases ? await indexedDB.databases() : [];
        dump.push(JSON.stringify(dbs));
        dump.push(JSON.stringify(await caches.keys()));
        dump.push(document.documentElement.outerHTML);
        const text = dump.join("\n");
        return { cookie: document.cookie, dbs: dbs.length, leaked: secrets.filter((s) => text.includes(s)).length };
      }, secrets);
      assert.deepEqual(found, { cookie: "", dbs: 0, leaked: 0 });
      assert.deepEqual(errors, []);
      await context.close();
    }));

  it("reports wrong credentials and a server that is down, without an unhandled rejection", async () =>
    screenshotsOnFailure("app-bad-input", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const page = await openPage(context, errors);
      await page.goto(stack.app);
      await page.locator("body[data-state=signed-out]").waitFor();
      await login(page, "nobody", "not the password at all");
      await page.locator("#status", { hasText: "invalid_credentials" }).waitFor();
      assert.equal(await page.getAttribute("body", "data-state"), "signed-out");

      // Latchkey unreachable: the page says so instead of pretending the user is signed out.
      await context.route(`${stack.issuer}/**`, (route) => route.abort("connectionrefused"));
      await page.reload();
      await page.locator("body[data-state=error]").waitFor({ timeout: 20_000 });
      assert.match(await page.locator("#status").textContent(), /Cannot reach the server/);
      assert.deepEqual(errors, []);
      await context.close();
    }));

  it("lists sessions, signs out another device, logs out and stays logged out", async () =>
    screenshotsOnFailure("app-sessions-logout", browser, async () => {
      const errors = [];
      const laptop = await browser.newContext();
      const phone = await browser.newContext({ userAgent: "Phone/1.0" });
      const onLaptop = await openPage(laptop, errors);
      const onPhone = await openPage(phone, errors);
      await onLaptop.goto(stack.app);
      await register(onLaptop, "rita");
      await onPhone.goto(stack.app);
      await login(onPhone, "rita", PASSWORD);
      await onPhone.locator("body[data-state=signed-in]").waitFor();
      await onLaptop.reload();
      await onLaptop.locator("#sessions li", { hasText: "Phone/1.0" }).waitFor();
      assert.equal(await onLaptop.locator("#sessions li").count(), 2);

      // "Sign out" on the phone's row: the phone's refresh cookie dies.
      await onLaptop.locator("#sessions li", { hasText: "Phone/1.0" }).locator("button").click();
      await onLaptop.locator("#sessions li", { hasText: "Phone/1.0" }).waitFor({ state: "detached" });
      await onPhone.reload();
      await onPhone.locator("body[data-state=signed-out]").waitFor();

      // Log out on the laptop: signed out, and still signed out after a reload.
      await onLaptop.locator("#logout").click();
      await onLaptop.locator("body[data-state=signed-out]").waitFor();
      await onLaptop.reload();
      await onLaptop.locator("body[data-state=signed-out]").waitFor();
      assert.deepEqual(errors, []);
      await laptop.close();
      await phone.close();
    }));
});
