// Unit tests of @latchkey/browser (the built dist/latchkey.js) against a scripted fake fetch:
// single-flight refresh, backoff on transient failures, the 401-retry-once rule, typed errors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createLatchkey, LatchkeyError } from "../../dist/latchkey.js";

const ISSUER = "https://auth.example.test";
const API = "https://api.example.test";
const user = { id: "u1", username: "olive", email: null, roles: [], created_at: "2026-01-01T00:00:00Z" };
let issuerCount = 0;

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
  });
const tokens = (token, expiresIn = 600) => json(200, { access_token: token, token_type: "Bearer", expires_in: expiresIn, user });
const problem = (status, code, headers) => json(status, { type: "about:blank", title: code, status, detail: code, code }, headers);

/**
 * A fake server: `routes["POST /auth/refresh"]` etc. are functions of the Request returning a
 * Response (or throwing, like fetch does when the network fails). Every call is recorded.
 */
function fake(routes) {
  const calls = [];
  const fetch = async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const key = `${request.method} ${url.pathname.replace(/^\/\d+\//, "/")}`;
    calls.push({ key, auth: request.headers.get("authorization"), credentials: request.credentials });
    const route = routes[key];
    if (!route) return problem(404, "not_found");
    await new Promise((resolve) => setTimeout(resolve, 5));
    return route(request, calls.filter((c) => c.key === key).length);
  };
  const count = (key) => calls.filter((c) => c.key === key).length;
  return { fetch, calls, count };
}

// Each test gets its own issuer, so the BroadcastChannels of different tests never meet.
function client(server, extra = {}) {
  issuerCount += 1;
  return createLatchkey({ issuer: `${ISSUER}/${issuerCount}`, fetch: server.fetch, backoff: 1, ...extra });
}

function changes(auth) {
  const seen = [];
  auth.onChange((c) => seen.push(c.type));
  return seen;
}

describe("refresh", () => {
  it("is single-flight: concurrent restores and token requests make one refresh", async () => {
    const server = fake({ "POST /auth/refresh": () => tokens("t1") });
    const auth = client(server);
    const results = await Promise.all([auth.restore(), auth.restore(), auth.accessToken(), auth.accessToken()]);
    assert.equal(server.count("POST /auth/refresh"), 1);
    assert.deepEqual(results, [user, user, "t1", "t1"]);
    assert.equal(server.calls[0].credentials, "include");
    assert.equal(auth.user.username, "olive");
  });

  it("happens before expiry, within the margin, and not before", async () => {
    let n = 0;
    const server = fake({
      "POST /auth/login": () => tokens("t0", 20),
      "POST /auth/refresh": () => tokens(`t${++n}`, 600),
      "GET /files": () => json(200, { files: [] }),
    });
    const auth = client(server, { refreshMargin: 30 });
    await auth.login("olive", "pw");
    await auth.fetch(`${API}/files`);
    assert.equal(server.count("POST /auth/refresh"), 1, "20 s left is inside the 30 s margin");
    await auth.fetch(`${API}/files`);
    assert.equal(server.count("POST /auth/refresh"), 1, "a fresh token is reused");
    assert.deepEqual(server.calls.filter((c) => c.key === "GET /files").map((c) => c.auth), ["Bearer t1", "Bearer t1"]);
  });

  it("retries network failures and 503 with backoff, without signing out", async () => {
    const server = fake({
      "POST /auth/login": () => tokens("t0", 1),
      "POST /auth/refresh": (_, n) => {
        if (n === 1) throw new TypeError("Failed to fetch");
        if (n === 2) return problem(503, "overloaded", { "retry-after": "0" });
        return tokens("t1");
      },
    });
    const auth = client(server);
    const seen = changes(auth);
    await auth.login("olive", "pw");
    assert.equal(await auth.accessToken(), "t1");
    assert.equal(server.count("POST /auth/refresh"), 3);
    assert.deepEqual(seen, ["signed_in", "refreshed"]);
  });

  it("gives up after its retries with a typed error, keeping the user signed in", async () => {
    const server = fake({
      "POST /auth/login": () => tokens("t0", 0),
      "POST /auth/refresh": () => {
        throw new TypeError("Failed to fetch");
      },
    });
    const auth = client(server, { retries: 2 });
    const seen = changes(auth);
    await auth.login("olive", "pw");
    await assert.rejects(auth.restore(), (e) => e instanceof LatchkeyError && e.code === "network_error" && e.status === 0);
    assert.equal(server.count("POST /auth/refresh"), 3, "one try and two retries, then stop");
    assert.equal(auth.user.username, "olive");
    assert.deepEqual(seen, ["signed_in"]);
  });

  it("waits longer between later retries (exponential backoff)", async () => {
    const times = [];
    const server = fake({
      "POST /auth/refresh": () => {
        times.push(performance.now());
        throw new TypeError("down");
      },
    });
    const auth = client(server, { retries: 3, backoff: 40 });
    await assert.rejects(auth.restore(), { code: "network_error" });
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert.equal(gaps.length, 3);
    assert.ok(gaps[0] >= 25, `first gap ${gaps[0]}`);
    assert.ok(gaps[2] > gaps[0] * 2, `gaps grow: ${gaps}`);
  });

  for (const code of ["invalid_refresh_token", "refresh_token_reused"]) {
    it(`treats 401 ${code} as signed out, once, without retrying`, async () => {
      const server = fake({ "POST /auth/login": () => tokens("t0", 0), "POST /auth/refresh": () => problem(401, code) });
      const auth = client(server);
      const seen = changes(auth);
      await auth.login("olive", "pw");
      assert.equal(await auth.restore(), null);
      assert.equal(auth.user, null);
      assert.equal(await auth.accessToken(), null);
      assert.equal(server.count("POST /auth/refresh"), 1, "signed out is remembered: no refresh loop");
      assert.deepEqual(seen, ["signed_in", "signed_out"]);
    });
  }

  it("reports a 200 without a token as a typed error", async () => {
    const server = fake({ "POST /auth/refresh": () => new Response("<html>proxy page</html>", { status: 200 }) });
    const auth = client(server);
    await assert.rejects(auth.restore(), (e) => e instanceof LatchkeyError && e.code === "invalid_response");
  });

  it("reports 403 csrf_rejected as a typed error, without retrying or signing out", async () => {
    const server = fake({ "POST /auth/refresh": () => problem(403, "csrf_rejected") });
    const auth = client(server);
    await assert.rejects(auth.restore(), (e) => e instanceof LatchkeyError && e.code === "csrf_rejected" && e.status === 403);
    assert.equal(server.count("POST /auth/refresh"), 1);
  });
});

describe("fetch", () => {
  function api(valid) {
    let n = 0;
    return fake({
      "POST /auth/login": () => tokens("t0"),
      "POST /auth/refresh": () => tokens(`t${++n}`),
      "POST /files": async (request) => {
        const token = request.headers.get("authorization")?.slice(7);
        if (!valid(token)) {
          return problem(401, "invalid_token", { "www-authenticate": 'Bearer realm="latchkey", error="invalid_token"' });
        }
        return json(201, { file: { name: (await request.json()).name } });
      },
    });
  }

  it("refreshes once and retries once after a 401 invalid_token, body included", async () => {
    const server = api((t) => t !== "t0");
    const auth = client(server);
    await auth.login("olive", "pw");
    const response = await auth.fetch(`${API}/files`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "a.txt", content: "x" }),
    });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { file: { name: "a.txt" } });
    assert.equal(server.count("POST /auth/refresh"), 1);
    assert.deepEqual(server.calls.filter((c) => c.key === "POST /files").map((c) => c.auth), ["Bearer t0", "Bearer t1"]);
  });

  it("never loops: a second 401 is returned to the caller", async () => {
    const server = api(() => false);
    const auth = client(server);
    await auth.login("olive", "pw");
    const response = await auth.fetch(`${API}/files`, { method: "POST", body: "{}" });
    assert.equal(response.status, 401);
    assert.equal((await response.json()).code, "invalid_token");
    assert.equal(server.count("POST /files"), 2);
    assert.equal(server.count("POST /auth/refresh"), 1);
  });

  it("concurrent 401s share one refresh", async () => {
    const server = api((t) => t !== "t0");
    const auth = client(server);
    await auth.login("olive", "pw");
    const responses = await Promise.all(
      [1, 2, 3].map((i) => auth.fetch(`${API}/files`, { method: "POST", body: JSON.stringify({ name: `${i}` }) })),
    );
    assert.deepEqual(responses.map((r) => r.status), [201, 201, 201]);
    assert.equal(server.count("POST /auth/refresh"), 1);
  });

  it("recognizes invalid_token from the problem body when the challenge header is hidden (CORS)", async () => {
    let n = 0;
    const server = fake({
      "POST /auth/login": () => tokens("t0"),
      "POST /auth/refresh": () => tokens(`t${++n}`),
      "GET /auth/me": (request) =>
        request.headers.get("authorization") === "Bearer t0" ? problem(401, "invalid_token") : json(200, { user }),
    });
    const auth = client(server);
    await auth.login("olive", "pw");
    assert.equal((await auth.fetch(`${API}/auth/me`)).status, 200);
  });

  it("does not retry other 401s, 403s or answers without a token", async () => {
    const server = fake({
      "POST /auth/refresh": () => problem(401, "invalid_refresh_token"),
      "GET /files": () => problem(401, "unauthorized"),
      "GET /admin": () => problem(403, "insufficient_permission"),
    });
    const auth = client(server);
    assert.equal(await auth.restore(), null);
    assert.equal((await auth.fetch(`${API}/files`)).status, 401);
    assert.equal(server.calls.find((c) => c.key === "GET /files").auth, null, "no token to send");
    assert.equal((await auth.fetch(`${API}/admin`)).status, 403);
    assert.equal(server.count("GET /files") + server.count("GET /admin"), 2);
    assert.equal(server.count("POST /auth/refresh"), 1);
  });

  it("rejects with a typed error when the API cannot be reached", async () => {
    const server = fake({
      "POST /auth/login": () => tokens("t0"),
      "GET /files": () => {
        throw new TypeError("Failed to fetch");
      },
    });
    const auth = client(server);
    await auth.login("olive", "pw");
    await assert.rejects(auth.fetch(`${API}/files`), TypeError);
    assert.equal(auth.user.username, "olive");
  });
});

describe("login and logout", () => {
  it("carries the problem code of a failed login", async () => {
    const server = fake({ "POST /auth/login": () => problem(401, "invalid_credentials") });
    const auth = client(server);
    await assert.rejects(auth.login("olive", "bad"), (e) => e instanceof LatchkeyError && e.code === "invalid_credentials");
    const down = client(fake({ "POST /auth/login": () => { throw new TypeError("down"); } }));
    await assert.rejects(down.login("olive", "pw"), { code: "network_error" });
  });

  it("logoutEverywhere revokes every login, clears the cookie and signs out", async () => {
    const server = fake({
      "POST /auth/login": () => tokens("t0"),
      "POST /auth/logout-all": () => new Response(null, { status: 204 }),
      "POST /auth/logout": () => new Response(null, { status: 204 }),
    });
    const auth = client(server);
    const seen = changes(auth);
    await auth.login("olive", "pw");
    await auth.logoutEverywhere();
    assert.deepEqual(server.calls.map((c) => [c.key, c.auth]), [
      ["POST /auth/login", null],
      ["POST /auth/logout-all", "Bearer t0"],
      ["POST /auth/logout", null],
    ]);
    assert.equal(auth.user, null);
    assert.deepEqual(seen, ["signed_in", "signed_out"]);
  });
});

describe("tabs", () => {
  it("shares sign-in, refreshes and sign-out over BroadcastChannel", async () => {
    let n = 0;
    const server = fake({
      "POST /auth/login": () => tokens("t0", 10),
      "POST /auth/refresh": () => tokens(`t${++n}`),
      "POST /auth/logout": () => new Response(null, { status: 204 }),
    });
    issuerCount += 1;
    const options = { issuer: `${ISSUER}/${issuerCount}`, fetch: server.fetch, backoff: 1 };
    const one = createLatchkey(options);
    const two = createLatchkey(options);
    const seen = [];
    two.onChange((c) => seen.push(`${c.type}${c.fromOtherTab ? " (other tab)" : ""}`));
    const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
    await one.login("olive", "pw");
    await settle();
    assert.equal(two.user?.username, "olive");
    assert.equal(await one.accessToken(), "t1");
    await settle();
    assert.equal(await two.accessToken(), "t1", "the other tab's refresh is reused");
    assert.equal(server.count("POST /auth/refresh"), 1);
    await one.logout();
    await settle();
    assert.equal(two.user, null);
    assert.deepEqual(seen, ["signed_in (other tab)", "refreshed (other tab)", "signed_out (other tab)"]);
  });

  it("works without BroadcastChannel and Web Locks", async () => {
    const saved = globalThis.BroadcastChannel;
    globalThis.BroadcastChannel = undefined;
    try {
      const server = fake({ "POST /auth/refresh": () => tokens("t1") });
      const auth = client(server);
      assert.deepEqual(await auth.restore(), user);
      assert.equal(await auth.accessToken(), "t1");
    } finally {
      globalThis.BroadcastChannel = saved;
    }
  });
});
