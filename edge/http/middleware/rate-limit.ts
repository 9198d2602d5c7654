import type { Request, RequestHandler } from 'express';
import { rateLimit, ipKeyGenerator, type ClientRateLimitInfo, type Options, type Store } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { EdgeDeps } from '../deps.js';
import { AppError } from '../../../lib/errors.js';

/**
 * Rate limits with one Redis store shared by every edge instance (never memory).
 * Over the limit: 429 `rate_limited` in the error envelope with `Retry-After`.
 * If Redis is unreachable the limiter lets requests through (logged) rather
 * than taking the API down with it.
 */
/**
 * Wraps the store so that a Redis failure lets the request through, logged (at
 * most every 10 s) through our logger rather than express-rate-limit's console.
 */
function failOpen(store: RedisStore, deps: EdgeDeps, windowMs: number): Store {
  let lastWarn = 0;
  return {
    prefix: store.prefix,
    localKeys: false,
    init: (options) => store.init?.(options),
    get: (key) => store.get(key),
    decrement: (key) => store.decrement(key),
    resetKey: (key) => store.resetKey(key),
    increment: async (key): Promise<ClientRateLimitInfo> => {
      try {
        return await store.increment(key);
      } catch (err) {
        if (Date.now() - lastWarn > 10_000) {
          lastWarn = Date.now();
          deps.logger.warn({ err: (err as Error).message }, 'rate limit store unavailable: not limiting');
        }
        // Counted as the first hit of a fresh window: never over any limit.
        return { totalHits: 1, resetTime: new Date(Date.now() + windowMs) };
      }
    },
  };
}

export function limiter(
  deps: EdgeDeps,
  name: string,
  perMinute: number,
  key: 'ip' | 'user',
  extra: Partial<Options> = {},
): RequestHandler {
  const { redis, config, metrics } = deps;
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    store: failOpen(
      new RedisStore({
        prefix: `${config.redis.prefix}:rl:${name}:`,
        sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
      }),
      deps,
      60_000,
    ),
    keyGenerator: (req: Request) => (key === 'user' && req.user ? `u:${req.user.id}` : `ip:${ipKeyGenerator(req.ip ?? '')}`),
    skip: key === 'user' ? (req: Request) => !req.user : undefined,
    handler: (req, _res, next, options) => {
      metrics.rateLimited.inc({ limit: name });
      const reset = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfter = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + options.windowMs) - Date.now()) / 1000));
      next(new AppError('rate_limited', 'too many requests, slow down', undefined, { 'Retry-After': String(retryAfter) }));
    },
    ...extra,
  });
}
