/**
 * The security headers and CORS policy of every response, as connect-style
 * middleware: the Express app mounts them, and the bid fast path runs the same
 * functions on its raw requests, so both answer with the same headers.
 */
import cors from 'cors';
import helmet from 'helmet';
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
