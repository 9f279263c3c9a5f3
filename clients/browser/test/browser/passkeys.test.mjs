// Passkeys in a real Chromium with the DevTools virtual authenticator (CTAP2, internal,
// resident keys, user verification) against a real Latchkey: register while signed in, sign in
// without a password (twice), list, rename, a flip of the backup state, delete. The test page
// is served on Latchkey's own origin (http://localhost:L, so the RP id is `localhost`) by
// intercepting one path; every API call goes to the real server.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { launch, openPage, PASSWORD, screenshotsOnFailure, startStack } from "../support/stack.mjs";

const PAGE = "/passkey-test";

/** Runs in the page: a JSON request to Latchkey. */
async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "include",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

describe("passkeys", () => {
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

  it("registers a passkey, signs in with it, lists, renames, survives a backup flip and deletes it", async () =>
    screenshotsOnFailure("passkeys", browser, async () => {
      const context = await browser.newContext();
      const errors = [];
      const page = await openPage(context, errors);
      await page.route(`${stack.issuer}${PAGE}`, (route) =>
        route.fulfill({ contentType: "text/html", body: "<!doctype html><title>passkeys</title><p>passkeys</p>" }),
      );
      await page.goto(`${stack.issuer}${PAGE}`);
      await page.evaluate(`window.api = ${api.toString()}`);

      const cdp = await context.newCDPSession(page);
      await cdp.send("WebAuthn.enable");
      const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
        options: {
          protocol: "ctap2",
          transport: "internal",
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });

      // A signed-in user registers a passkey.
      const signedIn = await page.evaluate(async (password) => {
        await api("POST", "/auth/register", { body: { username: "penny", password } });
        return api("POST", "/auth/login", { body: { username: "penny", password } });
      }, PASSWORD);
      assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
      const token = signedIn.body.access_token;
      const registered = await page.evaluate(async (token) => {
        const start = await api("POST", "/auth/passkeys/register/start", { token });
        const credential = await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(start.body.options),
        });
        return api("POST", "/auth/passkeys/register/finish", {
          token,
          body: { challenge_id: start.body.challenge_id, credential: credential.toJSON(), name: "Virtual" },
        });
      }, token);
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      assert.equal(registered.body.passkey.name, "Virtual");
      const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
      assert.equal(credentials.length, 1);
      assert.equal(credentials[0].isResidentCredential, true);

      // Sign in without a password: conditional UI is available, allowCredentials is empty.
      const signIn = () =>
        page.evaluate(async () => {
          const start = await api("POST", "/auth/passkeys/login/start");
          const assertion = await navigator.credentials.get({
            publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.body.options),
          });
          const finish = await api("POST", "/auth/passkeys/login/finish", {
            body: { challenge_id: start.body.challenge_id, credential: assertion.toJSON() },
          });
          return {
            conditional: await PublicKeyCredential.isConditionalMediationAvailable(),
            allow: start.body.options.allowCredentials,
            ...finish,
          };
        });
      const first = await signIn();
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.conditional, true);
      assert.deepEqual(first.allow, []);
      assert.equal(first.body.user.username, "penny");
      const cookies = await context.cookies(`${stack.issuer}/auth/refresh`);
      assert.ok(cookies.find((c) => c.name === "refresh_token"), JSON.stringify(cookies));
      const me = await page.evaluate((t) => api("GET", "/auth/me", { token: t }), first.body.access_token);
      assert.equal(me.body.user.username, "penny");
      const second = await signIn();
      assert.equal(second.status, 200, JSON.stringify(second.body));

      // List and rename.
      const listed = await page.evaluate((t) => api("GET", "/auth/passkeys", { token: t }), token);
      assert.equal(listed.body.passkeys.length, 1);
      const passkey = listed.body.passkeys[0];
      assert.ok(passkey.last_used_at);
      assert.equal(passkey.backup_state, false);
      const renamed = await page.evaluate(
        ([t, id]) => api("PATCH", `/auth/passkeys/${id}`, { token: t, body: { name: "Chromium" } }),
        [token, passkey.id],
      );
      assert.equal(renamed.status, 204);

      // The authenticator now says the passkey is backed up (eligible and synced): still signs in.
      await cdp.send("WebAuthn.setCredentialProperties", {
        authenticatorId,
        credentialId: credentials[0].credentialId,
        backupEligibility: true,
        backupState: true,
      });
      const third = await signIn();
      assert.equal(third.status, 200, JSON.stringify(third.body));
      const after = await page.evaluate((t) => api("GET", "/auth/passkeys", { token: t }), token);
      assert.equal(after.body.passkeys[0].name, "Chromium");
      assert.equal(after.body.passkeys[0].backup_eligible, true);
      assert.equal(after.body.passkeys[0].backup_state, true);

      // Delete (a recent sign-in), then the passkey no longer signs in.
      const deleted = await page.evaluate(
        ([t, id]) => api("DELETE", `/auth/passkeys/${id}`, { token: t }),
        [token, passkey.id],
      );
      assert.equal(deleted.status, 204);
      const refused = await signIn();
      assert.equal(refused.status, 401);
      assert.equal(refused.body.code, "unknown_passkey");
      assert.deepEqual(errors, []);
      await context.close();
    }));
});
