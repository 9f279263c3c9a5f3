// Several tabs of one browser: restoring and refreshing at the same moment never trips reuse
// detection (with Web Locks and BroadcastChannel, and without them, on the server's reuse
// interval alone); an expired access token is refreshed transparently; a logout in one tab
// signs the others out within a second.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { launch, openPage, register, screenshotsOnFailure, startStack } from "../support/stack.mjs";

/** Hides Web Locks and BroadcastChannel from the app, as in browsers that lack them. */
const WITHOUT_COORDINATION = () => {
  Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined, configurable: true });
  delete globalThis.BroadcastChannel;
};

describe("tabs", () => {
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

  for (const coordinated of [true, false]) {
    const how = coordinated ? "with Web Locks and BroadcastChannel" : "without Web Locks or BroadcastChannel";
    it(`two tabs restoring and refreshing at once stay signed in, ${how}`, async () =>
      screenshotsOnFailure(`tabs-${coordinated}`, browser, async () => {
        const context = await browser.newContext();
        if (!coordinated) await context.addInitScript(WITHOUT_COORDINATION);
        await context.clock.install();
        const refreshes = [];
        context.on("response", (r) => {
          if (r.url() === `${stack.issuer}/auth/refresh`) refreshes.push(r.status());
        });
        const errors = [];
        const one = await openPage(context, errors);
        const two = await openPage(context, errors);
        await one.goto(stack.app);
        await register(one, coordinated ? "ada" : "bob");
        refreshes.length = 0; // the first load, signed out, was a 401
        const hasLocks = await one.evaluate(() => !!navigator.locks && typeof BroadcastChannel === "function");
        assert.equal(hasLocks, coordinated);

        // Both tabs load (restore) at the same moment, three times over. A barrier holds each
        // refresh request until the other tab's arrives (or 1.5 s pass, as when the Web Lock
        // makes the second tab wait), so both really reach the server together.
        let waiting = null;
        let paired = 0;
        await context.route(`${stack.issuer}/auth/refresh`, async (route) => {
          if (waiting) {
            const first = waiting;
            waiting = null;
            paired++;
            first();
            return route.continue();
          }
          await new Promise((release) => {
            waiting = release;
            setTimeout(() => {
              if (waiting === release) waiting = null;
              release();
            }, 1_500);
          });
          return route.continue();
        });
        for (let i = 0; i < 3; i++) {
          await Promise.all([one.goto(stack.app), two.goto(stack.app)]);
          await Promise.all([one, two].map((p) => p.locator("body[data-state=signed-in]").waitFor()));
          await Promise.all([one, two].map((p) => p.locator("#files li").first().waitFor()));
        }

        if (!coordinated) assert.ok(paired >= 2, `only ${paired} of 3 loads refreshed concurrently`);
        // The Web Lock serializes the refreshes of live pages. A page that navigates away while
        // its refresh is held at the barrier gives up the lock with its document, so the other
        // tab's refresh can meet that orphaned request once (seen on a loaded machine); the
        // server's reuse interval covers it, and both tabs stayed signed in above.
        if (coordinated) assert.ok(paired <= 1, `${paired} of 3 loads refreshed concurrently despite the lock`);

        // Eleven minutes later the 10-minute access tokens are stale: both tabs upload at once,
        // and each refreshes transparently before calling files-api.
        await context.clock.fastForward("11:00");
        const uploads = [one, two].map((page, i) =>
          page.waitForResponse((r) => r.url() === `${stack.files}/files` && r.request().method() === "POST").then(async (r) => {
            assert.equal(r.status(), 201, `tab ${i + 1}`);
            return r.request().headerValue("authorization");
          }),
        );
        const before = refreshes.length;
        await Promise.all(
          [one, two].map(async (page, i) => {
            await page.locator("#upload-form [name=name]").fill(`tab${i + 1}.txt`);
            await page.locator("#upload-form button").click();
          }),
        );
        const sent = await Promise.all(uploads);
        assert.ok(refreshes.length > before, "the stale token was refreshed before the upload");
        assert.ok(sent.every((h) => /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/.test(h)));
        // Each tab lists its own upload (a tab's list is not refreshed by the other tab's).
        await Promise.all([one, two].map((p, i) => p.locator("#files li", { hasText: `tab${i + 1}.txt` }).waitFor()));

        // Every refresh succeeded, and the login is still alive.
        // At least one per simultaneous load and one for the stale token (a tab that waited for
        // the lock may take the other tab's fresh token instead of refreshing itself).
        assert.ok(refreshes.length >= 4, `${refreshes}`);
        assert.deepEqual(refreshes.filter((s) => s !== 200), [], `${refreshes}`);
        await two.reload();
        await two.locator("body[data-state=signed-in]").waitFor();
        assert.deepEqual(errors, []);
        await context.close();
      }));
  }

  it("a logout in one tab signs the other out within a second", async () =>
    screenshotsOnFailure("tabs-logout", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const one = await openPage(context, errors);
      const two = await openPage(context, errors);
      await one.goto(stack.app);
      await register(one, "carol");
      await two.goto(stack.app);
      await two.locator("body[data-state=signed-in]").waitFor();
      await one.bringToFront();
      const started = Date.now();
      await one.locator("#logout").click();
      await two.locator("body[data-state=signed-out]").waitFor({ timeout: 1_000 });
      assert.ok(Date.now() - started < 1_000);
      assert.match(await two.locator("#status").textContent(), /another tab/);
      await two.reload();
      await two.locator("body[data-state=signed-out]").waitFor();
      assert.deepEqual(errors, []);
      await context.close();
    }));

  it("logout everywhere ends the logins of other browsers too", async () =>
    screenshotsOnFailure("tabs-logout-everywhere", browser, async () => {
      const errors = [];
      const home = await browser.newContext();
      const work = await browser.newContext();
      const atHome = await openPage(home, errors);
      const atWork = await openPage(work, errors);
      await atHome.goto(stack.app);
      await register(atHome, "dave");
      await atWork.goto(stack.app);
      await atWork.locator("#login-form [name=username]").fill("dave");
      await atWork.locator("#login-form [name=password]").fill("quartz lantern ferry mosaic 71");
      await atWork.locator("#login-form button").click();
      await atWork.locator("body[data-state=signed-in]").waitFor();
      await atHome.locator("#logout-all").click();
      await atHome.locator("body[data-state=signed-out]").waitFor();
      const refreshed = atWork.waitForResponse((r) => r.url() === `${stack.issuer}/auth/refresh`);
      await atWork.reload();
      assert.equal((await refreshed).status(), 401);
      await atWork.locator("body[data-state=signed-out]").waitFor();
      assert.deepEqual(errors, []);
      await home.close();
      await work.close();
    }));
});
