/**
 * The security headers and CORS policy of every response, as connect-style
 * middleware: the Express app mounts them, and the bid fast path runs the same
 * functions on its raw requests, so both answer with the same headers.
 */
import cors from 'cors';
import helmet from 'helmet';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
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
    exposedHeaders: ['Retry-After', 'X-Request-Id', 'ETag', 'X-Cart-Token', 'RateLimit', 'RateLimit-Policy', 'Location', 'Idempotent-Replayed'],
    maxAge: 600,
  });
}

/**
 * helmet's headers as recorded on a stand-in response (names in their case), or
 * null if the middleware did not finish at once. See securityHeaderWriter.
 */
export function securityHeaderRecord(config: Config): (readonly [string, string | number | string[]])[] | null {
  const stub = new ServerResponse(new IncomingMessage(new Socket()));
  let finished = false;
  (securityHeaders(config) as unknown as (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void)(stub.req, stub, (err) => {
    finished = !err;
  });
  if (!finished) return null;
  // getRawHeaderNames (Node ≥ 15.13, missing from @types/node 20) keeps the names' case.
  const names = (stub as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames();
  return names.map((name) => [name, stub.getHeader(name)!] as const);
}

/**
 * The security headers as a function of the response alone, for the bid fast
 * path: helmet's headers do not depend on the request (none of our directives is
 * a function), so they are recorded once, by running the same middleware on a
 * stand-in response, and set from that record. That avoids helmet's dozen
 * middleware calls per request. Null if the middleware did not finish at once
 * (the caller then runs it per request).
 */
export function securityHeaderWriter(config: Config): ((res: ServerResponse) => void) | null {
  const headers = securityHeaderRecord(config);
  if (!headers) return null;
  return (res) => {
    for (const [name, value] of headers) res.setHeader(name, value);
  };
}
