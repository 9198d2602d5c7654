import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './env.js';

export type { Redis };

/**
 * A Redis connection. `kind` picks the options BullMQ and the edge need:
 * - `command`: request-path commands; fails fast when Redis is down
 *   (no offline queue) so the edge answers 503 instead of hanging.
 * - `blocking`: BullMQ workers (maxRetriesPerRequest null, as BullMQ requires).
 */
export function createRedis(config: Config, kind: 'command' | 'blocking' = 'command', extra: RedisOptions = {}): Redis {
  const options: RedisOptions = {
    connectionName: `blytz-${kind}`,
    lazyConnect: false,
    maxRetriesPerRequest: kind === 'blocking' ? null : 1,
    enableOfflineQueue: kind === 'blocking',
    connectTimeout: 3_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  };
  if (config.redis.url) return new Redis(config.redis.url, options);
  return new Redis({
    host: config.redis.host,
    port: config.redis.port,
    password: config.redis.password ?? undefined,
    ...options,
  });
}

/** Resolves when the connection is ready, or rejects after `ms`. */
export async function waitForRedis(redis: Redis, ms = 5_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready after ${ms} ms`));
    }, ms);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
