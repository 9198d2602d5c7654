import type { Request, RequestHandler } from 'express';
import passport from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import { unauthorized } from '../../../lib/errors.js';
import { claimsFromPayload, keyForToken, VERIFY_ALGORITHMS, type AccessClaims, type KeySet } from '../../../lib/jwt.js';
import type { Config } from '../../../lib/env.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // passport's req.user is our access-token claims.
    interface User extends AccessClaims {}
  }
}

/**
 * passport-jwt with RS256 only: the key is chosen by the token's `kid` among our
 * own public keys (an unknown kid, `alg: none` or an HS256 token signed with the
 * public key all fail), and `iss`/`aud`/`exp` are checked.
 */
export function createPassport(config: Config, keys: KeySet): passport.PassportStatic {
  const instance = new passport.Passport() as unknown as passport.PassportStatic;
  instance.use(
    'jwt',
    new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        // The KeyObject itself (jsonwebtoken accepts one): exporting it to PEM and
        // parsing it back cost a sixth of the edge's CPU under bid load.
        secretOrKeyProvider: (_req: Request, rawJwt: string, done: (err: unknown, key?: string | Buffer) => void) => {
          const key = keyForToken(keys, rawJwt);
          if (!key) return done(new Error('unknown key'));
          done(null, key as unknown as string);
        },
        algorithms: VERIFY_ALGORITHMS,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
        ignoreExpiration: false,
      },
      (payload: unknown, done: (err: unknown, user?: AccessClaims | false) => void) => {
        const claims = claimsFromPayload(payload);
        done(null, claims ?? false);
      },
    ),
  );
  return instance;
}

/**
 * Runs on every request: no Authorization header → anonymous; a Bearer token that
 * verifies → `req.user`; anything else → 401 (a client that sends credentials
 * learns when they are bad, even on public routes).
 */
export function authenticate(instance: passport.PassportStatic): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    if (!header) return next();
    if (!/^Bearer [A-Za-z0-9_\-.]+$/i.test(header)) return next(unauthorized('malformed Authorization header'));
    instance.authenticate('jwt', { session: false }, (err: unknown, user: AccessClaims | false) => {
      if (err || !user) return next(unauthorized('invalid or expired access token'));
      req.user = user;
      next();
    })(req, res, next);
  };
}
