/**
 * The security headers and CORS policy of every response, as connect-style
 * middleware: the Express app mounts them, and the bid fast path runs the same
 * functions on its raw requests, so both answer with the same headers.
 */
import cors from 'cors';
import helmet from 'helmet';
import type { ServerResponse } from 'node:http';
import type { Config } from '../../../lib/env.js';

export function securityHeaders(config: Config) {
  return helmet({
    hsts: config.env === 'production' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-site' },
    contentSecurityPolicy: {
      useDefaults: true,
      directives: { 'frame-ancestors': ["'none'"], 'upgrade-insecure-requests': config.env === 'production' ? [] : null },
    },
  });
}

export function corsPolicy(config: Config) {
  return cors({
    origin: config.corsOrigins.length ? config.corsOrigins : false,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Cart-Token', 'X-Request-Id', 'If-None-Match'],
    exposedHeaders: ['Retry-After', 'X-Request-Id', 'ETag', 'X-Cart-Token', 'RateLimit', 'RateLimit-Policy'],
    maxAge: 600,
  });
}

/**
 * The security headers as a function of the response alone, for the bid fast
 * path: helmet's headers do not depend on the request (none of our directives is
 * a function), so they are recorded once, by running the same middleware on a
 * stand-in response, and written from that record. That avoids helmet's dozen
 * middleware calls per request. Should the middleware ever do more than set and
 * remove headers synchronously, this returns null and the caller runs it per request.
 */
export function securityHeaderWriter(config: Config): ((res: ServerResponse) => void) | null {
  const mw = securityHeaders(config) as unknown as (req: unknown, res: unknown, next: (err?: unknown) => void) => void;
  const ops: [name: string, value: string | number | readonly string[] | null][] = [];
  let nextCalled = false;
  let unexpected = false;
  const recorder = new Proxy(
    {
      setHeader: (name: string, value: string | number | readonly string[]) => void ops.push([name, value]),
      removeHeader: (name: string) => void ops.push([name, null]),
    },
    {
      get: (target, prop) => {
        if (prop in target) return target[prop as keyof typeof target];
        unexpected = true;
        return undefined;
      },
    },
  );
  try {
    mw(new Proxy({}, { get: () => ((unexpected = true), undefined) }), recorder, (err) => {
      nextCalled = !err;
    });
  } catch {
    unexpected = true;
  }
  if (!nextCalled || unexpected) return null;
  return (res) => {
    for (const [name, value] of ops) {
      if (value === null) res.removeHeader(name);
      else res.setHeader(name, value);
    }
  };
}
