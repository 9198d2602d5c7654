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
/** Logs that the limits are off because Redis failed, at most every 10 s. */
function storeDownWarning(logger: EdgeDeps['logger']): (err: unknown) => void {
  let lastWarn = 0;
  return (err) => {
    if (Date.now() - lastWarn > 10_000) {
      lastWarn = Date.now();
      logger.warn({ err: (err as Error).message }, 'rate limit store unavailable: not limiting');
    }
  };
}

/**
 * The key a limiter counts a request under: its client address, or its user.
 * The Express limiters and the bid fast path use this one function, so they
 * count in the same keys.
 */
export function limitKey(key: 'ip' | 'user', ip: string | undefined, userId: string | undefined): string {
  return key === 'user' && userId ? `u:${userId}` : `ip:${ipKeyGenerator(ip ?? '')}`;
}

/**
 * Wraps the store so that a Redis failure lets the request through, logged (at
 * most every 10 s) through our logger rather than express-rate-limit's console.
 */
function failOpen(store: RedisStore, deps: EdgeDeps, windowMs: number): Store {
  const warn = storeDownWarning(deps.logger);
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
        warn(err);
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
    keyGenerator: (req: Request) => limitKey(key, req.ip, req.user?.id),
    // That check reads the keyGenerator's source for a call to ipKeyGenerator;
    // limitKey makes the call (addresses are grouped by IPv6 /56 as the default does).
    validate: { keyGeneratorIpFallback: false },
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

/**
 * rate-limit-redis's increment script, verbatim: the bid fast path counts in the
 * same keys, with the same fixed windows, as the Express limiters above (a test
 * sends bids both ways against one budget).
 */
const INCREMENT = `local windowMs = tonumber(ARGV[2])
local resetOnChange = ARGV[1] == "1"
local timeToExpire = redis.call("PTTL", KEYS[1])
if timeToExpire <= 0 then
redis.call("SET", KEYS[1], 1, "PX", windowMs)
return { 1, windowMs }
end
local totalHits = redis.call("INCR", KEYS[1])
if resetOnChange then
redis.call("PEXPIRE", KEYS[1], windowMs)
timeToExpire = windowMs
end
return { totalHits, timeToExpire }`;

export interface LimitCheck {
  /** The limiter's name (metrics label) and its key prefix: `<prefix>:rl:<name>:`. */
  name: string;
  key: string;
  limit: number;
}

export interface LimitResult {
  limited: boolean;
  /** The draft-7 headers express-rate-limit would set. */
  headers: Record<string, string>;
  retryAfter: number;
}

const WINDOW_MS = 60_000;

function resultOf(check: LimitCheck, totalHits: number, msLeft: number): LimitResult {
  const reset = Math.max(0, Math.ceil(msLeft / 1000));
  return {
    limited: totalHits > check.limit,
    headers: {
      'RateLimit-Policy': `${check.limit};w=${WINDOW_MS / 1000}`,
      RateLimit: `limit=${check.limit}, remaining=${Math.max(check.limit - totalHits, 0)}, reset=${reset}`,
    },
    retryAfter: Math.max(1, reset),
  };
}

/**
 * Counts one hit against each of `checks`, the commands sent together (one
 * round trip on a connection with auto-pipelining; not one script, since the
 * keys need not share a cluster slot). Fails open like the Express limiters:
 * with Redis unreachable every check passes, logged.
 */
export function limitCounter(deps: Pick<EdgeDeps, 'redis' | 'config' | 'logger'>) {
  const { redis, config } = deps;
  type WithCommand = { rlIncrement(key: string, resetOnChange: string, windowMs: string): Promise<[number, number]> };
  if (!('rlIncrement' in redis)) redis.defineCommand('rlIncrement', { numberOfKeys: 1, lua: INCREMENT });
  const warn = storeDownWarning(deps.logger);
  const command = redis as unknown as WithCommand;
  return async (checks: LimitCheck[]): Promise<LimitResult[]> => {
    try {
      const replies = await Promise.all(checks.map((c) => command.rlIncrement(`${config.redis.prefix}:rl:${c.name}:${c.key}`, '0', String(WINDOW_MS))));
      return checks.map((c, i) => resultOf(c, Number(replies[i]![0]), Number(replies[i]![1])));
    } catch (err) {
      warn(err);
      return checks.map((c) => resultOf(c, 1, WINDOW_MS));
    }
  };
}
