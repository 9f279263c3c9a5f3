/**
 * `@latchkey/express`: verify Latchkey access tokens (RFC 9068 JWTs signed with EdDSA, ES256
 * or RS256) in Express, with the keys read from the issuer's discovery document.
 *
 * ```js
 * import { latchkey } from '@latchkey/express';
 * const auth = latchkey({ issuer: 'https://auth.example.com', audience: 'https://api.example.com' });
 * app.get('/me', auth.required(), (req, res) => res.json({ sub: req.auth.sub }));
 * app.get('/report', auth.requireRole('admin'), report);
 * app.post('/payout', auth.requireMfa({ maxAge: 300 }), payout); // RFC 9470 step-up
 * ```
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  jwksCache,
  jwtVerify,
  type ExportedJWKSCache,
  type JSONWebKeySet,
  type JWTHeaderParameters,
  type JWTPayload,
  type FlattenedJWSInput,
} from 'jose';

import { ExpiringLru } from './cache.js';
import { LatchkeyError, forbidden, insufficientUserAuthentication, send, unauthorized, type Problem } from './problem.js';

export {
  LatchkeyError,
  REASONS,
  forbidden,
  insufficientUserAuthentication,
  unauthorized,
  send,
  type Problem,
  type Reason,
} from './problem.js';

/** The asymmetric algorithms Latchkey signs access tokens with. HS256 is never accepted. */
export const ALGORITHMS = ['EdDSA', 'ES256', 'RS256'] as const;
/** One of [`ALGORITHMS`]. */
export type Algorithm = (typeof ALGORITHMS)[number];

/** The verified claims of a Latchkey access token, put on `req.auth`. */
export interface LatchkeyClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  /** The user's roles (empty when the token carries none). */
  roles: string[];
  /** The login (refresh family or session) the token belongs to. */
  sid?: string;
  jti?: string;
  client_id?: string;
  /** How the user signed in (RFC 8176): `pwd`; `pwd`, `otp`, `mfa` after a second factor. */
  amr?: string[];
  /** When the user signed in, seconds since the epoch; refreshes keep it. */
  auth_time?: number;
}

/** What a route asks of the sign-in behind a token (RFC 9470 step-up). */
export interface StepUpOptions {
  /** A second factor must have been used (`amr` holds `mfa`). */
  mfa?: boolean;
  /** The sign-in (`auth_time`) must be at most this many seconds old. */
  maxAge?: number;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified claims of the caller's Latchkey access token (set by `@latchkey/express`). */
      auth?: LatchkeyClaims;
    }
  }
}

/** Options of [`latchkey`]. */
export interface LatchkeyOptions {
  /** The Latchkey URL, exactly as in the tokens' `iss` and its discovery document's `issuer`. */
  issuer: string;
  /** The `aud` this API accepts (Latchkey's `LATCHKEY_AUDIENCE`, by default its issuer). */
  audience: string;
  /** Clock-skew allowance on `exp` and `iat`, in seconds (default 30, like Latchkey). */
  leeway?: number;
  /** Algorithms accepted at all (default all of [`ALGORITHMS`]); a key's own `alg` must match too. */
  algorithms?: readonly Algorithm[];
  /** Shortest time between two key refetches caused by an unknown `kid`, in ms (default 10 000). */
  cooldown?: number;
  /** Longest time keys are used before they are refetched, in ms (default 300 000). A shorter
   * `Cache-Control: max-age` on the JWKS response wins (never below one second). */
  maxAge?: number;
  /** How many verified tokens are remembered (default 10 000). */
  cacheSize?: number;
  /** Timeout of each discovery or JWKS request, in ms (default 5 000). */
  timeout?: number;
  /** The `fetch` used for discovery and the JWKS (default the global one). */
  fetch?: typeof fetch;
  /** The clock, in ms since the epoch (default `Date.now`); for tests. */
  now?: () => number;
}

/** A verified token's cache entry: the claims and the key that signed them. */
interface Cached {
  claims: LatchkeyClaims;
  kid: string;
}

type Next = (err?: unknown) => void;
type Handler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** What [`latchkey`] returns. */
export interface Latchkey {
  /** Verifies a compact JWT and resolves to its claims; rejects with a [`LatchkeyError`]. */
  verify(token: string): Promise<LatchkeyClaims>;
  /** Middleware: 401 without a valid token; `req.auth` holds the claims. */
  required(): Handler;
  /** Middleware: no token passes with `req.auth` unset; a refused token is still 401. */
  optional(): Handler;
  /** Middleware: like `required()`, then 403 unless the token carries one of `roles`. */
  requireRole(...roles: string[]): Handler;
  /** Middleware: like `required()`, then 401 `insufficient_user_authentication` (RFC 9470)
   * unless the user signed in with a second factor (and, with `maxAge`, recently enough). */
  requireMfa(options?: { maxAge?: number }): Handler;
  /** Middleware: like `required()`, then 401 `insufficient_user_authentication` (RFC 9470,
   * with `max_age`) unless the user signed in at most `seconds` ago. */
  maxAge(seconds: number): Handler;
  /** The step-up check alone, for apps that call `verify()` themselves: the refusal, or
   * `undefined` when `claims` meet `options`. */
  checkStepUp(claims: LatchkeyClaims, options: StepUpOptions): Problem | undefined;
  /** Reads the discovery document and the keys now (otherwise done at the first request). */
  ready(): Promise<void>;
  /** The token of an `Authorization: Bearer` header, if any (RFC 6750 section 2.1). */
  bearerToken(req: IncomingMessage): string | undefined;
}

/** The token of an `Authorization: Bearer` header, as latchkey-guard reads it. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const value = req.headers.authorization;
  if (typeof value !== 'string') return undefined;
  const space = value.indexOf(' ');
  if (space < 0) return undefined;
  const token = value.slice(space + 1).trim();
  return value.slice(0, space).toLowerCase() === 'bearer' && token !== '' ? token : undefined;
}

const MAX_TOKEN_BYTES = 16 * 1024;
/** The JOSE algorithms latchkey-guard can parse at all; any other `alg` (`none`) is malformed. */
const KNOWN_ALGORITHMS = new Set(['HS256', 'HS384', 'HS512', 'ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA']);

/** Creates a verifier for tokens of `issuer` meant for `audience`. */
export function latchkey(options: LatchkeyOptions): Latchkey {
  const { issuer, audience } = options;
  if (typeof issuer !== 'string' || issuer === '') throw new TypeError('latchkey: issuer is required');
  if (typeof audience !== 'string' || audience === '') throw new TypeError('latchkey: audience is required');
  const leeway = options.leeway ?? 30;
  const algorithms: readonly string[] = options.algorithms ?? ALGORITHMS;
  for (const alg of algorithms) {
    if (!(ALGORITHMS as readonly string[]).includes(alg)) throw new TypeError(`latchkey: unsupported algorithm ${alg}`);
  }
  const cooldown = options.cooldown ?? 10_000;
  const maxAge = options.maxAge ?? 300_000;
  const timeout = options.timeout ?? 5_000;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const cache = new ExpiringLru<Cached>(options.cacheSize ?? 10_000);

  // --- keys: discovery once, then jose's remote key set (cached, refetched on an unknown kid
  // at most once per cooldown, and when older than the refresh interval).
  const shared: ExportedJWKSCache = {} as ExportedJWKSCache;
  let jwksUrl: URL | undefined;
  let remote: ReturnType<typeof createRemoteJWKSet> | undefined;
  let refreshMs = maxAge;
  let rebuild = false;
  let discovery: Promise<void> | undefined;
  let discoveryFailedAt = -Infinity;
  let lastFetchFailure = -Infinity;
  let kids: { jwks: unknown; set: Set<string> } = { jwks: undefined, set: new Set() };

  const jwksFetch = async (url: string, init: RequestInit): Promise<Response> => {
    const response = await doFetch(url, init);
    // Honour the server's Cache-Control max-age (it stays below Latchkey's key publish-ahead
    // delay, so keys published ahead are known here before they sign anything).
    const match = /(?:^|,)\s*max-age\s*=\s*(\d+)/i.exec(response.headers.get('cache-control') ?? '');
    if (match !== null) {
      const wanted = Math.max(1_000, Math.min(maxAge, Number(match[1]) * 1000));
      if (wanted !== refreshMs) {
        refreshMs = wanted;
        rebuild = true; // at the next key lookup, once this response is in the shared cache
      }
    }
    return response;
  };

  function makeRemote(): void {
    if (jwksUrl === undefined) return;
    remote = createRemoteJWKSet(jwksUrl, {
      cooldownDuration: cooldown,
      cacheMaxAge: refreshMs,
      timeoutDuration: timeout,
      [customFetch]: jwksFetch,
      [jwksCache]: shared,
    });
  }

  async function discover(): Promise<void> {
    const base = issuer.replace(/\/+$/, '');
    const response = await doFetch(`${base}/.well-known/openid-configuration`, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeout),
    });
    if (response.status !== 200) throw new Error(`discovery answered ${response.status}`);
    const doc = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // Exact match, as OpenID Connect Discovery 1.0 section 4.3 requires.
    if (doc.issuer !== issuer) throw new Error(`discovery names the issuer ${String(doc.issuer)}, not ${issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri');
    const url = new URL(doc.jwks_uri);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('jwks_uri is not http(s)');
    jwksUrl = url;
    makeRemote();
  }

  function ready(): Promise<void> {
    if (discovery === undefined) {
      if (now() - discoveryFailedAt < cooldown) {
        return Promise.reject(new LatchkeyError('issuer_unavailable'));
      }
      discovery = discover().catch((cause: unknown) => {
        discovery = undefined;
        discoveryFailedAt = now();
        throw new LatchkeyError('issuer_unavailable', { cause });
      });
    }
    return discovery;
  }

  function currentKids(): Set<string> {
    const jwks = shared.jwks;
    if (kids.jwks !== jwks) {
      const set = new Set<string>();
      for (const k of (jwks as JSONWebKeySet | undefined)?.keys ?? []) if (typeof k.kid === 'string') set.add(k.kid);
      kids = { jwks, set };
    }
    return kids.set;
  }

  let fallback: { jwks: unknown; keys: ReturnType<typeof createLocalJWKSet> } | undefined;
  // The key for a token: jose's remote set, or the cached keys while the issuer is unreachable.
  async function getKey(header: JWTHeaderParameters, token: FlattenedJWSInput) {
    if (rebuild) {
      rebuild = false;
      makeRemote();
    }
    const set = remote;
    if (set === undefined) throw new LatchkeyError('issuer_unavailable');
    // A known key used with another algorithm is refused without a refetch.
    const known = (shared.jwks as JSONWebKeySet | undefined)?.keys.find((k) => k.kid === header.kid);
    if (known !== undefined && known.alg !== header.alg) throw new errors.JOSEAlgNotAllowed('alg does not match the key');
    const cached = shared.jwks;
    const useCached = cached !== undefined && !set.fresh && now() - lastFetchFailure < cooldown;
    let key;
    if (useCached) {
      key = await localKeys(cached)(header, token);
    } else {
      try {
        key = await set(header, token);
      } catch (error) {
        const known =
          error instanceof errors.JWKSNoMatchingKey ||
          error instanceof errors.JWKSMultipleMatchingKeys ||
          error instanceof errors.JOSENotSupported;
        if (known || shared.jwks === undefined) throw error;
        lastFetchFailure = now();
        key = await localKeys(shared.jwks)(header, token);
      }
    }
    // The algorithm is pinned by the key: its published `alg` must be the token's.
    const jwk = (shared.jwks as JSONWebKeySet | undefined)?.keys.find((k) => k.kid === header.kid);
    if (jwk === undefined || jwk.alg !== header.alg) throw new errors.JOSEAlgNotAllowed('alg does not match the key');
    return key;
  }

  function localKeys(jwks: JSONWebKeySet): ReturnType<typeof createLocalJWKSet> {
    if (fallback?.jwks !== jwks) fallback = { jwks, keys: createLocalJWKSet(jwks) };
    return fallback.keys;
  }

  async function verify(token: string): Promise<LatchkeyClaims> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_BYTES) throw new LatchkeyError('malformed');
    const digest = createHash('sha256').update(token).digest('base64url');
    const hit = cache.get(digest, now());
    if (hit !== undefined && currentKids().has(hit.kid)) return hit.claims;

    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new LatchkeyError('malformed');
    }
    if (token.split('.').length !== 3 || typeof header.alg !== 'string' || !KNOWN_ALGORITHMS.has(header.alg)) {
      throw new LatchkeyError('malformed');
    }
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
    if (typ !== 'at+jwt' && typ !== 'application/at+jwt') throw new LatchkeyError('wrong_type');
    if (typeof header.kid !== 'string') throw new LatchkeyError('unknown_key');
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) throw new LatchkeyError('algorithm');
    await ready();

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer,
        audience,
        algorithms: [...algorithms],
        typ: 'at+jwt',
        clockTolerance: leeway,
        currentDate: new Date(now()),
        requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub'],
      }));
    } catch (error) {
      throw toLatchkeyError(error);
    }
    if (typeof payload.iat !== 'number' || payload.iat > now() / 1000 + leeway) throw new LatchkeyError('expired');
    const roles = payload.roles ?? [];
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) throw new LatchkeyError('malformed');
    if (typeof payload.sub !== 'string') throw new LatchkeyError('malformed');
    const claims = { ...payload, roles } as LatchkeyClaims;
    cache.set(digest, { claims, kid: header.kid }, (claims.exp + leeway) * 1000);
    return claims;
  }

  function checkStepUp(claims: LatchkeyClaims, options: StepUpOptions): Problem | undefined {
    const { mfa = false, maxAge: limit } = options;
    if (mfa && !(Array.isArray(claims.amr) && claims.amr.includes('mfa'))) {
      return insufficientUserAuthentication('a sign-in with a second factor is required', limit);
    }
    if (limit !== undefined) {
      const fresh = typeof claims.auth_time === 'number' && Math.floor(now() / 1000) - claims.auth_time <= limit;
      if (!fresh) return insufficientUserAuthentication('a more recent sign-in is required', limit);
    }
    return undefined;
  }

  function middleware(mode: 'required' | 'optional', roles?: string[], stepUp?: StepUpOptions): Handler {
    return (req, res, next) => {
      const withRole = (claims: LatchkeyClaims): void => {
        if (roles !== undefined && roles.length > 0 && !roles.some((r) => claims.roles.includes(r))) {
          send(res, forbidden());
          return;
        }
        const refused = stepUp === undefined ? undefined : checkStepUp(claims, stepUp);
        if (refused !== undefined) {
          send(res, refused);
          return;
        }
        next();
      };
      const request = req as IncomingMessage & { auth?: LatchkeyClaims };
      if (request.auth !== undefined) {
        withRole(request.auth);
        return;
      }
      const token = bearerToken(req);
      if (token === undefined) {
        if (mode === 'optional') next();
        else send(res, unauthorized(new LatchkeyError('missing')));
        return;
      }
      verify(token).then(
        (claims) => {
          request.auth = claims;
          withRole(claims);
        },
        (error: unknown) => {
          if (error instanceof LatchkeyError) send(res, unauthorized(error));
          else next(error);
        },
      );
    };
  }

  return {
    verify,
    ready: async () => {
      await ready();
      await remote?.reload();
    },
    required: () => middleware('required'),
    optional: () => middleware('optional'),
    requireRole: (...roles: string[]) => {
      if (roles.length === 0) throw new TypeError('requireRole: name at least one role');
      return middleware('required', roles);
    },
    requireMfa: (options?: { maxAge?: number }) => {
      if (options?.maxAge !== undefined) checkSeconds(options.maxAge);
      return middleware('required', undefined, { mfa: true, maxAge: options?.maxAge });
    },
    maxAge: (seconds: number) => {
      checkSeconds(seconds);
      return middleware('required', undefined, { maxAge: seconds });
    },
    checkStepUp,
    bearerToken,
  };
}

function checkSeconds(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0) throw new TypeError('maxAge: a whole number of seconds');
}

/** Maps jose's errors to latchkey-guard's reasons. */
function toLatchkeyError(error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  if (error instanceof errors.JWTExpired) return new LatchkeyError('expired', { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss' || error.claim === 'aud') return new LatchkeyError('wrong_audience', { cause: error });
    if (error.claim === 'typ') return new LatchkeyError('wrong_type', { cause: error });
    if (error.claim === 'iat' || error.claim === 'nbf') return new LatchkeyError('expired', { cause: error });
    return new LatchkeyError('malformed', { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new LatchkeyError('algorithm', { cause: error });
  if (error instanceof errors.JWSSignatureVerificationFailed) return new LatchkeyError('signature', { cause: error });
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new LatchkeyError('unknown_key', { cause: error });
  }
  if (error instanceof errors.JWKSTimeout) return new LatchkeyError('unknown_key', { cause: error });
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new LatchkeyError('malformed', { cause: error });
  }
  // The key set could not be fetched and none is cached.
  return new LatchkeyError('unknown_key', { cause: error });
}

/** Renders a refusal as problem+json; for apps that call `verify()` themselves. */
export function sendProblem(res: ServerResponse, problem: Problem): void {
  send(res, problem);
}
