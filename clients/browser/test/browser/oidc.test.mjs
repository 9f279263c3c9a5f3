// "Sign in with <provider>" in a real Chromium: the app's button, a real OpenID Provider
// (oidc-provider, from crates/latchkey/tests/server/oidc, on another site: 127.0.0.1), Latchkey's
// callback setting the refresh cookie, and the app restoring the session after the redirect.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { launch, openPage, ROOT, screenshotsOnFailure, start, startStack } from "../support/stack.mjs";

const OIDC = join(ROOT, "crates/latchkey/tests/server/oidc");
const installed = existsSync(join(OIDC, "node_modules/oidc-provider"));
if (!installed && process.env.CI === "true") {
  throw new Error(`oidc-provider is not installed: npm ci --prefix ${OIDC}`);
}

/** Starts the provider (it picks its own port) and resolves to its issuer URL. */
async function provider(redirectUri, track) {
  const p = start("oidc", process.execPath, [join(OIDC, "provider.mjs")], {
    CLIENT_ID: "latchkey",
    CLIENT_SECRET: "browser-test-secret",
    REDIRECT_URIS: redirectUri,
  }, OIDC);
  track(p.child, p.output);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const line = /listening (http:\/\/\S+)/.exec(p.output());
    if (line) return line[1];
    if (p.child.exitCode !== null) throw new Error(`the provider exited:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the provider did not start:\n${p.output()}`);
}

describe("sign in with a provider", { skip: !installed && "oidc-provider not installed (npm ci in crates/latchkey/tests/server/oidc)" }, () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startStack({
      latchkey: async ({ issuer, app, track }) => ({
        LATCHKEY_OAUTH_PROVIDERS: "corp",
        LATCHKEY_OAUTH_CORP_ISSUER: await provider(`${issuer}/auth/oauth/corp/callback`, track),
        LATCHKEY_OAUTH_CORP_CLIENT_ID: "latchkey",
        LATCHKEY_OAUTH_CORP_CLIENT_SECRET: "browser-test-secret",
        LATCHKEY_OAUTH_CORP_DISPLAY_NAME: "Corp SSO",
        LATCHKEY_OAUTH_REDIRECT_ALLOWLIST: `${app}/`,
      }),
    });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it("the provider's button signs in, and the app restores the session after the redirect", async () =>
    screenshotsOnFailure("oidc-sign-in", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const page = await openPage(context, errors);
      await page.goto(stack.app);
      const button = page.getByRole("button", { name: "Sign in with Corp SSO" });
      await button.click();
      // The provider's own pages (devInteractions): log in, then consent.
      await page.locator("input[name=login]").fill("grace");
      await page.locator("input[name=password]").fill("any password");
      await page.locator("button[type=submit]").first().click();
      await page.locator("button[type=submit]").first().click();
      const refreshed = page.waitForResponse((r) => r.url() === `${stack.issuer}/auth/refresh`);
      await page.waitForURL(`${stack.app}/`);
      assert.equal((await refreshed).status(), 200);
      await page.locator("body[data-state=signed-in]").waitFor();
      assert.equal(await page.locator("#whoami").textContent(), "Signed in as grace");
      assert.doesNotMatch(page.url(), /token|code=/, "no token or code left in the app's URL");
      await page.locator("#files li").first().waitFor();
      assert.deepEqual(errors, []);
      await context.close();
    }));

  it("a sign-in cancelled at the provider comes back as ?error=access_denied, shown by the app", async () =>
    screenshotsOnFailure("oidc-cancelled", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const page = await openPage(context, errors);
      await page.goto(stack.app);
      await page.getByRole("button", { name: "Sign in with Corp SSO" }).click();
      await page.getByRole("link", { name: /Cancel/ }).click();
      await page.locator("#status", { hasText: "Sign-in failed: access_denied" }).waitFor();
      await page.locator("body[data-state=signed-out]").waitFor();
      assert.equal(new URL(page.url()).search, "", "the error is taken out of the URL");
      assert.deepEqual(errors, []);
      await context.close();
    }));
});
