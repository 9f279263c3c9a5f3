/**
 * RFC 9457 problem+json refusals, byte for byte the bodies and RFC 6750 challenges of
 * Latchkey's own resource-server library (crates/latchkey-guard): 401 `invalid_token`,
 * 403 `insufficient_permission`, 401 `insufficient_user_authentication` (step-up, RFC 9470).
 */
import type { ServerResponse } from 'node:http';

/** Why a token was refused; the `detail` texts are latchkey-guard's `VerifyError` messages. */
export const REASONS = {
  missing: 'no bearer token',
  malformed: 'the token is malformed',
  wrong_type: 'the token is not an access token',
  unknown_key: 'the token is signed by an unknown key',
  algorithm: 'the token uses a refused algorithm',
  signature: 'the token signature is invalid',
  expired: 'the token has expired',
  wrong_audience: 'the token was not issued for this service',
  issuer_unavailable: 'the token issuer cannot be reached; retry shortly',
} as const;

/** A reason a token was refused. */
export type Reason = keyof typeof REASONS;

/** The error `verify()` rejects with. `status` is 401, or 503 while the issuer's discovery
 * document cannot be read (no keys at all yet). */
export class LatchkeyError extends Error {
  readonly reason: Reason;
  readonly status: 401 | 503;
  constructor(reason: Reason, options?: { cause?: unknown }) {
    super(REASONS[reason], options);
    this.name = 'LatchkeyError';
    this.reason = reason;
    this.status = reason === 'issuer_unavailable' ? 503 : 401;
  }
}

/** What a refusal sends: status, headers and the problem+json body. */
export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: { type: string; title: string; status: number; detail: string; code: string };
}

function problem(status: number, code: string, title: string, detail: string, headers: Record<string, string>): Problem {
  return {
    status,
    headers,
    body: { type: `https://latchkey.dev/problems/${code.replaceAll('_', '-')}`, title, status, detail, code },
  };
}

/** The refusal for a missing, refused or (503) unverifiable token. */
export function unauthorized(error: LatchkeyError): Problem {
  if (error.status === 503) {
    return problem(503, 'issuer_unavailable', 'Service unavailable', error.message, { 'retry-after': '5' });
  }
  // RFC 6750 section 3.1: a request without credentials gets no error code.
  const challenge = error.reason === 'missing' ? 'Bearer realm="latchkey"' : 'Bearer realm="latchkey", error="invalid_token"';
  return problem(401, 'invalid_token', 'Unauthorized', error.message, { 'www-authenticate': challenge });
}

/** The refusal of a verified caller without the permission (403). */
export function forbidden(): Problem {
  return problem(403, 'insufficient_permission', 'Insufficient permission', 'you are not allowed to do this', {
    'www-authenticate': 'Bearer realm="latchkey", error="insufficient_scope"',
  });
}

/** The refusal of a valid token whose sign-in is not strong or recent enough (RFC 9470): 401
 * `insufficient_user_authentication`, as latchkey-guard's `RequireMfa` / `StepUp` answer. */
export function insufficientUserAuthentication(description: string, maxAge?: number): Problem {
  let challenge = `Bearer realm="latchkey", error="insufficient_user_authentication", error_description="${description}"`;
  if (maxAge !== undefined) challenge += `, max_age=${maxAge}`;
  return problem(401, 'insufficient_user_authentication', 'Stronger sign-in required', description, {
    'www-authenticate': challenge,
  });
}

/** Writes `p` on a Node (or Express) response. */
export function send(res: ServerResponse, p: Problem): void {
  const body = JSON.stringify(p.body);
  res.statusCode = p.status;
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('cache-control', 'no-store');
  for (const [name, value] of Object.entries(p.headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
