/**
 * `@latchkey/express/passport`: a passport strategy for apps that keep `passport.authenticate`.
 *
 * ```js
 * import passport from 'passport';
 * import { LatchkeyStrategy } from '@latchkey/express/passport';
 * passport.use(new LatchkeyStrategy({ issuer, audience }));
 * app.get('/me', passport.authenticate('latchkey', { session: false }), (req, res) => res.json(req.user));
 * ```
 *
 * A refused token fails the strategy with the same RFC 6750 challenge as the middleware; with
 * `failWithError: true` and `latchkeyErrorHandler()` after the routes the body is the same
 * problem+json too (passport's own failure body is a plain-text "Unauthorized").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { LatchkeyError, latchkey, type Latchkey, type LatchkeyClaims, type LatchkeyOptions } from './index.js';
import { send, unauthorized } from './problem.js';

/** Turns verified claims into passport's `req.user` (default: the claims themselves). */
export type VerifyCallback = (
  claims: LatchkeyClaims,
  done: (error: unknown, user?: unknown, info?: unknown) => void,
) => void;

/** Options: those of `latchkey()`, or an existing verifier to share its key and token caches. */
export type LatchkeyStrategyOptions = LatchkeyOptions | { latchkey: Latchkey };

/** What passport mixes into a strategy while it authenticates a request. */
interface PassportActions {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: string | number, status?: number): void;
  error(err: unknown): void;
}

const REFUSAL = Symbol.for('latchkey.refusal');

/** Passport strategy `latchkey`: the request's Bearer token, verified like `auth.required()`. */
export class LatchkeyStrategy {
  name = 'latchkey';
  // Plain properties, not #private: passport runs authenticate() on Object.create(strategy).
  private readonly auth: Latchkey;
  private readonly verifyClaims: VerifyCallback | undefined;

  constructor(options: LatchkeyStrategyOptions, verify?: VerifyCallback) {
    this.auth = 'latchkey' in options ? options.latchkey : latchkey(options);
    this.verifyClaims = verify;
  }

  authenticate(this: LatchkeyStrategy & PassportActions, req: IncomingMessage): void {
    const token = this.auth.bearerToken(req);
    if (token === undefined) {
      refuse(this, req, new LatchkeyError('missing'));
      return;
    }
    this.auth.verify(token).then(
      (claims) => {
        (req as IncomingMessage & { auth?: LatchkeyClaims }).auth = claims;
        if (this.verifyClaims === undefined) {
          this.success(claims);
          return;
        }
        this.verifyClaims(claims, (err, user, info) => {
          if (err !== null && err !== undefined) this.error(err);
          else if (user === false || user === undefined) this.fail('Bearer realm="latchkey", error="invalid_token"', 401);
          else this.success(user, info);
        });
      },
      (error: unknown) => {
        if (error instanceof LatchkeyError) refuse(this, req, error);
        else this.error(error);
      },
    );
  }
}

function refuse(strategy: PassportActions, req: IncomingMessage, error: LatchkeyError): void {
  (req as IncomingMessage & { [REFUSAL]?: LatchkeyError })[REFUSAL] = error;
  if (error.status === 503) {
    strategy.error(error);
    return;
  }
  const challenge = unauthorized(error).headers['www-authenticate'];
  strategy.fail(challenge, 401);
}

/**
 * Express error handler rendering the strategy's refusals as Latchkey's problem+json (use with
 * `passport.authenticate('latchkey', { session: false, failWithError: true })`); other errors
 * go on to the next handler.
 */
export function latchkeyErrorHandler() {
  return (err: unknown, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    const refusal = (req as IncomingMessage & { [REFUSAL]?: LatchkeyError })[REFUSAL];
    if (err instanceof LatchkeyError) {
      send(res, unauthorized(err));
    } else if (refusal !== undefined && (err as { name?: string } | null)?.name === 'AuthenticationError') {
      send(res, unauthorized(refusal));
    } else {
      next(err);
    }
  };
}
