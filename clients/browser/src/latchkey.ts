/**
 * @latchkey/browser: the browser half of Latchkey's token flow.
 *
 * The access token lives in this module's memory only (never in localStorage, sessionStorage,
 * IndexedDB or document.cookie); the refresh token is the server's HttpOnly cookie, which
 * scripts cannot read. Refreshes are single-flight inside a tab, serialized across tabs with
 * Web Locks, and their results (and sign-outs) are shared with BroadcastChannel.
 */

/** A Latchkey user, as the server returns it. */
export interface User {
  id: string;
  username: string;
  email: string | null;
  roles: string[];
  created_at: string;
  [field: string]: unknown;
}

/** An OpenID Connect provider the server offers (`GET /auth/oauth/providers`). */
export interface Provider {
  name: string;
  display_name: string;
  authorize_url: string;
}

/** What changed: `signed_in`, `refreshed` or `signed_out`, in this tab or another one. */
export interface AuthChange {
  type: "signed_in" | "refreshed" | "signed_out";
  user: User | null;
  fromOtherTab: boolean;
}

/** Options of {@link createLatchkey}. */
export interface LatchkeyOptions {
  /** The Latchkey URL, e.g. `https://auth.example.com` (its `iss`). */
  issuer: string;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Refresh when the access token has fewer than this many seconds left (default 30). */
  refreshMargin?: number;
  /** Retries of a refresh after a network error or a 5xx answer (default 3), with backoff. */
  retries?: number;
  /** First backoff delay in milliseconds (default 500; doubles each time, capped at 8 s). */
  backoff?: number;
  /** Give up on one refresh request after this many milliseconds (default 10000). */
  timeout?: number;
}

/**
 * A typed failure. `code` is the server's problem+json `code` (`invalid_credentials`,
 * `too_many_attempts`, `csrf_rejected`, `overloaded`, ...), or `network_error` when the server
 * could not be reached, or `mfa_required` when the login needs a second factor.
 */
export class LatchkeyError extends Error {
  override name = "LatchkeyError";
  constructor(
    /** Stable code. */
    readonly code: string,
    /** HTTP status (0 for network errors). */
    readonly status: number,
    message: string,
    /** The whole problem+json (or other JSON) body, when there was one. */
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The client returned by {@link createLatchkey}. */
export interface Latchkey {
  /** The signed-in user, or null. */
  readonly user: User | null;
  /** Registers an account (does not sign in). */
  register(username: string, password: string, email?: string): Promise<User>;
  /** Logs in; the access token is kept in memory, the refresh token in the HttpOnly cookie. */
  login(username: string, password: string): Promise<User>;
  /**
   * On page load: one `POST /auth/refresh` with the cookie. Resolves to the user, or null when
   * signed out; rejects with a {@link LatchkeyError} (`network_error`, `overloaded`, ...)
   * when the server could not tell, so "down" is never mistaken for "signed out".
   */
  restore(): Promise<User | null>;
  /** `fetch` with `Authorization: Bearer`, refreshed before expiry; one retry after a 401. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** A fresh access token (refreshing if needed), or null when signed out. */
  accessToken(): Promise<string | null>;
  /** Calls `listener` on every change; returns the function that unsubscribes it. */
  onChange(listener: (change: AuthChange) => void): () => void;
  /** Ends this login (every tab of this browser). */
  logout(): Promise<void>;
  /** Ends every login of the user, on every device. */
  logoutEverywhere(): Promise<void>;
  /** The OpenID Connect providers the server offers. */
  providers(): Promise<Provider[]>;
  /** Sends the browser to `provider`; it comes back to `redirectTo` (then call `restore()`). */
  signInWith(provider: string, redirectTo: string): void;
}

interface Tokens {
  token: string;
  expiresAt: number;
  user: User;
}

type Message = { type: "signed_in" | "refreshed"; tokens: Tokens } | { type: "signed_out" };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function problem(response: Response): Promise<LatchkeyError> {
  let body: Record<string, unknown> | undefined;
  try {
    body = (await response.json()) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  const code = typeof body?.code === "string" ? body.code : `http_${response.status}`;
  const text = body?.detail ?? body?.title ?? response.statusText;
  return new LatchkeyError(code, response.status, `${code}: ${String(text)}`, body);
}

/** Creates a client for the Latchkey at `options.issuer`. */
export function createLatchkey(options: LatchkeyOptions): Latchkey {
  const issuer = options.issuer.replace(/\/+$/, "");
  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const margin = (options.refreshMargin ?? 30) * 1000;
  const retries = options.retries ?? 3;
  const backoff = options.backoff ?? 500;
  const timeout = options.timeout ?? 10_000;
  const lockName = `latchkey-refresh ${issuer}`;
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  const channel =
    typeof BroadcastChannel === "function" ? new BroadcastChannel(`latchkey ${issuer}`) : undefined;

  let current: Tokens | null = null;
  /** Bumped on every change of `current`, so a tab that waited for the lock sees news. */
  let version = 0;
  let refreshing: Promise<Tokens | null> | null = null;
  /** Known to be signed out: no refresh until `restore()`, a login or news from another tab. */
  let signedOut = false;
  const listeners = new Set<(change: AuthChange) => void>();

  function set(next: Tokens | null, type: AuthChange["type"], fromOtherTab: boolean): void {
    const wasSignedIn = current !== null;
    current = next;
    signedOut = !next;
    version++;
    if (!next && !wasSignedIn) return;
    if (!fromOtherTab) channel?.postMessage(next ? { type, tokens: next } : { type });
    for (const listener of listeners) {
      try {
        listener({ type, user: next?.user ?? null, fromOtherTab });
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  if (channel) {
    // Node (unit tests) would otherwise stay alive for the channel; browsers have no unref.
    (channel as { unref?: () => void }).unref?.();
    channel.onmessage = (event: MessageEvent<Message>) => {
      const message = event.data;
      if (message?.type === "signed_out") set(null, "signed_out", true);
      else if (message?.tokens && (!current || message.tokens.expiresAt >= current.expiresAt)) {
        set(message.tokens, current ? message.type : "signed_in", true);
      }
    };
  }

  const fresh = (tokens: Tokens | null) => !!tokens && tokens.expiresAt - margin > Date.now();

  async function accept(response: Response): Promise<Tokens> {
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (typeof body.access_token !== "string") {
      if (body.mfa_required) {
        throw new LatchkeyError("mfa_required", 200, "a second factor is required", body);
      }
      throw new LatchkeyError("invalid_response", 200, "no access token in the answer", body);
    }
    const seconds = typeof body.expires_in === "number" ? body.expires_in : 60;
    return { token: body.access_token, expiresAt: Date.now() + seconds * 1000, user: body.user as User };
  }

  async function post(path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const init: RequestInit = { method: "POST", credentials: "include", signal };
    if (body !== undefined) {
      init.headers = { "content-type": "application/json" };
      init.body = JSON.stringify(body);
    }
    try {
      return await doFetch(`${issuer}${path}`, init);
    } catch (e) {
      throw new LatchkeyError("network_error", 0, `cannot reach ${issuer}: ${String(e)}`);
    }
  }

  /** One refresh against the server, with retries on transient failures. */
  async function refreshNow(): Promise<Tokens | null> {
    for (let attempt = 0; ; attempt++) {
      let error: LatchkeyError;
      let wait = 0;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeout);
      try {
        const response = await post("/auth/refresh", undefined, abort.signal);
        if (response.ok) {
          const tokens = await accept(response);
          set(tokens, current ? "refreshed" : "signed_in", false);
          return tokens;
        }
        error = await problem(response);
        if (response.status === 401) {
          set(null, "signed_out", false);
          return null;
        }
        if (response.status < 500 && response.status !== 429) throw error;
        wait = Number(response.headers.get("retry-after")) * 1000 || 0;
      } catch (e) {
        if (!(e instanceof LatchkeyError) || e.status !== 0) throw e;
        error = e;
      } finally {
        clearTimeout(timer);
      }
      if (attempt >= retries) throw error;
      await sleep(Math.min(Math.max(wait, backoff * 2 ** attempt * (0.75 + Math.random() / 2)), 8000));
    }
  }

  /** Single-flight in this tab; serialized across tabs by a Web Lock when there is one. */
  function refresh(): Promise<Tokens | null> {
    if (refreshing) return refreshing;
    const seen = version;
    const inLock = async (): Promise<Tokens | null> => {
      // Another tab refreshed (or signed out) while this one waited: use its result.
      if (version !== seen && (current === null || fresh(current))) return current;
      return refreshNow();
    };
    const run = async (): Promise<Tokens | null> => {
      if (!locks) return inLock();
      // A tab that hangs holding the lock must not block the others forever: after a while,
      // go ahead without it (the server's reuse interval covers two refreshes at once).
      const give = new AbortController();
      const timer = setTimeout(() => give.abort(), timeout * 2);
      try {
        return (await locks.request(lockName, { signal: give.signal }, inLock)) as Tokens | null;
      } catch (e) {
        if (give.signal.aborted && !(e instanceof LatchkeyError)) return inLock();
        throw e;
      } finally {
        clearTimeout(timer);
      }
    };
    refreshing = run().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  async function accessToken(): Promise<string | null> {
    if (fresh(current)) return current!.token;
    if (signedOut) return null;
    try {
      return (await refresh())?.token ?? null;
    } catch (e) {
      // Cannot refresh right now: a token that has not expired yet is still worth sending.
      if (current && current.expiresAt > Date.now()) return current.token;
      throw e;
    }
  }

  async function isInvalidToken(response: Response): Promise<boolean> {
    if (response.status !== 401) return false;
    if (/invalid_token/.test(response.headers.get("www-authenticate") ?? "")) return true;
    try {
      return ((await response.clone().json()) as { code?: unknown }).code === "invalid_token";
    } catch {
      return false;
    }
  }

  async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const send = (token: string | null) => {
      const copy = request.clone();
      if (token) copy.headers.set("authorization", `Bearer ${token}`);
      return doFetch(copy);
    };
    const token = await accessToken();
    const response = await send(token);
    if (!token || !(await isInvalidToken(response))) return response;
    // Refresh once (unless a concurrent call already did) and retry once; never loop.
    const again =
      current && current.token !== token ? current.token : ((await refresh())?.token ?? null);
    if (!again) return response;
    return send(again);
  }

  async function signOutHere(path: string, bearer?: string | null): Promise<void> {
    if (bearer) {
      const response = await doFetch(`${issuer}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}` },
      }).catch(() => {
        throw new LatchkeyError("network_error", 0, `cannot reach ${issuer}`);
      });
      if (!response.ok && response.status !== 401) throw await problem(response);
    }
    const response = await post("/auth/logout");
    if (!response.ok) throw await problem(response);
    set(null, "signed_out", false);
  }

  return {
    get user() {
      return current?.user ?? null;
    },
    async register(username, password, email) {
      const response = await post("/auth/register", email ? { username, password, email } : { username, password });
      if (!response.ok) throw await problem(response);
      return ((await response.json()) as { user: User }).user;
    },
    async login(username, password) {
      const response = await post("/auth/login", { username, password });
      if (!response.ok) throw await problem(response);
      const tokens = await accept(response);
      set(tokens, "signed_in", false);
      return tokens.user;
    },
    async restore() {
      if (fresh(current)) return current!.user;
      return (await refresh())?.user ?? null;
    },
    fetch: authFetch,
    accessToken,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    logout: () => signOutHere("/auth/logout"),
    async logoutEverywhere() {
      await signOutHere("/auth/logout-all", await accessToken());
    },
    async providers() {
      const response = await doFetch(`${issuer}/auth/oauth/providers`).catch(() => {
        throw new LatchkeyError("network_error", 0, `cannot reach ${issuer}`);
      });
      if (!response.ok) throw await problem(response);
      return ((await response.json()) as { providers: Provider[] }).providers;
    },
    signInWith(provider, redirectTo) {
      location.assign(
        `${issuer}/auth/oauth/${encodeURIComponent(provider)}/authorize?redirect_to=${encodeURIComponent(redirectTo)}`,
      );
    },
  };
}
